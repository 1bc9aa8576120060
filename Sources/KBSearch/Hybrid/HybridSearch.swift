import Dispatch
import Foundation

/// Vector and BM25 search of the same questions, run side by side and fused (`Fusion`).
public enum HybridSearch {
    /// The `k` best chunks for each question by `fusion`. `texts[j]` is question j's text
    /// (for BM25) and `vectors[j]` its embedding. Each list is read `Fusion.depth` deep (at
    /// least k). The vector scan of all questions and their BM25 scoring run at the same
    /// time; both honour `documentFilter`. `statistics` are the index's BM25 statistics when
    /// the caller keeps them (a searcher computes them once per index generation); nil
    /// computes them here.
    ///
    /// Throws `LexicalUnavailable` when a segment has no LEXICAL section, or `SegmentError`
    /// when one is damaged.
    /// Cost: one vector scan of the index for the whole batch, O(postings of each question's
    /// terms), O(live chunks) for the BM25 statistics unless given, and for convex fusion one dot
    /// product per chunk that BM25 found and the scan did not.
    /// - Precondition: `texts.count == vectors.count`.
    public static func topK(texts: [String], vectors: [[Float]], k: Int, in index: IndexDirectory,
                            documentFilter: DocumentFilter? = nil, fusion: Fusion.Options = Fusion.Options(),
                            search: Search.Options = Search.Options(),
                            statistics: LexicalSearch.Statistics? = nil) throws -> [[FusedHit]] {
        precondition(texts.count == vectors.count, "\(texts.count) texts, \(vectors.count) vectors")
        guard k > 0, !texts.isEmpty else { return Array(repeating: [], count: texts.count) }
        let depth = max(k, Fusion.depth)
        let work = Work(count: texts.count, filter: documentFilter)
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            if part == 0 {
                work.vector = Search.topK(batch: vectors, k: depth, in: index, documentFilter: work.filter, options: search)
            } else {
                do {
                    let statistics = try statistics ?? LexicalSearch.Statistics(index)
                    work.lexical = try texts.map { try LexicalSearch.scores($0, statistics: statistics) }
                } catch {
                    work.error = error
                }
            }
        }
        if let error = work.error { throw error }
        let selection = LexicalSearch.DocumentSelection(index, documentFilter)
        return texts.indices.map { j in
            let scores = work.lexical[j]
            let lexical = scores.top(depth, in: index, selection: selection)
            switch fusion.method {
            case .rrf:
                return Fusion.reciprocalRank(vector: work.vector[j], lexical: lexical, k: k, options: fusion)
            case .convex:
                return Fusion.convex(vector: work.vector[j], lexical: lexical, k: k, alpha: fusion.alpha,
                                     cosine: { Search.scores(vectors[j], of: $0, in: index, kernel: search.kernel) },
                                     bm25: { scores[$0, $1] })
            }
        }
    }

    /// The two halves' input and results; each half writes only its own fields, and they are
    /// read after both have finished. While both run, only the vector half calls the filter.
    private final class Work: @unchecked Sendable {
        let filter: DocumentFilter?
        var vector: [[Hit]]
        var lexical: [LexicalSearch.Scores] = []
        var error: Error?
        init(count: Int, filter: DocumentFilter?) {
            vector = Array(repeating: [], count: count)
            self.filter = filter
        }
    }
}
