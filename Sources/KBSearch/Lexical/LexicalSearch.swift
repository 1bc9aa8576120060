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
public enum LexicalSearch {
    public static let k1 = 1.2
    public static let b = 0.75

    /// Whether every segment of `index` has a LEXICAL section.
    public static func isAvailable(in index: IndexDirectory) -> Bool { index.segments.allSatisfy { $0.lexical != nil } }

    /// The index-wide BM25 statistics: which chunks are live, how many, and their mean length.
    /// Compute them once per opened index and pass them to every query of a batch.
    public struct Statistics: Sendable {
        let lexicals: [LexicalIndex]
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
            self.live = live
            liveChunks = n
            averageLength = max(Double(totalLength) / Double(max(n, 1)), 1e-9)
        }
    }

    /// Every live chunk's BM25 score for one query (chunks without a query term score 0 and
    /// are not stored).
    public struct Scores: Sendable {
        /// byChunk[s][c] = score of chunk c of segment s.
        let byChunk: [[Int: Double]]

        /// The score of a chunk (0 when it holds no query term or is deleted).
        public subscript(segment: Int, chunk: Int) -> Double { byChunk[segment][chunk] ?? 0 }

        /// The `k` best, ties broken by (segment, chunk) ascending, among chunks whose document
        /// passes `documentFilter` (nil = all). O(documents) for the filter plus O(scored · log).
        public func top(_ k: Int, in index: IndexDirectory, documentFilter: DocumentFilter? = nil) -> [Hit] {
            top(k, in: index, selection: DocumentSelection(index, documentFilter))
        }

        /// `top(_:in:documentFilter:)` with the filter already applied to every document, so a
        /// batch of questions evaluates it once. O(scored · log).
        public func top(_ k: Int, in index: IndexDirectory, selection: DocumentSelection) -> [Hit] {
            guard k > 0 else { return [] }
            let allowed = selection.allowed
            var all: [(s: Int, c: Int, score: Double)] = []
            for (s, m) in byChunk.enumerated() {
                for (c, v) in m where allowed[s].map({ $0[index.segments[s].documentIndex(ofChunk: c)] }) ?? true { all.append((s, c, v)) }
            }
            all.sort { $0.score != $1.score ? $0.score > $1.score : ($0.s, $0.c) < ($1.s, $1.c) }
            return all.prefix(k).map { Hit(segment: $0.s, chunk: $0.c, score: Float($0.score)) }
        }
    }

    /// BM25 of every live chunk holding a term of `query`, with the index-wide `statistics`.
    /// Throws `SegmentError` when a segment's LEXICAL section is damaged.
    /// Cost: O(postings of the query's terms).
    public static func scores(_ query: String, statistics st: Statistics) throws -> Scores {
        var scores: [[Int: Double]] = Array(repeating: [:], count: st.lexicals.count)
        let terms = Array(Set(LexicalTokenizer.terms(query))).sorted()
        guard st.liveChunks > 0 else { return Scores(byChunk: scores) }
        let n = Double(st.liveChunks), avg = st.averageLength
        for t in terms {
            let bytes = Array(t.utf8)
            var lists: [(Int, Postings)] = []
            var df = 0
            for s in st.lexicals.indices {
                guard let p = try st.lexicals[s].postings(bytes) else { continue }
                df += p.chunks.reduce(0) { $0 + (st.live[s][$1] ? 1 : 0) }
                lists.append((s, p))
            }
            guard df > 0 else { continue }
            let idf = log(1 + (n - Double(df) + 0.5) / (Double(df) + 0.5))
            for (s, p) in lists {
                for (c, f) in zip(p.chunks, p.frequencies) where st.live[s][c] {
                    let tf = Double(f), len = Double(st.lexicals[s].length(ofChunk: c))
                    scores[s][c, default: 0] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg))
                }
            }
        }
        return Scores(byChunk: scores)
    }

    /// Which documents of each segment results may come from: a `DocumentFilter` evaluated
    /// once per document. O(documents) to make.
    public struct DocumentSelection {
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
