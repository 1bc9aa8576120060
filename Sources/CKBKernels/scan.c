// The index scan: int8 dot products of a batch of queries against a block of rows, fused with
// the first step of top-k selection (a per-query score threshold), so only rows that can still
// enter a query's top-k ever leave the kernel. See include/kb_kernels.h for the contract.
//
// Three paths compute the same candidates:
//   - generic (every kernel but VNNI): blocks of KB_SUB rows, scored with
//     kb_i8_dot_rows_batch_with one group of queries at a time while the block sits in L1/L2,
//     then compared with the thresholds in scalar code;
//   - VNNI, fewer than KB_PACKED_MIN_QUERIES queries (kb_scan_one_vnni): one query at a time,
//     16 rows per tile, rows read as they are (signed) and corrected with their stored Σr;
//   - VNNI, batches (kb_scan_packed): the queries are laid out once, at kb_query_batch_new, as
//     u8 (q + 128) interleaved 16 queries × 4 dimensions per 64-byte vector. The kernel
//     broadcasts 4 bytes of a row to every lane and one vpdpbusd advances 16 queries by 4
//     dimensions: a register-tiled matrix product with no horizontal reductions (the generic
//     path's cost at dims 384). Σ (q+128)·r = q·r + 128·Σr, so each row's stored Σr (the
//     segment's QUANT record) is subtracted once per row and query group.
#include "kb_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KB_SUB 64          // rows per generic sub-block: 64 × 384 B = 24 KiB, L1/L2-resident
#define KB_QGROUP 16       // queries per generic group (scores buffer 16 × 64 int32 = 4 KiB)
#define KB_PACKED_MIN_QUERIES 8
#define KB_SCAN_PREFETCH 4096  // bytes ahead of the row being read (a hint: never faults)

struct kb_query_batch {
    kb_dot_kernel_id kernel;
    size_t nq, dims;
    int8_t *queries;   // nq × dims, contiguous
    uint8_t *packed;   // NULL, or groups × steps × 64 bytes (packed path)
    uint8_t *biased;   // NULL, or nq × dims bytes q + 128 (VNNI single-query path)
    size_t groups;     // ceil(nq / 16)
    size_t steps;      // ceil(dims / 4)
};

static inline float kb_scale_at(const float *scales, size_t scale_stride, size_t r) {
    float s;
    memcpy(&s, (const char *)scales + r * scale_stride, sizeof s);
    return s;
}

kb_query_batch *kb_query_batch_new(kb_dot_kernel_id kernel, const int8_t *qs, size_t qstride, size_t nq,
                                   size_t dims) {
    if (!kb_dot_kernel_supported(kernel)) kernel = KB_DOT_SCALAR;
    kb_query_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->kernel = kernel;
    b->nq = nq;
    b->dims = dims;
    b->queries = malloc(nq * dims + 1);
    if (!b->queries) { free(b); return NULL; }
    for (size_t j = 0; j < nq; j++) memcpy(b->queries + j * dims, qs + j * qstride, dims);
    b->groups = (nq + 15) / 16;
    b->steps = (dims + 3) / 4;
#ifdef __x86_64__
    if (kernel == KB_DOT_AVX512VNNI && nq >= KB_PACKED_MIN_QUERIES) {
        b->packed = aligned_alloc(64, b->groups * b->steps * 64 + 64);
        if (!b->packed) { free(b->queries); free(b); return NULL; }
        // Byte (g, t, 4·l + u) = q_{16g+l}[4t+u] + 128; padding queries and dimensions hold
        // 128 (the encoding of 0): against a padding dimension the row byte is 0 (see the
        // kernel's tail load), and a padding query's results are never read.
        for (size_t g = 0; g < b->groups; g++)
            for (size_t t = 0; t < b->steps; t++)
                for (size_t l = 0; l < 16; l++)
                    for (size_t u = 0; u < 4; u++) {
                        const size_t j = 16 * g + l, i = 4 * t + u;
                        const int v = (j < nq && i < dims) ? qs[j * qstride + i] : 0;
                        b->packed[(g * b->steps + t) * 64 + 4 * l + u] = (uint8_t)(v + 128);
                    }
    } else if (kernel == KB_DOT_AVX512VNNI) {
        b->biased = malloc(nq * dims + 1);
        if (!b->biased) { free(b->queries); free(b); return NULL; }
        for (size_t i = 0; i < nq * dims; i++) b->biased[i] = (uint8_t)(b->queries[i] + 128);
    }
#endif
    return b;
}

void kb_query_batch_free(kb_query_batch *b) {
    if (!b) return;
    free(b->packed);
    free(b->biased);
    free(b->queries);
    free(b);
}

size_t kb_query_batch_count(const kb_query_batch *b) { return b->nq; }
kb_dot_kernel_id kb_query_batch_kernel(const kb_query_batch *b) { return b->kernel; }

static size_t kb_scan_generic(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                              const float *scales, size_t scale_stride, const float *thresholds,
                              kb_candidate *out) {
    int32_t dots[KB_QGROUP * KB_SUB];
    size_t count = 0;
    for (size_t r0 = 0; r0 < n; r0 += KB_SUB) {
        const size_t m = n - r0 < KB_SUB ? n - r0 : KB_SUB;
        const int8_t *block = rows + r0 * stride;
        for (size_t j0 = 0; j0 < b->nq; j0 += KB_QGROUP) {
            const size_t qn = b->nq - j0 < KB_QGROUP ? b->nq - j0 : KB_QGROUP;
            kb_i8_dot_rows_batch_with(b->kernel, b->queries + j0 * b->dims, b->dims, qn, block, stride, b->dims, m,
                                      dots);
            for (size_t r = 0; r < m; r++) {
                const float s = kb_scale_at(scales, scale_stride, r0 + r);
                for (size_t j = 0; j < qn; j++) {
                    const float v = s * (float)dots[j * m + r];
                    if (v >= thresholds[j0 + j])
                        out[count++] = (kb_candidate){(uint32_t)(r0 + r), (uint32_t)(j0 + j), v};
                }
            }
        }
    }
    return count;
}

#ifdef __x86_64__
#include <immintrin.h>
#define KB_VNNI_T __attribute__((target("avx512f,avx512bw,avx512vnni")))

// The 4 bytes of `row` at dimension 4t (fewer, zero-filled, at the end of the row: the only
// read that must not go past dims, since stride may equal dims).
KB_VNNI_T static inline int32_t kb_row4(const int8_t *row, size_t t, size_t dims) {
    int32_t v = 0;
    const size_t i = 4 * t, left = dims - i;
    memcpy(&v, row + i, left >= 4 ? 4 : left);
    return v;
}

// Writes the lanes of `v` set in `hit` as candidates: lane l is row row0 + l·row_step of
// query query0 + l·query_step. Returns how many.
KB_VNNI_T static inline size_t kb_emit(__mmask16 hit, __m512 v, uint32_t row0, uint32_t row_step, uint32_t query0,
                                       uint32_t query_step, kb_candidate *out) {
    float vs[16];
    _mm512_storeu_ps(vs, v);
    size_t count = 0;
    while (hit) {
        const uint32_t l = (uint32_t)__builtin_ctz(hit);
        hit &= hit - 1;
        out[count++] = (kb_candidate){row0 + l * row_step, query0 + l * query_step, vs[l]};
    }
    return count;
}

// R rows × G query groups (16 queries each) over all dimensions, then the threshold test.
// R·G accumulators (≤ 24 of the 32 zmm registers); per 4 dimensions: G 64-byte query loads,
// R broadcasts, R·G vpdpbusd. R and G are constants at every call site (the switch in
// kb_scan_packed), so the loops unroll and the accumulators stay in registers; the main loop
// has no branch (the last, partial 4 dimensions are a separate step).
#define KB_PR 6
#define KB_PG 4
KB_VNNI_T static inline __attribute__((always_inline)) size_t
kb_packed_tile(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t r0, size_t g0, const int R,
               const int G, const float *scales, const int32_t *sums, size_t quant_stride, const float *thresholds,
               kb_candidate *out) {
    __m512i acc[KB_PR][KB_PG];
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_si512();
    const size_t steps = b->steps, dims = b->dims, full = dims / 4, gstride = steps * 64;
    const uint8_t *qp = b->packed + g0 * gstride;
    const int8_t *rp[KB_PR];
    for (int r = 0; r < R; r++) rp[r] = rows + (r0 + r) * stride;
    for (size_t t = 0; t < full; t++) {
        __m512i qv[KB_PG];
        for (int g = 0; g < G; g++) qv[g] = _mm512_load_si512((const void *)(qp + g * gstride + t * 64));
        for (int r = 0; r < R; r++) {
            int32_t w;
            memcpy(&w, rp[r] + 4 * t, 4);
            const __m512i rv = _mm512_set1_epi32(w);
            for (int g = 0; g < G; g++) acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], qv[g], rv);
        }
    }
    if (full < steps) {
        for (int r = 0; r < R; r++) {
            const __m512i rv = _mm512_set1_epi32(kb_row4(rp[r], full, dims));
            for (int g = 0; g < G; g++)
                acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], _mm512_load_si512((const void *)(qp + g * gstride + full * 64)), rv);
        }
    }
    size_t count = 0;
    for (int r = 0; r < R; r++) {
        int32_t sr;
        memcpy(&sr, (const char *)sums + (r0 + r) * quant_stride, 4);
        const __m512i corr = _mm512_set1_epi32((int32_t)((uint32_t)sr << 7));
        const __m512 sc = _mm512_set1_ps(kb_scale_at(scales, quant_stride, r0 + r));
        for (int g = 0; g < G; g++) {
            const size_t j0 = (g0 + g) * 16;
            const size_t live = b->nq - j0 < 16 ? b->nq - j0 : 16;
            const __mmask16 lm = live >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << live) - 1);
            const __m512 v = _mm512_mul_ps(sc, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][g], corr)));
            const __m512 th = _mm512_maskz_loadu_ps(lm, thresholds + j0);
            const __mmask16 hit = _mm512_mask_cmp_ps_mask(lm, v, th, _CMP_GE_OQ);
            if (hit) count += kb_emit(hit, v, (uint32_t)(r0 + r), 0, (uint32_t)j0, 1, out + count);
        }
    }
    return count;
}

// One query against rows, 16 rows at a time: the query as u8 (q + 128), the rows as they are
// (signed), so vpdpbusd takes row bytes straight from memory (no flip) and Σ (q+128)·r =
// q·r + 128·Σr is corrected with the segment's stored Σr (QUANT). The 16 accumulators are
// reduced together by a transpose-and-add tree (45 instructions for 16 rows, against ~8 per
// row for one reduction each), leaving the 16 rows' dots in one vector for the threshold test.
KB_VNNI_T static inline __m512i kb_sum16(__m512i *a) {
    // Step 1: pairs (2i, 2i+1) → 8 vectors, each lane-pair interleaving the two rows' partials.
    __m512i b[8], c[4], d[2];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
    // b[i] 128-bit lane: [r2i, r2i+1, r2i, r2i+1] partials. Step 2: 64-bit interleave.
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(b[2 * i], b[2 * i + 1]), _mm512_unpackhi_epi64(b[2 * i], b[2 * i + 1]));
    // c[i] 128-bit lane L: [r4i, r4i+1, r4i+2, r4i+3] partial sums of lane L. Step 3: pair lanes.
    for (int i = 0; i < 2; i++) {
        const __m512i lo = _mm512_shuffle_i32x4(c[2 * i], c[2 * i + 1], 0x88);  // lanes 0,2 of each
        const __m512i hi = _mm512_shuffle_i32x4(c[2 * i], c[2 * i + 1], 0xDD);  // lanes 1,3 of each
        d[i] = _mm512_add_epi32(lo, hi);
    }
    // d[i] lanes: [r8i..+3 (0+1,.. ), r8i..+3 (2+3), r8i+4..+7 (0+1), r8i+4..+7 (2+3)]. Step 4.
    const __m512i lo = _mm512_shuffle_i32x4(d[0], d[1], 0x88);
    const __m512i hi = _mm512_shuffle_i32x4(d[0], d[1], 0xDD);
    return _mm512_add_epi32(lo, hi);  // lane l: row l's total, rows 0..15 in order
}

KB_VNNI_T static size_t kb_scan_one_vnni(const uint8_t *qu, uint32_t query, size_t dims, const int8_t *rows,
                                         size_t stride, size_t n, const float *scales, const int32_t *sums,
                                         size_t quant_stride, float threshold, kb_candidate *out) {
    size_t count = 0, r0 = 0;
    const __m512 th = _mm512_set1_ps(threshold);
    const __m512i qstride_idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                   _mm512_set1_epi32((int)quant_stride));
    const size_t full = dims & ~(size_t)63;
    const __mmask64 tm = dims - full ? (((__mmask64)1 << (dims - full)) - 1) : 0;
    for (; r0 + 16 <= n; r0 += 16) {
        __m512i acc[16];
        for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_si512();
        const int8_t *base = rows + r0 * stride;
        // Row by row (sequential addresses), with a software prefetch KB_SCAN_PREFETCH bytes
        // ahead: from a file mapping, one core streamed 1M × 384 rows in 1.42× the floor's time
        // when the tile was walked column-wise (16 rows at each offset), 1.27× row by row, and
        // 1.13–1.16× row by row with a 3–6 KiB prefetch (Benchmarks/RESULTS.md). The query
        // vectors are reloaded from L1 per row: cheap next to the row's memory traffic.
        for (int r = 0; r < 16; r++) {
            const int8_t *row = base + r * stride;
            for (size_t i = 0; i < full; i += 64) {
                _mm_prefetch((const char *)(row + i + KB_SCAN_PREFETCH), _MM_HINT_T0);
                acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_loadu_si512((const void *)(qu + i)),
                                             _mm512_loadu_si512((const void *)(row + i)));
            }
        }
        if (tm) {
            const __m512i qv = _mm512_maskz_loadu_epi8(tm, qu + full);
            for (int r = 0; r < 16; r++)
                acc[r] = _mm512_dpbusd_epi32(acc[r], qv, _mm512_maskz_loadu_epi8(tm, base + r * stride + full));
        }
        const __m512i raw = kb_sum16(acc);
        // Σr and scale of the 16 rows, gathered from their QUANT records.
        const __m512i sr = _mm512_i32gather_epi32(qstride_idx, (const void *)((const char *)sums + r0 * quant_stride), 1);
        const __m512 sc = _mm512_i32gather_ps(qstride_idx, (const void *)((const char *)scales + r0 * quant_stride), 1);
        const __m512i dot = _mm512_sub_epi32(raw, _mm512_slli_epi32(sr, 7));
        const __m512 v = _mm512_mul_ps(sc, _mm512_cvtepi32_ps(dot));
        const __mmask16 hit = _mm512_cmp_ps_mask(v, th, _CMP_GE_OQ);
        if (hit) count += kb_emit(hit, v, (uint32_t)r0, 1, query, 0, out + count);
    }
    for (; r0 < n; r0++) {  // the last n % 16 rows, one at a time
        const int8_t *row = rows + r0 * stride;
        __m512i acc = _mm512_setzero_si512();
        for (size_t i = 0; i < full; i += 64)
            acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512((const void *)(qu + i)), _mm512_loadu_si512((const void *)(row + i)));
        if (tm) acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(tm, qu + full), _mm512_maskz_loadu_epi8(tm, row + full));
        int32_t sr;
        memcpy(&sr, (const char *)sums + r0 * quant_stride, 4);
        const int32_t dot = (int32_t)((uint32_t)_mm512_reduce_add_epi32(acc) - ((uint32_t)sr << 7));
        const float v = kb_scale_at(scales, quant_stride, r0) * (float)dot;
        if (v >= threshold) out[count++] = (kb_candidate){(uint32_t)r0, query, v};
    }
    return count;
}

KB_VNNI_T static size_t kb_scan_packed(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                                       const float *scales, const int32_t *sums, size_t quant_stride,
                                       const float *thresholds, kb_candidate *out) {
    size_t count = 0;
    // Query groups in chunks of at most KB_PG, as even as possible (13 groups: 4+3+3+3, not
    // 4+4+4+1: a 1-group tile is bound by its broadcasts, not by vpdpbusd).
    const size_t chunks = (b->groups + KB_PG - 1) / KB_PG;
    // Rows in sub-blocks that stay in L1 while every query group passes over them.
    for (size_t s0 = 0; s0 < n; s0 += KB_SUB) {
        const size_t se = n - s0 < KB_SUB ? n : s0 + KB_SUB;
        for (size_t c = 0; c < chunks; c++) {
            const size_t g0 = b->groups * c / chunks, G = b->groups * (c + 1) / chunks - g0;
            size_t r = s0;
#define KB_TILE(RR, GG) count += kb_packed_tile(b, rows, stride, r, g0, RR, GG, scales, sums, quant_stride, thresholds, out + count)
            for (; r + KB_PR <= se; r += KB_PR) {
                switch (G) {
                case 1: KB_TILE(KB_PR, 1); break;
                case 2: KB_TILE(KB_PR, 2); break;
                case 3: KB_TILE(KB_PR, 3); break;
                default: KB_TILE(KB_PR, 4); break;
                }
            }
            for (; r < se; r++) {
                switch (G) {
                case 1: KB_TILE(1, 1); break;
                case 2: KB_TILE(1, 2); break;
                case 3: KB_TILE(1, 3); break;
                default: KB_TILE(1, 4); break;
                }
            }
#undef KB_TILE
        }
    }
    return count;
}
#endif

size_t kb_i8_scan(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n, const float *scales,
                  const int32_t *sums, size_t quant_stride, const float *thresholds, kb_candidate *out) {
    if (n == 0 || b->nq == 0) return 0;
    const size_t scale_stride = quant_stride;
#ifdef __x86_64__
    if (b->packed) return kb_scan_packed(b, rows, stride, n, scales, sums, quant_stride, thresholds, out);
    if (b->biased) {
        size_t count = 0;
        for (size_t j = 0; j < b->nq; j++)
            count += kb_scan_one_vnni(b->biased + j * b->dims, (uint32_t)j, b->dims, rows, stride, n, scales, sums,
                                      quant_stride, thresholds[j], out + count);
        return count;
    }
#else
    (void)sums;
#endif
    return kb_scan_generic(b, rows, stride, n, scales, scale_stride, thresholds, out);
}
