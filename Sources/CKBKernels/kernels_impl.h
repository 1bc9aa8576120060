// One definition of the vector kernels, included once per ISA by kernels.c with
//   KB_SUFFIX (avx2 | avx512 | neon), KB_LANES (8 | 16 | 4), KB_TARGET (the target attribute,
//   empty for NEON, which every AArch64 CPU has).
// Written with Clang/GCC vector extensions so the same source becomes AVX2, AVX-512 or NEON code.
#define KB_CAT2(a, b) a##_##b
#define KB_CAT(a, b) KB_CAT2(a, b)
#define KB_FN(name) KB_CAT(name, KB_SUFFIX)

typedef float KB_CAT(vf, KB_SUFFIX) __attribute__((vector_size(KB_LANES * 4), aligned(4)));
typedef unsigned KB_CAT(vu, KB_SUFFIX) __attribute__((vector_size(KB_LANES * 4), aligned(4)));
#define VF KB_CAT(vf, KB_SUFFIX)
#define VU KB_CAT(vu, KB_SUFFIX)

KB_TARGET static inline VF KB_FN(splat)(float x) { return (VF){} + x; }
KB_TARGET static inline VF KB_FN(load)(const float *p) { VF v; __builtin_memcpy(&v, p, sizeof v); return v; }
KB_TARGET static inline void KB_FN(store)(float *p, VF v) { __builtin_memcpy(p, &v, sizeof v); }
KB_TARGET static inline VF KB_FN(vmax)(VF a, VF b) { return __builtin_elementwise_max(a, b); }
KB_TARGET static inline VF KB_FN(vmin)(VF a, VF b) { return __builtin_elementwise_min(a, b); }

KB_TARGET static inline VF KB_FN(vexp)(VF x) {
    x = KB_FN(vmin)(KB_FN(vmax)(x, KB_FN(splat)(KB_EXP_LO)), KB_FN(splat)(KB_EXP_HI));
    VF t = x * KB_LOG2E + KB_MAGIC;
    VF fx = t - KB_MAGIC;
    VF r = x - fx * KB_LN2_HI;
    r = r + fx * KB_LN2_LO;
    VF y = KB_FN(splat)(KB_EXP_P0);
    y = y * r + KB_EXP_P1;
    y = y * r + KB_EXP_P2;
    y = y * r + KB_EXP_P3;
    y = y * r + KB_EXP_P4;
    y = y * r + KB_EXP_P5;
    y = y * (r * r) + r + 1.0f;
    VU n = ((VU)t - KB_MAGIC_BITS + 127u) << 23;
    return y * (VF)n;
}

KB_TARGET static inline VF KB_FN(verf)(VF x) {
    x = KB_FN(vmin)(KB_FN(vmax)(x, KB_FN(splat)(-4.0f)), KB_FN(splat)(4.0f));
    VF x2 = x * x;
    VF p = KB_FN(splat)(KB_ERF_A0);
    p = p * x2 + KB_ERF_A1;
    p = p * x2 + KB_ERF_A2;
    p = p * x2 + KB_ERF_A3;
    p = p * x2 + KB_ERF_A4;
    p = p * x2 + KB_ERF_A5;
    p = p * x2 + KB_ERF_A6;
    VF q = KB_FN(splat)(KB_ERF_B0);
    q = q * x2 + KB_ERF_B1;
    q = q * x2 + KB_ERF_B2;
    q = q * x2 + KB_ERF_B3;
    q = q * x2 + KB_ERF_B4;
    return x * p / q;
}

KB_TARGET void KB_FN(kb_softmax_rows)(float *s, size_t rows, size_t n, size_t ld) {
    const size_t full = n - n % KB_LANES;
    for (size_t r = 0; r < rows; r++, s += ld) {
        VF vm = KB_FN(splat)(-__builtin_inff());
        for (size_t i = 0; i < full; i += KB_LANES) vm = KB_FN(vmax)(vm, KB_FN(load)(s + i));
        float mx = -__builtin_inff();
        for (int l = 0; l < KB_LANES; l++) mx = vm[l] > mx ? vm[l] : mx;
        for (size_t i = full; i < n; i++) mx = s[i] > mx ? s[i] : mx;
        VF acc = KB_FN(splat)(0.0f);
        for (size_t i = 0; i < full; i += KB_LANES) {
            VF e = KB_FN(vexp)(KB_FN(load)(s + i) - mx);
            KB_FN(store)(s + i, e);
            acc += e;
        }
        float sum = 0.0f;
        for (int l = 0; l < KB_LANES; l++) sum += acc[l];
        for (size_t i = full; i < n; i++) { s[i] = kb_exp_scalar(s[i] - mx); sum += s[i]; }
        const float inv = 1.0f / sum;
        for (size_t i = 0; i < full; i += KB_LANES) KB_FN(store)(s + i, KB_FN(load)(s + i) * inv);
        for (size_t i = full; i < n; i++) s[i] *= inv;
    }
}

KB_TARGET void KB_FN(kb_bias_gelu)(float *m, size_t rows, size_t cols, const float *bias) {
    const size_t full = cols - cols % KB_LANES;
    for (size_t r = 0; r < rows; r++, m += cols) {
        for (size_t j = 0; j < full; j += KB_LANES) {
            VF x = KB_FN(load)(m + j) + KB_FN(load)(bias + j);
            KB_FN(store)(m + j, x * 0.5f * (1.0f + KB_FN(verf)(x * KB_SQRT1_2)));
        }
        for (size_t j = full; j < cols; j++) {
            float x = m[j] + bias[j];
            m[j] = x * 0.5f * (1.0f + kb_erf_scalar(x * KB_SQRT1_2));
        }
    }
}

#undef VF
#undef VU
#undef KB_CAT
#undef KB_CAT2
#undef KB_FN
