import Foundation
import KBFormat

/// Why a lexical search cannot run.
public struct LexicalUnavailable: Error, CustomStringConvertible, Sendable {
    public let segment: String
    public var description: String {
        "segment \(segment) has no LEXICAL section (it was built before BM25 search existed)"
    }
}

/// BM25 (Okapi, k1 = 1.2, b = 0.75) over the LEXICAL sections of every segment, with
/// statistics over the whole index's live chunks (format-spec.md §8.11):
///
///     score(c) = Σ_t idf(t) · tf(t,c)·(k1 + 1) / (tf(t,c) + k1·(1 − b + b·len(c)/avglen))
///     idf(t)   = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))
///
/// over the distinct terms t of the query (`LexicalTokenizer`), where N is the number of live
/// chunks, avglen their mean length in terms, and df(t) the number of live chunks holding t.
/// Deleted chunks count nowhere. A document filter limits which chunks are returned, not
/// the statistics. Ties break by (segment, chunk) ascending.
///
/// Each segment is searched with the query cut by its own LEXICAL section's tokenizer
/// version, so segments written by older versions keep their meaning. When versions differ
/// (an old index plus an incremental build), Q_v is the query's distinct terms under version
/// v, and df(t) sums, over the segments whose version v has t in Q_v, their live chunks
/// holding t; a chunk scores the terms of its own segment's Q_v. N and avglen cover every
/// live chunk. With one version this is plain BM25.
public enum LexicalSearch {
    public static let k1 = 1.2
    public static let b = 0.75

    /// Whether every segment of `index` has a LEXICAL section.
    public static func isAvailable(in index: IndexDirectory) -> Bool { index.segments.allSatisfy { $0.lexical != nil } }

    /// The index-wide BM25 statistics: which chunks are live, how many, and their mean length.
    /// Compute them once per opened index and pass them to every query of a batch.
    public struct Statistics: Sendable {
        let lexicals: [LexicalIndex]
        /// The tokenizer versions of the segments, each once, ascending.
        public let tokenizerVersions: [Int]
        /// live[s][c]: chunk c of segment s is not deleted.
        let live: [[Bool]]
        /// N, the number of live chunks, and avglen, their mean length in terms.
        public let liveChunks: Int
        public let averageLength: Double

        /// Throws `LexicalUnavailable` when a segment has no LEXICAL section.
        /// Cost: O(chunks).
        public init(_ index: IndexDirectory) throws {
            var lexicals: [LexicalIndex] = []
            for seg in index.segments {
                guard let l = seg.lexical else { throw LexicalUnavailable(segment: seg.path) }
                lexicals.append(l)
            }
            var live: [[Bool]] = []
            var n = 0, totalLength = 0
            for (s, seg) in index.segments.enumerated() {
                var l = [Bool](repeating: true, count: seg.chunkCount)
                for c in 0..<seg.chunkCount {
                    if index.isDeleted(segment: s, document: seg.documentIndex(ofChunk: c)) { l[c] = false; continue }
                    n += 1
                    totalLength += lexicals[s].length(ofChunk: c)
                }
                live.append(l)
            }
            self.lexicals = lexicals
            tokenizerVersions = Set(lexicals.map(\.tokenizerVersion)).sorted()
            self.live = live
            liveChunks = n
            averageLength = max(Double(totalLength) / Double(max(n, 1)), 1e-9)
        }
    }

    /// Every live chunk's BM25 score for one query: chunks without a query term score 0.
    public struct Scores: Sendable {
        /// byChunk[s][c] = score of chunk c of segment s (dense: one slot per chunk).
        let byChunk: [[Double]]
        /// touched[s]: the chunks of segment s with a score above 0, in first-scored order.
        let touched: [[Int32]]

        /// The score of a chunk (0 when it holds no query term or is deleted). O(1).
        public subscript(segment: Int, chunk: Int) -> Double {
            guard segment >= 0, segment < byChunk.count, chunk >= 0, chunk < byChunk[segment].count else { return 0 }
            return byChunk[segment][chunk]
        }

        /// The `k` best, ties broken by (segment, chunk) ascending, among chunks whose document
        /// passes `documentFilter` (nil = all). O(documents) for the filter plus O(scored · log k).
        public func top(_ k: Int, in index: IndexDirectory, documentFilter: DocumentFilter? = nil) -> [Hit] {
            top(k, in: index, selection: DocumentSelection(index, documentFilter))
        }

        /// `top(_:in:documentFilter:)` with the filter already applied to every document, so a
        /// batch of questions evaluates it once. O(scored · log k): a bounded heap, not a sort
        /// of every scored chunk (a frequent word scores most of a large index).
        public func top(_ k: Int, in index: IndexDirectory, selection: DocumentSelection) -> [Hit] {
            guard k > 0 else { return [] }
            let allowed = selection.allowed
            var best = ScoredHeap(k: k)
            for (s, chunks) in touched.enumerated() {
                let scores = byChunk[s]
                let bitmap = allowed[s]
                for c32 in chunks {
                    let c = Int(c32)
                    if let bitmap, !bitmap[index.segments[s].documentIndex(ofChunk: c)] { continue }
                    best.offer(scores[c], s, c)
                }
            }
            return best.sorted().map { Hit(segment: $0.s, chunk: $0.c, score: Float($0.score)) }
        }
    }

    /// The k best (score, segment, chunk) by score descending, then (segment, chunk)
    /// ascending: a min-heap whose root is the worst kept. O(log k) per offer.
    struct ScoredHeap {
        typealias Entry = (score: Double, s: Int, c: Int)
        let k: Int
        private var heap: [Entry] = []

        init(k: Int) { self.k = k; heap.reserveCapacity(Swift.min(k, 4096)) }

        /// True when `a` ranks below `b`.
        @inline(__always)
        static func worse(_ a: Entry, _ b: Entry) -> Bool {
            if a.score != b.score { return a.score < b.score }
            return (a.s, a.c) > (b.s, b.c)
        }

        mutating func offer(_ score: Double, _ s: Int, _ c: Int) {
            let e = (score, s, c)
            if heap.count < k {
                heap.append(e)
                var i = heap.count - 1
                while i > 0 {
                    let parent = (i - 1) / 2
                    guard Self.worse(heap[i], heap[parent]) else { break }
                    heap.swapAt(i, parent)
                    i = parent
                }
            } else if Self.worse(heap[0], e) {
                heap[0] = e
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count && Self.worse(heap[l], heap[m]) { m = l }
                    if r < heap.count && Self.worse(heap[r], heap[m]) { m = r }
                    if m == i { break }
                    heap.swapAt(i, m)
                    i = m
                }
            }
        }

        /// Best first.
        func sorted() -> [Entry] { heap.sorted { Self.worse($1, $0) } }
    }

    /// BM25 of every live chunk holding a term of `query`, with the index-wide `statistics`.
    /// Throws `SegmentError` when a segment's LEXICAL section is damaged.
    /// Cost: O(chunks) to clear the score slots, plus O(postings of the query's terms).
    public static func scores(_ query: String, statistics st: Statistics) throws -> Scores {
        // The query's terms under each tokenizer version of the index (Q_v), and their union,
        // in ascending UTF-8 byte order (the order the scores are summed in).
        var termsOf: [Int: Set<[UInt8]>] = [:]
        for v in st.tokenizerVersions { termsOf[v] = Set(LexicalTokenizer.terms(query, version: v).map { Array($0.utf8) }) }
        let terms = termsOf.values.reduce(into: Set<[UInt8]>()) { $0.formUnion($1) }.sorted { $0.lexicographicallyPrecedes($1) }
        var scores: [[Double]] = st.lexicals.map { _ in [] }
        var touched: [[Int32]] = Array(repeating: [], count: st.lexicals.count)
        guard st.liveChunks > 0, !terms.isEmpty else { return Scores(byChunk: scores, touched: touched) }
        let n = Double(st.liveChunks), avg = st.averageLength
        let single = st.tokenizerVersions.count == 1
        for bytes in terms {
            var lists: [(Int, Postings)] = []
            var df = 0
            for s in st.lexicals.indices {
                if !single, termsOf[st.lexicals[s].tokenizerVersion]?.contains(bytes) != true { continue }
                guard let p = try st.lexicals[s].postings(bytes) else { continue }
                df += p.chunks.reduce(0) { $0 + (st.live[s][$1] ? 1 : 0) }
                lists.append((s, p))
            }
            guard df > 0 else { continue }
            let idf = log(1 + (n - Double(df) + 0.5) / (Double(df) + 0.5))
            for (s, p) in lists {
                if scores[s].isEmpty { scores[s] = [Double](repeating: 0, count: st.live[s].count) }
                let lexical = st.lexicals[s]
                scores[s].withUnsafeMutableBufferPointer { slot in
                    for (c, f) in zip(p.chunks, p.frequencies) where st.live[s][c] {
                        let tf = Double(f), len = Double(lexical.length(ofChunk: c))
                        if slot[c] == 0 { touched[s].append(Int32(c)) }
                        slot[c] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg))
                    }
                }
            }
        }
        return Scores(byChunk: scores, touched: touched)
    }

    /// Which documents of each segment results may come from: a `DocumentFilter` evaluated
    /// once per document. O(documents) to make.
    public struct DocumentSelection: Sendable {
        let allowed: [DocumentBitmap?]  // nil: every document of that segment

        public init(_ index: IndexDirectory, _ filter: DocumentFilter?) {
            allowed = index.segments.map { seg in filter.map { f in DocumentBitmap(count: seg.documentCount) { f(seg, $0) } } }
        }
    }

    /// The `k` best chunks for `query` by BM25. Throws `LexicalUnavailable` when a segment
    /// has no LEXICAL section, or `SegmentError` when one is damaged.
    /// Cost: O(live chunks) for the statistics plus O(postings of the query's terms).
    public static func topK(_ query: String, k: Int, in index: IndexDirectory, documentFilter: DocumentFilter? = nil) throws -> [Hit] {
        try scores(query, statistics: Statistics(index)).top(k, in: index, documentFilter: documentFilter)
    }
}
