import Foundation

/// A hit of a hybrid search: its fused score, and what each retrieval said about it.
public struct FusedHit: Sendable, Equatable {
    public var segment: Int
    public var chunk: Int
    /// The fused score (see `Fusion.Method`).
    public var score: Double
    /// Its rank (1-based) in the vector and lexical top lists, when it is in them.
    public var vectorRank: Int?, lexicalRank: Int?
    /// Its cosine and BM25 scores: always set by convex fusion (computed for the chunks one
    /// list missed), set by rank fusion only for the lists that hold it.
    public var vectorScore: Float?, lexicalScore: Float?
}

/// How hybrid search combines the vector and the BM25 ranking of the same question.
public enum Fusion {
    public enum Method: String, CaseIterable, Sendable {
        /// Convex combination of scores (the default): over the union of both top lists,
        ///
        ///     fused = α · cosine + (1 − α) · BM25 / (the largest BM25 among the candidates)
        ///
        /// with both scores computed exactly for every candidate, also for the chunks only
        /// one list found. The cosine is already on a fixed scale (−1…1); BM25 is not, so it
        /// is scaled to 0…1 per question. See Bruch, Gai and Ingber (2023), "An Analysis of
        /// Fusion Functions for Hybrid Retrieval".
        case convex
        /// Reciprocal rank fusion (Cormack, Clarke and Büttcher, 2009): a chunk at rank r of
        /// a list adds weight / (c + r); scores themselves are ignored.
        case rrf
    }

    public struct Options: Sendable, Hashable {
        public var method: Method = .convex
        /// α of convex fusion: the cosine's share; 1 − α goes to BM25.
        public var alpha: Double = 0.85
        /// The constant c of rank fusion; 60 as in Cormack et al.
        public var constant: Double = 60
        /// Rank fusion's weight of each list.
        public var vectorWeight: Double = 1
        public var lexicalWeight: Double = 1
        public init(method: Method = .convex, alpha: Double = 0.85, constant: Double = 60, vectorWeight: Double = 1, lexicalWeight: Double = 1) {
            self.method = method
            self.alpha = alpha
            self.constant = constant
            self.vectorWeight = vectorWeight
            self.lexicalWeight = lexicalWeight
        }
    }

    /// How deep each list is read before fusing (at least k).
    public static let depth = 100

    /// Reciprocal rank fusion of the two rankings (best first); returns the best `k`, ties
    /// broken by (segment, chunk). O((|vector| + |lexical|) log).
    public static func reciprocalRank(vector: [Hit], lexical: [Hit], k: Int, options: Options = Options()) -> [FusedHit] {
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
        return best(Array(byKey.values), k)
    }

    /// Convex fusion (see `Method.convex`) of the two top lists (best first). `cosine` and
    /// `bm25` give the score of a chunk that is not in the list of that kind; they are asked
    /// only about such chunks. Returns the best `k`, ties broken by (segment, chunk).
    /// O((|vector| + |lexical|) log) plus the lookups.
    public static func convex(vector: [Hit], lexical: [Hit], k: Int, alpha: Double,
                              cosine: ([(segment: Int, chunk: Int)]) -> [Float],
                              bm25: (Int, Int) -> Double) -> [FusedHit] {
        var byKey: [Int: FusedHit] = [:]
        var order: [Int] = []
        for (r, h) in vector.enumerated() {
            let key = h.segment << 40 | h.chunk
            byKey[key] = FusedHit(segment: h.segment, chunk: h.chunk, score: 0, vectorRank: r + 1, vectorScore: h.score)
            order.append(key)
        }
        for (r, h) in lexical.enumerated() {
            let key = h.segment << 40 | h.chunk
            if byKey[key] == nil {
                byKey[key] = FusedHit(segment: h.segment, chunk: h.chunk, score: 0)
                order.append(key)
            }
            byKey[key]!.lexicalRank = r + 1
            byKey[key]!.lexicalScore = h.score
        }
        let missing = order.filter { byKey[$0]!.vectorScore == nil }
        if !missing.isEmpty {
            for (key, cos) in zip(missing, cosine(missing.map { (byKey[$0]!.segment, byKey[$0]!.chunk) })) { byKey[key]!.vectorScore = cos }
        }
        var hits = order.map { key -> FusedHit in
            var f = byKey[key]!
            if f.lexicalScore == nil { f.lexicalScore = Float(bm25(f.segment, f.chunk)) }
            return f
        }
        let top = hits.reduce(Float(0)) { max($0, $1.lexicalScore!) }
        for i in hits.indices {
            let lexical = top > 0 ? Double(hits[i].lexicalScore!) / Double(top) : 0
            hits[i].score = alpha * Double(hits[i].vectorScore!) + (1 - alpha) * lexical
        }
        return best(hits, k)
    }

    private static func best(_ hits: [FusedHit], _ k: Int) -> [FusedHit] {
        Array(hits.sorted { $0.score != $1.score ? $0.score > $1.score : ($0.segment, $0.chunk) < ($1.segment, $1.chunk) }.prefix(max(k, 0)))
    }
}
