// The index scan's x86-64 paths (see scan.c for the overview, include/kb_kernels.h for the
// contract): AVX-512 VNNI, AVX-VNNI and AVX2, each with
//   - a single-query row tile: one query at a time against a tile of rows read row by row with
//     a software prefetch ahead, the tile's accumulators reduced together by a transpose-and-add
//     tree into one vector of row dots, then scaled and compared with the threshold in vector
//     registers;
//   - for KB_PACKED_MIN_QUERIES or more queries, a packed register-tiled kernel: the queries
//     are laid out once (kb_scan_prepare_x86) as groups of 16 (zmm) or 8 (ymm) queries × 4
//     dimensions per vector; the kernel broadcasts 4 bytes of a row to every lane, so one
//     vpdpbusd (or, on AVX2, one sign/multiply-add sequence) advances a whole query group by 4
//     dimensions: a matrix product with no horizontal reductions.
// AMX (its own section below) runs batches as tile matrix products and single queries on the
// AVX-512 VNNI tile.
//
// Exactness, per instruction set:
//   - vpdpbusd (both VNNIs) multiplies unsigned × signed bytes into int32 without saturation.
//     The query is the unsigned side as q + 128 and the row stays signed, so the sums are
//     q·r + 128·Σr; each row's Σr is stored in its QUANT record and subtracted once per row.
//   - AVX2's vpmaddubsw (unsigned × signed, adjacent pairs summed into int16 with saturation)
//     is exact with the abs/sign trick: |a| · sign(b, a) = a·b, both factors ≤ 127 in
//     magnitude (no −128 anywhere), so a pair is at most 2·127² = 32258 < 32767 and never
//     saturates; vpmaddwd against 1s widens the pairs into int32. The shared operand takes the
//     abs: the query in the single-query tile (precomputed), the broadcast row in the packed one.
//   All int32 arithmetic wraps, so the result is exact modulo 2³², hence exact (see dot.c).
#include "scan_impl.h"
#include "kb_select.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>


// The 4 bytes of `row` at dimension 4t (fewer, zero-filled, at the end of the row: the only
// read that must not go past dims, since stride may equal dims).
static inline int32_t kb_row4(const int8_t *row, size_t t, size_t dims) {
    int32_t v = 0;
    const size_t i = 4 * t, left = dims - i;
    memcpy(&v, row + i, left >= 4 ? 4 : left);
    return v;
}

// Query j's value at dimension i; 0 for a padding query (j ≥ nq) or dimension (i ≥ dims).
static inline int kb_query_value(const kb_query_batch *b, size_t j, size_t i) {
    return j < b->nq && i < b->dims ? b->queries[j * b->dims + i] : 0;
}

// The packed kernels' layout: group g of `lanes` queries, step t of 4 dimensions, one vector of
// 4·lanes bytes whose lane l holds q_{lanes·g+l}[4t .. 4t+3] + bias, for b->groups groups and
// b->steps steps. Padding queries and dimensions hold `bias` (the encoding of 0): a padding
// dimension meets kb_row4's zero bytes, and a padding query's results are never read.
static void kb_pack_groups4(const kb_query_batch *b, size_t lanes, int bias, uint8_t *p) {
    for (size_t g = 0; g < b->groups; g++)
        for (size_t t = 0; t < b->steps; t++)
            for (size_t l = 0; l < lanes; l++)
                for (size_t u = 0; u < 4; u++)
                    p[((g * b->steps + t) * lanes + l) * 4 + u] = (uint8_t)(kb_query_value(b, lanes * g + l, 4 * t + u) + bias);
}

// ==== AVX-512 VNNI ==========================================================================


// Writes the lanes of `v` set in `hit` as candidates: lane l is row row0 + l·row_step of
// query query0 + l·query_step. Returns how many.
KB_VNNI_T static inline size_t kb_emit(__mmask16 hit, __m512 v, uint32_t row0, uint32_t row_step, uint32_t query0,
                                       uint32_t query_step, kb_candidate *out) {
    float vs[16];
    _mm512_storeu_ps(vs, v);
    return kb_emit_lanes(hit, vs, row0, row_step, query0, query_step, out);
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
    const uint8_t *qp = (const uint8_t *)b->layout + g0 * gstride;
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
        const int32_t sr = kb_sum_at(sums, quant_stride, r0 + r);
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
        const int32_t sr = kb_sum_at(sums, quant_stride, r0);
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

KB_VNNI_T static size_t kb_scan_one_vnni512_all(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                                                const float *scales, const int32_t *sums, size_t quant_stride,
                                                const float *thresholds, kb_candidate *out) {
    size_t count = 0;
    for (size_t j = 0; j < b->nq; j++)
        count += kb_scan_one_vnni((const uint8_t *)b->layout + j * b->dims, (uint32_t)j, b->dims, rows, stride, n,
                                  scales, sums, quant_stride, thresholds[j], out + count);
    return count;
}

// ==== AMX (int8 tiles) ======================================================================
//
// Batches on CPUs with AMX-INT8 (Sapphire Rapids and later Xeons): tdpbssd multiplies a
// 16 × 64 tile of signed bytes by a 64 × 16 one (stored as 16 rows of 16 × 4 bytes) into a
// 16 × 16 tile of int32 sums: 16,384 multiply-adds per instruction, exact (signed × signed, no
// correction). A tile of rows is loaded straight from the segment (16 rows, 64 dimensions, the
// row stride as the tile's stride); the queries are laid out once as B tiles: group g of 16
// queries, 64-dimension chunk k, 16 rows of 64 bytes whose lane l holds q_{16g+l}[64k + 4s ..
// 64k + 4s + 3] in row s (zero-padded). Each step multiplies 2 row tiles by 2 query tiles into
// 4 accumulator tiles (the 8 tile registers: 4 C, 2 A, 2 B), then the sums are stored and
// compared with the thresholds in AVX-512. The last dims % 64 dimensions of a row tile are
// copied zero-filled into a 16 × 64 buffer (a tile load reads 64 bytes per row, which must
// not pass dims); the last n % 16 rows go through the AVX-512 VNNI packed kernel (the batch
// keeps its layout too, first in `layout`; the AMX layout starts at `second`). Single queries
// keep the AVX-512 VNNI tile: they are bound by memory, not by multiplies.
// The tile configuration is loaded on entry and released on exit of every scan call (the tile
// state is per thread).
#define KB_AMX_T __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vnni")))

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} kb_tile_config;

// Emits the candidates of one 16 × 16 tile of sums: rows row0..row0+15 × queries j0..j0+15
// (those < nq).
KB_AMX_T static inline size_t kb_amx_emit(const int32_t *c, size_t row0, size_t j0, size_t nq, const float *scales,
                                          size_t quant_stride, const float *thresholds, kb_candidate *out) {
    const size_t live = nq - j0 < 16 ? nq - j0 : 16;
    const __mmask16 lm = live >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << live) - 1);
    const __m512 th = _mm512_maskz_loadu_ps(lm, thresholds + j0);
    size_t count = 0;
    for (size_t m = 0; m < 16; m++) {
        const __m512 v = _mm512_mul_ps(_mm512_set1_ps(kb_scale_at(scales, quant_stride, row0 + m)),
                                       _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(c + 16 * m))));
        const __mmask16 hit = _mm512_mask_cmp_ps_mask(lm, v, th, _CMP_GE_OQ);
        if (hit) count += kb_emit(hit, v, (uint32_t)(row0 + m), 0, (uint32_t)j0, 1, out + count);
    }
    return count;
}

KB_AMX_T static size_t kb_scan_amx(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                                   const float *scales, const int32_t *sums, size_t quant_stride,
                                   const float *thresholds, kb_candidate *out) {
    if (n < 16) return kb_scan_packed(b, rows, stride, n, scales, sums, quant_stride, thresholds, out);
    const size_t dims = b->dims, kfull = dims / 64, ktail = dims % 64, kchunks = (dims + 63) / 64;
    const size_t groups = b->groups, gstride = kchunks * 16 * 64;
    const int8_t *qt = (const int8_t *)b->layout + b->second;
    kb_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.colsb[t] = 64; cfg.rows[t] = 16; }
    _tile_loadconfig(&cfg);
    int8_t tail[2][16 * 64] __attribute__((aligned(64)));
    int32_t c[4][256] __attribute__((aligned(64)));
    size_t count = 0, r0 = 0;
    while (r0 + 16 <= n) {
        const int two = r0 + 32 <= n;  // a second row tile
        const int8_t *a0 = rows + r0 * stride, *a1 = rows + (r0 + 16) * stride;
        if (ktail) {
            memset(tail, 0, two ? sizeof tail : sizeof tail[0]);
            for (int m = 0; m < 16; m++) {
                memcpy(tail[0] + 64 * m, a0 + m * stride + 64 * kfull, ktail);
                if (two) memcpy(tail[1] + 64 * m, a1 + m * stride + 64 * kfull, ktail);
            }
        }
        for (size_t g = 0; g < groups; g += 2) {
            const int pair = g + 1 < groups;  // a second query tile
            const int8_t *b0 = qt + g * gstride, *b1 = qt + (g + 1) * gstride;
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            for (size_t k = 0; k < kchunks; k++) {
                if (k < kfull) {
                    _tile_loadd(4, a0 + 64 * k, (long)stride);
                    if (two) _tile_loadd(5, a1 + 64 * k, (long)stride);
                } else {
                    _tile_loadd(4, tail[0], 64);
                    if (two) _tile_loadd(5, tail[1], 64);
                }
                _tile_loadd(6, b0 + k * 1024, 64);
                if (pair) _tile_loadd(7, b1 + k * 1024, 64);
                _tile_dpbssd(0, 4, 6);
                if (pair) _tile_dpbssd(1, 4, 7);
                if (two) {
                    _tile_dpbssd(2, 5, 6);
                    if (pair) _tile_dpbssd(3, 5, 7);
                }
            }
            _tile_stored(0, c[0], 64);
            if (pair) _tile_stored(1, c[1], 64);
            if (two) {
                _tile_stored(2, c[2], 64);
                if (pair) _tile_stored(3, c[3], 64);
            }
            count += kb_amx_emit(c[0], r0, 16 * g, b->nq, scales, quant_stride, thresholds, out + count);
            if (pair) count += kb_amx_emit(c[1], r0, 16 * (g + 1), b->nq, scales, quant_stride, thresholds, out + count);
            if (two) {
                count += kb_amx_emit(c[2], r0 + 16, 16 * g, b->nq, scales, quant_stride, thresholds, out + count);
                if (pair) count += kb_amx_emit(c[3], r0 + 16, 16 * (g + 1), b->nq, scales, quant_stride, thresholds, out + count);
            }
        }
        r0 += two ? 32 : 16;
    }
    _tile_release();
    if (r0 < n) {  // the last n % 16 rows: the AVX-512 VNNI packed kernel, rows renumbered
        const size_t before = count;
        count += kb_scan_packed(b, rows + r0 * stride, stride, n - r0, (const float *)((const char *)scales + r0 * quant_stride),
                                (const int32_t *)((const char *)sums + r0 * quant_stride), quant_stride, thresholds,
                                out + count);
        for (size_t i = before; i < count; i++) out[i].row += (uint32_t)r0;
    }
    return count;
}

// The AVX-512 VNNI layouts, and with `amx` the AMX batch's B tiles after them.
static int kb_prepare_vnni512(kb_query_batch *b, int amx) {
    const size_t nq = b->nq, dims = b->dims;
    if (nq >= KB_PACKED_MIN_QUERIES) {
        b->groups = (nq + 15) / 16;
        b->steps = (dims + 3) / 4;
        const size_t vnni_bytes = b->groups * b->steps * 64 + 64, kchunks = (dims + 63) / 64;
        uint8_t *p = kb_scan_alloc(vnni_bytes + (amx ? b->groups * kchunks * 1024 : 0));
        if (!p) return 0;
        kb_pack_groups4(b, 16, 128, p);
        b->layout = p;
        b->scan = kb_scan_packed;
        b->path = "avx512vnni packed16x4";
        if (amx) {
            // Byte (g, k, s, 4·l + u) = q_{16g+l}[64k + 4s + u], 0 past nq or dims.
            int8_t *t = (int8_t *)p + vnni_bytes;
            for (size_t g = 0; g < b->groups; g++)
                for (size_t k = 0; k < kchunks; k++)
                    for (size_t s = 0; s < 16; s++)
                        for (size_t l = 0; l < 16; l++)
                            for (size_t u = 0; u < 4; u++)
                                t[((g * kchunks + k) * 16 + s) * 64 + 4 * l + u] = (int8_t)kb_query_value(b, 16 * g + l, 64 * k + 4 * s + u);
            b->second = vnni_bytes;
            b->scan = kb_scan_amx;
            b->path = "amx packed16x16";
        }
    } else {
        uint8_t *p = kb_scan_alloc(nq * dims + 1);
        if (!p) return 0;
        for (size_t i = 0; i < nq * dims; i++) p[i] = (uint8_t)(b->queries[i] + 128);
        b->layout = p;
        b->scan = kb_scan_one_vnni512_all;
        b->path = amx ? "amx tile16" : "avx512vnni tile16";
    }
    return 1;
}

// ==== AVX2 and AVX-VNNI (256-bit) ===========================================================
//
// The two ymm paths differ only in their multiply-accumulate step, so each path is written
// once as a macro over its step (KB_DEFINE_YMM_ONE, KB_DEFINE_YMM_PACKED) and instantiated
// twice. Layouts (made by kb_prepare_ymm, zero-padded, 64-byte aligned):
//   single query, P = dims rounded up to 32:
//     AVX2      |q| (P bytes) then q (P bytes) per query: the unsigned factor, and the signs
//               vpsignb gives the row (0 in the padding zeroes a tail's row bytes);
//     AVX-VNNI  q + 128 (P bytes) per query (the padding meets zero-filled row bytes);
//   packed: group g of 8 queries, step t of 4 dimensions, 32 bytes: lane l holds
//     q_{8g+l}[4t..4t+3] (AVX2) or those + 128 (AVX-VNNI); padding queries' results are
//     never read, padding dimensions meet kb_row4's zero bytes.

#define KB_YMM_ROWS 8  // rows per single-query tile

// Lane r of the result: the sum of a[r]'s 8 lanes. 8 rows reduced together by a
// transpose-and-add tree: 17 instructions, against ~6 per row reduced alone.
KB_AVX2_T KB_INLINE __m256i kb_sum8(const __m256i *a) {
    __m256i b[4], c[2];
    // b[i], per 128-bit lane: [r2i, r2i+1, r2i, r2i+1] partial sums.
    for (int i = 0; i < 4; i++)
        b[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(a[2 * i], a[2 * i + 1]), _mm256_unpackhi_epi32(a[2 * i], a[2 * i + 1]));
    // c[i], per 128-bit lane: [r4i, r4i+1, r4i+2, r4i+3] partial sums of that lane.
    for (int i = 0; i < 2; i++)
        c[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(b[2 * i], b[2 * i + 1]), _mm256_unpackhi_epi64(b[2 * i], b[2 * i + 1]));
    // Add the two 128-bit lanes: rows 0-3 from c[0], rows 4-7 from c[1].
    return _mm256_add_epi32(_mm256_permute2x128_si256(c[0], c[1], 0x20), _mm256_permute2x128_si256(c[0], c[1], 0x31));
}

// Writes the lanes of `v` set in `hit` as candidates: lane l is row row0 + l·row_step of query
// query0 + l·query_step. Returns how many.
KB_AVX2_T KB_INLINE size_t kb_emit8(unsigned hit, __m256 v, uint32_t row0, uint32_t row_step, uint32_t query0,
                                    uint32_t query_step, kb_candidate *out) {
    float vs[8];
    _mm256_storeu_ps(vs, v);
    return kb_emit_lanes(hit, vs, row0, row_step, query0, query_step, out);
}

// The single-query steps: acc += the products of the query's 32 bytes at offset i (layout
// above, P bytes per part) with the row vector rv.
KB_AVX2_T KB_INLINE __m256i kb_step_avx2(__m256i acc, const uint8_t *ql, size_t P, size_t i, __m256i rv) {
    const __m256i qa = _mm256_load_si256((const __m256i *)(ql + i));
    const __m256i qs = _mm256_load_si256((const __m256i *)(ql + P + i));
    const __m256i p = _mm256_maddubs_epi16(qa, _mm256_sign_epi8(rv, qs));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

KB_AVXVNNI_T KB_INLINE __m256i kb_step_avxvnni(__m256i acc, const uint8_t *ql, size_t P, size_t i, __m256i rv) {
    (void)P;
    return _mm256_dpbusd_avx_epi32(acc, _mm256_load_si256((const __m256i *)(ql + i)), rv);
}

// The packed steps: acc += one query group's 4 dimensions (qv) times a row's 4 bytes
// broadcast to every lane (rb; ra = |rb| for AVX2's unsigned side).
KB_AVX2_T KB_INLINE __m256i kb_pstep_avx2(__m256i acc, __m256i qv, __m256i rb, __m256i ra) {
    const __m256i p = _mm256_maddubs_epi16(ra, _mm256_sign_epi8(qv, rb));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

KB_AVXVNNI_T KB_INLINE __m256i kb_pstep_avxvnni(__m256i acc, __m256i qv, __m256i rb, __m256i ra) {
    (void)ra;
    return _mm256_dpbusd_avx_epi32(acc, qv, rb);
}

// One query (layout at ql, PARTS·P bytes) against rows, KB_YMM_ROWS rows per tile, each row
// read front to back with a prefetch KB_SCAN_PREFETCH bytes ahead (as the AVX-512 tile, whose
// measurements chose it). BIASED: subtract 128·Σr (the VNNI step's q + 128).
#define KB_DEFINE_YMM_ONE(NAME, TARGET, STEP, PARTS, BIASED)                                                    \
    TARGET static size_t NAME##_one(const uint8_t *ql, size_t P, uint32_t query, size_t dims, const int8_t *rows,     \
                                    size_t stride, size_t n, const float *scales, const int32_t *sums, size_t qstr,   \
                                    float threshold, kb_candidate *out) {                                             \
        size_t count = 0, r0 = 0;                                                                                     \
        const __m256 th = _mm256_set1_ps(threshold);                                                                  \
        const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)qstr)); \
        const size_t full = dims & ~(size_t)31, left = dims - full;                                                   \
        for (; r0 + KB_YMM_ROWS <= n; r0 += KB_YMM_ROWS) {                                                            \
            __m256i acc[KB_YMM_ROWS];                                                                                 \
            for (int r = 0; r < KB_YMM_ROWS; r++) {                                                                   \
                const int8_t *row = rows + (r0 + r) * stride;                                                         \
                __m256i a = _mm256_setzero_si256();                                                                   \
                size_t i = 0;                                                                                         \
                for (; i + 64 <= full; i += 64) {                                                                     \
                    _mm_prefetch((const char *)(row + i + KB_SCAN_PREFETCH), _MM_HINT_T0);                            \
                    a = STEP(a, ql, P, i, _mm256_loadu_si256((const __m256i *)(row + i)));                            \
                    a = STEP(a, ql, P, i + 32, _mm256_loadu_si256((const __m256i *)(row + i + 32)));                  \
                }                                                                                                     \
                if (i < full) a = STEP(a, ql, P, i, _mm256_loadu_si256((const __m256i *)(row + i)));                  \
                if (left) a = STEP(a, ql, P, full, kb_load_partial32(row + full, left));                                  \
                acc[r] = a;                                                                                           \
            }                                                                                                         \
            __m256i dot = kb_sum8(acc);                                                                               \
            if (BIASED) {                                                                                             \
                const __m256i sr = _mm256_i32gather_epi32((const int *)((const char *)sums + r0 * qstr), idx, 1);     \
                dot = _mm256_sub_epi32(dot, _mm256_slli_epi32(sr, 7));                                                \
            }                                                                                                         \
            const __m256 sc = _mm256_i32gather_ps((const float *)((const char *)scales + r0 * qstr), idx, 1);         \
            const __m256 v = _mm256_mul_ps(sc, _mm256_cvtepi32_ps(dot));                                              \
            const unsigned hit = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, th, _CMP_GE_OQ));                     \
            if (hit) count += kb_emit8(hit, v, (uint32_t)r0, 1, query, 0, out + count);                              \
        }                                                                                                             \
        for (; r0 < n; r0++) { /* the last n % KB_YMM_ROWS rows, one at a time */                                     \
            const int8_t *row = rows + r0 * stride;                                                                   \
            __m256i a = _mm256_setzero_si256();                                                                       \
            for (size_t i = 0; i < full; i += 32) a = STEP(a, ql, P, i, _mm256_loadu_si256((const __m256i *)(row + i))); \
            if (left) a = STEP(a, ql, P, full, kb_load_partial32(row + full, left));                                      \
            uint32_t dot = (uint32_t)kb_hsum256(a);                                                                     \
            if (BIASED) dot -= (uint32_t)kb_sum_at(sums, qstr, r0) << 7;                                              \
            const float v = kb_scale_at(scales, qstr, r0) * (float)(int32_t)dot;                                      \
            if (v >= threshold) out[count++] = (kb_candidate){(uint32_t)r0, query, v};                                \
        }                                                                                                             \
        return count;                                                                                                 \
    }                                                                                                                 \
    TARGET static size_t NAME##_one_all(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,         \
                                        const float *scales, const int32_t *sums, size_t qstr,                        \
                                        const float *thresholds, kb_candidate *out) {                                 \
        size_t count = 0;                                                                                             \
        for (size_t j = 0; j < b->nq; j++)                                                                            \
            count += NAME##_one((const uint8_t *)b->layout + j * (PARTS) * b->steps, b->steps, (uint32_t)j, b->dims,  \
                                rows, stride, n, scales, sums, qstr, thresholds[j], out + count);                     \
        return count;                                                                                                 \
    }

// 4 bytes at p, unaligned.
static inline int32_t kb_word(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// One step of the packed tile: G query vectors of step T, then for each of the R rows its 4
// bytes (WORD, with r in scope) broadcast to every lane and multiplied into its accumulators.
#define KB_YMM_PACKED_STEP(T, WORD, PSTEP)                                                                            \
    do {                                                                                                              \
        __m256i qv[3];                                                                                                \
        for (int g = 0; g < G; g++) qv[g] = _mm256_load_si256((const __m256i *)(qp + g * gstride + (T) * 32));        \
        for (int r = 0; r < R; r++) {                                                                                 \
            const __m256i rb = _mm256_set1_epi32(WORD), ra = _mm256_abs_epi8(rb);                                     \
            for (int g = 0; g < G; g++) acc[r][g] = PSTEP(acc[r][g], qv[g], rb, ra);                                  \
        }                                                                                                             \
    } while (0)

// R rows × G query groups (8 queries each) over all dimensions, then the threshold test;
// R·G accumulators, G query vectors and the broadcast row word stay in the 16 ymm registers.
// R ≤ RMAX and G ≤ GMAX (≤ 3) are constants at every call site (the switch in NAME_packed), so
// the loops unroll; query groups are split into chunks of at most GMAX, as even as possible.
#define KB_DEFINE_YMM_PACKED(NAME, TARGET, PSTEP, RMAX, GMAX, BIASED)                                                       \
    TARGET KB_INLINE size_t NAME##_tile(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t r0,        \
                                        size_t g0, const int R, const int G, const float *scales,                     \
                                        const int32_t *sums, size_t qstr, const float *thresholds,                    \
                                        kb_candidate *out) {                                                          \
        __m256i acc[RMAX][GMAX];                                                                                     \
        for (int r = 0; r < R; r++)                                                                                   \
            for (int g = 0; g < G; g++) acc[r][g] = _mm256_setzero_si256();                                           \
        const size_t steps = b->steps, dims = b->dims, full = dims / 4, gstride = steps * 32;                         \
        const uint8_t *qp = (const uint8_t *)b->layout + g0 * gstride;                                                \
        const int8_t *rp[RMAX];                                                                                       \
        for (int r = 0; r < R; r++) rp[r] = rows + (r0 + r) * stride;                                                 \
        /* every full 4 dimensions without a branch, then the last partial ones (kb_row4) */                        \
        for (size_t t = 0; t < full; t++) KB_YMM_PACKED_STEP(t, kb_word(rp[r] + 4 * t), PSTEP);                       \
        if (full < steps) KB_YMM_PACKED_STEP(full, kb_row4(rp[r], full, dims), PSTEP);                                \
        size_t count = 0;                                                                                             \
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                               \
        for (int r = 0; r < R; r++) {                                                                                 \
            const __m256i corr = _mm256_set1_epi32(BIASED ? (int32_t)((uint32_t)kb_sum_at(sums, qstr, r0 + r) << 7) : 0); \
            const __m256 sc = _mm256_set1_ps(kb_scale_at(scales, qstr, r0 + r));                                      \
            for (int g = 0; g < G; g++) {                                                                             \
                const size_t j0 = (g0 + g) * 8;                                                                       \
                const size_t live = b->nq - j0 < 8 ? b->nq - j0 : 8;                                                  \
                const __m256 v = _mm256_mul_ps(sc, _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][g], corr)));           \
                const __m256 thv = live == 8 ? _mm256_loadu_ps(thresholds + j0)                                       \
                    : _mm256_maskload_ps(thresholds + j0, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)live), lane));    \
                const unsigned hit = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, thv, _CMP_GE_OQ)) & ((1u << live) - 1); \
                if (hit) count += kb_emit8(hit, v, (uint32_t)(r0 + r), 0, (uint32_t)j0, 1, out + count);             \
            }                                                                                                         \
        }                                                                                                             \
        return count;                                                                                                 \
    }                                                                                                                 \
    TARGET static size_t NAME##_packed(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,          \
                                       const float *scales, const int32_t *sums, size_t qstr,                         \
                                       const float *thresholds, kb_candidate *out) {                                  \
        size_t count = 0;                                                                                             \
        const size_t chunks = (b->groups + GMAX - 1) / GMAX;                                                        \
        for (size_t s0 = 0; s0 < n; s0 += KB_SUB) {                                                                   \
            const size_t se = n - s0 < KB_SUB ? n : s0 + KB_SUB;                                                      \
            for (size_t c = 0; c < chunks; c++) {                                                                     \
                const size_t g0 = b->groups * c / chunks, G = b->groups * (c + 1) / chunks - g0;                      \
                size_t r = s0;                                                                                        \
                for (; r + RMAX <= se; r += RMAX) {                                                                   \
                    switch (G) {                                                                                      \
                    case 1: count += NAME##_tile(b, rows, stride, r, g0, RMAX, 1, scales, sums, qstr, thresholds, out + count); break; \
                    case 2: count += NAME##_tile(b, rows, stride, r, g0, RMAX, 2 < GMAX ? 2 : GMAX, scales, sums, qstr, thresholds, out + count); break; \
                    default: count += NAME##_tile(b, rows, stride, r, g0, RMAX, GMAX, scales, sums, qstr, thresholds, out + count); break; \
                    }                                                                                                 \
                }                                                                                                     \
                for (; r < se; r++) {                                                                                 \
                    switch (G) {                                                                                      \
                    case 1: count += NAME##_tile(b, rows, stride, r, g0, 1, 1, scales, sums, qstr, thresholds, out + count); break; \
                    case 2: count += NAME##_tile(b, rows, stride, r, g0, 1, 2 < GMAX ? 2 : GMAX, scales, sums, qstr, thresholds, out + count); break; \
                    default: count += NAME##_tile(b, rows, stride, r, g0, 1, GMAX, scales, sums, qstr, thresholds, out + count); break; \
                    }                                                                                                 \
                }                                                                                                     \
            }                                                                                                         \
        }                                                                                                             \
        return count;                                                                                                 \
    }

KB_DEFINE_YMM_ONE(kb_avx2, KB_AVX2_T, kb_step_avx2, 2, 0)
KB_DEFINE_YMM_ONE(kb_avxvnni, KB_AVXVNNI_T, kb_step_avxvnni, 1, 1)
// Tile shapes, measured with 200 queries against 100,000 × 384 rows on one core of a Xeon
// (Sapphire Rapids; best of rows × groups with at most 16 live ymm registers): AVX2 3 × 3 (9
// accumulators, 3 query vectors and 4 temporaries) 1,785 q/s, against 1,705 for 4 × 2 and
// 1,725 for 2 × 3; AVX-VNNI 6 × 2 4,315 q/s, against 3,343 for 4 × 3 (which spills) and
// 4,110 for 5 × 2. AVX2 runs at its port bound there: 3 multiply-port instructions
// (vpsignb, vpmaddubsw, vpmaddwd) per 32 multiply-adds.
KB_DEFINE_YMM_PACKED(kb_avx2, KB_AVX2_T, kb_pstep_avx2, 3, 3, 0)
KB_DEFINE_YMM_PACKED(kb_avxvnni, KB_AVXVNNI_T, kb_pstep_avxvnni, 6, 2, 1)

static int kb_prepare_ymm(kb_query_batch *b, int vnni) {
    const size_t nq = b->nq, dims = b->dims;
    const int bias = vnni ? 128 : 0;
    if (nq >= KB_PACKED_MIN_QUERIES) {
        b->groups = (nq + 7) / 8;
        b->steps = (dims + 3) / 4;
        uint8_t *p = kb_scan_alloc(b->groups * b->steps * 32 + 32);
        if (!p) return 0;
        kb_pack_groups4(b, 8, bias, p);
        b->layout = p;
        b->scan = vnni ? kb_avxvnni_packed : kb_avx2_packed;
        b->path = vnni ? "avxvnni packed8x4" : "avx2 packed8x4";
    } else {
        const size_t P = (dims + 31) & ~(size_t)31, parts = vnni ? 1 : 2;
        uint8_t *p = kb_scan_alloc(nq * parts * P + 32);
        if (!p) return 0;
        for (size_t j = 0; j < nq; j++)
            for (size_t i = 0; i < P; i++) {
                const int v = kb_query_value(b, j, i);
                if (vnni) p[j * P + i] = (uint8_t)(v + 128);
                else {
                    p[j * 2 * P + i] = (uint8_t)(v < 0 ? -v : v);
                    p[j * 2 * P + P + i] = (uint8_t)v;
                }
            }
        b->layout = p;
        b->steps = P;
        b->scan = vnni ? kb_avxvnni_one_all : kb_avx2_one_all;
        b->path = vnni ? "avxvnni tile8" : "avx2 tile8";
    }
    return 1;
}

int kb_scan_prepare_x86(kb_query_batch *b) {
    switch (b->kernel) {
    case KB_DOT_AVX512VNNI: return kb_prepare_vnni512(b, 0);
    case KB_DOT_AMX: return kb_prepare_vnni512(b, 1);
    case KB_DOT_AVXVNNI: return kb_prepare_ymm(b, 1);
    case KB_DOT_AVX2: return kb_prepare_ymm(b, 0);
    default: return 1;
    }
}
#else
int kb_scan_prepare_x86(kb_query_batch *b) {
    (void)b;
    return 1;
}
#endif
