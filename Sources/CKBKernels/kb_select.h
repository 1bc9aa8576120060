// What every kernel family shares (dot.c's and scan*.c's scan kernels, gemm_i8.c's GEMM kernels):
// the dispatch rule, CPU feature checks that compilers' builtins lack, and the function
// attributes that mark each instruction set's code.
// The selection rule: the first of `by_preference` this CPU supports, unless `forced` (an environment
// variable's value, or NULL) names a kernel of ids first...last that it supports; a forced name
// the CPU cannot run, or an unknown one, falls back to the best. Ids are passed as ints so one
// definition serves every family's enum. Private to CKBKernels.
#ifndef KB_SELECT_H
#define KB_SELECT_H
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static inline int kb_select_kernel(const int *by_preference, size_t count, int first, int last,
                                   int (*supported)(int), const char *(*name)(int), const char *forced) {
    // A supported forced kernel is returned without probing the others: probing AMX asks the
    // OS for a process-wide permission, which forcing another kernel must avoid.
    if (forced && *forced) {
        for (int k = first; k <= last; k++)
            if (strcmp(forced, name(k)) == 0 && supported(k)) return k;
    }
    for (size_t i = 0; i < count; i++)
        if (supported(by_preference[i])) return by_preference[i];
    return by_preference[count - 1];
}

// The choice of `select` for environment variable `env`, made once and cached in *cache (-1
// until then). A racing first call in two threads computes the same value from the same
// environment; the atomic load/store makes the publication well-defined.
static inline int kb_cached_kernel(int *cache, int (*select)(const char *), const char *env) {
    int v = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (v < 0) {
        v = select(getenv(env));
        __atomic_store_n(cache, v, __ATOMIC_RELEASE);
    }
    return v;
}

#define KB_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__)
#include <cpuid.h>
// Functions that use one instruction set beyond the baseline. Code of one may inline code of
// a subset (AVX2 helpers into AVX-VNNI functions), never the other way round.
#define KB_AVX2_T __attribute__((target("avx2")))
#define KB_AVXVNNI_T __attribute__((target("avx2,avxvnni")))
#define KB_VNNI_T __attribute__((target("avx512f,avx512bw,avx512vnni")))

#include <immintrin.h>
// The sum of the int32 lanes (wrapping).
KB_AVX2_T KB_INLINE int32_t kb_hsum128(__m128i s) {
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

KB_AVX2_T KB_INLINE int32_t kb_hsum256(__m256i v) {
    return kb_hsum128(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

// The `left` (< 32) bytes at p, zero-filled to 32 bytes: a row's or query's last partial
// vector, never read past its end.
KB_AVX2_T KB_INLINE __m256i kb_load_partial32(const int8_t *p, size_t left) {
    int8_t buf[32] = {0};
    memcpy(buf, p, left);
    return _mm256_loadu_si256((const __m256i *)buf);
}

// AMX with int8 tiles (tdpbssd), usable by this process: CPUID.(EAX=7, ECX=0):EDX[24, 25]
// (AMX-TILE, AMX-INT8), and on Linux the kernel's permission for the tile data state, which a
// process must ask for once (arch_prctl ARCH_REQ_XCOMP_PERM) before its first tile
// instruction; a kernel that refuses it (older than 5.16, a hypervisor hiding the state, or a
// thread of the process already on an alternate signal stack too small for the tile state)
// makes AMX unavailable. Asked once per translation unit and cached; only when the scan's
// kernel is chosen without KBINDEX_KERNEL naming another supported kernel, or when a caller
// asks whether amx is supported. The permission is process-wide and lasts: later
// sigaltstack() calls smaller than the larger signal frame (~11 KB) fail with ENOMEM, and the
// first tile instruction of each thread has the kernel allocate its save area. A process that
// must avoid both sets KBINDEX_KERNEL=avx512vnni.
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
static inline int kb_x86_has_amx_int8(void) {
    static int cache = -1;
    int v = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);
    if (v < 0) {
        unsigned eax, ebx, ecx, edx;
        v = 0;
#if defined(__linux__) && defined(SYS_arch_prctl)
        if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && ((edx >> 24) & 3) == 3)
            v = syscall(SYS_arch_prctl, (unsigned long)0x1023 /* ARCH_REQ_XCOMP_PERM */,
                        (unsigned long)18 /* XFEATURE_XTILEDATA */) == 0;
#else
        (void)eax; (void)ebx; (void)ecx; (void)edx;
#endif
        __atomic_store_n(&cache, v, __ATOMIC_RELEASE);
    }
    return v;
}

// AVX-VNNI (VEX-encoded vpdpbusd on xmm/ymm): CPUID.(EAX=7, ECX=1):EAX[4]. Compilers' cpu
// feature builtins do not all know it, so it is asked of CPUID directly.
static inline int kb_x86_has_avxvnni(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    return (eax >> 4) & 1;
}
#endif

#if defined(__aarch64__)
// AArch64's dot-product extension (sdot): a compile-time fact when the target has it, else
// asked of the OS once per translation unit and cached. KB_DOTPROD_T marks the functions
// that use it.
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#if defined(__ARM_FEATURE_DOTPROD)
#define KB_DOTPROD_T
#else
#define KB_DOTPROD_T __attribute__((target("dotprod")))
#endif

static inline int kb_arm_has_dotprod(void) {
#if defined(__ARM_FEATURE_DOTPROD)
    return 1;
#else
    static volatile int cache = -1;
    int dp = __atomic_load_n(&cache, __ATOMIC_RELAXED);
    if (dp < 0) {
#if defined(__linux__)
        dp = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
        int v = 0;
        size_t len = sizeof v;
        dp = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v != 0;
#else
        dp = 0;
#endif
        __atomic_store_n(&cache, dp, __ATOMIC_RELAXED);
    }
    return dp;
#endif
}

// AArch64's int8 matrix-multiply extension (smmla, FEAT_I8MM, Armv8.6): the same way, from
// AT_HWCAP2 on Linux. KB_I8MM_T marks the functions that use it.
#if defined(__ARM_FEATURE_MATMUL_INT8)
#define KB_I8MM_T
#else
#define KB_I8MM_T __attribute__((target("i8mm")))
#endif

static inline int kb_arm_has_i8mm(void) {
#if defined(__ARM_FEATURE_MATMUL_INT8)
    return 1;
#else
    static volatile int cache = -1;
    int mm = __atomic_load_n(&cache, __ATOMIC_RELAXED);
    if (mm < 0) {
#if defined(__linux__)
        mm = (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#elif defined(__APPLE__)
        int v = 0;
        size_t len = sizeof v;
        mm = sysctlbyname("hw.optional.arm.FEAT_I8MM", &v, &len, NULL, 0) == 0 && v != 0;
#else
        mm = 0;
#endif
        __atomic_store_n(&cache, mm, __ATOMIC_RELAXED);
    }
    return mm;
#endif
}
#endif
#endif
