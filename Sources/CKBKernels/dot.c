// int8 · int8 → int32 dot products of queries against rows: the scalar twin, the per-ISA
// variants and their own dispatch point. See include/kb_kernels.h for the contract.
//
// Exactness. Inputs are in [-127, 127] and dims ≤ 131072, so every true dot product satisfies
// |Σ q·r| ≤ 127²·131072 = 2,114,060,288 < 2³¹: it fits an int32. Every variant computes the
// result modulo 2³² (vector adds wrap; scalar corrections are done in uint32), so whenever an
// intermediate leaves the int32 range (only the VNNI sums can), the final value is still exact.
#include "kb_kernels.h"
#include "kb_select.h"
#include <stdlib.h>
#include <string.h>

#define KB_DOT_MAX_DIMS 131072

// ---- scalar twins ---------------------------------------------------------------------

void kb_i8_dot_rows_scalar(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores) {
    for (size_t r = 0; r < n; r++) {
        const int8_t *row = rows + r * stride;
        int32_t s = 0;
        for (size_t i = 0; i < dims; i++) s += (int32_t)q[i] * (int32_t)row[i];
        scores[r] = s;
    }
}

void kb_i8_dot_rows_batch_scalar(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                                 size_t dims, size_t n, int32_t *scores) {
    for (size_t j = 0; j < nq; j++) kb_i8_dot_rows_scalar(qs + j * qstride, rows, stride, dims, n, scores + j * n);
}

// ---- x86-64: AVX2 and AVX-512 VNNI ------------------------------------------------------

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define KB_DOT_X86 1

// AVX2. vpmaddubsw multiplies unsigned × signed bytes and adds adjacent pairs into int16 with
// saturation; with raw signed data it is wrong in both ways (sign and saturation). The abs/sign
// trick rewrites q·r as |a| · (b·sign(a)): vpabsb gives |a| ∈ [0, 127] (valid as unsigned), and
// vpsignb gives b·sign(a) ∈ [-127, 127] (b ≠ −128, so negation cannot wrap). Each product is then
// at most 127·127 = 16129 in magnitude and a pair at most 32258 ≤ 32767: no saturation, ever.
// Which operand gets the abs is chosen so it is the one shared by several products: the query
// when one query meets several rows, the row when one row meets several queries.
// vpmaddwd against 1s then widens the int16 pairs into int32 lanes.

// R rows (R ≤ 4) against one query: the query's |q| is shared.
KB_AVX2_T KB_INLINE void kb_avx2_rows_q1(const int8_t *q, const int8_t *rows, size_t stride, size_t dims,
                                         int32_t *out, const int R) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dims; i += 32) {
        const __m256i qv = _mm256_loadu_si256((const __m256i *)(q + i));
        const __m256i qa = _mm256_abs_epi8(qv);
        for (int r = 0; r < R; r++) {
            const __m256i rv = _mm256_loadu_si256((const __m256i *)(rows + r * stride + i));
            const __m256i p = _mm256_maddubs_epi16(qa, _mm256_sign_epi8(rv, qv));
            acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, ones));
        }
    }
    int32_t s[4];
    for (int r = 0; r < R; r++) s[r] = kb_hsum256(acc[r]);
    if (i + 16 <= dims) {
        const __m128i qv = _mm_loadu_si128((const __m128i *)(q + i));
        const __m128i qa = _mm_abs_epi8(qv);
        for (int r = 0; r < R; r++) {
            const __m128i rv = _mm_loadu_si128((const __m128i *)(rows + r * stride + i));
            const __m128i p = _mm_maddubs_epi16(qa, _mm_sign_epi8(rv, qv));
            s[r] += kb_hsum128(_mm_madd_epi16(p, _mm_set1_epi16(1)));
        }
        i += 16;
    }
    for (; i < dims; i++)
        for (int r = 0; r < R; r++) s[r] += (int32_t)q[i] * (int32_t)rows[r * stride + i];
    for (int r = 0; r < R; r++) out[r] = s[r];
}

// One row against Q queries (Q ≤ 4): the row's |r| is shared. out[j·ldo] gets query j's score.
KB_AVX2_T KB_INLINE void kb_avx2_row_nq(const int8_t *qs, size_t qstride, const int8_t *row, size_t dims,
                                        int32_t *out, size_t ldo, const int Q) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[4];
    for (int j = 0; j < Q; j++) acc[j] = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dims; i += 32) {
        const __m256i rv = _mm256_loadu_si256((const __m256i *)(row + i));
        const __m256i ra = _mm256_abs_epi8(rv);
        for (int j = 0; j < Q; j++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)(qs + j * qstride + i));
            const __m256i p = _mm256_maddubs_epi16(ra, _mm256_sign_epi8(qv, rv));
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(p, ones));
        }
    }
    int32_t s[4];
    for (int j = 0; j < Q; j++) s[j] = kb_hsum256(acc[j]);
    if (i + 16 <= dims) {
        const __m128i rv = _mm_loadu_si128((const __m128i *)(row + i));
        const __m128i ra = _mm_abs_epi8(rv);
        for (int j = 0; j < Q; j++) {
            const __m128i qv = _mm_loadu_si128((const __m128i *)(qs + j * qstride + i));
            const __m128i p = _mm_maddubs_epi16(ra, _mm_sign_epi8(qv, rv));
            s[j] += kb_hsum128(_mm_madd_epi16(p, _mm_set1_epi16(1)));
        }
        i += 16;
    }
    for (; i < dims; i++)
        for (int j = 0; j < Q; j++) s[j] += (int32_t)qs[j * qstride + i] * (int32_t)row[i];
    for (int j = 0; j < Q; j++) out[j * ldo] = s[j];
}

KB_AVX2_T void kb_i8_dot_rows_avx2(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n,
                                   int32_t *scores) {
    size_t r = 0;
    for (; r + 4 <= n; r += 4) kb_avx2_rows_q1(q, rows + r * stride, stride, dims, scores + r, 4);
    switch (n - r) {
    case 3: kb_avx2_rows_q1(q, rows + r * stride, stride, dims, scores + r, 3); break;
    case 2: kb_avx2_rows_q1(q, rows + r * stride, stride, dims, scores + r, 2); break;
    case 1: kb_avx2_rows_q1(q, rows + r * stride, stride, dims, scores + r, 1); break;
    default: break;
    }
}

KB_AVX2_T void kb_i8_dot_rows_batch_avx2(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows,
                                         size_t stride, size_t dims, size_t n, int32_t *scores) {
    if (nq == 1) { kb_i8_dot_rows_avx2(qs, rows, stride, dims, n, scores); return; }
    for (size_t r = 0; r < n; r++) {
        const int8_t *row = rows + r * stride;
        // The row stays in L1/L2 across the query blocks: it is read from memory once.
        for (size_t j = 0; j < nq; j += 4) {
            const int8_t *qb = qs + j * qstride;
            int32_t *out = scores + j * n + r;
            switch (nq - j) {
            case 1: kb_avx2_row_nq(qb, qstride, row, dims, out, n, 1); break;
            case 2: kb_avx2_row_nq(qb, qstride, row, dims, out, n, 2); break;
            case 3: kb_avx2_row_nq(qb, qstride, row, dims, out, n, 3); break;
            default: kb_avx2_row_nq(qb, qstride, row, dims, out, n, 4); break;
            }
        }
    }
}

// AVX-512 VNNI. vpdpbusd multiplies unsigned × signed bytes, adds groups of four into int32
// lanes, and wraps (no saturation). The signed rows are made unsigned by flipping their top bit:
// r ^ 0x80 = r + 128 ∈ [1, 255] as u8, so Σ (r+128)·q = Σ r·q + 128·Σ q, and the correction
// 128·Σq depends only on the query: it is computed once per call and subtracted from every
// score. This costs one vpxord per row vector, shared by every query of a batch, and nothing per
// row at the end. The other way round, u8 = q + 128 with 128·Σr subtracted, needs Σr per row:
// a second vpdpbusd against 1s per row vector (or per-row sums the API does not carry). Measured
// on one query against 1M × 384 rows (Xeon with AVX-512 VNNI, clang -O3, best of 5): 29.5 GB/s
// with the row flip vs 24.6 GB/s with the second vpdpbusd; L2-resident 4000 rows: 131 vs 123 GB/s.
// Tails (dims % 64) use masked loads: masked-off row bytes read as 0 and flip to 128, but the
// matching query bytes are masked to 0, so they add nothing.

// Σ q[i], in the baseline ISA (every VNNI path calls it).
static int32_t kb_plain_sum(const int8_t *q, size_t dims) {
    int32_t s = 0;
    for (size_t i = 0; i < dims; i++) s += q[i];
    return s;
}

KB_VNNI_T KB_INLINE __mmask64 kb_tail_mask(size_t left) { return left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1); }

// R rows (R ≤ 4) against one query. corr = 128·Σq.
KB_VNNI_T KB_INLINE void kb_vnni_rows_q1(const int8_t *q, const int8_t *rows, size_t stride, size_t dims,
                                         uint32_t corr, int32_t *out, const int R) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= dims; i += 64) {
        const __m512i qv = _mm512_loadu_si512((const void *)(q + i));
        for (int r = 0; r < R; r++) {
            const __m512i rv = _mm512_loadu_si512((const void *)(rows + r * stride + i));
            acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_xor_si512(rv, flip), qv);
        }
    }
    if (i < dims) {
        const __mmask64 m = kb_tail_mask(dims - i);
        const __m512i qv = _mm512_maskz_loadu_epi8(m, q + i);
        for (int r = 0; r < R; r++) {
            const __m512i rv = _mm512_maskz_loadu_epi8(m, rows + r * stride + i);
            acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_xor_si512(rv, flip), qv);
        }
    }
    for (int r = 0; r < R; r++) out[r] = (int32_t)((uint32_t)_mm512_reduce_add_epi32(acc[r]) - corr);
}

// One row against Q queries (Q ≤ 8). corr[j] = 128·Σq_j; out[j·ldo] gets query j's score.
KB_VNNI_T KB_INLINE void kb_vnni_row_nq(const int8_t *qs, size_t qstride, const int8_t *row, size_t dims,
                                        const uint32_t *corr, int32_t *out, size_t ldo, const int Q) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i acc[8];
    for (int j = 0; j < Q; j++) acc[j] = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= dims; i += 64) {
        const __m512i rx = _mm512_xor_si512(_mm512_loadu_si512((const void *)(row + i)), flip);
        for (int j = 0; j < Q; j++)
            acc[j] = _mm512_dpbusd_epi32(acc[j], rx, _mm512_loadu_si512((const void *)(qs + j * qstride + i)));
    }
    if (i < dims) {
        const __mmask64 m = kb_tail_mask(dims - i);
        const __m512i rx = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, row + i), flip);
        for (int j = 0; j < Q; j++)
            acc[j] = _mm512_dpbusd_epi32(acc[j], rx, _mm512_maskz_loadu_epi8(m, qs + j * qstride + i));
    }
    for (int j = 0; j < Q; j++) out[j * ldo] = (int32_t)((uint32_t)_mm512_reduce_add_epi32(acc[j]) - corr[j]);
}

KB_VNNI_T void kb_i8_dot_rows_avx512vnni(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n,
                                         int32_t *scores) {
    if (n == 0) return;
    const uint32_t corr = (uint32_t)kb_plain_sum(q, dims) * 128u;
    size_t r = 0;
    for (; r + 4 <= n; r += 4) kb_vnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 4);
    switch (n - r) {
    case 3: kb_vnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 3); break;
    case 2: kb_vnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 2); break;
    case 1: kb_vnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 1); break;
    default: break;
    }
}

KB_VNNI_T void kb_i8_dot_rows_batch_avx512vnni(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows,
                                               size_t stride, size_t dims, size_t n, int32_t *scores) {
    if (nq == 1) { kb_i8_dot_rows_avx512vnni(qs, rows, stride, dims, n, scores); return; }
    if (n == 0) return;
    // Corrections for up to 256 queries at a time on the stack (no allocation); past 256
    // queries the rows are read once per group of 256.
    enum { GROUP = 256 };
    uint32_t corr[GROUP];
    for (size_t g = 0; g < nq; g += GROUP) {
        const size_t gn = nq - g < GROUP ? nq - g : GROUP;
        for (size_t k = 0; k < gn; k++) corr[k] = (uint32_t)kb_plain_sum(qs + (g + k) * qstride, dims) * 128u;
        for (size_t r = 0; r < n; r++) {
            const int8_t *row = rows + r * stride;
            // 8 queries per block (8 zmm accumulators); the row stays in L1/L2 across blocks.
            for (size_t j = 0; j < gn; j += 8) {
                const int8_t *qb = qs + (g + j) * qstride;
                const uint32_t *cb = corr + j;
                int32_t *out = scores + (g + j) * n + r;
                switch (gn - j) {
                case 1: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 1); break;
                case 2: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 2); break;
                case 3: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 3); break;
                case 4: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 4); break;
                case 5: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 5); break;
                case 6: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 6); break;
                case 7: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 7); break;
                default: kb_vnni_row_nq(qb, qstride, row, dims, cb, out, n, 8); break;
                }
            }
        }
    }
}

// AVX-VNNI: the AVX-512 VNNI scheme above (rows flipped to r + 128, minus 128·Σq per query,
// computed once per call) on ymm with the VEX-encoded vpdpbusd, for CPUs that have it without
// AVX-512 (Alder Lake and later client cores, Sierra Forest). The last dims % 32 bytes of a row
// and a query are loaded zero-filled: a padding row byte flips to 128 but meets a 0 query byte.

// R rows (R ≤ 4) against one query. corr = 128·Σq.
KB_AVXVNNI_T KB_INLINE void kb_avxvnni_rows_q1(const int8_t *q, const int8_t *rows, size_t stride, size_t dims,
                                               uint32_t corr, int32_t *out, const int R) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256i acc[4];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dims; i += 32) {
        const __m256i qv = _mm256_loadu_si256((const __m256i *)(q + i));
        for (int r = 0; r < R; r++) {
            const __m256i rv = _mm256_loadu_si256((const __m256i *)(rows + r * stride + i));
            acc[r] = _mm256_dpbusd_avx_epi32(acc[r], _mm256_xor_si256(rv, flip), qv);
        }
    }
    if (i < dims) {
        const __m256i qv = kb_load_partial32(q + i, dims - i);
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_dpbusd_avx_epi32(acc[r], _mm256_xor_si256(kb_load_partial32(rows + r * stride + i, dims - i), flip), qv);
    }
    for (int r = 0; r < R; r++) out[r] = (int32_t)((uint32_t)kb_hsum256(acc[r]) - corr);
}

// One row against Q queries (Q ≤ 8). corr[j] = 128·Σq_j; out[j·ldo] gets query j's score.
KB_AVXVNNI_T KB_INLINE void kb_avxvnni_row_nq(const int8_t *qs, size_t qstride, const int8_t *row, size_t dims,
                                              const uint32_t *corr, int32_t *out, size_t ldo, const int Q) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256i acc[8];
    for (int j = 0; j < Q; j++) acc[j] = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dims; i += 32) {
        const __m256i rx = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(row + i)), flip);
        for (int j = 0; j < Q; j++)
            acc[j] = _mm256_dpbusd_avx_epi32(acc[j], rx, _mm256_loadu_si256((const __m256i *)(qs + j * qstride + i)));
    }
    if (i < dims) {
        const __m256i rx = _mm256_xor_si256(kb_load_partial32(row + i, dims - i), flip);
        for (int j = 0; j < Q; j++)
            acc[j] = _mm256_dpbusd_avx_epi32(acc[j], rx, kb_load_partial32(qs + j * qstride + i, dims - i));
    }
    for (int j = 0; j < Q; j++) out[j * ldo] = (int32_t)((uint32_t)kb_hsum256(acc[j]) - corr[j]);
}

KB_AVXVNNI_T void kb_i8_dot_rows_avxvnni(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n,
                                         int32_t *scores) {
    if (n == 0) return;
    const uint32_t corr = (uint32_t)kb_plain_sum(q, dims) * 128u;
    size_t r = 0;
    for (; r + 4 <= n; r += 4) kb_avxvnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 4);
    switch (n - r) {
    case 3: kb_avxvnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 3); break;
    case 2: kb_avxvnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 2); break;
    case 1: kb_avxvnni_rows_q1(q, rows + r * stride, stride, dims, corr, scores + r, 1); break;
    default: break;
    }
}

KB_AVXVNNI_T void kb_i8_dot_rows_batch_avxvnni(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows,
                                               size_t stride, size_t dims, size_t n, int32_t *scores) {
    if (nq == 1) { kb_i8_dot_rows_avxvnni(qs, rows, stride, dims, n, scores); return; }
    if (n == 0) return;
    // Corrections for up to 256 queries at a time on the stack, as for AVX-512 VNNI.
    enum { GROUP = 256 };
    uint32_t corr[GROUP];
    for (size_t g = 0; g < nq; g += GROUP) {
        const size_t gn = nq - g < GROUP ? nq - g : GROUP;
        for (size_t k = 0; k < gn; k++) corr[k] = (uint32_t)kb_plain_sum(qs + (g + k) * qstride, dims) * 128u;
        for (size_t r = 0; r < n; r++) {
            const int8_t *row = rows + r * stride;
            // 8 queries per block (8 ymm accumulators); the row stays in L1/L2 across blocks.
            for (size_t j = 0; j < gn; j += 8) {
                const int8_t *qb = qs + (g + j) * qstride;
                const uint32_t *cb = corr + j;
                int32_t *out = scores + (g + j) * n + r;
                switch (gn - j) {
                case 1: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 1); break;
                case 2: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 2); break;
                case 3: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 3); break;
                case 4: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 4); break;
                case 5: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 5); break;
                case 6: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 6); break;
                case 7: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 7); break;
                default: kb_avxvnni_row_nq(qb, qstride, row, dims, cb, out, n, 8); break;
                }
            }
        }
    }
}
#else
void kb_i8_dot_rows_avx2(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_scalar(q, rows, stride, dims, n, s);
}
void kb_i8_dot_rows_batch_avx2(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                               size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_batch_scalar(qs, qstride, nq, rows, stride, dims, n, s);
}
void kb_i8_dot_rows_avx512vnni(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_scalar(q, rows, stride, dims, n, s);
}
void kb_i8_dot_rows_batch_avx512vnni(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                                     size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_batch_scalar(qs, qstride, nq, rows, stride, dims, n, s);
}
void kb_i8_dot_rows_avxvnni(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_scalar(q, rows, stride, dims, n, s);
}
void kb_i8_dot_rows_batch_avxvnni(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                                  size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_batch_scalar(qs, qstride, nq, rows, stride, dims, n, s);
}
#endif

// ---- AArch64: NEON ----------------------------------------------------------------------

#if defined(__aarch64__)
#include <arm_neon.h>
#define KB_DOT_ARM 1

// sdot (vdotq_s32) multiplies signed × signed bytes and adds groups of four into int32 lanes:
// exact with no correction. Without the dotprod extension, vmull_s8 + vmlal_high_s8 put two
// products in each int16 lane (|·| ≤ 2·127² = 32258, no overflow) and vpadalq_s16 widens them.

// One row against Q queries (Q ≤ 4); out[j·ldo] gets query j's score.
KB_DOTPROD_T KB_INLINE void kb_sdot_row_nq(const int8_t *qs, size_t qstride, const int8_t *row, size_t dims,
                                           int32_t *out, size_t ldo, const int Q) {
    int32x4_t acc[4];
    for (int j = 0; j < Q; j++) acc[j] = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 16 <= dims; i += 16) {
        const int8x16_t rv = vld1q_s8(row + i);
        for (int j = 0; j < Q; j++) acc[j] = vdotq_s32(acc[j], rv, vld1q_s8(qs + j * qstride + i));
    }
    int32_t s[4];
    for (int j = 0; j < Q; j++) s[j] = vaddvq_s32(acc[j]);
    for (; i < dims; i++)
        for (int j = 0; j < Q; j++) s[j] += (int32_t)qs[j * qstride + i] * (int32_t)row[i];
    for (int j = 0; j < Q; j++) out[j * ldo] = s[j];
}

KB_INLINE void kb_smull_row_nq(const int8_t *qs, size_t qstride, const int8_t *row, size_t dims, int32_t *out,
                               size_t ldo, const int Q) {
    int32x4_t acc[4];
    for (int j = 0; j < Q; j++) acc[j] = vdupq_n_s32(0);
    size_t i = 0;
    for (; i + 16 <= dims; i += 16) {
        const int8x16_t rv = vld1q_s8(row + i);
        for (int j = 0; j < Q; j++) {
            const int8x16_t qv = vld1q_s8(qs + j * qstride + i);
            int16x8_t p = vmull_s8(vget_low_s8(rv), vget_low_s8(qv));
            p = vmlal_high_s8(p, rv, qv);
            acc[j] = vpadalq_s16(acc[j], p);
        }
    }
    int32_t s[4];
    for (int j = 0; j < Q; j++) s[j] = vaddvq_s32(acc[j]);
    for (; i < dims; i++)
        for (int j = 0; j < Q; j++) s[j] += (int32_t)qs[j * qstride + i] * (int32_t)row[i];
    for (int j = 0; j < Q; j++) out[j * ldo] = s[j];
}

KB_DOTPROD_T static void kb_neon_batch_sdot(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows,
                                            size_t stride, size_t dims, size_t n, int32_t *scores) {
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < nq; j += 4) {
            const int8_t *qb = qs + j * qstride, *row = rows + r * stride;
            int32_t *out = scores + j * n + r;
            switch (nq - j) {
            case 1: kb_sdot_row_nq(qb, qstride, row, dims, out, n, 1); break;
            case 2: kb_sdot_row_nq(qb, qstride, row, dims, out, n, 2); break;
            case 3: kb_sdot_row_nq(qb, qstride, row, dims, out, n, 3); break;
            default: kb_sdot_row_nq(qb, qstride, row, dims, out, n, 4); break;
            }
        }
}

static void kb_neon_batch_smull(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                                size_t dims, size_t n, int32_t *scores) {
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < nq; j += 4) {
            const int8_t *qb = qs + j * qstride, *row = rows + r * stride;
            int32_t *out = scores + j * n + r;
            switch (nq - j) {
            case 1: kb_smull_row_nq(qb, qstride, row, dims, out, n, 1); break;
            case 2: kb_smull_row_nq(qb, qstride, row, dims, out, n, 2); break;
            case 3: kb_smull_row_nq(qb, qstride, row, dims, out, n, 3); break;
            default: kb_smull_row_nq(qb, qstride, row, dims, out, n, 4); break;
            }
        }
}

void kb_i8_dot_rows_batch_neon(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                               size_t dims, size_t n, int32_t *scores) {
    if (kb_arm_has_dotprod()) kb_neon_batch_sdot(qs, qstride, nq, rows, stride, dims, n, scores);
    else kb_neon_batch_smull(qs, qstride, nq, rows, stride, dims, n, scores);
}

void kb_i8_dot_rows_neon(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores) {
    kb_i8_dot_rows_batch_neon(q, dims, 1, rows, stride, dims, n, scores);
}
#else
void kb_i8_dot_rows_neon(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_scalar(q, rows, stride, dims, n, s);
}
void kb_i8_dot_rows_batch_neon(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                               size_t dims, size_t n, int32_t *s) {
    kb_i8_dot_rows_batch_scalar(qs, qstride, nq, rows, stride, dims, n, s);
}
#endif

// ---- dispatch -------------------------------------------------------------------------

int kb_dot_kernel_supported(kb_dot_kernel_id k) {
    switch (k) {
    case KB_DOT_SCALAR: return 1;
#ifdef KB_DOT_X86
    case KB_DOT_AVX2: return __builtin_cpu_supports("avx2");
    case KB_DOT_AVX512VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
    case KB_DOT_AVXVNNI: return __builtin_cpu_supports("avx2") && kb_x86_has_avxvnni();
    case KB_DOT_AMX: return kb_dot_kernel_supported(KB_DOT_AVX512VNNI) && kb_x86_has_amx_int8();
#endif
#ifdef KB_DOT_ARM
    case KB_DOT_NEON: return 1;
#endif
    default: return 0;
    }
}

const char *kb_dot_kernel_id_name(kb_dot_kernel_id k) {
    switch (k) {
    case KB_DOT_SCALAR: return "scalar";
    case KB_DOT_AVX2: return "avx2";
    case KB_DOT_AVX512VNNI: return "avx512vnni";
    case KB_DOT_NEON: return "neon";
    case KB_DOT_AVXVNNI: return "avxvnni";
    case KB_DOT_AMX: return "amx";
    default: return "unknown";
    }
}

static int kb_dot_kernel_supported_id(int k) { return kb_dot_kernel_supported((kb_dot_kernel_id)k); }
static const char *kb_dot_kernel_name_of(int k) { return kb_dot_kernel_id_name((kb_dot_kernel_id)k); }

kb_dot_kernel_id kb_dot_kernel_select(const char *forced) {
    static const int by_preference[] = {KB_DOT_AMX, KB_DOT_AVX512VNNI, KB_DOT_AVXVNNI, KB_DOT_NEON, KB_DOT_AVX2, KB_DOT_SCALAR};
    return (kb_dot_kernel_id)kb_select_kernel(by_preference, sizeof by_preference / sizeof by_preference[0], KB_DOT_SCALAR, KB_DOT_AMX,
                                    kb_dot_kernel_supported_id, kb_dot_kernel_name_of, forced);
}

static int kb_dot_kernel_select_int(const char *forced) { return (int)kb_dot_kernel_select(forced); }
static int kb_dot_kernel_cache = -1;

kb_dot_kernel_id kb_dot_kernel(void) { return (kb_dot_kernel_id)kb_cached_kernel(&kb_dot_kernel_cache, kb_dot_kernel_select_int, "KBINDEX_KERNEL"); }

const char *kb_dot_kernel_name(void) { return kb_dot_kernel_id_name(kb_dot_kernel()); }

void kb_i8_dot_rows_with(kb_dot_kernel_id k, const int8_t *q, const int8_t *rows, size_t stride, size_t dims,
                         size_t n, int32_t *scores) {
    if (!kb_dot_kernel_supported(k)) k = KB_DOT_SCALAR;
    switch (k) {
    case KB_DOT_AVX2: kb_i8_dot_rows_avx2(q, rows, stride, dims, n, scores); break;
    case KB_DOT_AVX512VNNI: case KB_DOT_AMX: kb_i8_dot_rows_avx512vnni(q, rows, stride, dims, n, scores); break;
    case KB_DOT_NEON: kb_i8_dot_rows_neon(q, rows, stride, dims, n, scores); break;
    case KB_DOT_AVXVNNI: kb_i8_dot_rows_avxvnni(q, rows, stride, dims, n, scores); break;
    default: kb_i8_dot_rows_scalar(q, rows, stride, dims, n, scores); break;
    }
}

void kb_i8_dot_rows_batch_with(kb_dot_kernel_id k, const int8_t *qs, size_t qstride, size_t nq,
                               const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores) {
    if (!kb_dot_kernel_supported(k)) k = KB_DOT_SCALAR;
    switch (k) {
    case KB_DOT_AVX2: kb_i8_dot_rows_batch_avx2(qs, qstride, nq, rows, stride, dims, n, scores); break;
    case KB_DOT_AVX512VNNI: case KB_DOT_AMX: kb_i8_dot_rows_batch_avx512vnni(qs, qstride, nq, rows, stride, dims, n, scores); break;
    case KB_DOT_NEON: kb_i8_dot_rows_batch_neon(qs, qstride, nq, rows, stride, dims, n, scores); break;
    case KB_DOT_AVXVNNI: kb_i8_dot_rows_batch_avxvnni(qs, qstride, nq, rows, stride, dims, n, scores); break;
    default: kb_i8_dot_rows_batch_scalar(qs, qstride, nq, rows, stride, dims, n, scores); break;
    }
}

void kb_i8_dot_rows(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores) {
    kb_i8_dot_rows_with(kb_dot_kernel(), q, rows, stride, dims, n, scores);
}

void kb_i8_dot_rows_batch(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                          size_t dims, size_t n, int32_t *scores) {
    kb_i8_dot_rows_batch_with(kb_dot_kernel(), qs, qstride, nq, rows, stride, dims, n, scores);
}
