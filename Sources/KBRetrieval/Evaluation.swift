import Dispatch
import Foundation
import KBEval
import KBSearch

/// Running a question set against an index, as `kbindex eval` reports it: each question
/// alone (so its latency is one question's), in each mode, scored against its relevant chunks.
public enum Evaluation {
    /// One question's outcome in one mode.
    public struct QuestionResult: Sendable {
        public var question: Question
        public var score: QuestionScore
        /// The chunks returned, best first.
        public var returned: [RetrievedChunk]
        /// Embedding and search, in seconds.
        public var seconds: Double
    }

    /// Every question's outcome in one mode, and their summary.
    public struct ModeRun: Sendable {
        public var mode: SearchMode
        public var summary: EvalSummary
        public var results: [QuestionResult]
    }

    /// The ten best chunks for each question of `set`, in each of `modes`, from `searcher`;
    /// `embed` makes the question vectors (with the caller's error handling). A warm-up
    /// question first pages in what each mode reads. Throws what `embed` and
    /// `Searcher.answer` throw. O(questions × modes × one search).
    public static func run(_ set: [Question], searcher: Searcher, modes: [SearchMode], fusion: Fusion.Options = .init(),
                           embed: ([String]) throws -> [[Float]]) throws -> [ModeRun] {
        let index = searcher.index
        func answer(_ text: String, _ mode: SearchMode) throws -> [RankedHit] {
            let vectors = mode == .lexical ? [] : try embed([text])
            return try searcher.answer([text], vectors: vectors, mode: mode, k: 10, fusion: fusion)[0]
        }
        return try modes.map { mode in
            _ = try answer("warm up", mode)
            let results = try set.map { q -> QuestionResult in
                let t0 = DispatchTime.now().uptimeNanoseconds
                let hits = try answer(q.text, mode)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                let returned = hits.map { h -> RetrievedChunk in
                    let seg = index.segments[h.segment], c = seg.chunk(h.chunk)
                    return RetrievedChunk(path: seg.document(Int(c.document)).path, lines: Int(c.lineStart)...max(Int(c.lineStart), Int(c.lineEnd)),
                                          unit: c.unit)
                }
                return QuestionResult(question: q, score: QuestionScore(ranked: returned, relevant: q.relevant), returned: returned, seconds: seconds)
            }
            return ModeRun(mode: mode, summary: EvalSummary(scores: results.map(\.score), latencies: results.map(\.seconds)), results: results)
        }
    }
}
