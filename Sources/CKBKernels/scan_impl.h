// What scan.c shares with the per-ISA scan files (scan_x86.c, scan_neon.c). Private to
// CKBKernels.
//
// A query batch always holds its queries as given (`queries`, nq × dims contiguous). An ISA's
// prepare hook may pick a faster path for the batch's kernel: it sets `scan` (the path's entry
// point), `path` (its name for reports) and, when the path wants the queries in another form,
// `layout` (its own allocation, freed with free()). A batch whose hook sets nothing runs the
// generic blocked path.
#ifndef KB_SCAN_IMPL_H
#define KB_SCAN_IMPL_H
#include "kb_kernels.h"
#include <string.h>

typedef size_t (*kb_scan_fn)(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                             const float *scales, const int32_t *sums, size_t quant_stride,
                             const float *thresholds, kb_candidate *out);

struct kb_query_batch {
    kb_dot_kernel_id kernel;
    size_t nq, dims;
    int8_t *queries;   // nq × dims, contiguous (every path may read them)
    void *layout;      // NULL, or the path's own copy of the queries (64-byte aligned)
    size_t groups;     // path-specific shape of `layout` (e.g. query groups)
    size_t steps;      // path-specific shape of `layout` (e.g. dimension steps)
    size_t second;     // byte offset in `layout` of a path's second layout (0: none)
    kb_scan_fn scan;   // NULL: the generic path
    const char *path;  // static string, see kb_query_batch_path
};

/// Batches of at least this many queries take the packed (register-tiled) paths; fewer
/// queries take the single-query tiles, one query at a time.
#define KB_PACKED_MIN_QUERIES 8
/// Rows per sub-block that stays in L1/L2 while every query (group) passes over it.
#define KB_SUB 64
/// The largest quant_stride the fast paths take (their gathers use int32 offsets lane ·
/// quant_stride, lane < 16); larger strides run the generic path.
#define KB_MAX_FAST_QUANT_STRIDE ((size_t)1 << 24)
/// Bytes ahead of the row being read for software prefetches (a hint: never faults).
#define KB_SCAN_PREFETCH 4096

/// Row r's float at byte offset r·stride from `base` (a QUANT record's field).
static inline float kb_scale_at(const float *base, size_t stride, size_t r) {
    float s;
    memcpy(&s, (const char *)base + r * stride, sizeof s);
    return s;
}

/// Row r's int32 at byte offset r·stride from `base`.
static inline int32_t kb_sum_at(const int32_t *base, size_t stride, size_t r) {
    int32_t s;
    memcpy(&s, (const char *)base + r * stride, sizeof s);
    return s;
}

/// Writes the lanes of `vs` set in `hit` as candidates: lane l is row row0 + l·row_step of
/// query query0 + l·query_step (a tile's rows for one query, or one row's queries). Returns how
/// many. Every path's emission ends here.
static inline __attribute__((always_inline)) size_t kb_emit_lanes(uint32_t hit, const float *vs, uint32_t row0,
                                                                  uint32_t row_step, uint32_t query0,
                                                                  uint32_t query_step, kb_candidate *out) {
    size_t count = 0;
    while (hit) {
        const uint32_t l = (uint32_t)__builtin_ctz(hit);
        hit &= hit - 1;
        out[count++] = (kb_candidate){row0 + l * row_step, query0 + l * query_step, vs[l]};
    }
    return count;
}

/// A zero-filled, 64-byte aligned allocation of at least `bytes` bytes (rounded up to 64), or
/// NULL when memory is short.
void *kb_scan_alloc(size_t bytes);

/// The per-ISA hooks: called by kb_query_batch_new after `queries` is filled. Return 0 only
/// when memory is short (the batch is then freed and NULL returned); leaving `scan` NULL is
/// fine. Each is defined on every platform (a no-op off its architecture).
int kb_scan_prepare_x86(kb_query_batch *b);
int kb_scan_prepare_neon(kb_query_batch *b);

#endif
