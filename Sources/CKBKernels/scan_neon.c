// The index scan's AArch64 paths (see scan.c for the overview, include/kb_kernels.h for the
// contract), chosen per batch at kb_query_batch_new by the CPU's features:
//   - a single-query row tile (fewer than KB_PACKED_MIN_QUERIES queries, one at a time): 8 rows
//     per tile, each read front to back with a software prefetch ahead, into int32x4
//     accumulators (sdot when the CPU has dotprod, i8mm CPUs included; vmull/vpadal without);
//     the 8 rows' accumulators are reduced together by vpaddq_s32 trees (3 per 4 rows) into
//     two vectors of row dots, then scaled, compared with the threshold and turned into a hit
//     mask in vector registers;
//   - for KB_PACKED_MIN_QUERIES or more queries, a packed register-tiled kernel, the queries
//     laid out once (kb_scan_prepare_neon), each row's 16 bytes loaded once per tile:
//       i8mm   (when the CPU has it) smmla: the queries interleaved in pairs by 8 bytes, two
//              rows zipped by their 8-byte halves, so one smmla gives a 2 rows × 2 queries
//              block over 8 dimensions; 4 row pairs × up to 4 query pairs per tile;
//       sdot   sdot by element: groups of 4 queries × 4 dimensions per vector, each 4-byte lane
//              of the row vector used against a query group (vdotq_laneq_s32), 4 rows × up to
//              4 groups per tile; no horizontal reductions in the inner loop;
//       smull  (no dotprod, e.g. Cortex-A53) the row-shared vmull form: 4 rows × 4 queries of
//              int32x4 accumulators, each row vector multiplied with every query vector,
//              reduced by vpaddq_s32 trees once per tile into vectors of 4 queries.
//
// Dimensions: every path reads whole 16-byte row vectors, and the last, partial one (dims not a
// multiple of 16) as the row's last 16 bytes (kb_tail16: an overlapping load ending exactly at
// dims, never past it, since stride may equal dims and the last row may end the buffer;
// copied into a zeroed vector when dims < 16). The queries' matching tail vector is laid out
// at the same offsets with the dimensions already counted set to 0 (kb_layout_byte).
//
// Exactness: every product is of two values in [-127, 127], so
//   - sdot and smmla multiply signed × signed bytes into int32 sums with no correction (no
//     unsigned side, so no stored row sums are used);
//   - vmull_s8 + vmlal_high_s8 put two products in each int16 lane, |·| ≤ 2·127² = 32258 <
//     32767, and vpadalq_s16 widens the pairs into int32;
//   - int32 lanes hold partial sums of at most 127²·131072 < 2³¹ in magnitude, and wrap
//     anyway, so the total is exact.
// Then v = scale · (float)dot is vcvtq_f32_s32 (round to nearest, as C's conversion) and one
// vmulq_f32, compared with vcgeq_f32 (false for NaN, as >=): the scalar twin's floats.
#include "scan_impl.h"
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__)
#include <arm_neon.h>
#include "kb_select.h"

#define KB_NEON_ROWS 8  // rows per single-query tile

// ==== shared helpers ========================================================================

/// The row's last 16 bytes when dims ≥ 16 (lane k: byte dims − 16 + k), else its dims bytes
/// then zeros. Reads only bytes [0, dims) of `row`.
KB_INLINE int8x16_t kb_tail16(const int8_t *row, size_t dims) {
    if (dims >= 16) return vld1q_s8(row + dims - 16);
    int8_t buf[16] = {0};
    memcpy(buf, row, dims);
    return vld1q_s8(buf);
}

/// Query j's byte at lane k of its 16-dimension vector t, as every layout holds it: dimension
/// 16t + k for the full vectors t < dims/16; for the tail vector, the lane kb_tail16 puts row
/// dimension d in, with 0 where d was already counted (d < 16·(dims/16)) or d ≥ dims; 0 for a
/// padding query (j ≥ nq).
static int8_t kb_layout_byte(const kb_query_batch *b, size_t j, size_t t, size_t k) {
    const size_t dims = b->dims, full = dims / 16;
    if (j >= b->nq) return 0;
    const size_t d = (t < full ? 16 * t : (dims >= 16 ? dims - 16 : 0)) + k;
    if (d >= dims || (t >= full && d < 16 * full)) return 0;
    return b->queries[j * dims + d];
}

/// Bit l set when lane l of `m` is all ones.
KB_INLINE unsigned kb_mask4(uint32x4_t m) {
    const uint32x4_t bit = {1, 2, 4, 8};
    return vaddvq_u32(vandq_u32(m, bit));
}

/// Row `row`'s dots with queries j0..j0+3 (`dots`, lane l: query j0 + l; only the first `live`
/// are real), scaled by `scale` and compared with thresholds[j0 + l]: writes the hits, returns
/// how many. Reads thresholds[j0 .. j0 + live) only.
KB_INLINE size_t kb_emit_queries4(int32x4_t dots, float scale, const float *thresholds, size_t j0, size_t live,
                                  uint32_t row, kb_candidate *out) {
    const float32x4_t v = vmulq_f32(vdupq_n_f32(scale), vcvtq_f32_s32(dots));
    float32x4_t th;
    if (live >= 4) th = vld1q_f32(thresholds + j0);
    else {
        float t[4] = {0, 0, 0, 0};
        memcpy(t, thresholds + j0, live * sizeof(float));
        th = vld1q_f32(t);
    }
    const unsigned hit = kb_mask4(vcgeq_f32(v, th)) & (live >= 4 ? 0xFu : (1u << live) - 1);
    if (!hit) return 0;
    float vs[4];
    vst1q_f32(vs, v);
    return kb_emit_lanes(hit, vs, row, 0, (uint32_t)j0, 1, out);
}

/// vmull/vpadal step: acc += the 16 products of r and q, two per int16 lane (|·| ≤ 32258),
/// widened pairwise into the int32 lanes.
KB_INLINE int32x4_t kb_smull_step(int32x4_t acc, int8x16_t r, int8x16_t q) {
    int16x8_t p = vmull_s8(vget_low_s8(r), vget_low_s8(q));
    p = vmlal_high_s8(p, r, q);
    return vpadalq_s16(acc, p);
}

/// sdot step: acc lane i += Σ_{k<4} r[4i+k]·q[4i+k].
KB_DOTPROD_T KB_INLINE int32x4_t kb_sdot_step(int32x4_t acc, int8x16_t r, int8x16_t q) {
    return vdotq_s32(acc, r, q);
}

// ==== single-query tiles ====================================================================
//
// Layout (both): per query, steps = ⌈dims/16⌉ vectors of 16 bytes (kb_layout_byte), query j at
// j·steps·16.

// One query (layout at ql) against rows, KB_NEON_ROWS rows per tile, each row read front to
// back with a prefetch KB_SCAN_PREFETCH bytes ahead (as the x86 tiles, whose measurements chose
// it); per row two accumulators (halving the multiply-accumulate chain), added at the end.
// Written once over its step (sdot or vmull/vpadal) and the step's target.
#define KB_DEFINE_NEON_ONE(NAME, TARGET, STEP)                                                                       \
    TARGET KB_INLINE int32x4_t NAME##_row(const int8_t *ql, const int8_t *row, size_t full, size_t dims) {          \
        int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0);                                                          \
        size_t t = 0;                                                                                                \
        for (; t + 4 <= full; t += 4) {                                                                              \
            const int8_t *p = row + 16 * t, *q = ql + 16 * t;                                                        \
            __builtin_prefetch(p + KB_SCAN_PREFETCH, 0, 3);                                                          \
            a0 = STEP(a0, vld1q_s8(p), vld1q_s8(q));                                                                 \
            a1 = STEP(a1, vld1q_s8(p + 16), vld1q_s8(q + 16));                                                       \
            a0 = STEP(a0, vld1q_s8(p + 32), vld1q_s8(q + 32));                                                       \
            a1 = STEP(a1, vld1q_s8(p + 48), vld1q_s8(q + 48));                                                       \
        }                                                                                                            \
        for (; t < full; t++) a0 = STEP(a0, vld1q_s8(row + 16 * t), vld1q_s8(ql + 16 * t));                          \
        if (dims % 16) a1 = STEP(a1, kb_tail16(row, dims), vld1q_s8(ql + 16 * full));                                \
        return vaddq_s32(a0, a1);                                                                                    \
    }                                                                                                                \
    TARGET static size_t NAME##_one(const int8_t *ql, uint32_t query, size_t dims, const int8_t *rows,               \
                                    size_t stride, size_t n, const float *scales, size_t qstr, float threshold,      \
                                    kb_candidate *out) {                                                             \
        const size_t full = dims / 16;                                                                               \
        const float32x4_t th = vdupq_n_f32(threshold);                                                               \
        size_t count = 0, r0 = 0;                                                                                    \
        for (; r0 + KB_NEON_ROWS <= n; r0 += KB_NEON_ROWS) {                                                         \
            int32x4_t acc[KB_NEON_ROWS];                                                                             \
            for (int r = 0; r < KB_NEON_ROWS; r++) acc[r] = NAME##_row(ql, rows + (r0 + r) * stride, full, dims);    \
            /* lane l of d0 (d1): row l's (4 + l's) dot */                                                           \
            const int32x4_t d0 = vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));                \
            const int32x4_t d1 = vpaddq_s32(vpaddq_s32(acc[4], acc[5]), vpaddq_s32(acc[6], acc[7]));                \
            float sc[KB_NEON_ROWS];                                                                                  \
            for (int r = 0; r < KB_NEON_ROWS; r++) sc[r] = kb_scale_at(scales, qstr, r0 + r);                        \
            const float32x4_t v0 = vmulq_f32(vld1q_f32(sc), vcvtq_f32_s32(d0));                                      \
            const float32x4_t v1 = vmulq_f32(vld1q_f32(sc + 4), vcvtq_f32_s32(d1));                                  \
            const unsigned hit = kb_mask4(vcgeq_f32(v0, th)) | kb_mask4(vcgeq_f32(v1, th)) << 4;                     \
            if (hit) {                                                                                               \
                float vs[KB_NEON_ROWS];                                                                              \
                vst1q_f32(vs, v0);                                                                                   \
                vst1q_f32(vs + 4, v1);                                                                               \
                count += kb_emit_lanes(hit, vs, (uint32_t)r0, 1, query, 0, out + count);                                   \
            }                                                                                                        \
        }                                                                                                            \
        for (; r0 < n; r0++) { /* the last n % KB_NEON_ROWS rows, one at a time */                                   \
            const int32_t dot = vaddvq_s32(NAME##_row(ql, rows + r0 * stride, full, dims));                          \
            const float v = kb_scale_at(scales, qstr, r0) * (float)dot;                                              \
            if (v >= threshold) out[count++] = (kb_candidate){(uint32_t)r0, query, v};                               \
        }                                                                                                            \
        return count;                                                                                                \
    }                                                                                                                \
    TARGET static size_t NAME##_one_all(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,        \
                                        const float *scales, const int32_t *sums, size_t qstr,                       \
                                        const float *thresholds, kb_candidate *out) {                                \
        (void)sums;                                                                                                  \
        size_t count = 0;                                                                                            \
        for (size_t j = 0; j < b->nq; j++)                                                                           \
            count += NAME##_one((const int8_t *)b->layout + j * b->steps * 16, (uint32_t)j, b->dims, rows, stride,   \
                                n, scales, qstr, thresholds[j], out + count);                                        \
        return count;                                                                                                \
    }

KB_DEFINE_NEON_ONE(kb_sdot, KB_DOTPROD_T, kb_sdot_step)
KB_DEFINE_NEON_ONE(kb_smull, , kb_smull_step)

// ==== packed: sdot by element ===============================================================
//
// Layout: group g of 4 queries, vector t of 16 dimensions, part u < 4: 16 bytes at
// ((g·steps + t)·4 + u)·16, lane l (4 bytes) = query 4g+l's bytes 4u..4u+3 of vector t
// (kb_layout_byte). vdotq_laneq_s32(acc, part u, row vector, u) adds row bytes 4u..4u+3 times
// each of the 4 queries' into its lane: after the 4 parts, lane l has advanced query 4g+l by 16
// dimensions.

#define KB_SR 4  // rows per packed sdot tile
#define KB_SG 4  // most query groups per packed sdot tile (R·G ≤ 16 accumulators, 4 row vectors)

// acc[r][g] += 16 dimensions of row vector rv[r] against group g's 4 parts at qt + g·gstride.
KB_DOTPROD_T KB_INLINE void kb_sdot_packed_step(int32x4_t acc[KB_SR][KB_SG], const int8x16_t *rv, const int8_t *qt,
                                                size_t gstride, const int R, const int G) {
    for (int g = 0; g < G; g++) {
        const int8_t *qg = qt + g * gstride;
#define KB_PART(U)                                                                                                   \
        {                                                                                                            \
            const int8x16_t qv = vld1q_s8(qg + 16 * (U));                                                            \
            for (int r = 0; r < R; r++) acc[r][g] = vdotq_laneq_s32(acc[r][g], qv, rv[r], U);                        \
        }
        KB_PART(0) KB_PART(1) KB_PART(2) KB_PART(3)
#undef KB_PART
    }
}

// R rows × G query groups over all dimensions, then the threshold test. R and G are constants
// at every call site (the switch in kb_sdot_packed), so the loops unroll and the accumulators
// stay in registers.
KB_DOTPROD_T KB_INLINE size_t kb_sdot_packed_tile(const kb_query_batch *b, const int8_t *rows, size_t stride,
                                                  size_t r0, size_t g0, const int R, const int G,
                                                  const float *scales, size_t qstr, const float *thresholds,
                                                  kb_candidate *out) {
    int32x4_t acc[KB_SR][KB_SG];
    for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) acc[r][g] = vdupq_n_s32(0);
    const size_t dims = b->dims, full = dims / 16, steps = b->steps, gstride = steps * 64;
    const int8_t *qp = (const int8_t *)b->layout + g0 * gstride;
    const int8_t *rp[KB_SR];
    for (int r = 0; r < R; r++) rp[r] = rows + (r0 + r) * stride;
    int8x16_t rv[KB_SR];
    for (size_t t = 0; t < full; t++) {
        for (int r = 0; r < R; r++) rv[r] = vld1q_s8(rp[r] + 16 * t);
        kb_sdot_packed_step(acc, rv, qp + t * 64, gstride, R, G);
    }
    if (full < steps) {
        for (int r = 0; r < R; r++) rv[r] = kb_tail16(rp[r], dims);
        kb_sdot_packed_step(acc, rv, qp + full * 64, gstride, R, G);
    }
    size_t count = 0;
    for (int r = 0; r < R; r++) {
        const float s = kb_scale_at(scales, qstr, r0 + r);
        for (int g = 0; g < G; g++) {
            const size_t j0 = (g0 + g) * 4, live = b->nq - j0 < 4 ? b->nq - j0 : 4;
            count += kb_emit_queries4(acc[r][g], s, thresholds, j0, live, (uint32_t)(r0 + r), out + count);
        }
    }
    return count;
}

// The packed drivers: rows in sub-blocks of KB_SUB that stay in L1 while every chunk of query
// groups passes over them; the groups in chunks of at most GMAX, as even as possible (5 groups
// with GMAX 4: 2+3, not 4+1). TILE(R, G) is called with constants only.
#define KB_PACKED_DRIVER(NGROUPS, GMAX, RMAX, TILE)                                                                  \
    size_t count = 0;                                                                                                \
    const size_t chunks = ((NGROUPS) + (GMAX) - 1) / (GMAX);                                                         \
    for (size_t s0 = 0; s0 < n; s0 += KB_SUB) {                                                                      \
        const size_t se = n - s0 < KB_SUB ? n : s0 + KB_SUB;                                                         \
        for (size_t c = 0; c < chunks; c++) {                                                                        \
            const size_t g0 = (NGROUPS) * c / chunks, G = (NGROUPS) * (c + 1) / chunks - g0;                         \
            size_t r = s0;                                                                                           \
            for (; r + (RMAX) <= se; r += (RMAX)) KB_SWITCH_G(G, RMAX, TILE)                                         \
            for (; r < se; r++) KB_SWITCH_G(G, 1, TILE)                                                              \
        }                                                                                                            \
    }                                                                                                                \
    return count;

#define KB_SWITCH_G(G, RR, TILE)                                                                                     \
    switch (G) {                                                                                                     \
    case 1: count += TILE(RR, 1); break;                                                                             \
    case 2: count += TILE(RR, 2); break;                                                                             \
    case 3: count += TILE(RR, 3); break;                                                                             \
    default: count += TILE(RR, 4); break;                                                                            \
    }

KB_DOTPROD_T static size_t kb_sdot_packed(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                                          const float *scales, const int32_t *sums, size_t qstr,
                                          const float *thresholds, kb_candidate *out) {
    (void)sums;
#define KB_TILE(RR, GG) kb_sdot_packed_tile(b, rows, stride, r, g0, RR, GG, scales, qstr, thresholds, out + count)
    KB_PACKED_DRIVER(b->groups, KB_SG, KB_SR, KB_TILE)
#undef KB_TILE
}

// ==== packed: i8mm (smmla) ==================================================================
//
// Layout: pair p of queries (2p, 2p+1), vector t of 16 dimensions, half h < 2: 16 bytes at
// ((p·steps + t)·2 + h)·16 = query 2p's bytes 8h..8h+7 of vector t, then query 2p+1's
// (kb_layout_byte). A row pair's vectors zipped by 64-bit halves give [row a's bytes 8h..8h+7,
// row b's]; smmla of that (2×8) by the query half (8×2, stored as its transpose) adds lane
// 2i + j = row i · query j over those 8 dimensions.

#define KB_MR 4  // row pairs per packed i8mm tile (8 rows)
#define KB_MQ 4  // most query pairs per packed i8mm tile (R·Q ≤ 16 accumulators, 8 row vectors)

// acc[i][p] += 16 dimensions of row pair i (ra[2i], ra[2i+1]) against query pair p's halves at
// qt + p·pstride.
KB_I8MM_T KB_INLINE void kb_i8mm_step(int32x4_t acc[KB_MR][KB_MQ], const int8x16_t *ra, const int8_t *qt,
                                      size_t pstride, const int RP, const int QP) {
    int8x16_t lo[KB_MR], hi[KB_MR];
    for (int i = 0; i < RP; i++) {
        const int64x2_t a = vreinterpretq_s64_s8(ra[2 * i]), c = vreinterpretq_s64_s8(ra[2 * i + 1]);
        lo[i] = vreinterpretq_s8_s64(vzip1q_s64(a, c));
        hi[i] = vreinterpretq_s8_s64(vzip2q_s64(a, c));
    }
    for (int p = 0; p < QP; p++) {
        const int8x16_t q0 = vld1q_s8(qt + p * pstride), q1 = vld1q_s8(qt + p * pstride + 16);
        for (int i = 0; i < RP; i++) {
            acc[i][p] = vmmlaq_s32(acc[i][p], lo[i], q0);
            acc[i][p] = vmmlaq_s32(acc[i][p], hi[i], q1);
        }
    }
}

// RP row pairs from r0 × QP query pairs from p0 over all dimensions, then the threshold test.
// Rows at or past n (the odd last row's partner) are read as row r0 again and never emitted.
KB_I8MM_T KB_INLINE size_t kb_i8mm_tile(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                                        size_t r0, size_t p0, const int RP, const int QP, const float *scales,
                                        size_t qstr, const float *thresholds, kb_candidate *out) {
    int32x4_t acc[KB_MR][KB_MQ];
    for (int i = 0; i < RP; i++)
        for (int p = 0; p < QP; p++) acc[i][p] = vdupq_n_s32(0);
    const size_t dims = b->dims, full = dims / 16, steps = b->steps, pstride = steps * 32;
    const int8_t *qp = (const int8_t *)b->layout + p0 * pstride;
    const int8_t *rp[2 * KB_MR];
    for (int r = 0; r < 2 * RP; r++) rp[r] = rows + (r0 + r < n ? r0 + r : r0) * stride;
    int8x16_t ra[2 * KB_MR];
    for (size_t t = 0; t < full; t++) {
        for (int r = 0; r < 2 * RP; r++) ra[r] = vld1q_s8(rp[r] + 16 * t);
        kb_i8mm_step(acc, ra, qp + t * 32, pstride, RP, QP);
    }
    if (full < steps) {
        for (int r = 0; r < 2 * RP; r++) ra[r] = kb_tail16(rp[r], dims);
        kb_i8mm_step(acc, ra, qp + full * 32, pstride, RP, QP);
    }
    size_t count = 0;
    for (int i = 0; i < RP; i++) {
        const size_t ra0 = r0 + 2 * i;
        const int second = ra0 + 1 < n;
        const float s0 = kb_scale_at(scales, qstr, ra0), s1 = second ? kb_scale_at(scales, qstr, ra0 + 1) : s0;
        const float32x4_t sc = vcombine_f32(vdup_n_f32(s0), vdup_n_f32(s1));
        for (int p = 0; p < QP; p++) {
            const size_t j0 = (p0 + p) * 2;
            const int q1 = j0 + 1 < b->nq;
            const float t2[2] = {thresholds[j0], q1 ? thresholds[j0 + 1] : 0.0f};
            const float32x2_t th2 = vld1_f32(t2);
            const float32x4_t v = vmulq_f32(sc, vcvtq_f32_s32(acc[i][p]));
            unsigned hit = kb_mask4(vcgeq_f32(v, vcombine_f32(th2, th2)));
            if (!q1) hit &= 0x5u;      // lanes 1 and 3: query j0 + 1
            if (!second) hit &= 0x3u;  // lanes 2 and 3: row ra0 + 1
            if (!hit) continue;
            float vs[4];
            vst1q_f32(vs, v);
            while (hit) {
                const uint32_t l = (uint32_t)__builtin_ctz(hit);
                hit &= hit - 1;
                out[count++] = (kb_candidate){(uint32_t)(ra0 + (l >> 1)), (uint32_t)(j0 + (l & 1)), vs[l]};
            }
        }
    }
    return count;
}

KB_I8MM_T static size_t kb_i8mm_packed(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                                       const float *scales, const int32_t *sums, size_t qstr, const float *thresholds,
                                       kb_candidate *out) {
    (void)sums;
    // Rows two at a time: full tiles of KB_MR pairs, then single pairs (the last maybe odd).
#define KB_TILE(RR, GG) kb_i8mm_tile(b, rows, stride, n, r, g0, RR, GG, scales, qstr, thresholds, out + count)
    size_t count = 0;
    const size_t chunks = (b->groups + KB_MQ - 1) / KB_MQ;
    for (size_t s0 = 0; s0 < n; s0 += KB_SUB) {
        const size_t se = n - s0 < KB_SUB ? n : s0 + KB_SUB;
        for (size_t c = 0; c < chunks; c++) {
            const size_t g0 = b->groups * c / chunks, G = b->groups * (c + 1) / chunks - g0;
            size_t r = s0;
            for (; r + 2 * KB_MR <= se; r += 2 * KB_MR) KB_SWITCH_G(G, KB_MR, KB_TILE)
            for (; r < se; r += 2) KB_SWITCH_G(G, 1, KB_TILE)
        }
    }
    return count;
#undef KB_TILE
}

// ==== packed: vmull/vpadal (no dotprod) =====================================================
//
// Layout: the single-query tiles' (query j at j·steps·16), with the queries padded with zeros
// to a multiple of 4. Each row vector meets each query vector once (kb_smull_step); the 4
// accumulators of a row and a group of 4 queries are reduced by a vpaddq_s32 tree at the end.

#define KB_LR 4  // rows per packed vmull tile, against one group of 4 queries: 16 accumulators
                 // (2 rows × 8 queries spill: the compiler hoists the 8 query loads)

// acc[r][q] += 16 dimensions of row vector rv[r] against query q's vector at qt + q·qstride.
KB_INLINE void kb_smull_packed_step(int32x4_t acc[KB_LR][4], const int8x16_t *rv, const int8_t *qt, size_t qstride,
                                    const int R) {
    for (int q = 0; q < 4; q++) {
        const int8x16_t qv = vld1q_s8(qt + q * qstride);
        for (int r = 0; r < R; r++) acc[r][q] = kb_smull_step(acc[r][q], rv[r], qv);
    }
}

// R rows × query group g over all dimensions, then the threshold test; R is a constant at every
// call site.
KB_INLINE size_t kb_smull_packed_tile(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t r0,
                                      size_t g, const int R, const float *scales, size_t qstr,
                                      const float *thresholds, kb_candidate *out) {
    int32x4_t acc[KB_LR][4];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_s32(0);
    const size_t dims = b->dims, full = dims / 16, steps = b->steps, qstride = steps * 16;
    const int8_t *qp = (const int8_t *)b->layout + g * 4 * qstride;
    const int8_t *rp[KB_LR];
    for (int r = 0; r < R; r++) rp[r] = rows + (r0 + r) * stride;
    int8x16_t rv[KB_LR];
    for (size_t t = 0; t < full; t++) {
        for (int r = 0; r < R; r++) rv[r] = vld1q_s8(rp[r] + 16 * t);
        kb_smull_packed_step(acc, rv, qp + t * 16, qstride, R);
    }
    if (full < steps) {
        for (int r = 0; r < R; r++) rv[r] = kb_tail16(rp[r], dims);
        kb_smull_packed_step(acc, rv, qp + full * 16, qstride, R);
    }
    size_t count = 0;
    const size_t j0 = g * 4, live = b->nq - j0 < 4 ? b->nq - j0 : 4;
    for (int r = 0; r < R; r++) {
        const int32x4_t dots = vpaddq_s32(vpaddq_s32(acc[r][0], acc[r][1]), vpaddq_s32(acc[r][2], acc[r][3]));
        count += kb_emit_queries4(dots, kb_scale_at(scales, qstr, r0 + r), thresholds, j0, live, (uint32_t)(r0 + r),
                                  out + count);
    }
    return count;
}

// Rows in sub-blocks of KB_SUB that stay in L1 while every query group passes over them.
static size_t kb_smull_packed(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                              const float *scales, const int32_t *sums, size_t qstr, const float *thresholds,
                              kb_candidate *out) {
    (void)sums;
    size_t count = 0;
    for (size_t s0 = 0; s0 < n; s0 += KB_SUB) {
        const size_t se = n - s0 < KB_SUB ? n : s0 + KB_SUB;
        for (size_t g = 0; g < b->groups; g++) {
            size_t r = s0;
            for (; r + KB_LR <= se; r += KB_LR)
                count += kb_smull_packed_tile(b, rows, stride, r, g, KB_LR, scales, qstr, thresholds, out + count);
            for (; r < se; r++)
                count += kb_smull_packed_tile(b, rows, stride, r, g, 1, scales, qstr, thresholds, out + count);
        }
    }
    return count;
}

// ==== preparation ===========================================================================

/// The query-major layout of the single-query tiles and the vmull packed kernel: `padded` ≥ nq
/// queries (the extra ones zero) of b->steps vectors each.
static int8_t *kb_layout_rows(const kb_query_batch *b, size_t padded) {
    int8_t *p = kb_scan_alloc(padded * b->steps * 16 + 64);
    if (!p)
        return NULL;
    for (size_t j = 0; j < b->nq; j++)
        for (size_t t = 0; t < b->steps; t++)
            for (size_t k = 0; k < 16; k++) p[(j * b->steps + t) * 16 + k] = kb_layout_byte(b, j, t, k);
    return p;
}

int kb_scan_prepare_neon(kb_query_batch *b) {
    if (b->kernel != KB_DOT_NEON) return 1;
    const size_t nq = b->nq, dims = b->dims, steps = dims / 16 + (dims % 16 != 0);
    const int dotprod = kb_arm_has_dotprod();
    b->steps = steps;
    if (nq < KB_PACKED_MIN_QUERIES) {
        if (!(b->layout = kb_layout_rows(b, nq))) return 0;
        b->scan = dotprod ? kb_sdot_one_all : kb_smull_one_all;
        b->path = dotprod ? "neon sdot tile8" : "neon smull tile8";
    } else if (kb_arm_has_i8mm()) {
        b->groups = (nq + 1) / 2;  // query pairs
        int8_t *p = kb_scan_alloc(b->groups * steps * 32 + 64);
        if (!p) return 0;
        for (size_t q = 0; q < b->groups; q++)
            for (size_t t = 0; t < steps; t++)
                for (size_t h = 0; h < 2; h++)
                    for (size_t k = 0; k < 16; k++)
                        p[((q * steps + t) * 2 + h) * 16 + k] = kb_layout_byte(b, 2 * q + k / 8, t, 8 * h + k % 8);
        b->layout = p;
        b->scan = kb_i8mm_packed;
        b->path = "neon i8mm packed2x8";
    } else if (dotprod) {
        b->groups = (nq + 3) / 4;
        int8_t *p = kb_scan_alloc(b->groups * steps * 64 + 64);
        if (!p) return 0;
        for (size_t g = 0; g < b->groups; g++)
            for (size_t t = 0; t < steps; t++)
                for (size_t u = 0; u < 4; u++)
                    for (size_t k = 0; k < 16; k++)
                        p[((g * steps + t) * 4 + u) * 16 + k] = kb_layout_byte(b, 4 * g + k / 4, t, 4 * u + k % 4);
        b->layout = p;
        b->scan = kb_sdot_packed;
        b->path = "neon sdot packed4x4";
    } else {
        b->groups = (nq + 3) / 4;
        if (!(b->layout = kb_layout_rows(b, 4 * b->groups))) return 0;
        b->scan = kb_smull_packed;
        b->path = "neon smull packed";
    }
    return 1;
}
#else
int kb_scan_prepare_neon(kb_query_batch *b) {
    (void)b;
    return 1;
}
#endif
