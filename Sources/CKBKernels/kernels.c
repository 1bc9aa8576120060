// Scalar twins, the per-ISA variants (kernels_impl.h, included once per ISA) and the one
// dispatch point. See include/kb_kernels.h.
#include "kb_kernels.h"
#include <stdlib.h>
#include <string.h>

// Cephes expf: e^x = 2^n · e^r, |r| ≤ ln2/2, n rounded with the 1.5·2^23 trick.
#define KB_EXP_LO (-87.0f)
#define KB_EXP_HI 88.0f
#define KB_LOG2E 1.44269504088896341f
#define KB_MAGIC 12582912.0f
#define KB_MAGIC_BITS 0x4B400000u
#define KB_LN2_HI 0.693359375f
#define KB_LN2_LO 2.12194440e-4f
#define KB_EXP_P0 1.9875691500e-4f
#define KB_EXP_P1 1.3981999507e-3f
#define KB_EXP_P2 8.3334519073e-3f
#define KB_EXP_P3 4.1665795894e-2f
#define KB_EXP_P4 1.6666665459e-1f
#define KB_EXP_P5 5.0000001201e-1f
// erf on [-4, 4] as x·P(x²)/Q(x²) (the rational approximation used by Eigen and XLA).
#define KB_ERF_A0 (-2.72614225801306e-10f)
#define KB_ERF_A1 2.77068142495902e-08f
#define KB_ERF_A2 (-2.10102402082508e-06f)
#define KB_ERF_A3 (-5.69250639462346e-05f)
#define KB_ERF_A4 (-7.34990630326855e-04f)
#define KB_ERF_A5 (-2.95459980854025e-03f)
#define KB_ERF_A6 (-1.60960333262415e-02f)
#define KB_ERF_B0 (-1.45660718464996e-05f)
#define KB_ERF_B1 (-2.13374055278905e-04f)
#define KB_ERF_B2 (-1.68282697438203e-03f)
#define KB_ERF_B3 (-7.37332916720468e-03f)
#define KB_ERF_B4 (-1.42647390514189e-02f)
#define KB_SQRT1_2 0.70710678118654752440f

// ---- scalar twins ---------------------------------------------------------------------

float kb_exp_scalar(float x) {
    x = x < KB_EXP_LO ? KB_EXP_LO : (x > KB_EXP_HI ? KB_EXP_HI : x);
    float t = x * KB_LOG2E + KB_MAGIC;
    float fx = t - KB_MAGIC;
    float r = x - fx * KB_LN2_HI;
    r = r + fx * KB_LN2_LO;
    float y = KB_EXP_P0;
    y = y * r + KB_EXP_P1;
    y = y * r + KB_EXP_P2;
    y = y * r + KB_EXP_P3;
    y = y * r + KB_EXP_P4;
    y = y * r + KB_EXP_P5;
    y = y * (r * r) + r + 1.0f;
    unsigned tb, nb;
    memcpy(&tb, &t, 4);
    nb = (tb - KB_MAGIC_BITS + 127u) << 23;
    float scale;
    memcpy(&scale, &nb, 4);
    return y * scale;
}

float kb_erf_scalar(float x) {
    x = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x);
    float x2 = x * x;
    float p = KB_ERF_A0;
    p = p * x2 + KB_ERF_A1;
    p = p * x2 + KB_ERF_A2;
    p = p * x2 + KB_ERF_A3;
    p = p * x2 + KB_ERF_A4;
    p = p * x2 + KB_ERF_A5;
    p = p * x2 + KB_ERF_A6;
    float q = KB_ERF_B0;
    q = q * x2 + KB_ERF_B1;
    q = q * x2 + KB_ERF_B2;
    q = q * x2 + KB_ERF_B3;
    q = q * x2 + KB_ERF_B4;
    return x * p / q;
}

void kb_softmax_rows_scalar(float *s, size_t rows, size_t n, size_t ld) {
    for (size_t r = 0; r < rows; r++, s += ld) {
        float mx = -__builtin_inff();
        for (size_t i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
        float sum = 0.0f;
        for (size_t i = 0; i < n; i++) { s[i] = kb_exp_scalar(s[i] - mx); sum += s[i]; }
        const float inv = 1.0f / sum;
        for (size_t i = 0; i < n; i++) s[i] *= inv;
    }
}

void kb_bias_gelu_scalar(float *m, size_t rows, size_t cols, const float *bias) {
    for (size_t r = 0; r < rows; r++, m += cols)
        for (size_t j = 0; j < cols; j++) {
            float x = m[j] + bias[j];
            m[j] = x * 0.5f * (1.0f + kb_erf_scalar(x * KB_SQRT1_2));
        }
}

// ---- vector variants ------------------------------------------------------------------

#if defined(__x86_64__) || defined(_M_X64)
#define KB_HAVE_X86 1
#define KB_SUFFIX avx2
#define KB_LANES 8
#define KB_TARGET __attribute__((target("avx2,fma")))
#include "kernels_impl.h"
#undef KB_SUFFIX
#undef KB_LANES
#undef KB_TARGET

#define KB_SUFFIX avx512
#define KB_LANES 16
#define KB_TARGET __attribute__((target("avx512f,avx2,fma")))
#include "kernels_impl.h"
#undef KB_SUFFIX
#undef KB_LANES
#undef KB_TARGET
// Other architectures' variants are the scalar code here (never selected by dispatch).
void kb_softmax_rows_neon(float *s, size_t rows, size_t n, size_t ld) { kb_softmax_rows_scalar(s, rows, n, ld); }
void kb_bias_gelu_neon(float *m, size_t rows, size_t cols, const float *b) { kb_bias_gelu_scalar(m, rows, cols, b); }
#elif defined(__aarch64__)
#define KB_HAVE_NEON 1
// NEON is part of every AArch64 CPU: no target attribute, 4 float lanes.
#define KB_SUFFIX neon
#define KB_LANES 4
#define KB_TARGET
#include "kernels_impl.h"
#undef KB_SUFFIX
#undef KB_LANES
#undef KB_TARGET
void kb_softmax_rows_avx2(float *s, size_t rows, size_t n, size_t ld) { kb_softmax_rows_scalar(s, rows, n, ld); }
void kb_softmax_rows_avx512(float *s, size_t rows, size_t n, size_t ld) { kb_softmax_rows_scalar(s, rows, n, ld); }
void kb_bias_gelu_avx2(float *m, size_t rows, size_t cols, const float *b) { kb_bias_gelu_scalar(m, rows, cols, b); }
void kb_bias_gelu_avx512(float *m, size_t rows, size_t cols, const float *b) { kb_bias_gelu_scalar(m, rows, cols, b); }
#else
// Other architectures: every variant is the scalar code (never selected by dispatch).
void kb_softmax_rows_avx2(float *s, size_t rows, size_t n, size_t ld) { kb_softmax_rows_scalar(s, rows, n, ld); }
void kb_softmax_rows_avx512(float *s, size_t rows, size_t n, size_t ld) { kb_softmax_rows_scalar(s, rows, n, ld); }
void kb_softmax_rows_neon(float *s, size_t rows, size_t n, size_t ld) { kb_softmax_rows_scalar(s, rows, n, ld); }
void kb_bias_gelu_avx2(float *m, size_t rows, size_t cols, const float *b) { kb_bias_gelu_scalar(m, rows, cols, b); }
void kb_bias_gelu_avx512(float *m, size_t rows, size_t cols, const float *b) { kb_bias_gelu_scalar(m, rows, cols, b); }
void kb_bias_gelu_neon(float *m, size_t rows, size_t cols, const float *b) { kb_bias_gelu_scalar(m, rows, cols, b); }
#endif

// ---- the one dispatch point -----------------------------------------------------------

int kb_cpu_supports(kb_isa isa) {
    switch (isa) {
    case KB_ISA_SCALAR: return 1;
#ifdef KB_HAVE_X86
    case KB_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KB_ISA_AVX512: return __builtin_cpu_supports("avx512f") && kb_cpu_supports(KB_ISA_AVX2);
#endif
#ifdef KB_HAVE_NEON
    case KB_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

const char *kb_isa_name(kb_isa isa) {
    switch (isa) {
    case KB_ISA_AVX2: return "avx2";
    case KB_ISA_AVX512: return "avx512";
    case KB_ISA_NEON: return "neon";
    default: return "scalar";
    }
}

static kb_isa kb_choose_isa(void) {
    kb_isa best = kb_cpu_supports(KB_ISA_AVX512) ? KB_ISA_AVX512
                : kb_cpu_supports(KB_ISA_AVX2) ? KB_ISA_AVX2
                : kb_cpu_supports(KB_ISA_NEON) ? KB_ISA_NEON : KB_ISA_SCALAR;
    const char *forced = getenv("KBINDEX_ISA");
    if (forced) {
        for (int i = KB_ISA_SCALAR; i <= KB_ISA_NEON; i++)
            if (strcmp(forced, kb_isa_name((kb_isa)i)) == 0 && kb_cpu_supports((kb_isa)i)) return (kb_isa)i;
    }
    return best;
}

// Benign race: every thread computes the same value.
static volatile int kb_isa_cache = -1;

kb_isa kb_active_isa(void) {
    int v = kb_isa_cache;
    if (v < 0) { v = (int)kb_choose_isa(); kb_isa_cache = v; }
    return (kb_isa)v;
}

void kb_softmax_rows(float *s, size_t rows, size_t n, size_t ld) {
    switch (kb_active_isa()) {
    case KB_ISA_AVX512: kb_softmax_rows_avx512(s, rows, n, ld); break;
    case KB_ISA_AVX2: kb_softmax_rows_avx2(s, rows, n, ld); break;
    case KB_ISA_NEON: kb_softmax_rows_neon(s, rows, n, ld); break;
    default: kb_softmax_rows_scalar(s, rows, n, ld);
    }
}

void kb_bias_gelu(float *m, size_t rows, size_t cols, const float *bias) {
    switch (kb_active_isa()) {
    case KB_ISA_AVX512: kb_bias_gelu_avx512(m, rows, cols, bias); break;
    case KB_ISA_AVX2: kb_bias_gelu_avx2(m, rows, cols, bias); break;
    case KB_ISA_NEON: kb_bias_gelu_neon(m, rows, cols, bias); break;
    default: kb_bias_gelu_scalar(m, rows, cols, bias);
    }
}
