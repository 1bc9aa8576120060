import Foundation
import KBFormat

/// Why a lexical search cannot run.
public struct LexicalUnavailable: Error, CustomStringConvertible, Sendable {
    public let segment: String
    public var description: String {
        "segment \(segment) has no LEXICAL section (it was built before BM25 search existed): rebuild the index with 'kbindex build --rebuild'"
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

    /// The `k` best chunks for `query` by BM25. Throws `LexicalUnavailable` when a segment
    /// has no LEXICAL section, or `SegmentError` when one is damaged.
    /// Cost: O(live chunks) for the statistics plus O(postings of the query's terms).
    public static func topK(_ query: String, k: Int, in index: IndexDirectory, documentFilter: DocumentFilter? = nil) throws -> [Hit] {
        var lexicals: [LexicalIndex] = []
        for seg in index.segments {
            guard let l = seg.lexical else { throw LexicalUnavailable(segment: seg.path) }
            lexicals.append(l)
        }
        let terms = Array(Set(LexicalTokenizer.terms(query))).sorted()
        guard k > 0, !terms.isEmpty else { return [] }

        // Live chunks and their lengths.
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
        guard n > 0 else { return [] }
        let avg = max(Double(totalLength) / Double(n), 1e-9)

        var scores: [[Int: Double]] = Array(repeating: [:], count: index.segments.count)
        for t in terms {
            let bytes = Array(t.utf8)
            var lists: [(Int, Postings)] = []
            var df = 0
            for s in lexicals.indices {
                guard let p = try lexicals[s].postings(bytes) else { continue }
                df += p.chunks.reduce(0) { $0 + (live[s][$1] ? 1 : 0) }
                lists.append((s, p))
            }
            guard df > 0 else { continue }
            let idf = log(1 + (Double(n) - Double(df) + 0.5) / (Double(df) + 0.5))
            for (s, p) in lists {
                for (c, f) in zip(p.chunks, p.frequencies) where live[s][c] {
                    let tf = Double(f), len = Double(lexicals[s].length(ofChunk: c))
                    scores[s][c, default: 0] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg))
                }
            }
        }
        var allowed: [DocumentBitmap?] = Array(repeating: nil, count: index.segments.count)
        if let documentFilter {
            for (s, seg) in index.segments.enumerated() { allowed[s] = DocumentBitmap(count: seg.documentCount) { documentFilter(seg, $0) } }
        }
        var all: [(s: Int, c: Int, score: Double)] = []
        for (s, m) in scores.enumerated() {
            for (c, v) in m where allowed[s].map({ $0[index.segments[s].documentIndex(ofChunk: c)] }) ?? true { all.append((s, c, v)) }
        }
        all.sort { $0.score != $1.score ? $0.score > $1.score : ($0.s, $0.c) < ($1.s, $1.c) }
        return all.prefix(k).map { Hit(segment: $0.s, chunk: $0.c, score: Float($0.score)) }
    }
}

/// A hit of a hybrid search: where it ranked in each list, and the fused result.
public struct FusedHit: Sendable, Equatable {
    public var segment: Int
    public var chunk: Int
    /// Reciprocal rank fusion score: Σ weight / (constant + rank) over the lists that hold it.
    public var score: Double
    /// Its rank (1-based) and score in the vector and lexical lists, when it is in them.
    public var vectorRank: Int?, vectorScore: Float?
    public var lexicalRank: Int?, lexicalScore: Float?
}

/// Reciprocal rank fusion of a vector and a lexical ranking.
public enum Fusion {
    public struct Options: Sendable, Equatable {
        /// The constant c in weight / (c + rank); 60 as in Cormack et al. (2009).
        public var constant: Double = 60
        public var vectorWeight: Double = 1
        public var lexicalWeight: Double = 1
        public init(constant: Double = 60, vectorWeight: Double = 1, lexicalWeight: Double = 1) {
            self.constant = constant
            self.vectorWeight = vectorWeight
            self.lexicalWeight = lexicalWeight
        }
    }

    /// How deep each list is read before fusing (at least k).
    public static let depth = 100

    /// Fuses the two rankings (best first) and returns the best `k`; ties break by
    /// (segment, chunk). O((|vector| + |lexical|) log).
    public static func fuse(vector: [Hit], lexical: [Hit], k: Int, options: Options = Options()) -> [FusedHit] {
        var byKey: [Int: FusedHit] = [:]
        func add(_ list: [Hit], weight: Double, _ mark: (inout FusedHit, Int, Float) -> Void) {
            for (r, h) in list.enumerated() {
                let key = h.segment << 40 | h.chunk
                var f = byKey[key] ?? FusedHit(segment: h.segment, chunk: h.chunk, score: 0)
                mark(&f, r + 1, h.score)
                f.score += weight / (options.constant + Double(r + 1))
                byKey[key] = f
            }
        }
        add(vector, weight: options.vectorWeight) { f, rank, score in f.vectorRank = rank; f.vectorScore = score }
        add(lexical, weight: options.lexicalWeight) { f, rank, score in f.lexicalRank = rank; f.lexicalScore = score }
        return Array(byKey.values.sorted { $0.score != $1.score ? $0.score > $1.score : ($0.segment, $0.chunk) < ($1.segment, $1.chunk) }.prefix(k))
    }
}
