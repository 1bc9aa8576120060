import Foundation
import KBFormat

/// One result of a search: where the chunk is and how well it scored.
public struct Hit: Sendable, Equatable {
    /// Index of the segment in the manifest, and of the chunk in that segment.
    public var segment: Int
    public var chunk: Int
    /// Approximate cosine similarity from the int8 vectors (float query · dequantized chunk).
    public var score: Float
}

/// Exact top-k over every chunk of an index.
///
/// The query is quantized once; every row's score is `scale_q · scale_d · Σ q_q[i]·q_d[i]`
/// computed in integers (`Scoring.dot`), so ranking follows the float dot product of the two
/// dequantized vectors. Ties break by (segment, chunk) ascending, so results are deterministic.
public enum Search {
    /// The `k` best chunks for `query` (a float vector of the index's dimensions) among
    /// chunks whose document passes `documentFilter` (nil = all).
    ///
    /// Cost: O(chunks · dims) integer multiply-adds, O(k) memory for the heap.
    /// - Precondition: `query.count` equals every segment's dimensions; `k ≥ 0`.
    public static func topK(_ query: [Float], k: Int, in index: IndexDirectory,
                            documentFilter: ((SegmentReader, Int) -> Bool)? = nil) -> [Hit] {
        guard k > 0 else { return [] }
        let dims = query.count
        var q = [Int8](repeating: 0, count: dims)
        let (qScale, _) = query.withUnsafeBufferPointer { x in
            q.withUnsafeMutableBufferPointer { Quantization.quantize(x, into: $0) }
        }
        var heap = TopK(k: k)
        for (s, segment) in index.segments.enumerated() {
            precondition(segment.dimensions == dims, "query has \(dims) dimensions, segment \(segment.path) has \(segment.dimensions)")
            // Which documents pass the filter: decided once per document, not per chunk.
            var allowed: [Bool]? = nil
            if let documentFilter {
                allowed = (0..<segment.documentCount).map { documentFilter(segment, $0) }
            }
            q.withUnsafeBufferPointer { qp in
                for row in 0..<segment.chunkCount {
                    if let allowed, !allowed[segment.documentIndex(ofChunk: row)] { continue }
                    let d = Scoring.dot(qp.baseAddress!, segment.vectorBase + row * segment.rowStride, count: dims)
                    heap.offer(Hit(segment: s, chunk: row, score: qScale * segment.scale(ofChunk: row) * Float(d)))
                }
            }
        }
        return heap.sorted()
    }
}

/// The row-scoring primitive: the one function the SIMD kernels replace.
public enum Scoring {
    /// Σ a[i]·b[i] over `count` int8 values, accumulated exactly in Int32.
    /// - Precondition: `count ≤ 133_152` (so 127·127·count fits in Int32).
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Int8>, _ b: UnsafePointer<Int8>, count: Int) -> Int32 {
        var sum: Int32 = 0
        for i in 0..<count { sum &+= Int32(a[i]) &* Int32(b[i]) }
        return sum
    }
}

/// A bounded collection of the k best hits: a min-heap on (score, then reverse position), so
/// the worst kept hit is at the root and a better one replaces it in O(log k).
struct TopK {
    let k: Int
    private(set) var heap: [Hit] = []

    init(k: Int) { self.k = k; heap.reserveCapacity(k) }

    /// True when `a` ranks below `b`: lower score, or equal score and later position.
    @inline(__always)
    static func worse(_ a: Hit, _ b: Hit) -> Bool {
        if a.score != b.score { return a.score < b.score }
        return (a.segment, a.chunk) > (b.segment, b.chunk)
    }

    mutating func offer(_ h: Hit) {
        if heap.count < k {
            heap.append(h)
            siftUp(heap.count - 1)
        } else if Self.worse(heap[0], h) {
            heap[0] = h
            siftDown(0)
        }
    }

    /// Best first.
    func sorted() -> [Hit] { heap.sorted { Self.worse($1, $0) } }

    private mutating func siftUp(_ i: Int) {
        var i = i
        while i > 0 {
            let p = (i - 1) / 2
            guard Self.worse(heap[i], heap[p]) else { return }
            heap.swapAt(i, p)
            i = p
        }
    }

    private mutating func siftDown(_ i: Int) {
        var i = i
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, Self.worse(heap[l], heap[m]) { m = l }
            if r < heap.count, Self.worse(heap[r], heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
