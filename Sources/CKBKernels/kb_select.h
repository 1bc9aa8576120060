// The selection rule every kernel family's dispatch shares (dot.c's scan kernels, gemm_i8.c's
// GEMM kernels): the first of `by_preference` this CPU supports, unless `forced` (an environment
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
    int best = by_preference[count - 1];
    for (size_t i = 0; i < count; i++)
        if (supported(by_preference[i])) { best = by_preference[i]; break; }
    if (forced && *forced) {
        for (int k = first; k <= last; k++)
            if (strcmp(forced, name(k)) == 0) return supported(k) ? k : best;
    }
    return best;
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
#endif
