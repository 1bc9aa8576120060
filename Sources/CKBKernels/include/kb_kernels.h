// kbindex's hot element-wise kernels, in C with per-ISA variants and one dispatch point.
//
// Swift compiles SIMD types for the baseline x86-64 ISA (SSE2) unless unsafe flags are set,
// and the encoder's softmax and GELU ran at a fraction of AVX2 speed there (measured in
// Benchmarks/: softmax alone took 38% of the encoder's time). Each kernel exists as
//   kb_<name>_scalar   the plain reference every other variant is tested against,
//   kb_<name>_avx2     x86-64 AVX2 + FMA, 8 lanes,
//   kb_<name>_avx512   x86-64 AVX-512F, 16 lanes,
//   kb_<name>_neon     AArch64 NEON (every AArch64 CPU has it), 4 lanes,
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
typedef enum { KB_ISA_SCALAR = 0, KB_ISA_AVX2 = 1, KB_ISA_AVX512 = 2, KB_ISA_NEON = 3 } kb_isa;

/// The best ISA this CPU supports (and the one kb_* dispatches to), unless the environment
/// variable KBINDEX_ISA names another one this CPU supports ("scalar", "avx2", "avx512",
/// "neon"); an unsupported or unknown name is ignored.
kb_isa kb_active_isa(void);
/// Whether this CPU can run variants of `isa`.
int kb_cpu_supports(kb_isa isa);
/// "scalar", "avx2", "avx512" or "neon".
const char *kb_isa_name(kb_isa isa);

/// For each of `rows` rows of `n` floats (row stride `ld`): s = softmax(s), max-subtracted.
void kb_softmax_rows(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_scalar(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_avx2(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_avx512(float *s, size_t rows, size_t n, size_t ld);
void kb_softmax_rows_neon(float *s, size_t rows, size_t n, size_t ld);

/// In place over a rows × cols row-major matrix: m = gelu(m + bias[col]) with the exact
/// erf form gelu(x) = x/2 · (1 + erf(x/√2)); erf is accurate to ~2e-7 absolute.
void kb_bias_gelu(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_scalar(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_avx2(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_avx512(float *m, size_t rows, size_t cols, const float *bias);
void kb_bias_gelu_neon(float *m, size_t rows, size_t cols, const float *bias);

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
//   kb_i8_dot_rows_avxvnni     x86-64 AVX-VNNI (VEX vpdpbusd on ymm, CPUs without AVX-512): the
//                              same at 32 bytes per instruction,
//   kb_i8_dot_rows_neon        AArch64: sdot (vdotq_s32) when the CPU has dotprod, else
//                              vmull_s8 + vpadalq_s16.
// The amx kernel (x86-64 AMX-INT8 with AVX-512 VNNI) exists for the scan's batches (tdpbssd
// on 16 × 16 tiles, see scan_x86.c); its dot products are the avx512vnni variants.
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
    KB_DOT_AVXVNNI = 4,
    KB_DOT_AMX = 5,
} kb_dot_kernel_id;

/// The kernel kb_i8_dot_rows / kb_i8_dot_rows_batch dispatch to, chosen once (thread-safe):
/// the best this CPU runs (amx, avx512vnni, avxvnni, neon, avx2, scalar in that order), unless
/// the environment variable KBINDEX_KERNEL names another one ("scalar", "avx2", "avx512vnni",
/// "neon", "avxvnni", "amx") that this CPU supports. A forced kernel the CPU
/// cannot run (or an unknown name) falls back to the best available.
kb_dot_kernel_id kb_dot_kernel(void);
/// The name of kb_dot_kernel(): the kernel actually used, not the one asked for.
const char *kb_dot_kernel_name(void);
/// "scalar", "avx2", "avx512vnni", "neon", "avxvnni" or "amx" ("unknown" for any other value).
const char *kb_dot_kernel_id_name(kb_dot_kernel_id k);
/// Whether this CPU (and OS) can run kernel `k`. For amx, the first call asks Linux for the
/// process's permission to use the tile state (see kb_select.h).
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
void kb_i8_dot_rows_avxvnni(const int8_t *q, const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);

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
void kb_i8_dot_rows_batch_avxvnni(const int8_t *qs, size_t qstride, size_t nq, const int8_t *rows, size_t stride,
                                  size_t dims, size_t n, int32_t *scores);

/// The same, through kernel `k` explicitly (scalar when this CPU cannot run `k`).
void kb_i8_dot_rows_with(kb_dot_kernel_id k, const int8_t *q, const int8_t *rows, size_t stride, size_t dims,
                         size_t n, int32_t *scores);
void kb_i8_dot_rows_batch_with(kb_dot_kernel_id k, const int8_t *qs, size_t qstride, size_t nq,
                               const int8_t *rows, size_t stride, size_t dims, size_t n, int32_t *scores);


// ---- int8 matrix products (the encoder's linear layers) ---------------------------------------
//
// C[m, n] = A[m, k] · Wᵀ for a PyTorch [out = n, in = k] weight W, in int8 with int32
// accumulation: W is quantized once per output row (symmetric, w_scale[j] = max|W[j]| / 127,
// values in [-127, 127]) and packed for one kernel (kb_i8_weights, made at model load); A is
// quantized per row (token) on every call by kb_i8_quantize_rows, the same way. Then
//     C[i, j] = (float)Σ_t a[i, t]·w[j, t] · (a_scale[i] · w_scale[j])
// computed in float exactly as written (int32 → float rounding to nearest, two multiplies, no
// addition, so no contraction): every kernel returns bit-identical floats to the scalar twin.
// Bias, activation and residual stay with the caller. Kernels (their own choice, separate from
// kb_active_isa and kb_dot_kernel):
//   scalar      the plain reference, always compiled;
//   avx2        x86-64 AVX2 without VNNI: the abs/sign trick into vpmaddubsw (never saturates);
//   avxvnni     x86-64 AVX-VNNI (VEX vpdpbusd on ymm), weights stored as w + 128;
//   avx512vnni  x86-64 AVX-512 VNNI (vpdpbusd on zmm, 6 rows × 64 columns per micro-kernel),
//               weights stored as w + 128, each row corrected by −128·Σa once;
//   neon        AArch64: sdot when the CPU has dotprod, else vmull_s8 + vpadalq_s16.
// Limits: 1 ≤ k ≤ 131072 (so the int32 sums are exact), 1 ≤ n ≤ 2²⁴.

/// The int8 matrix-product kernels. Values are stable (usable as ids across calls).
typedef enum {
    KB_GEMM_SCALAR = 0,
    KB_GEMM_AVX2 = 1,
    KB_GEMM_AVXVNNI = 2,
    KB_GEMM_AVX512VNNI = 3,
    KB_GEMM_NEON = 4,
} kb_gemm_kernel_id;

/// The kernel kb_i8_weights_new packs for, chosen once (thread-safe): the best this CPU runs
/// (avx512vnni, avxvnni, neon, avx2, scalar in that order), unless the environment variable
/// KBINDEX_GEMM_KERNEL names another one this CPU supports ("scalar", "avx2", "avxvnni",
/// "avx512vnni", "neon"). A forced kernel the CPU cannot run (or an unknown name) falls back to
/// the best available.
kb_gemm_kernel_id kb_gemm_kernel(void);
/// The name of kb_gemm_kernel(): the kernel actually used, not the one asked for.
const char *kb_gemm_kernel_name(void);
/// "scalar", "avx2", "avxvnni", "avx512vnni" or "neon" ("unknown" for any other value).
const char *kb_gemm_kernel_id_name(kb_gemm_kernel_id k);
/// Whether this CPU (and OS) can run kernel `k`.
int kb_gemm_kernel_supported(kb_gemm_kernel_id k);
/// The selection rule of kb_gemm_kernel() applied to `forced` (a KBINDEX_GEMM_KERNEL value, or
/// NULL), without touching the cached choice: for tests and diagnostics.
kb_gemm_kernel_id kb_gemm_kernel_select(const char *forced);

/// Quantizes m rows of k floats (row i at x + i·ldx), each value first multiplied by
/// channel_scale[t] when channel_scale is not NULL (x' = x · channel_scale[t]; 0 drops a channel,
/// e.g. one the caller computes in float), to int8: scales[i] = max|x'| / 127 and
/// q[i·ldq + t] = round-to-nearest-even(clamp(x' · (127 / max|x'|), ±127)); bytes k..<ldq of each
/// row are set to 0. A row whose max |x| is below 2⁻¹⁰⁰ gets scale 0 and zeros; a row holding a
/// NaN or infinity gets a NaN scale and zeros (so its outputs are NaN, never silently finite).
/// Preconditions: ldx ≥ k, ldq ≥ k; q, scales and x do not overlap. Dispatches on kb_active_isa
/// (every variant gives identical bytes and scales). O(m·k), no allocation.
void kb_i8_quantize_rows(const float *x, size_t ldx, size_t m, size_t k, const float *channel_scale, int8_t *q,
                         size_t ldq, float *scales);
void kb_i8_quantize_rows_scalar(const float *x, size_t ldx, size_t m, size_t k, const float *channel_scale, int8_t *q,
                         size_t ldq, float *scales);
void kb_i8_quantize_rows_avx2(const float *x, size_t ldx, size_t m, size_t k, const float *channel_scale, int8_t *q,
                         size_t ldq, float *scales);
void kb_i8_quantize_rows_avx512(const float *x, size_t ldx, size_t m, size_t k, const float *channel_scale, int8_t *q,
                         size_t ldq, float *scales);

/// The row stride (bytes) to give quantized activations of k values: k rounded up to 64, which
/// satisfies every kernel's lda requirement below.
size_t kb_i8_row_stride(size_t k);

/// A weight matrix quantized and packed for one kernel (opaque; immutable once made, so any
/// number of threads may use it at once).
typedef struct kb_i8_weights kb_i8_weights;

/// Quantizes W (n rows of k floats, row-major: PyTorch's [out, in]) per row and packs it for
/// kernel `kernel` (scalar when this CPU cannot run it). Memory owned: n_p·k_p bytes of packed
/// weights plus 4·n_p bytes of scales, n_p = n rounded up to the kernel's column block (16 for
/// avx512vnni, 8 for avx2/avxvnni, 4 for neon, 1 for scalar), k_p = k rounded up to 4 (k for
/// scalar); kb_i8_weights_bytes gives the total. NULL when memory is short or the shape is out
/// of the limits above. O(n·k), allocates.
kb_i8_weights *kb_i8_weights_new_with(kb_gemm_kernel_id kernel, const float *w, size_t n, size_t k);
/// The same for kb_gemm_kernel().
kb_i8_weights *kb_i8_weights_new(const float *w, size_t n, size_t k);
void kb_i8_weights_free(kb_i8_weights *w);
/// The kernel the weights are packed for (and kb_i8_gemm runs).
kb_gemm_kernel_id kb_i8_weights_kernel(const kb_i8_weights *w);
/// Bytes of memory the handle owns.
size_t kb_i8_weights_bytes(const kb_i8_weights *w);
size_t kb_i8_weights_rows(const kb_i8_weights *w);
size_t kb_i8_weights_cols(const kb_i8_weights *w);
/// The n per-row weight scales (for tests).
const float *kb_i8_weights_scales(const kb_i8_weights *w);

/// C[i·ldc + j] = (float)Σ_{t<k} a[i·lda + t]·w[j, t] · (a_scales[i] · w_scale[j]) for i < m, j < n,
/// with w's kernel. Preconditions: a holds m rows of int8 in [-127, 127] (as
/// kb_i8_quantize_rows writes them) with lda ≥ k rounded up to 4 and the bytes up to that
/// readable (their values do not matter); ldc ≥ n; c does not overlap the inputs. m == 0 writes
/// nothing. Thread-safe; no allocation. O(m·n·k).
void kb_i8_gemm(const kb_i8_weights *w, const int8_t *a, size_t lda, const float *a_scales, size_t m, float *c,
                size_t ldc);

// ---- the index scan: dot products fused with a top-k threshold -------------------------------
//
// A batch of queries prepared once (copied, and laid out for its kernel's scan path: a
// single-query row tile, or with 8 or more queries a register-tiled packed kernel; see scan.c),
// then scanned against blocks of rows. For each
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
/// The same batch on the generic blocked path whatever the kernel (kb_i8_dot_rows_batch_with on
/// blocks of rows, thresholds in scalar code): the scan as it was before the per-ISA paths,
/// kept as the baseline benchmarks measure against. Same results, slower.
kb_query_batch *kb_query_batch_new_generic(kb_dot_kernel_id kernel, const int8_t *qs, size_t qstride, size_t nq,
                                           size_t dims);
void kb_query_batch_free(kb_query_batch *batch);
size_t kb_query_batch_count(const kb_query_batch *batch);
/// The kernel the batch actually runs with.
kb_dot_kernel_id kb_query_batch_kernel(const kb_query_batch *batch);
/// The scan path the batch runs, for reports: the kernel's name, then the path's, e.g.
/// "avx2 tile8", "avx512vnni packed16x4", "neon i8mm packed2x8"; "<kernel> generic" for the
/// generic blocked path. A static string.
const char *kb_query_batch_path(const kb_query_batch *batch);

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
