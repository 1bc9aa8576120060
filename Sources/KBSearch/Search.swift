import Dispatch
import Foundation
import KBFormat
import KBKernels
import Synchronization

/// One result of a search: where the chunk is and how well it scored.
public struct Hit: Sendable, Equatable {
    /// Index of the segment in the manifest, and of the chunk in that segment.
    public var segment: Int
    public var chunk: Int
    /// Approximate cosine similarity from the int8 vectors: scale_query · (scale_chunk · Σ q·d),
    /// the float dot product of the two dequantized vectors up to float rounding.
    public var score: Float

    public init(segment: Int, chunk: Int, score: Float) {
        self.segment = segment
        self.chunk = chunk
        self.score = score
    }
}

/// Which documents a search may return: decided once per document of each segment, before
/// the scan, and applied to every row during it (a bitmap over documents), so a filtered
/// search still returns k hits whenever k chunks pass.
public typealias DocumentFilter = (SegmentReader, Int) -> Bool

/// Exact top-k over every chunk of an index.
///
/// Each query is quantized once. Rows are split evenly across threads (across segment
/// boundaries) and scanned straight from the mapping, a block at a time, by the CPU's best
/// int8 kernel (`DotKernel.active`), fused with each query's current top-k threshold; each
/// thread keeps its own bounded heap per query, and the heaps are merged at the end. Only the
/// survivors are rescaled by the query's scale. Ties break by (segment, chunk) ascending, so
/// results are the same for every thread count, block size and kernel.
public enum Search {
    /// Parts per thread (see step 3 of `topK(batch:)`).
    static let partsPerThread = 4

    /// How a search runs; the defaults are right for users, the rest is for tests and benchmarks.
    public struct Options: Sendable {
        /// Worker threads (nil: one per core). Small indexes use fewer: each thread gets at
        /// least `minRowsPerThread` rows (divided by the number of queries in a batch, but at
        /// least 64).
        public var threads: Int?
        /// The int8 kernel (nil: `DotKernel.active`).
        public var kernel: DotKernel?
        /// Run the kernel on the generic blocked path rather than its own scan paths (the scan
        /// before them): a baseline for benchmarks, same results.
        public var genericPath = false
        public var minRowsPerThread = 16_384

        public init(threads: Int? = nil, kernel: DotKernel? = nil, genericPath: Bool = false) {
            self.threads = threads
            self.kernel = kernel
            self.genericPath = genericPath
        }
    }

    /// The `k` best chunks for `query` (a float vector of the index's dimensions) among
    /// chunks whose document passes `documentFilter` (nil = all).
    ///
    /// Cost: O(chunks · dims) integer multiply-adds over all threads, O(threads · k) memory.
    /// - Precondition: `query.count` equals every segment's dimensions; `k ≥ 0`.
    public static func topK(_ query: [Float], k: Int, in index: IndexDirectory,
                            documentFilter: DocumentFilter? = nil, options: Options = Options()) -> [Hit] {
        topK(batch: [query], k: k, in: index, documentFilter: documentFilter, options: options)[0]
    }

    /// `topK` for many queries in one pass over the vectors: each block of rows is read from
    /// memory once and scored against every query while it is in cache. Result `j` equals
    /// `topK(queries[j], …)` exactly.
    ///
    /// Cost: O(queries · chunks · dims) multiply-adds, O(chunks · dims) bytes read,
    /// O(threads · queries · k) memory.
    /// - Precondition: every query has the index's dimensions; `k ≥ 0`.
    public static func topK(batch queries: [[Float]], k: Int, in index: IndexDirectory,
                            documentFilter: DocumentFilter? = nil, options: Options = Options()) -> [[Hit]] {
        let nq = queries.count
        guard k > 0, nq > 0, !index.segments.isEmpty else { return Array(repeating: [], count: nq) }
        let dims = queries[0].count
        for seg in index.segments {
            precondition(seg.dimensions == dims, "query has \(dims) dimensions, segment \(seg.path) has \(seg.dimensions)")
        }
        // 1. Quantize every query once.
        let (batch, qScales) = prepare(queries, dimensions: dims, kernel: options.kernel, genericPath: options.genericPath)

        // 2. Which documents pass, as one bitmap per segment: not deleted by a later build,
        // and accepted by the filter. nil: every document passes.
        let allowed: [DocumentBitmap?] = index.segments.indices.map { s in
            let seg = index.segments[s], deleted = index.deletions[s]
            if documentFilter == nil && deleted == nil { return nil }
            return DocumentBitmap(count: seg.documentCount) { d in
                !(deleted?.contains(d) ?? false) && (documentFilter?(seg, d) ?? true)
            }
        }

        // 3. Split the rows into contiguous parts, several per thread, and let each thread
        // claim parts until none are left: a worker that wakes late (the pool's wake-up costs
        // tens of microseconds, as much as a whole scan of a small index) then takes fewer
        // parts instead of leaving the caller to scan everything alone. A thread's share must
        // be worth waking it: minRowsPerThread rows for one query, fewer for a batch (each row
        // costs nq dot products).
        let threads = max(1, options.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let minRows = max(64, options.minRowsPerThread / nq)
        let workers = ScanPlan(segments: index.segments.map(\.chunkCount), threads: threads, minRowsPerThread: minRows).parts.count
        let parts = ScanPlan(segments: index.segments.map(\.chunkCount), threads: workers == 1 ? 1 : workers * Self.partsPerThread,
                             minRowsPerThread: minRows / Self.partsPerThread).parts
        let perThread = UnsafeMutableBufferPointer<[TopK]>.allocate(capacity: workers)
        perThread.initialize(repeating: [])
        defer { perThread.deinitialize(); perThread.deallocate() }
        let shared = SharedScan(index: index, batch: batch, allowed: allowed, k: k, parts: parts, out: perThread)
        if workers == 1 {
            shared.work(thread: 0)
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { w in shared.work(thread: w) }
        }

        // 4. Merge the threads' heaps; rescale only the survivors.
        return (0..<nq).map { j in
            var merged = TopK(k: k)
            for heaps in perThread where !heaps.isEmpty { for h in heaps[j].heap { merged.offer(h) } }
            return merged.sorted().map { Hit(segment: $0.segment, chunk: $0.chunk, score: $0.score * qScales[j]) }
        }
    }
}

extension Search {
    /// The vector scores of the given chunks for `query`, computed exactly as `topK` computes
    /// them (the same quantized query, kernel and rescaling), so a chunk scores the same here
    /// as in any top-k list that holds it. Deleted chunks are scored too: callers choose which
    /// chunks to ask about.
    ///
    /// Cost: O(chunks · dims).
    /// - Precondition: `query` has the index's dimensions; every (segment, chunk) exists.
    public static func scores(_ query: [Float], of chunks: [(segment: Int, chunk: Int)], in index: IndexDirectory,
                              kernel: DotKernel? = nil) -> [Float] {
        guard !chunks.isEmpty else { return [] }
        let (batch, qScales) = prepare([query], dimensions: query.count, kernel: kernel)
        let out = UnsafeMutablePointer<ScanCandidate>.allocate(capacity: 1)
        defer { out.deallocate() }
        var threshold = -Float.infinity
        return chunks.map { c in
            let seg = index.segments[c.segment]
            precondition(seg.dimensions == query.count && c.chunk >= 0 && c.chunk < seg.chunkCount, "no chunk \(c) of dimension \(query.count)")
            let quant = seg.quantBase + c.chunk * seg.quantRecordStride
            let found = batch.scan(rows: seg.vectorBase + c.chunk * seg.rowStride, stride: seg.rowStride, n: 1,
                                   scales: quant, sums: quant + 4, quantStride: seg.quantRecordStride,
                                   thresholds: &threshold, into: out)
            return found == 1 ? out[0].score * qScales[0] : -.infinity
        }
    }

    /// Quantizes every query once into a batch for the scan kernels, with each query's scale.
    static func prepare(_ queries: [[Float]], dimensions dims: Int, kernel: DotKernel?,
                        genericPath: Bool = false) -> (QueryBatch, [Float]) {
        let nq = queries.count
        var q = [Int8](repeating: 0, count: nq * dims)
        var qScales = [Float](repeating: 0, count: nq)
        q.withUnsafeMutableBufferPointer { qb in
            for (j, query) in queries.enumerated() {
                precondition(query.count == dims, "query \(j) has \(query.count) dimensions, not \(dims)")
                query.withUnsafeBufferPointer { x in
                    qScales[j] = Quantization.quantize(x, into: UnsafeMutableBufferPointer(rebasing: qb[j * dims..<(j + 1) * dims])).scale
                }
            }
        }
        return (QueryBatch(queries: q, count: nq, dimensions: dims, kernel: kernel ?? .active, genericPath: genericPath), qScales)
    }
}

/// Everything a scanning thread reads, the next part to claim, and one slot per thread for
/// its heaps.
private final class SharedScan: @unchecked Sendable {
    let index: IndexDirectory
    let batch: QueryBatch
    let allowed: [DocumentBitmap?]
    let k: Int
    let parts: [[ScanPlan.Range]]
    let next = Atomic<Int>(0)
    let out: UnsafeMutableBufferPointer<[TopK]>  // each thread writes only its own slot

    init(index: IndexDirectory, batch: QueryBatch, allowed: [DocumentBitmap?], k: Int, parts: [[ScanPlan.Range]],
         out: UnsafeMutableBufferPointer<[TopK]>) {
        self.index = index
        self.batch = batch
        self.allowed = allowed
        self.k = k
        self.parts = parts
        self.out = out
    }

    /// Claims parts until none are left, scanning their rows into one heap per query, and
    /// stores the heaps in `out[thread]`. Allocates once per call (heaps, thresholds,
    /// candidate buffer), never per row.
    func work(thread: Int) {
        let nq = batch.count
        var heaps = [TopK](repeating: TopK(k: k), count: nq)
        var thresholds = [Float](repeating: -.infinity, count: nq)
        // Rows per kernel call: ~4096 row·query pairs, so the candidate buffer (which must hold
        // every pair, as on the first block) stays in L2.
        let blockRows = max(64, min(4096, (4096 / nq) / 64 * 64))
        let out = UnsafeMutablePointer<ScanCandidate>.allocate(capacity: blockRows * nq)
        defer { out.deallocate() }
        while true {
            let p = next.add(1, ordering: .relaxed).oldValue
            guard p < parts.count else { break }
            for r in parts[p] { scan(r, blockRows: blockRows, heaps: &heaps, thresholds: &thresholds, out: out) }
        }
        self.out[thread] = heaps
    }

    /// Scans one range of one segment's rows, a block at a time: the kernel returns the
    /// candidates at or above each query's threshold; those whose document passes go into
    /// the query's heap, and the thresholds rise with the heaps.
    private func scan(_ r: ScanPlan.Range, blockRows: Int, heaps: inout [TopK], thresholds: inout [Float],
                      out: UnsafeMutablePointer<ScanCandidate>) {
        let seg = index.segments[r.segment]
        let stride = seg.rowStride, base = seg.vectorBase
        let quant = seg.quantBase, quantStride = seg.quantRecordStride
        let docs = allowed[r.segment]
        var start = r.rows.lowerBound
        while start < r.rows.upperBound {
            let n = min(blockRows, r.rows.upperBound - start)
            let found = thresholds.withUnsafeBufferPointer { t in
                batch.scan(rows: base + start * stride, stride: stride, n: n, scales: quant + start * quantStride,
                           sums: quant + start * quantStride + 4, quantStride: quantStride,
                           thresholds: t.baseAddress!, into: out)
            }
            if found > 0 {
                for c in 0..<found {
                    let cand = out[c]
                    let row = start + Int(cand.row)
                    if let docs, !docs[seg.documentIndex(ofChunk: row)] { continue }
                    heaps[Int(cand.query)].offer(Hit(segment: r.segment, chunk: row, score: cand.score))
                }
                for j in 0..<heaps.count { thresholds[j] = heaps[j].threshold }
            }
            start += n
        }
    }
}

/// One bit per document of a segment: whether its chunks may be returned.
struct DocumentBitmap: Sendable {
    private var words: [UInt64]

    /// Evaluates `allows` once per document. O(count).
    init(count: Int, allows: (Int) -> Bool) {
        words = [UInt64](repeating: 0, count: (count + 63) / 64)
        for d in 0..<count where allows(d) { words[d >> 6] |= 1 << UInt64(d & 63) }
    }

    /// Documents past the end (only in a damaged file) are not allowed.
    @inline(__always)
    subscript(d: Int) -> Bool {
        let w = d >> 6
        return w < words.count && words[w] & (1 << UInt64(d & 63)) != 0
    }
}

/// How the rows of all segments are split across threads: contiguous, nearly equal runs of
/// the concatenated rows, each a list of per-segment ranges.
struct ScanPlan {
    struct Range: Equatable {
        var segment: Int
        var rows: Swift.Range<Int>
    }

    let parts: [[Range]]

    /// - Parameters: `segments` holds each segment's row count. At most `threads` parts, each
    ///   with at least `minRowsPerThread` rows (one part when there are fewer rows in all).
    init(segments: [Int], threads: Int, minRowsPerThread: Int) {
        let total = segments.reduce(0, +)
        let n = max(1, min(max(threads, 1), total / max(minRowsPerThread, 1)))
        var parts: [[Range]] = []
        var seg = 0, offset = 0  // position in the concatenation
        for p in 0..<n {
            var want = total * (p + 1) / n - total * p / n
            var ranges: [Range] = []
            while want > 0 && seg < segments.count {
                let take = min(want, segments[seg] - offset)
                if take > 0 { ranges.append(Range(segment: seg, rows: offset..<offset + take)) }
                want -= take
                offset += take
                if offset == segments[seg] { seg += 1; offset = 0 }
            }
            parts.append(ranges)
        }
        self.parts = parts
    }
}
