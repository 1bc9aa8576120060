// The AArch64 NEON kernels against their scalar twins, bit for bit: run on an ARM64 machine or
// under qemu-user on any other (scripts/test-neon.sh cross-compiles this file with the C
// kernels and runs it on three CPU models: with dotprod and i8mm, with dotprod only, and with
// neither, so every NEON path runs: the dot/GEMM kernels' sdot and vmull/vpadal paths, and the
// scan's sdot and vmull single-query tiles and its i8mm, sdot and vmull packed kernels).
//
// Prints the features it saw and the scan paths kb_query_batch_new picked, one line per failed
// check, and "neon: N passed, N failed" last; exits non-zero on a failure or when the NEON
// kernels are not the ones dispatch picks (not an AArch64 build).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "kb_kernels.h"
#include "kb_select.h"  // kb_arm_has_dotprod, kb_arm_has_i8mm: which NEON paths the kernels take

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

/// The scan path kb_query_batch_new(KB_DOT_NEON, …) must pick on this CPU for nq queries.
static const char *expected_scan_path(size_t nq) {
#if defined(__aarch64__)
    const int dotprod = kb_arm_has_dotprod(), i8mm = kb_arm_has_i8mm();
#else
    const int dotprod = 0, i8mm = 0;
#endif
    if (nq < 8) return dotprod ? "neon sdot tile8" : "neon smull tile8";
    return i8mm ? "neon i8mm packed2x8" : dotprod ? "neon sdot packed4x4" : "neon smull packed";
}

/// `bytes` bytes that end exactly where an inaccessible page begins, so a kernel reading past
/// the last row's dims bytes faults (the end of a malloc'd buffer would go unnoticed under
/// qemu-user). Free with free_guarded(result, bytes).
static int8_t *guarded_alloc(size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), data = (bytes + page - 1) / page * page;
    char *map = mmap(NULL, data + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) { perror("mmap"); exit(2); }
    if (mprotect(map + data, page, PROT_NONE) != 0) { perror("mprotect"); exit(2); }
    return (int8_t *)(map + data - bytes);
}

static void free_guarded(int8_t *p, size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), data = (bytes + page - 1) / page * page;
    munmap((char *)p + bytes - data, data + page);
}

static int candidate_order(const void *a, const void *b) {
    const kb_candidate *x = a, *y = b;
    if (x->query != y->query) return x->query < y->query ? -1 : 1;
    if (x->row != y->row) return x->row < y->row ? -1 : 1;
    return 0;
}

/// One scan shape: nq queries and n rows of dims values (row stride `stride`), QUANT records
/// (f32 scale, i32 Σ of the row) 8 or 12 bytes apart, scales positive, some negative, one NaN;
/// thresholds per query −∞, +∞, NaN or a score the query reaches exactly; values random or at
/// ±127 (`mode`). The rows, QUANT records, thresholds and the NEON output each end at an
/// inaccessible page. The NEON batch's candidates, sorted, must equal the scalar batch's: count
/// and every field.
static void scan_shape(size_t dims, size_t nq, size_t n, size_t stride, int mode) {
    const size_t bytes = (n - 1) * stride + dims, qstride = (dims + n) % 2 ? 12 : 8;
    const size_t quant_bytes = (n - 1) * qstride + 8, th_bytes = sizeof(float) * nq, out_bytes = sizeof(kb_candidate) * n * nq;
    int8_t *rows = guarded_alloc(bytes), *qs = malloc(nq * dims + 1);
    unsigned char *quant = (unsigned char *)guarded_alloc(quant_bytes);
    float *thresholds = (float *)(void *)guarded_alloc(th_bytes);
    kb_candidate *a = malloc(out_bytes), *b = (kb_candidate *)(void *)guarded_alloc(out_bytes);
    for (size_t i = 0; i < bytes; i++)
        rows[i] = mode == 0 ? random_i8() : mode == 1 ? (next_random() & 1 ? 127 : -127) : 127;
    for (size_t i = 0; i < nq * dims; i++)
        qs[i] = mode == 0 ? random_i8() : mode == 1 ? (next_random() & 1 ? 127 : -127) : 127;
    for (size_t r = 0; r < n; r++) {
        float scale = (float)(1 + next_random() % 20000) * 1e-6f * (next_random() % 4 ? 1.0f : -1.0f);
        if (n >= 4 && r == n / 2) scale = NAN;  // its scores are NaN: never a candidate
        int32_t sum = 0;
        for (size_t i = 0; i < dims; i++) sum += rows[r * stride + i];
        memcpy(quant + qstride * r, &scale, 4);
        memcpy(quant + qstride * r + 4, &sum, 4);
    }
    for (size_t j = 0; j < nq; j++) {
        switch (next_random() % 4) {
        case 0: thresholds[j] = -INFINITY; break;
        case 1: thresholds[j] = INFINITY; break;
        case 2: thresholds[j] = NAN; break;
        default: {  // the score of a random row: a middle value, met with equality once
            const size_t r = next_random() % n;
            int32_t dot = 0;
            for (size_t i = 0; i < dims; i++) dot += (int32_t)qs[j * dims + i] * rows[r * stride + i];
            float scale;
            memcpy(&scale, quant + qstride * r, 4);
            thresholds[j] = scale * (float)dot;
        }
        }
    }
    kb_query_batch *bs = kb_query_batch_new(KB_DOT_SCALAR, qs, dims, nq, dims);
    kb_query_batch *bn = kb_query_batch_new(KB_DOT_NEON, qs, dims, nq, dims);
    const float *scales = (const float *)quant;
    const int32_t *sums = (const int32_t *)(quant + 4);
    int ok = bs && bn && strcmp(kb_query_batch_path(bn), expected_scan_path(nq)) == 0;
    if (ok) {
        const size_t ca = kb_i8_scan(bs, rows, stride, n, scales, sums, qstride, thresholds, a);
        const size_t cb = kb_i8_scan(bn, rows, stride, n, scales, sums, qstride, thresholds, b);
        qsort(a, ca, sizeof *a, candidate_order);
        qsort(b, cb, sizeof *b, candidate_order);
        ok = ca == cb;
        for (size_t i = 0; ok && i < ca; i++)
            ok = a[i].row == b[i].row && a[i].query == b[i].query && memcmp(&a[i].score, &b[i].score, 4) == 0;
    }
    if (!ok) printf("FAIL kb_i8_scan %s (dims %zu, nq %zu, n %zu, stride %zu, mode %d)\n",
                    bn ? kb_query_batch_path(bn) : "(no batch)", dims, nq, n, stride, mode);
    check(ok, "kb_i8_scan", dims, nq, n);
    kb_query_batch_free(bs);
    kb_query_batch_free(bn);
    free_guarded(rows, bytes);
    free_guarded((int8_t *)quant, quant_bytes);
    free_guarded((int8_t *)(void *)thresholds, th_bytes);
    free_guarded((int8_t *)(void *)b, out_bytes);
    free(qs); free(a);
}

/// kb_i8_scan on a NEON batch against a scalar batch over every dims tail, query counts on both
/// sides of KB_PACKED_MIN_QUERIES and of each path's query tile, row counts around the tiles
/// and KB_SUB, strides ≥ dims (odd ones: unaligned rows).
static void test_scan(void) {
    static const size_t big_dims[] = {127, 128, 129, 383, 384, 385, 1024, 2051, 4096};
    static const size_t nq_list[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 33, 200};
    static const size_t n_list[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 64, 65, 130};
    const size_t nn = sizeof n_list / sizeof *n_list, nbig = sizeof big_dims / sizeof *big_dims;
    for (size_t di = 0; di < 71 + nbig; di++) {
        const size_t dims = di < 71 ? di : big_dims[di - 71];
        for (size_t qi = 0; qi < sizeof nq_list / sizeof *nq_list; qi++) {
            const size_t nq = nq_list[qi];
            for (size_t k = 0; k < 2; k++) {
                size_t n = n_list[(di * 7 + qi * 3 + k * 11) % nn];
                // Keep each shape's work small under emulation (but every n for small dims).
                while (n > 1 && n * nq * (dims + 16) > 3000000) n = n / 2 + 1;
                const size_t stride = dims + (next_random() % 4 == 0 ? 0 : next_random() % 40);
                const int mode = next_random() % 8 == 0 ? 1 + (int)(next_random() % 2) : 0;
                scan_shape(dims, nq, n, stride, mode);
            }
        }
    }
    // The largest dims, all values 127 (the biggest dot: 127²·131072 < 2³¹) or ±127.
    static const size_t largest[][3] = {{1, 9, 2}, {9, 3, 2}, {8, 5, 1}, {17, 2, 1}};  // nq, n, mode
    for (size_t i = 0; i < sizeof largest / sizeof *largest; i++)
        scan_shape(131072, largest[i][0], largest[i][1], 131072 + 3 * i, (int)largest[i][2]);
}

int main(void) {
    const char *dot = kb_dot_kernel_id_name(kb_dot_kernel());
    const char *gemm = kb_gemm_kernel_id_name(kb_gemm_kernel());
#if defined(__aarch64__)
    printf("dispatch: scan kernel %s, gemm kernel %s, dotprod %s, i8mm %s\n", dot, gemm,
           kb_arm_has_dotprod() ? "yes" : "no", kb_arm_has_i8mm() ? "yes" : "no");
#else
    printf("dispatch: scan kernel %s, gemm kernel %s\n", dot, gemm);
#endif
    printf("float kernels: %s\n", kb_isa_name(kb_active_isa()));
    if (!kb_dot_kernel_supported(KB_DOT_NEON) || !kb_gemm_kernel_supported(KB_GEMM_NEON) || kb_active_isa() != KB_ISA_NEON) {
        printf("neon: 0 passed, 1 failed (the NEON kernels are not supported here: not an AArch64 build?)\n");
        return 1;
    }
    {
        int8_t q[8 * 4] = {0};
        kb_query_batch *one = kb_query_batch_new(KB_DOT_NEON, q, 4, 1, 4), *many = kb_query_batch_new(KB_DOT_NEON, q, 4, 8, 4);
        printf("scan paths: %s (1 query), %s (8 queries)\n", one ? kb_query_batch_path(one) : "none",
               many ? kb_query_batch_path(many) : "none");
        kb_query_batch_free(one);
        kb_query_batch_free(many);
    }
    test_dot_rows();
    test_gemm();
    test_scan();
    test_softmax_gelu();
    printf("neon: %d passed, %d failed\n", passed, failed);  // checks (shapes), not tests
    return failed ? 1 : 0;
}
