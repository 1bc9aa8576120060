// The index scan: int8 dot products of a batch of queries against a block of rows, fused with
// the first step of top-k selection (a per-query score threshold), so only rows that can still
// enter a query's top-k ever leave the kernel. See include/kb_kernels.h for the contract.
//
// This file owns the query batch and the generic path; the fast paths live per ISA:
//   - scan_x86.c: AMX, AVX-512 VNNI, AVX-VNNI and AVX2, each with a single-query row tile (one
//     query at a time, several rows per tile, their dots reduced together and compared with the
//     threshold in vector registers) and, for 8 or more queries, a packed register-tiled kernel
//     (queries laid out once at kb_query_batch_new so that one instruction advances 8 or 16
//     queries by 4 dimensions of one row: no horizontal reductions in the inner loop; AMX
//     multiplies 16 × 64 tiles of rows by 64 × 16 tiles of queries);
//   - scan_neon.c: the same two shapes with sdot, smmla (i8mm) or vmull, per the CPU.
// The generic path (scalar, and any kernel without a fast path): blocks of KB_SUB rows scored
// with kb_i8_dot_rows_batch_with, one group of queries at a time while the block sits in
// L1/L2, then compared with the thresholds in scalar code. Every path emits the same
// candidates with the same scores (tests compare each with the scalar twin).
#include "scan_impl.h"
#include <stdlib.h>
#include <string.h>

#define KB_QGROUP 16  // queries per generic group (scores buffer 16 × 64 int32 = 4 KiB)

void *kb_scan_alloc(size_t bytes) {
    const size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded ? rounded : 64);
    return p;
}

static size_t kb_scan_generic(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n,
                              const float *scales, const int32_t *sums, size_t quant_stride, const float *thresholds,
                              kb_candidate *out) {
    (void)sums;
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
                const float s = kb_scale_at(scales, quant_stride, r0 + r);
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

static const char *kb_generic_path_name(kb_dot_kernel_id k) {
    switch (k) {
    case KB_DOT_AVX2: return "avx2 generic";
    case KB_DOT_AVX512VNNI: return "avx512vnni generic";
    case KB_DOT_NEON: return "neon generic";
    case KB_DOT_AVXVNNI: return "avxvnni generic";
    case KB_DOT_AMX: return "amx generic";
    default: return "scalar generic";
    }
}

static kb_query_batch *kb_query_batch_make(kb_dot_kernel_id kernel, const int8_t *qs, size_t qstride, size_t nq,
                                          size_t dims, int fast) {
    if (!kb_dot_kernel_supported(kernel)) kernel = KB_DOT_SCALAR;
    kb_query_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->kernel = kernel;
    b->nq = nq;
    b->dims = dims;
    b->queries = malloc(nq * dims + 1);
    if (!b->queries) { free(b); return NULL; }
    for (size_t j = 0; j < nq; j++) memcpy(b->queries + j * dims, qs + j * qstride, dims);
    b->path = kb_generic_path_name(kernel);
    if (fast && nq > 0 && (!kb_scan_prepare_x86(b) || !kb_scan_prepare_neon(b))) {
        kb_query_batch_free(b);
        return NULL;
    }
    return b;
}

kb_query_batch *kb_query_batch_new(kb_dot_kernel_id kernel, const int8_t *qs, size_t qstride, size_t nq,
                                   size_t dims) {
    return kb_query_batch_make(kernel, qs, qstride, nq, dims, 1);
}

kb_query_batch *kb_query_batch_new_generic(kb_dot_kernel_id kernel, const int8_t *qs, size_t qstride, size_t nq,
                                           size_t dims) {
    return kb_query_batch_make(kernel, qs, qstride, nq, dims, 0);
}

void kb_query_batch_free(kb_query_batch *b) {
    if (!b) return;
    free(b->layout);
    free(b->queries);
    free(b);
}

size_t kb_query_batch_count(const kb_query_batch *b) { return b->nq; }
kb_dot_kernel_id kb_query_batch_kernel(const kb_query_batch *b) { return b->kernel; }
const char *kb_query_batch_path(const kb_query_batch *b) { return b->path; }

size_t kb_i8_scan(const kb_query_batch *b, const int8_t *rows, size_t stride, size_t n, const float *scales,
                  const int32_t *sums, size_t quant_stride, const float *thresholds, kb_candidate *out) {
    if (n == 0 || b->nq == 0) return 0;
    // The fast paths gather QUANT fields with 32-bit lane offsets (lane · quant_stride); a
    // stride past KB_MAX_FAST_QUANT_STRIDE (never a segment's: its records are 8 bytes) takes
    // the generic path, whose offsets are size_t.
    const kb_scan_fn scan = b->scan && quant_stride <= KB_MAX_FAST_QUANT_STRIDE ? b->scan : kb_scan_generic;
    return scan(b, rows, stride, n, scales, sums, quant_stride, thresholds, out);
}
