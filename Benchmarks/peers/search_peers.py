#!/usr/bin/env python3
"""Times the libraries users would pick instead of kbindex on exactly the vectors kbindex scans.

Run through run_peers.sh, which makes the virtual environment. Reads a folder exported by
`kbindex-bench search --export DIR`:

  meta.json          {"rows": N, "dims": D, "queries": Q}
  base_f32.bin       N×D float32, row-major, little-endian (the float vectors before quantization)
  base_i8.bin        N×D int8 (kbindex's quantized rows, without the row padding)
  queries_f32.bin    Q×D float32
  queries_i8.bin     Q×D int8 (each query quantized as kbindex does)

and prints one JSON object: {"threads": T, "k": K, "peers": {name: {"p50_ms", "batch_qps",
"recall_at_k"}}}, where recall is against exact float32 search on base_f32. The thread count
is set through the environment before numpy/faiss load (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS)
and through each library's own setting.
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=200, help="queries per batched call")
    ap.add_argument("--single", type=int, default=50, help="single queries timed for the p50")
    ap.add_argument("--peers", default="faiss_sq8,faiss_flatip,usearch_i8,numpy_f32")
    args = ap.parse_args()

    # Before numpy and faiss load their thread pools.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    meta = json.load(open(os.path.join(args.folder, "meta.json")))
    n, d, nq = meta["rows"], meta["dims"], meta["queries"]

    def load(name, dtype, rows):
        a = np.fromfile(os.path.join(args.folder, name), dtype=dtype)
        if a.size != rows * d:
            sys.exit(f"error: {name} holds {a.size} values, expected {rows}×{d}")
        return a.reshape(rows, d)

    base_f32 = load("base_f32.bin", np.float32, n)
    base_i8 = load("base_i8.bin", np.int8, n)
    q_f32 = load("queries_f32.bin", np.float32, nq)
    q_i8 = load("queries_i8.bin", np.int8, nq)
    k = args.k

    # The reference for recall: exact float32 inner product.
    truth = [set(np.argpartition(-(base_f32 @ q), k)[:k].tolist()) for q in q_f32[: args.single]]

    def recall(found):
        return sum(len(truth[i] & set(map(int, found[i]))) for i in range(len(truth))) / (k * len(truth))

    def measure(single, batch):
        """single(q_index) -> ids; batch(lo, hi) -> None. Returns p50 ms, batched qps, recall."""
        single(0)  # warm up
        times, found = [], []
        for i in range(min(args.single, nq)):
            t0 = time.perf_counter()
            ids = single(i)
            times.append(time.perf_counter() - t0)
            found.append(ids)
        times.sort()
        p50 = times[(len(times) - 1) // 2] * 1000
        b = min(args.batch, nq)
        batch(0, b)  # warm up
        reps, t0 = 0, time.perf_counter()
        while True:
            batch(0, b)
            reps += 1
            if time.perf_counter() - t0 > 1.0 and reps >= 2:
                break
        qps = reps * b / (time.perf_counter() - t0)
        return {"p50_ms": p50, "batch_qps": qps, "recall_at_k": recall(found)}

    results = {}
    wanted = args.peers.split(",")
    if "faiss_sq8" in wanted or "faiss_flatip" in wanted:
        import faiss
        faiss.omp_set_num_threads(args.threads)
        if "faiss_sq8" in wanted:
            idx = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            idx.train(base_f32)
            idx.add(base_f32)
            results["faiss_sq8"] = measure(lambda i: idx.search(q_f32[i : i + 1], k)[1][0],
                                           lambda lo, hi: idx.search(q_f32[lo:hi], k))
        if "faiss_flatip" in wanted:
            flat = faiss.IndexFlatIP(d)
            flat.add(base_f32)
            results["faiss_flatip"] = measure(lambda i: flat.search(q_f32[i : i + 1], k)[1][0],
                                              lambda lo, hi: flat.search(q_f32[lo:hi], k))
    if "usearch_i8" in wanted:
        from usearch.index import MetricKind, search
        # Cosine, not IP: kbindex's int8 rows each have their own scale, which usearch's i8
        # vectors do not carry, so the raw int8 inner product ranks rows by the wrong number
        # (recall@10 0.52 on random unit vectors). On unit vectors (kbindex's, and these) the
        # cosine of the int8 rows ranks like the float inner product.
        def us(lo, hi):
            return search(base_i8, q_i8[lo:hi], k, MetricKind.Cos, exact=True, threads=args.threads)
        results["usearch_i8"] = measure(lambda i: np.asarray(us(i, i + 1).keys).reshape(-1),
                                        lambda lo, hi: us(lo, hi))
    if "numpy_f32" in wanted:
        def np_single(i):
            s = base_f32 @ q_f32[i]
            return np.argpartition(-s, k)[:k]
        def np_batch(lo, hi):
            s = q_f32[lo:hi] @ base_f32.T
            np.argpartition(-s, k, axis=1)[:, :k]
        results["numpy_f32"] = measure(np_single, np_batch)

    print(json.dumps({"threads": args.threads, "k": k, "rows": n, "dims": d, "peers": results}))


if __name__ == "__main__":
    main()
