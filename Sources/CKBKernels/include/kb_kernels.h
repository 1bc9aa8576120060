// kbindex's hot element-wise kernels, in C with per-ISA variants and one dispatch point.
//
// Swift compiles SIMD types for the baseline x86-64 ISA (SSE2) unless unsafe flags are set,
// and the encoder's softmax and GELU ran at a fraction of AVX2 speed there (measured in
// Benchmarks/: softmax alone took 38% of the encoder's time). Each kernel exists as
//   kb_<name>_scalar   the plain reference every other variant is tested against,
//   kb_<name>_avx2     x86-64 AVX2 + FMA, 8 lanes,
//   kb_<name>_avx512   x86-64 AVX-512F, 16 lanes,
// and kb_<name>, which calls the best variant this CPU supports (chosen once, at first use).
// The polynomial approximations are the same in every variant; results differ only by
// fused multiply-add rounding (a few ulp).
#ifndef KB_KERNELS_H
#define KB_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets a variant may need.
typedef enum { KB_ISA_SCALAR = 0, KB_ISA_AVX2 = 1, KB_ISA_AVX512 = 2 } kb_isa;

/// The best ISA this CPU supports (and the one kb_* dispatches to), unless the environment
/// variable KBINDEX_ISA is set to "scalar", "avx2" or "avx512" to force a lower one.
kb_isa kb_active_isa(void);
/// Whether this CPU can run variants of `isa`.
int kb_cpu_supports(kb_isa isa);
/// "scalar", "avx2" or "avx512".
const char *kb_isa_name(kb_isa isa);

/// For each of `rows` rows of `n` floats (row stride `ld`): s = softmax(s), max-subtracted.
void kb_softmax_rows(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_scalar(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_avx2(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_avx512(float *s, size_t rows, size_t n, size_t ld);

/// In place over a rows × cols row-major matrix: m = gelu(m + bias[col]) with the exact
/// erf form gelu(x) = x/2 · (1 + erf(x/√2)); erf is accurate to ~2e-7 absolute.
void kb_bias_gelu(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_scalar(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_avx2(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_avx512(float *m, size_t rows, size_t cols, const float *bias);

/// e^x (relative error ≲ 2 ulp on [-87, 88]; ~1e-38 below) and erf(x), one value at a time:
/// the scalar twins of the vector code, exported for tests.
float kb_exp_scalar(float x);
float kb_erf_scalar(float x);

// ---- int8 dot products (the index scan) ------------------------------------------------
//
// Exact int8 · int8 → int32 dot products of one or several queries against rows of a matrix,
// with their own kernel choice (separate from kb_active_isa: the scan's best kernel depends on
// VNNI/dotprod, not on the float kernels' ISA). Variants:
//   kb_i8_dot_rows_scalar      the plain reference, always compiled,
//   kb_i8_dot_rows_avx2        x86-64 AVX2: the abs/sign trick into vpmaddubsw, which cannot
//                              saturate because no input is −128 (see dot.c),
//   kb_i8_dot_rows_avx512vnni  x86-64 AVX-512 VNNI: vpdpbusd on (row + 128) as the unsigned side,
//                              minus 128·Σq once per query,
//   kb_i8_dot_rows_neon        AArch64: sdot (vdotq_s32) when the CPU has dotprod, else
//                              vmull_s8 + vpadalq_s16.
// Every name exists on every platform; a variant of another architecture (or one this CPU
// cannot run) is not selected by dispatch, and kb_i8_dot_rows_with falls back to scalar for it.
// All variants return identical integers (tested exhaustively against the scalar twin).
//
// Preconditions shared by every function below:
//   - q and rows hold values in [-127, 127] (never −128: the AVX2 trick needs |x| ≤ 127);
//   - 0 ≤ dims ≤ 131072, so |Σ q·r| ≤ 127²·131072 < 2³¹ fits an int32 exactly;
//   - stride ≥ dims (bytes between row starts); no alignment is required of any pointer;
//   - scores does not overlap the inputs. n == 0 or nq == 0 writes nothing; dims == 0 writes 0s.
// Complexity: O(n · dims) per query; rows are read once per call (from memory) however many
// queries there are; no allocation, no locks after the first call.

/// The dot-product kernels. Values are stable (usable as ids across calls).
typedef enum {
    KB_DOT_SCALAR = 0,
    KB_DOT_AVX2 = 1,
    KB_DOT_AVX512VNNI = 2,
    KB_DOT_NEON = 3,
} kb_dot_kernel_id;

/// The kernel kb_i8_dot_rows / kb_i8_dot_rows_batch dispatch to, chosen once (thread-safe):
/// the best this CPU runs, unless the environment variable KBINDEX_KERNEL names another one
/// ("scalar", "avx2", "avx512vnni", "neon") that this CPU supports. A forced kernel the CPU
/// cannot run (or an unknown name) falls back to the best available.
kb_dot_kernel_id kb_dot_kernel(void);
/// The name of kb_dot_kernel(): the kernel actually used, not the one asked for.
const char *kb_dot_kernel_name(void);
/// "scalar", "avx2", "avx512vnni" or "neon" ("unknown" for any other value).
const char *kb_dot_kernel_id_name(kb_dot_kernel_id k);
/// Whether this CPU (and OS) can run kernel `k`.
int kb_dot_kernel_supported(kb_dot_kernel_id k);
/// The selection rule of kb_dot_kernel() applied to `forced` (a KBINDEX_KERNEL value, or NULL
/// for none), without touching the cached choice: for tests and diagnostics.
kb_dot_kernel_id kb_dot_kernel_select(const char *forced);

/// scores[r] = Σ_{i<dims} q[i]·rows[r·stride + i] for r < n. O(n·dims).
void kb_i8_dot_rows(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_scalar(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_avx2(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_avx512vnni(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_neon(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);

/// For nq queries at qs + j·qstride (any qstride; queries are only read, so they may overlap):
/// scores[j·n + r] = Σ_{i<dims} q_j[i]·row_r[i], scores holding nq·n values.
/// Each row is loaded once per call and multiplied with a block of queries held in registers,
/// so a batch costs about one pass over the rows. O(nq·n·dims) arithmetic, O(n·dims) row reads.
void kb_i8_dot_rows_batch(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                          size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_batch_scalar(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                                 size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_batch_avx2(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                               size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_batch_avx512vnni(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows,
                                     size_t stride, size_t dims, size_t n, int32_t *scores);
void kb_i8_dot_rows_batch_neon(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                               size_t dims, size_t n, int32_t *scores);

/// The same, through kernel `k` explicitly (scalar when this CPU cannot run `k`).
void kb_i8_dot_rows_with(kb_dot_kernel_id k, const int8_t *q, const int8_t *rows, size_t stride, size_t dims,
                         size_t n, int32_t *scores);
void kb_i8_dot_rows_batch_with(kb_dot_kernel_id k, const int8_t *qs, size_t qstride, size_t nq,
                               const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);


// ---- the index scan: dot products fused with a top-k threshold -------------------------------
//
// A batch of queries prepared once (copied, and for AVX-512 VNNI with 8 or more queries laid
// out for a register-tiled kernel, see scan.c), then scanned against blocks of rows. For each
// row r < n and query j, with v = scale_r · (float)dot(q_j, row_r) computed in float exactly as
// written (int32 → float rounding to nearest, one float multiply), the pair is a candidate when
// v >= thresholds[j]. Callers keep thresholds[j] at the score of the worst hit in query j's
// top-k (−∞ until it holds k), so rows that cannot enter it never leave the kernel.
// Every kernel emits the same set of candidates with the same v (order may differ).

/// One (row, query) pair that passed its query's threshold; `score` = scale_row · dot.
typedef struct {
    uint32_t row;
    uint32_t query;
    float score;
} kb_candidate;

typedef struct kb_query_batch kb_query_batch;

/// Copies nq queries of `dims` int8 values (query j at qs + j·qstride, values in [-127, 127],
/// dims ≤ 131072) for scanning with kernel `kernel` (scalar when this CPU cannot run it).
/// NULL when memory is short. O(nq · dims).
kb_query_batch *kb_query_batch_new(kb_dot_kernel_id kernel, const int8_t *qs, size_t qstride, size_t nq,
                                   size_t dims);
void kb_query_batch_free(kb_query_batch *batch);
size_t kb_query_batch_count(const kb_query_batch *batch);
/// The kernel the batch actually runs with.
kb_dot_kernel_id kb_query_batch_kernel(const kb_query_batch *batch);

/// Scores rows 0..<n (row r at rows + r·stride, stride ≥ dims, values in [-127, 127]) against
/// every query of `batch` and writes each candidate to `out`; returns how many. Row r's scale
/// is the float, and its Σ of values the int32, at byte offset r·quant_stride from `scales`
/// and `sums` (a segment's QUANT records). Kernels may use the sums instead of recomputing
/// them (VNNI's unsigned × signed correction): a wrong sum gives wrong scores, never a wrong
/// memory access. `thresholds` holds one float per query.
/// Precondition: `out` has room for n · nq candidates (the most there can be).
/// The row indices in `out` are relative to `rows`. Thread-safe for concurrent calls sharing
/// a batch (it is only read). No allocation. O(n · nq · dims).
size_t kb_i8_scan(const kb_query_batch *batch, const int8_t *rows, size_t stride, size_t n, const float *scales,
                  const int32_t *sums, size_t quant_stride, const float *thresholds, kb_candidate *out);

#ifdef __cplusplus
}
#endif
#endif
