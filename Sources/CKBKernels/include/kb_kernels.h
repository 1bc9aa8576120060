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

#ifdef __cplusplus
}
#endif
#endif
