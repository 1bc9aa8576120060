// The memory floor for kbindex-bench search: the fastest this CPU reads a buffer, with the
// widest loads it has (AVX-512, else AVX2, else 64-bit words) and several independent
// accumulators, so the loop is bound by memory, not by its own instructions.
#ifndef BENCH_STREAM_H
#define BENCH_STREAM_H
#include <stddef.h>
#include <stdint.h>

/// Reads every byte of [p, p + bytes) once and returns a value that depends on all of them
/// (so the reads cannot be optimized away). `p` needs no alignment.
uint64_t bench_stream_read(const void *p, size_t bytes);
/// "avx512", "avx2" or "scalar": the loads bench_stream_read uses on this CPU.
const char *bench_stream_isa(void);
#endif
