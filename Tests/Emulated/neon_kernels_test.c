// The AArch64 NEON kernels against their scalar twins, bit for bit: run on an ARM64 machine or
// under qemu-user on any other (scripts/test-neon.sh cross-compiles this file with the C
// kernels and runs it twice: on a CPU model with the dotprod extension, and on one without,
// so both NEON paths, sdot and vmull/vpadal, are exercised).
//
// Prints one line per check and "neon: N passed, N failed" last; exits non-zero on a failure
// or when the NEON kernels are not the ones dispatch picks (not an AArch64 build).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kb_kernels.h"
#include "kb_select.h"  // kb_arm_has_dotprod: which NEON path the kernels take

static int passed = 0, failed = 0;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/// A value in [-127, 127] (the kernels' precondition: never −128), often at the extremes.
static int8_t random_i8(void) {
    uint64_t r = next_random();
    switch (r % 8) {
    case 0: return 127;
    case 1: return -127;
    default: return (int8_t)((int)((r >> 8) % 255) - 127);
    }
}

static void check(int ok, const char *what, size_t a, size_t b, size_t c) {
    if (ok) { passed++; return; }
    failed++;
    printf("FAIL %s (%zu, %zu, %zu)\n", what, a, b, c);
}

/// kb_i8_dot_rows and its batch form, NEON against scalar, over shapes that hit every tail.
static void test_dot_rows(void) {
    static const size_t dims_list[] = {0, 1, 3, 15, 16, 17, 31, 32, 33, 64, 100, 384, 385, 768, 1024};
    static const size_t n_list[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33};
    static const size_t nq_list[] = {1, 2, 3, 4, 5, 8, 9, 13};
    for (size_t di = 0; di < sizeof dims_list / sizeof *dims_list; di++) {
        size_t dims = dims_list[di];
        for (size_t ni = 0; ni < sizeof n_list / sizeof *n_list; ni++) {
            size_t n = n_list[ni];
            size_t stride = dims + (next_random() % 3) * 7;  // also strides that are not multiples of 16
            int8_t *rows = malloc(stride * n + 1), *qs = malloc((dims + 5) * 13 + 1);
            int32_t *a = malloc(sizeof(int32_t) * (n * 13 + 1)), *b = malloc(sizeof(int32_t) * (n * 13 + 1));
            for (size_t i = 0; i < stride * n; i++) rows[i] = random_i8();
            for (size_t i = 0; i < (dims + 5) * 13; i++) qs[i] = random_i8();
            kb_i8_dot_rows_scalar(qs, rows, stride, dims, n, a);
            kb_i8_dot_rows_neon(qs, rows, stride, dims, n, b);
            check(memcmp(a, b, sizeof(int32_t) * n) == 0, "kb_i8_dot_rows_neon", dims, n, stride);
            for (size_t qi = 0; qi < sizeof nq_list / sizeof *nq_list; qi++) {
                size_t nq = nq_list[qi], qstride = dims + 5;
                kb_i8_dot_rows_batch_scalar(qs, qstride, nq, rows, stride, dims, n, a);
                kb_i8_dot_rows_batch_neon(qs, qstride, nq, rows, stride, dims, n, b);
                check(memcmp(a, b, sizeof(int32_t) * n * nq) == 0, "kb_i8_dot_rows_batch_neon", dims, n, nq);
            }
            free(rows); free(qs); free(a); free(b);
        }
    }
}

/// kb_i8_gemm with weights packed for NEON against weights packed for scalar: identical floats.
static void test_gemm(void) {
    static const size_t shapes[][3] = {  // m, n, k
        {1, 1, 1}, {1, 4, 4}, {2, 5, 3}, {3, 7, 17}, {6, 16, 64}, {7, 9, 100},
        {1, 384, 384}, {5, 1536, 384}, {13, 384, 1536}, {64, 12, 33},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *w = malloc(sizeof(float) * n * k), *x = malloc(sizeof(float) * m * k);
        for (size_t i = 0; i < n * k; i++) w[i] = (float)((int)(next_random() % 2001) - 1000) / 997.0f;
        for (size_t i = 0; i < m * k; i++) x[i] = (float)((int)(next_random() % 2001) - 1000) / 13.0f;
        size_t lda = kb_i8_row_stride(k);
        int8_t *a = calloc(m * lda, 1);
        float *scales = malloc(sizeof(float) * m);
        kb_i8_quantize_rows_scalar(x, k, m, k, NULL, a, lda, scales);
        kb_i8_weights *ws = kb_i8_weights_new_with(KB_GEMM_SCALAR, w, n, k);
        kb_i8_weights *wn = kb_i8_weights_new_with(KB_GEMM_NEON, w, n, k);
        float *c1 = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n);
        int ok = ws && wn && kb_i8_weights_kernel(wn) == KB_GEMM_NEON;
        if (ok) {
            kb_i8_gemm(ws, a, lda, scales, m, c1, n);
            kb_i8_gemm(wn, a, lda, scales, m, c2, n);
            ok = memcmp(c1, c2, sizeof(float) * m * n) == 0;
        }
        check(ok, "kb_i8_gemm (neon packing)", m, n, k);
        kb_i8_weights_free(ws); kb_i8_weights_free(wn);
        free(w); free(x); free(a); free(scales); free(c1); free(c2);
    }
}

/// |a − b| within a few ulp of the larger (the lanes sum in another order, and fused
/// multiply-adds round once where the scalar code may round twice).
static int close_enough(float a, float b) {
    float d = a > b ? a - b : b - a, m = (a < 0 ? -a : a) > (b < 0 ? -b : b) ? (a < 0 ? -a : a) : (b < 0 ? -b : b);
    return d <= 4e-6f * m + 1e-30f;
}

/// The encoder's softmax and GELU: NEON against scalar, every row length's tail.
static void test_softmax_gelu(void) {
    static const size_t cols_list[] = {1, 3, 4, 5, 7, 8, 9, 31, 64, 127, 384, 1536};
    for (size_t ci = 0; ci < sizeof cols_list / sizeof *cols_list; ci++) {
        size_t cols = cols_list[ci], rows = 3;
        float *a = malloc(sizeof(float) * rows * cols), *b = malloc(sizeof(float) * rows * cols), *bias = malloc(sizeof(float) * cols);
        for (size_t i = 0; i < rows * cols; i++) a[i] = b[i] = (float)((int)(next_random() % 4001) - 2000) / 150.0f;
        for (size_t i = 0; i < cols; i++) bias[i] = (float)((int)(next_random() % 201) - 100) / 50.0f;
        kb_softmax_rows_scalar(a, rows, cols, cols);
        kb_softmax_rows_neon(b, rows, cols, cols);
        int ok = 1;
        for (size_t i = 0; i < rows * cols; i++) ok &= close_enough(a[i], b[i]);
        check(ok, "kb_softmax_rows_neon", rows, cols, 0);
        for (size_t i = 0; i < rows * cols; i++) a[i] = b[i] = (float)((int)(next_random() % 4001) - 2000) / 300.0f;
        kb_bias_gelu_scalar(a, rows, cols, bias);
        kb_bias_gelu_neon(b, rows, cols, bias);
        ok = 1;
        for (size_t i = 0; i < rows * cols; i++) ok &= close_enough(a[i], b[i]) || ((a[i] < 0 ? -a[i] : a[i]) < 1e-6f && (b[i] < 0 ? -b[i] : b[i]) < 1e-6f);
        check(ok, "kb_bias_gelu_neon", rows, cols, 0);
        free(a); free(b); free(bias);
    }
}

int main(void) {
    const char *dot = kb_dot_kernel_id_name(kb_dot_kernel());
    const char *gemm = kb_gemm_kernel_id_name(kb_gemm_kernel());
#if defined(__aarch64__)
    printf("dispatch: scan kernel %s, gemm kernel %s, dotprod %s\n", dot, gemm, kb_arm_has_dotprod() ? "yes" : "no");
#else
    printf("dispatch: scan kernel %s, gemm kernel %s\n", dot, gemm);
#endif
    printf("float kernels: %s\n", kb_isa_name(kb_active_isa()));
    if (!kb_dot_kernel_supported(KB_DOT_NEON) || !kb_gemm_kernel_supported(KB_GEMM_NEON) || kb_active_isa() != KB_ISA_NEON) {
        printf("neon: 0 passed, 1 failed (the NEON kernels are not supported here: not an AArch64 build?)\n");
        return 1;
    }
    test_dot_rows();
    test_gemm();
    test_softmax_gelu();
    printf("neon: %d passed, %d failed\n", passed, failed);  // checks (shapes), not tests
    return failed ? 1 : 0;
}
