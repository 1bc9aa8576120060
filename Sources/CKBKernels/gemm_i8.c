// The encoder's int8 matrix product: C[m, n] = A[m, k] · Wᵀ with A quantized per row (token) and
// W per output row (channel), both symmetric in [-127, 127]; int32 accumulation; one float
// epilogue. The scalar twin, the per-ISA variants, the activation quantizer and their own
// dispatch point. See include/kb_kernels.h for the contract.
//
// Exactness. Every variant computes the same int32 dot products (|Σ a·w| ≤ 127²·k < 2³¹ for
// k ≤ 131072; vector adds wrap, so intermediate sums that leave the int32 range, which only the
// VNNI correction can produce, still end exact), and then the same two float multiplies in the
// same order: c = (float)dot · (a_scale[i] · w_scale[j]). There is no float addition anywhere
// in the epilogue, so floating-point contraction (FMA) cannot change a result.
//
// Packed layouts (chosen by the kernel the weights are packed for; np = n rounded up to the
// kernel's column block, kp = k rounded up to 4; padding is 0 in the stored form):
//   scalar      [n][k] int8, row-major, as quantized.
//   avx2        [np/8][kp/4][8][4] int8: one ymm holds 4 consecutive k of 8 columns.
//   avxvnni     [np/8][kp/4][8][4] uint8 = w + 128 (w ^ 0x80): vpdpbusd's unsigned operand.
//   avx512vnni  [np/16][kp/4][16][4] uint8 = w + 128: one zmm holds 4 k of 16 columns.
//   neon        [np/4][kp/4][4][4] int8: one q register holds 4 k of 4 columns.
// The VNNI kernels take the weights as the unsigned side, so the activations (the side that is
// broadcast 4 bytes at a time) stay signed and can be used straight from memory. Their sum
// Σ (w+128)·a = Σ w·a + 128·Σa is corrected by starting each row's accumulators at −128·Σa,
// with Σa of the k real activation bytes computed once per row block: padding weights are 0 in
// the unsigned form, so padding activations (whatever bytes they hold) add nothing.
#include "kb_kernels.h"
#include "kb_select.h"
#include <stdlib.h>
#include <string.h>

#define KB_GEMM_MAX_K 131072

// Instantiates CALL(R) for R = MR rows (1…4), each a fully unrolled micro-kernel.
#define KB_SWITCH_MR4(MR, CALL)                                                                     \
    switch (MR) {                                                                                   \
    case 4: CALL(4); break;                                                                         \
    case 3: CALL(3); break;                                                                         \
    case 2: CALL(2); break;                                                                         \
    default: CALL(1); break;                                                                        \
    }

struct kb_i8_weights {
    kb_gemm_kernel_id kernel;
    size_t n, k;    // logical shape [n, k]
    size_t np, kp;  // padded shape of `data`
    float *scales;  // np floats (0 past n)
    int8_t *data;   // packed as described above (uint8 bytes for the VNNI layouts)
    size_t bytes;   // everything this handle owns
};

// ---- quantization (shared definitions) ---------------------------------------------------

// max |x| over a row as the integer maximum of the bit patterns with the sign cleared: exact,
// the same in every variant, and a NaN or infinity (bits ≥ 0x7F800000) always wins.
#define KB_ABS_BITS 0x7FFFFFFFu
#define KB_INF_BITS 0x7F800000u
// Rows whose max |x| is below 2^-100 quantize to zero (127 / max would overflow a float).
#define KB_TINY_BITS 0x0D800000u

static float kb_bits_float(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }

// Round to nearest, ties to even, for |v| ≤ 127 (the 1.5·2^23 trick; matches cvtps2dq).
static inline int32_t kb_round_small(float v) {
    const float magic = 12582912.0f;  // IEEE arithmetic: (v + m) − m is not folded
    float r = (v + magic) - magic;
    return (int32_t)r;
}

// Writes row i's scale; returns 127 / max, or 0 when the row is all zero-ish or non-finite
// (then the row is written as zeros; a non-finite row gets a NaN scale, so every output that
// uses it is NaN and the caller's finiteness check reports the damage).
static float kb_row_scale(uint32_t maxbits, float *scale) {
    if (maxbits >= KB_INF_BITS) { *scale = kb_bits_float(0x7FC00000u); return 0.0f; }
    if (maxbits < KB_TINY_BITS) { *scale = 0.0f; return 0.0f; }
    const float mx = kb_bits_float(maxbits);
    *scale = mx / 127.0f;
    return 127.0f / mx;
}

void kb_i8_quantize_rows_scalar(const float *x, size_t ldx, size_t m, size_t k, const float *cs, int8_t *q, size_t ldq,
                                float *scales) {
    for (size_t i = 0; i < m; i++) {
        const float *r = x + i * ldx;
        int8_t *o = q + i * ldq;
        uint32_t mb = 0;
        for (size_t t = 0; t < k; t++) {
            const float xv = cs ? r[t] * cs[t] : r[t];
            uint32_t b;
            memcpy(&b, &xv, 4);
            b &= KB_ABS_BITS;
            mb = b > mb ? b : mb;
        }
        const float inv = kb_row_scale(mb, scales + i);
        if (inv == 0.0f) { memset(o, 0, ldq); continue; }
        for (size_t t = 0; t < k; t++) {
            float v = (cs ? r[t] * cs[t] : r[t]) * inv;
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            o[t] = (int8_t)kb_round_small(v);
        }
        memset(o + k, 0, ldq - k);
    }
}

// ---- the scalar twin ----------------------------------------------------------------------

static void kb_i8_gemm_scalar(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *as, size_t m,
                              float *c, size_t ldc) {
    const size_t n = w->n, k = w->k;
    for (size_t i = 0; i < m; i++) {
        const int8_t *ar = a + i * lda;
        for (size_t j = 0; j < n; j++) {
            const int8_t *wr = w->data + j * k;
            int32_t s = 0;
            for (size_t t = 0; t < k; t++) s += (int32_t)ar[t] * (int32_t)wr[t];
            c[i * ldc + j] = (float)s * (as[i] * w->scales[j]);
        }
    }
}

// ---- x86-64 -------------------------------------------------------------------------------

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <immintrin.h>
#define KB_GEMM_X86 1


KB_INLINE int32_t kb_load4(const int8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

// Quantizer, AVX2: 8 floats at a time, the same operations as the scalar twin (the clamp
// before cvtps2dq, which rounds to nearest even like kb_round_small).
KB_AVX2_T void kb_i8_quantize_rows_avx2(const float *x, size_t ldx, size_t m, size_t k, const float *cs, int8_t *q, size_t ldq,
                                        float *scales) {
    const size_t full = k - k % 8;
    for (size_t i = 0; i < m; i++) {
        const float *r = x + i * ldx;
        int8_t *o = q + i * ldq;
        __m256i vm = _mm256_setzero_si256();
        const __m256i absmask = _mm256_set1_epi32((int)KB_ABS_BITS);
        for (size_t t = 0; t < full; t += 8) {
            __m256 xv = _mm256_loadu_ps(r + t);
            if (cs) xv = _mm256_mul_ps(xv, _mm256_loadu_ps(cs + t));
            vm = _mm256_max_epu32(vm, _mm256_and_si256(_mm256_castps_si256(xv), absmask));
        }
        uint32_t lanes[8], mb = 0;
        _mm256_storeu_si256((__m256i *)lanes, vm);
        for (int l = 0; l < 8; l++) mb = lanes[l] > mb ? lanes[l] : mb;
        for (size_t t = full; t < k; t++) {
            const float xv = cs ? r[t] * cs[t] : r[t];
            uint32_t b;
            memcpy(&b, &xv, 4);
            b &= KB_ABS_BITS;
            mb = b > mb ? b : mb;
        }
        const float inv = kb_row_scale(mb, scales + i);
        if (inv == 0.0f) { memset(o, 0, ldq); continue; }
        const __m256 vinv = _mm256_set1_ps(inv), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
        for (size_t t = 0; t < full; t += 8) {
            __m256 xv = _mm256_loadu_ps(r + t);
            if (cs) xv = _mm256_mul_ps(xv, _mm256_loadu_ps(cs + t));
            __m256 v = _mm256_mul_ps(xv, vinv);
            v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
            const __m256i d = _mm256_cvtps_epi32(v);
            const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
            _mm_storel_epi64((__m128i *)(o + t), _mm_packs_epi16(w16, w16));
        }
        for (size_t t = full; t < k; t++) {
            float v = (cs ? r[t] * cs[t] : r[t]) * inv;
            v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
            o[t] = (int8_t)kb_round_small(v);
        }
        memset(o + k, 0, ldq - k);
    }
}

// Quantizer, AVX-512F: 16 floats at a time, masked tails.
__attribute__((target("avx512f"))) void kb_i8_quantize_rows_avx512(const float *x, size_t ldx, size_t m, size_t k, const float *cs, int8_t *q,
                                             size_t ldq, float *scales) {
    for (size_t i = 0; i < m; i++) {
        const float *r = x + i * ldx;
        int8_t *o = q + i * ldq;
        __m512i vm = _mm512_setzero_si512();
        const __m512i absmask = _mm512_set1_epi32((int)KB_ABS_BITS);
        for (size_t t = 0; t < k; t += 16) {
            const __mmask16 mk = k - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - t)) - 1);
            __m512 xv = _mm512_maskz_loadu_ps(mk, r + t);
            if (cs) xv = _mm512_mul_ps(xv, _mm512_maskz_loadu_ps(mk, cs + t));
            vm = _mm512_max_epu32(vm, _mm512_and_si512(_mm512_castps_si512(xv), absmask));
        }
        const uint32_t mb = (uint32_t)_mm512_reduce_max_epu32(vm);
        const float inv = kb_row_scale(mb, scales + i);
        if (inv == 0.0f) { memset(o, 0, ldq); continue; }
        const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
        for (size_t t = 0; t < k; t += 16) {
            const __mmask16 mk = k - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - t)) - 1);
            __m512 xv = _mm512_maskz_loadu_ps(mk, r + t);
            if (cs) xv = _mm512_mul_ps(xv, _mm512_maskz_loadu_ps(mk, cs + t));
            __m512 v = _mm512_mul_ps(xv, vinv);
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            _mm512_mask_cvtepi32_storeu_epi8(o + t, mk, _mm512_cvtps_epi32(v));
        }
        memset(o + k, 0, ldq - k);
    }
}

// AVX2 (no VNNI): the abs/sign trick of dot.c. For a broadcast activation group b (4 bytes) and
// a weight vector w, vpmaddubsw(|b|, sign(w, b)) multiplies |b| ∈ [0, 127] (unsigned) by
// w·sign(b) ∈ [-127, 127]: each product ≤ 127² and each int16 pair ≤ 32258, so it never
// saturates; vpmaddwd against 1s widens pairs into the int32 lanes (one per column).
// Micro-kernel: MR ≤ 4 rows × NZ ≤ 2 ymm (8 columns each).
KB_AVX2_T KB_INLINE void kb_avx2_tile(const int8_t *wp, size_t bs, size_t k4n, const int8_t *a, size_t lda,
                                      const float *as, const float *ws, float *c, size_t ldc, size_t ncols,
                                      const int MR, const int NZ) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[4][2];
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < NZ; z++) acc[r][z] = _mm256_setzero_si256();
    for (size_t s = 0; s < k4n; s++) {
        __m256i wv[2];
        for (int z = 0; z < NZ; z++) wv[z] = _mm256_loadu_si256((const __m256i *)(wp + z * bs + s * 32));
        for (int r = 0; r < MR; r++) {
            const __m256i b = _mm256_set1_epi32(kb_load4(a + r * lda + s * 4));
            const __m256i babs = _mm256_abs_epi8(b);
            for (int z = 0; z < NZ; z++) {
                const __m256i p = _mm256_maddubs_epi16(babs, _mm256_sign_epi8(wv[z], b));
                acc[r][z] = _mm256_add_epi32(acc[r][z], _mm256_madd_epi16(p, ones));
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        const __m256 sa = _mm256_set1_ps(as[r]);
        for (int z = 0; z < NZ; z++) {
            const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][z]), _mm256_mul_ps(sa, _mm256_loadu_ps(ws + z * 8)));
            const size_t left = ncols - (size_t)z * 8;
            if (left >= 8) _mm256_storeu_ps(c + r * ldc + z * 8, v);
            else {
                float tmp[8];
                _mm256_storeu_ps(tmp, v);
                memcpy(c + r * ldc + z * 8, tmp, left * 4);
            }
        }
    }
}

// Rows per cache block: MC rows of A (≈ 192 KB) stay in L2 while every column panel passes.
static size_t kb_row_block(size_t kp, size_t mr) {
    size_t mc = (192 * 1024) / (kp ? kp : 1);
    if (mc > 240) mc = 240;
    mc -= mc % mr;
    return mc < mr ? mr : mc;
}

KB_AVX2_T static void kb_i8_gemm_avx2(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *as, size_t m,
                                      float *c, size_t ldc) {
    const size_t n = w->n, k4n = w->kp / 4, bs = k4n * 32;
    const size_t mc = kb_row_block(w->kp, 4);
    for (size_t i0 = 0; i0 < m; i0 += mc) {
        const size_t i1 = m - i0 < mc ? m : i0 + mc;
        for (size_t j = 0; j < n; j += 16) {
            const size_t ncols = n - j < 16 ? n - j : 16;
            const int8_t *wp = w->data + (j / 8) * bs;
            for (size_t i = i0; i < i1; i += 4) {
                const int mr = i1 - i >= 4 ? 4 : (int)(i1 - i);
#define KB_CALL(R)                                                                                  \
    if (ncols > 8) kb_avx2_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 2); \
    else kb_avx2_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 1);
                KB_SWITCH_MR4(mr, KB_CALL)
#undef KB_CALL
            }
        }
    }
}

// AVX-VNNI (VEX vpdpbusd on ymm): weights unsigned (w + 128), activations signed, accumulators
// start at −128·Σa. Micro-kernel: MR ≤ 4 rows × NZ ≤ 3 ymm (8 columns each).
KB_AVXVNNI_T static int32_t kb_row_sum_avxvnni(const int8_t *a, size_t k) {
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i acc = _mm256_setzero_si256();
    size_t t = 0;
    for (; t + 32 <= k; t += 32) acc = _mm256_dpbusd_avx_epi32(acc, ones, _mm256_loadu_si256((const __m256i *)(a + t)));
    int32_t lanes[8], s = 0;
    _mm256_storeu_si256((__m256i *)lanes, acc);
    for (int l = 0; l < 8; l++) s += lanes[l];
    for (; t < k; t++) s += a[t];
    return s;
}

KB_AVXVNNI_T KB_INLINE void kb_avxvnni_tile(const int8_t *wp, size_t bs, size_t k4n, const int8_t *a, size_t lda,
                                            const int32_t *corr, const float *as, const float *ws, float *c,
                                            size_t ldc, size_t ncols, const int MR, const int NZ) {
    __m256i acc[4][3];
    for (int r = 0; r < MR; r++) {
        const __m256i cv = _mm256_set1_epi32(corr[r]);
        for (int z = 0; z < NZ; z++) acc[r][z] = cv;
    }
    for (size_t s = 0; s < k4n; s++) {
        __m256i wv[3];
        for (int z = 0; z < NZ; z++) wv[z] = _mm256_loadu_si256((const __m256i *)(wp + z * bs + s * 32));
        for (int r = 0; r < MR; r++) {
            const __m256i b = _mm256_set1_epi32(kb_load4(a + r * lda + s * 4));
            for (int z = 0; z < NZ; z++) acc[r][z] = _mm256_dpbusd_avx_epi32(acc[r][z], wv[z], b);
        }
    }
    for (int r = 0; r < MR; r++) {
        const __m256 sa = _mm256_set1_ps(as[r]);
        for (int z = 0; z < NZ; z++) {
            const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][z]), _mm256_mul_ps(sa, _mm256_loadu_ps(ws + z * 8)));
            const size_t left = ncols - (size_t)z * 8;
            if (left >= 8) _mm256_storeu_ps(c + r * ldc + z * 8, v);
            else {
                float tmp[8];
                _mm256_storeu_ps(tmp, v);
                memcpy(c + r * ldc + z * 8, tmp, left * 4);
            }
        }
    }
}

KB_AVXVNNI_T static void kb_i8_gemm_avxvnni(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *as,
                                            size_t m, float *c, size_t ldc) {
    const size_t n = w->n, k4n = w->kp / 4, bs = k4n * 32;
    enum { MC_MAX = 240 };
    int32_t corr[MC_MAX];
    const size_t mc = kb_row_block(w->kp, 4);
    for (size_t i0 = 0; i0 < m; i0 += mc) {
        const size_t i1 = m - i0 < mc ? m : i0 + mc;
        for (size_t i = i0; i < i1; i++) corr[i - i0] = (int32_t)(0u - 128u * (uint32_t)kb_row_sum_avxvnni(a + i * lda, w->k));
        for (size_t j = 0; j < n; j += 24) {
            const size_t ncols = n - j < 24 ? n - j : 24;
            const int8_t *wp = w->data + (j / 8) * bs;
            for (size_t i = i0; i < i1; i += 4) {
                const int mr = i1 - i >= 4 ? 4 : (int)(i1 - i);
#define KB_CALL(R)                                                                                  \
    if (ncols > 16) kb_avxvnni_tile(wp, bs, k4n, a + i * lda, lda, corr + (i - i0), as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 3); \
    else if (ncols > 8) kb_avxvnni_tile(wp, bs, k4n, a + i * lda, lda, corr + (i - i0), as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 2); \
    else kb_avxvnni_tile(wp, bs, k4n, a + i * lda, lda, corr + (i - i0), as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 1);
                KB_SWITCH_MR4(mr, KB_CALL)
#undef KB_CALL
            }
        }
    }
}

// AVX-512 VNNI: vpdpbusd on zmm, weights unsigned (w + 128) in registers, each row's 4
// activation bytes broadcast (embedded-broadcast from memory), accumulators starting at
// −128·Σa. Micro-kernel: MR ≤ 6 rows × NZ ≤ 4 zmm (16 columns each): 24 accumulators + 4
// weight registers of the 32, 24 vpdpbusd per 4 weight loads and 6 broadcasts.
KB_VNNI_T static int32_t kb_row_sum_vnni512(const int8_t *a, size_t k) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i acc = _mm512_setzero_si512();
    for (size_t t = 0; t < k; t += 64) {
        const __mmask64 mk = k - t >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (k - t)) - 1);
        acc = _mm512_dpbusd_epi32(acc, ones, _mm512_maskz_loadu_epi8(mk, a + t));
    }
    return _mm512_reduce_add_epi32(acc);
}

KB_VNNI_T KB_INLINE void kb_vnni512_tile(const int8_t *wp, size_t bs, size_t k4n, const int8_t *a, size_t lda,
                                            const int32_t *corr, const float *as, const float *ws, float *c,
                                            size_t ldc, size_t ncols, const int MR, const int NZ) {
    __m512i acc[6][4];
    for (int r = 0; r < MR; r++) {
        const __m512i cv = _mm512_set1_epi32(corr[r]);
        for (int z = 0; z < NZ; z++) acc[r][z] = cv;
    }
    for (size_t s = 0; s < k4n; s++) {
        __m512i wv[4];
        for (int z = 0; z < NZ; z++) wv[z] = _mm512_loadu_si512((const void *)(wp + z * bs + s * 64));
        for (int r = 0; r < MR; r++) {
            const __m512i b = _mm512_set1_epi32(kb_load4(a + r * lda + s * 4));
            for (int z = 0; z < NZ; z++) acc[r][z] = _mm512_dpbusd_epi32(acc[r][z], wv[z], b);
        }
    }
    for (int r = 0; r < MR; r++) {
        const __m512 sa = _mm512_set1_ps(as[r]);
        for (int z = 0; z < NZ; z++) {
            const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][z]), _mm512_mul_ps(sa, _mm512_loadu_ps(ws + z * 16)));
            const size_t left = ncols - (size_t)z * 16;
            if (left >= 16) _mm512_storeu_ps(c + r * ldc + z * 16, v);
            else _mm512_mask_storeu_ps(c + r * ldc + z * 16, (__mmask16)((1u << left) - 1), v);
        }
    }
}

#define KB_SWITCH_MR6(MR, CALL)                                                                     \
    switch (MR) {                                                                                   \
    case 6: CALL(6); break;                                                                         \
    case 5: CALL(5); break;                                                                         \
    case 4: CALL(4); break;                                                                         \
    case 3: CALL(3); break;                                                                         \
    case 2: CALL(2); break;                                                                         \
    default: CALL(1); break;                                                                        \
    }

KB_VNNI_T static void kb_i8_gemm_avx512vnni(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *as,
                                               size_t m, float *c, size_t ldc) {
    const size_t n = w->n, k4n = w->kp / 4, bs = k4n * 64;
    enum { MC_MAX = 240 };
    int32_t corr[MC_MAX];
    const size_t mc = kb_row_block(w->kp, 6);
    for (size_t i0 = 0; i0 < m; i0 += mc) {
        const size_t i1 = m - i0 < mc ? m : i0 + mc;
        for (size_t i = i0; i < i1; i++) corr[i - i0] = (int32_t)(0u - 128u * (uint32_t)kb_row_sum_vnni512(a + i * lda, w->k));
        for (size_t j = 0; j < n; j += 64) {
            const size_t ncols = n - j < 64 ? n - j : 64;
            const int8_t *wp = w->data + (j / 16) * bs;
            for (size_t i = i0; i < i1; i += 6) {
                const int mr = i1 - i >= 6 ? 6 : (int)(i1 - i);
#define KB_ARGS wp, bs, k4n, a + i * lda, lda, corr + (i - i0), as + i, w->scales + j, c + i * ldc + j, ldc, ncols
#define KB_CALL(R)                                                                                  \
    if (ncols > 48) kb_vnni512_tile(KB_ARGS, R, 4);                                                 \
    else if (ncols > 32) kb_vnni512_tile(KB_ARGS, R, 3);                                            \
    else if (ncols > 16) kb_vnni512_tile(KB_ARGS, R, 2);                                            \
    else kb_vnni512_tile(KB_ARGS, R, 1);
                KB_SWITCH_MR6(mr, KB_CALL)
#undef KB_CALL
#undef KB_ARGS
            }
        }
    }
}

#else
void kb_i8_quantize_rows_avx2(const float *x, size_t ldx, size_t m, size_t k, const float *cs, int8_t *q, size_t ldq, float *s) {
    kb_i8_quantize_rows_scalar(x, ldx, m, k, cs, q, ldq, s);
}
void kb_i8_quantize_rows_avx512(const float *x, size_t ldx, size_t m, size_t k, const float *cs, int8_t *q, size_t ldq, float *s) {
    kb_i8_quantize_rows_scalar(x, ldx, m, k, cs, q, ldq, s);
}
#endif

// ---- AArch64: NEON ------------------------------------------------------------------------

#if defined(__aarch64__)
#include <arm_neon.h>
#define KB_GEMM_ARM 1


KB_INLINE int8x16_t kb_neon_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

KB_INLINE void kb_neon_store(float *c, float32x4_t v, size_t left) {
    if (left >= 4) vst1q_f32(c, v);
    else {
        float tmp[4];
        vst1q_f32(tmp, v);
        memcpy(c, tmp, left * 4);
    }
}

// sdot: signed × signed, groups of four into int32 lanes, exact with no correction.
// Micro-kernel: MR ≤ 4 rows × NZ ≤ 4 q registers (4 columns each).
KB_DOTPROD_T KB_INLINE void kb_sdot_tile(const int8_t *wp, size_t bs, size_t k4n, const int8_t *a, size_t lda,
                                              const float *as, const float *ws, float *c, size_t ldc, size_t ncols,
                                              const int MR, const int NZ) {
    int32x4_t acc[4][4];
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < NZ; z++) acc[r][z] = vdupq_n_s32(0);
    for (size_t s = 0; s < k4n; s++) {
        int8x16_t wv[4];
        for (int z = 0; z < NZ; z++) wv[z] = vld1q_s8(wp + z * bs + s * 16);
        for (int r = 0; r < MR; r++) {
            const int8x16_t b = kb_neon_bcast4(a + r * lda + s * 4);
            for (int z = 0; z < NZ; z++) acc[r][z] = vdotq_s32(acc[r][z], wv[z], b);
        }
    }
    for (int r = 0; r < MR; r++) {
        const float32x4_t sa = vdupq_n_f32(as[r]);
        for (int z = 0; z < NZ; z++) {
            const float32x4_t v = vmulq_f32(vcvtq_f32_s32(acc[r][z]), vmulq_f32(sa, vld1q_f32(ws + z * 4)));
            kb_neon_store(c + r * ldc + z * 4, v, ncols - (size_t)z * 4);
        }
    }
}

// Without dotprod: vmull_s8 on the low and high halves (2 columns × 4 k each; |product| ≤ 127²),
// vpadalq_s16 into two int32 accumulators, and one vpaddq_s32 at the end gives the 4 columns.
// Micro-kernel: MR ≤ 4 rows × NZ ≤ 2 q registers.
KB_INLINE void kb_smull_tile(const int8_t *wp, size_t bs, size_t k4n, const int8_t *a, size_t lda, const float *as,
                             const float *ws, float *c, size_t ldc, size_t ncols, const int MR, const int NZ) {
    int32x4_t lo[4][2], hi[4][2];
    for (int r = 0; r < MR; r++)
        for (int z = 0; z < NZ; z++) { lo[r][z] = vdupq_n_s32(0); hi[r][z] = vdupq_n_s32(0); }
    for (size_t s = 0; s < k4n; s++) {
        int8x16_t wv[2];
        for (int z = 0; z < NZ; z++) wv[z] = vld1q_s8(wp + z * bs + s * 16);
        for (int r = 0; r < MR; r++) {
            const int8x16_t b = kb_neon_bcast4(a + r * lda + s * 4);
            for (int z = 0; z < NZ; z++) {
                lo[r][z] = vpadalq_s16(lo[r][z], vmull_s8(vget_low_s8(wv[z]), vget_low_s8(b)));
                hi[r][z] = vpadalq_s16(hi[r][z], vmull_high_s8(wv[z], b));
            }
        }
    }
    for (int r = 0; r < MR; r++) {
        const float32x4_t sa = vdupq_n_f32(as[r]);
        for (int z = 0; z < NZ; z++) {
            const int32x4_t d = vpaddq_s32(lo[r][z], hi[r][z]);
            const float32x4_t v = vmulq_f32(vcvtq_f32_s32(d), vmulq_f32(sa, vld1q_f32(ws + z * 4)));
            kb_neon_store(c + r * ldc + z * 4, v, ncols - (size_t)z * 4);
        }
    }
}

KB_DOTPROD_T static void kb_i8_gemm_neon_sdot(const kb_i8_weights *w, const int8_t *a, size_t lda,
                                                   const float *as, size_t m, float *c, size_t ldc) {
    const size_t n = w->n, k4n = w->kp / 4, bs = k4n * 16;
    for (size_t j = 0; j < n; j += 16) {
        const size_t ncols = n - j < 16 ? n - j : 16;
        const int nz = (int)((ncols + 3) / 4);
        const int8_t *wp = w->data + (j / 4) * bs;
        for (size_t i = 0; i < m; i += 4) {
            const int mr = m - i >= 4 ? 4 : (int)(m - i);
#define KB_CALL(R)                                                                                  \
    switch (nz) {                                                                                   \
    case 4: kb_sdot_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 4); break; \
    case 3: kb_sdot_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 3); break; \
    case 2: kb_sdot_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 2); break; \
    default: kb_sdot_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 1); break; \
    }
            KB_SWITCH_MR4(mr, KB_CALL)
#undef KB_CALL
        }
    }
}

static void kb_i8_gemm_neon_smull(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *as, size_t m,
                                  float *c, size_t ldc) {
    const size_t n = w->n, k4n = w->kp / 4, bs = k4n * 16;
    for (size_t j = 0; j < n; j += 8) {
        const size_t ncols = n - j < 8 ? n - j : 8;
        const int8_t *wp = w->data + (j / 4) * bs;
        for (size_t i = 0; i < m; i += 4) {
            const int mr = m - i >= 4 ? 4 : (int)(m - i);
#define KB_CALL(R)                                                                                  \
    if (ncols > 4) kb_smull_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 2); \
    else kb_smull_tile(wp, bs, k4n, a + i * lda, lda, as + i, w->scales + j, c + i * ldc + j, ldc, ncols, R, 1);
            KB_SWITCH_MR4(mr, KB_CALL)
#undef KB_CALL
        }
    }
}

static void kb_i8_gemm_neon(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *as, size_t m, float *c,
                            size_t ldc) {
    if (kb_arm_has_dotprod()) kb_i8_gemm_neon_sdot(w, a, lda, as, m, c, ldc);
    else kb_i8_gemm_neon_smull(w, a, lda, as, m, c, ldc);
}
#endif


// ---- dispatch ------------------------------------------------------------------------------

int kb_gemm_kernel_supported(kb_gemm_kernel_id k) {
    switch (k) {
    case KB_GEMM_SCALAR: return 1;
#ifdef KB_GEMM_X86
    case KB_GEMM_AVX2: return __builtin_cpu_supports("avx2");
    case KB_GEMM_AVXVNNI: return __builtin_cpu_supports("avx2") && kb_x86_has_avxvnni();
    case KB_GEMM_AVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
#endif
#ifdef KB_GEMM_ARM
    case KB_GEMM_NEON: return 1;
#endif
    default: return 0;
    }
}

const char *kb_gemm_kernel_id_name(kb_gemm_kernel_id k) {
    switch (k) {
    case KB_GEMM_SCALAR: return "scalar";
    case KB_GEMM_AVX2: return "avx2";
    case KB_GEMM_AVXVNNI: return "avxvnni";
    case KB_GEMM_AVX512VNNI: return "avx512vnni";
    case KB_GEMM_NEON: return "neon";
    default: return "unknown";
    }
}

static int kb_gemm_kernel_supported_id(int k) { return kb_gemm_kernel_supported((kb_gemm_kernel_id)k); }
static const char *kb_gemm_kernel_name_of(int k) { return kb_gemm_kernel_id_name((kb_gemm_kernel_id)k); }

kb_gemm_kernel_id kb_gemm_kernel_select(const char *forced) {
    static const int by_preference[] = {KB_GEMM_AVX512VNNI, KB_GEMM_AVXVNNI, KB_GEMM_NEON, KB_GEMM_AVX2, KB_GEMM_SCALAR};
    return (kb_gemm_kernel_id)kb_select_kernel(by_preference, sizeof by_preference / sizeof by_preference[0], KB_GEMM_SCALAR, KB_GEMM_NEON,
                                    kb_gemm_kernel_supported_id, kb_gemm_kernel_name_of, forced);
}

static int kb_gemm_kernel_select_int(const char *forced) { return (int)kb_gemm_kernel_select(forced); }
static int kb_gemm_kernel_cache = -1;

kb_gemm_kernel_id kb_gemm_kernel(void) { return (kb_gemm_kernel_id)kb_cached_kernel(&kb_gemm_kernel_cache, kb_gemm_kernel_select_int, "KBINDEX_GEMM_KERNEL"); }

const char *kb_gemm_kernel_name(void) { return kb_gemm_kernel_id_name(kb_gemm_kernel()); }

void kb_i8_quantize_rows(const float *x, size_t ldx, size_t m, size_t k, const float *cs, int8_t *q, size_t ldq,
                         float *scales) {
    switch (kb_active_isa()) {
    case KB_ISA_AVX512: kb_i8_quantize_rows_avx512(x, ldx, m, k, cs, q, ldq, scales); break;
    case KB_ISA_AVX2: kb_i8_quantize_rows_avx2(x, ldx, m, k, cs, q, ldq, scales); break;
    default: kb_i8_quantize_rows_scalar(x, ldx, m, k, cs, q, ldq, scales);
    }
}

// ---- weights: quantize once, pack for one kernel ------------------------------------------

size_t kb_i8_row_stride(size_t k) { return (k + 63) / 64 * 64; }

// Column block of each layout (see the top of this file): 1 = plain rows.
static size_t kb_gemm_col_block(kb_gemm_kernel_id k) {
    switch (k) {
    case KB_GEMM_AVX2: case KB_GEMM_AVXVNNI: return 8;
    case KB_GEMM_AVX512VNNI: return 16;
    case KB_GEMM_NEON: return 4;
    default: return 1;
    }
}

kb_i8_weights *kb_i8_weights_new_with(kb_gemm_kernel_id kernel, const float *wf, size_t n, size_t k) {
    if (!kb_gemm_kernel_supported(kernel)) kernel = KB_GEMM_SCALAR;
    if (n == 0 || k == 0 || k > KB_GEMM_MAX_K || n > ((size_t)1 << 24)) return NULL;
    const size_t cb = kb_gemm_col_block(kernel);
    const size_t np = (n + cb - 1) / cb * cb, kp = kernel == KB_GEMM_SCALAR ? k : (k + 3) / 4 * 4;
    kb_i8_weights *w = calloc(1, sizeof *w);
    int8_t *rows = malloc(n * k);  // quantized, row-major, before packing
    if (w) {
        w->scales = calloc(np, sizeof(float));
        w->data = calloc(np * kp, 1);
    }
    if (!w || !rows || !w->scales || !w->data) {
        free(rows);
        kb_i8_weights_free(w);
        return NULL;
    }
    w->kernel = kernel;
    w->n = n; w->k = k; w->np = np; w->kp = kp;
    w->bytes = sizeof *w + np * sizeof(float) + np * kp;
    kb_i8_quantize_rows_scalar(wf, k, n, k, NULL, rows, k, w->scales);
    const int flip = kernel == KB_GEMM_AVXVNNI || kernel == KB_GEMM_AVX512VNNI;
    if (cb == 1) {
        memcpy(w->data, rows, n * k);
    } else {
        const size_t k4n = kp / 4;
        for (size_t j = 0; j < n; j++) {
            const size_t b = j / cb, l = j % cb;
            for (size_t t = 0; t < k; t++) {
                uint8_t v = (uint8_t)rows[j * k + t];
                if (flip) v ^= 0x80;  // w + 128 as unsigned
                w->data[b * k4n * cb * 4 + (t / 4) * cb * 4 + l * 4 + t % 4] = (int8_t)v;
            }
        }
    }
    free(rows);
    return w;
}

kb_i8_weights *kb_i8_weights_new(const float *w, size_t n, size_t k) {
    return kb_i8_weights_new_with(kb_gemm_kernel(), w, n, k);
}

void kb_i8_weights_free(kb_i8_weights *w) {
    if (!w) return;
    free(w->scales);
    free(w->data);
    free(w);
}

kb_gemm_kernel_id kb_i8_weights_kernel(const kb_i8_weights *w) { return w->kernel; }
size_t kb_i8_weights_bytes(const kb_i8_weights *w) { return w->bytes; }
size_t kb_i8_weights_rows(const kb_i8_weights *w) { return w->n; }
size_t kb_i8_weights_cols(const kb_i8_weights *w) { return w->k; }
const float *kb_i8_weights_scales(const kb_i8_weights *w) { return w->scales; }

void kb_i8_gemm(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *a_scales, size_t m, float *c,
                size_t ldc) {
    if (m == 0) return;
    switch (w->kernel) {
#ifdef KB_GEMM_X86
    case KB_GEMM_AVX2: kb_i8_gemm_avx2(w, a, lda, a_scales, m, c, ldc); break;
    case KB_GEMM_AVXVNNI: kb_i8_gemm_avxvnni(w, a, lda, a_scales, m, c, ldc); break;
    case KB_GEMM_AVX512VNNI: kb_i8_gemm_avx512vnni(w, a, lda, a_scales, m, c, ldc); break;
#endif
#ifdef KB_GEMM_ARM
    case KB_GEMM_NEON: kb_i8_gemm_neon(w, a, lda, a_scales, m, c, ldc); break;
#endif
    default: kb_i8_gemm_scalar(w, a, lda, a_scales, m, c, ldc); break;
    }
}
