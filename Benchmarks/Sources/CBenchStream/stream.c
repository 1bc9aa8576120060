#include "bench_stream.h"
#include <string.h>

static uint64_t read_scalar(const unsigned char *p, size_t bytes) {
    uint64_t a = 0, b = 0, c = 0, d = 0, w[4];
    size_t i = 0;
    for (; i + 32 <= bytes; i += 32) {
        memcpy(w, p + i, 32);
        a ^= w[0]; b ^= w[1]; c ^= w[2]; d ^= w[3];
    }
    for (; i < bytes; i++) a += p[i];
    return a ^ b ^ c ^ d;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static uint64_t read_avx2(const unsigned char *p, size_t bytes) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a = _mm256_xor_si256(a, _mm256_loadu_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a);
    return out[0] ^ out[1] ^ out[2] ^ out[3] ^ read_scalar(p + i, bytes - i);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const unsigned char *p, size_t bytes) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a = _mm512_xor_si512(a, _mm512_loadu_si512((const void *)(p + i)));
        b = _mm512_xor_si512(b, _mm512_loadu_si512((const void *)(p + i + 64)));
        c = _mm512_xor_si512(c, _mm512_loadu_si512((const void *)(p + i + 128)));
        d = _mm512_xor_si512(d, _mm512_loadu_si512((const void *)(p + i + 192)));
    }
    a = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
    uint64_t out[8];
    _mm512_storeu_si512((void *)out, a);
    uint64_t r = 0;
    for (int k = 0; k < 8; k++) r ^= out[k];
    return r ^ read_scalar(p + i, bytes - i);
}
#endif

uint64_t bench_stream_read(const void *p, size_t bytes) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return read_avx512(p, bytes);
    if (__builtin_cpu_supports("avx2")) return read_avx2(p, bytes);
#endif
    return read_scalar(p, bytes);
}

const char *bench_stream_isa(void) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return "avx512";
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "scalar";
}
