import Foundation
import KBCore

/// A retrieved chunk as evaluation sees it: its document's path and its line range.
public struct RetrievedChunk: Sendable, Equatable {
    public var path: String
    /// Lines, pages or paragraphs, as `unit` says.
    public var lines: ClosedRange<Int>
    public var unit: LocationUnit
    public init(path: String, lines: ClosedRange<Int>, unit: LocationUnit = .lines) {
        self.path = path
        self.lines = lines
        self.unit = unit
    }

    /// How a question file names this place: `path:L3-L5`, `path:P3-P5` for pages; paragraphs
    /// have no range syntax, so `path` alone.
    public var location: String {
        switch unit {
        case .lines: return "\(path):L\(lines.lowerBound)-L\(lines.upperBound)"
        case .pages: return "\(path):P\(lines.lowerBound)-P\(lines.upperBound)"
        case .paragraphs: return path
        }
    }
}

/// How one question's ranked chunks scored.
///
/// The relevant *items* are the question's places, each counted once (several entries
/// without a line range for the same path count as one document). Chunk i (1-based) is
/// relevant when it matches a place; it *gains* when it matches a place no earlier chunk
/// matched, so several chunks of one relevant document do not count twice.
/// - recall@k: places matched by the first k chunks ÷ places.
/// - reciprocal rank (MRR@10): 1 ÷ the rank of the first relevant chunk within 10, else 0.
/// - nDCG@10: Σ gain_i ÷ log2(i + 1) over the first 10, divided by the same sum for an ideal
///   ranking (one gaining chunk per place first): Σ_{i ≤ min(places, 10)} 1 ÷ log2(i + 1).
/// - hit: some chunk in the first 10 is relevant.
public struct QuestionScore: Sendable, Equatable {
    public var recallAt1: Double
    public var recallAt5: Double
    public var recallAt10: Double
    public var reciprocalRank: Double
    public var ndcgAt10: Double
    public var hit: Bool
    /// Rank (1-based) of the first relevant chunk, if any in the list.
    public var firstRelevantRank: Int?

    /// Scores `ranked` (best first; only the first 10 count) against `relevant`.
    /// Precondition: `relevant` is not empty. O(ranked · relevant).
    public init(ranked: [RetrievedChunk], relevant: [Relevant]) {
        precondition(!relevant.isEmpty)
        // Places, each once (a whole-document place absorbs duplicates of itself).
        var places: [Relevant] = []
        for r in relevant {
            let key = Relevant(path: r.path, lines: r.lines, unit: r.unit)
            if !places.contains(key) { places.append(key) }
        }
        var matched = Set<Int>()
        var recallAt = [Int: Double]()
        var dcg = 0.0
        var first: Int?
        for (i, c) in ranked.prefix(10).enumerated() {
            let hits = places.indices.filter { places[$0].matches(path: c.path, chunkLines: c.lines, unit: c.unit) }
            if !hits.isEmpty && first == nil { first = i + 1 }
            let new = hits.filter { !matched.contains($0) }
            if !new.isEmpty { dcg += 1 / log2(Double(i + 2)) }
            matched.formUnion(new)
            recallAt[i + 1] = Double(matched.count) / Double(places.count)
        }
        func recall(_ k: Int) -> Double { recallAt[min(k, ranked.prefix(10).count)] ?? 0 }
        let ideal = (1...min(places.count, 10)).reduce(0.0) { $0 + 1 / log2(Double($1 + 1)) }
        recallAt1 = recall(1)
        recallAt5 = recall(5)
        recallAt10 = recall(10)
        reciprocalRank = first.map { 1 / Double($0) } ?? 0
        ndcgAt10 = dcg / ideal
        hit = first != nil
        firstRelevantRank = first
    }
}

/// The mean of each metric over questions, and latency percentiles.
public struct EvalSummary: Sendable, Equatable {
    public var questions: Int
    public var recallAt1: Double, recallAt5: Double, recallAt10: Double
    public var mrrAt10: Double, ndcgAt10: Double, hitRate: Double
    public var latencyP50: Double, latencyP95: Double  // seconds

    /// Precondition: `scores.count == latencies.count`, not empty.
    public init(scores: [QuestionScore], latencies: [Double]) {
        precondition(!scores.isEmpty && scores.count == latencies.count)
        let n = Double(scores.count)
        func mean(_ f: (QuestionScore) -> Double) -> Double { scores.reduce(0) { $0 + f($1) } / n }
        questions = scores.count
        recallAt1 = mean(\.recallAt1)
        recallAt5 = mean(\.recallAt5)
        recallAt10 = mean(\.recallAt10)
        mrrAt10 = mean(\.reciprocalRank)
        ndcgAt10 = mean(\.ndcgAt10)
        hitRate = mean { $0.hit ? 1 : 0 }
        latencyP50 = Self.percentile(latencies, 50)
        latencyP95 = Self.percentile(latencies, 95)
    }

    /// Nearest-rank percentile: the smallest value with at least p% of the values at or below it.
    public static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        let rank = Int((p / 100 * Double(s.count)).rounded(.up))
        return s[max(0, min(s.count - 1, rank - 1))]
    }
}
