import ArgumentParser
import Foundation
import KBEmbed
import KBFormat
import KBSearch

/// How `query` and `eval` rank chunks.
enum SearchMode: String, CaseIterable, ExpressibleByArgument {
    case hybrid, vector, lexical
}

/// One ranked chunk, with what each retrieval said about it.
struct RankedHit {
    var segment: Int
    var chunk: Int
    /// The ranking score of the mode: cosine (vector), BM25 (lexical) or RRF (hybrid).
    var score: Double
    var vectorScore: Float?, vectorRank: Int?
    var bm25Score: Float?, lexicalRank: Int?
}

/// The query path shared by `query` and `eval`: vector scan, BM25, or both fused.
struct Retriever {
    let index: IndexDirectory
    let embedder: Embedder
    var fusion = Fusion.Options()
    var threads: Int?
    var filter: DocumentFilter?

    /// Answers `questions` in `mode`, k hits each. The vector scans of all questions share one
    /// pass over memory, and the BM25 statistics are computed once. Throws `CLIError` when the
    /// lexical index is missing or damaged (a damaged segment's error says what to run), or
    /// the model's question vectors are not finite (damaged weights).
    func answer(_ questions: [String], mode: SearchMode, k: Int) throws -> [[RankedHit]] {
        let options = Search.Options(threads: threads)
        // The question vectors first: a damaged model is an error with its own advice.
        let vectors = mode == .lexical ? [] : try ModelLoading.embed(questions, with: embedder)
        do {
            switch mode {
            case .vector:
                return Search.topK(batch: vectors, k: k, in: index, documentFilter: filter, options: options).map { hits in
                    hits.enumerated().map { RankedHit(segment: $1.segment, chunk: $1.chunk, score: Double($1.score), vectorScore: $1.score, vectorRank: $0 + 1) }
                }
            case .lexical:
                let statistics = try LexicalSearch.Statistics(index)
                let selection = LexicalSearch.DocumentSelection(index, filter)
                return try questions.map { q in
                    try LexicalSearch.scores(q, statistics: statistics).top(k, in: index, selection: selection).enumerated().map {
                        RankedHit(segment: $1.segment, chunk: $1.chunk, score: Double($1.score), bm25Score: $1.score, lexicalRank: $0 + 1)
                    }
                }
            case .hybrid:
                return try HybridSearch.topK(texts: questions, vectors: vectors, k: k, in: index,
                                             documentFilter: filter, fusion: fusion, search: options).map { hits in
                    hits.map {
                        RankedHit(segment: $0.segment, chunk: $0.chunk, score: $0.score, vectorScore: $0.vectorScore, vectorRank: $0.vectorRank,
                                  bm25Score: $0.lexicalScore, lexicalRank: $0.lexicalRank)
                    }
                }
            }
        } catch let error as SegmentError {
            throw CLIError(IndexOpening.damaged(error, index: index.url))
        } catch {
            throw CLIError(error)
        }
    }
}

/// The fusion options `query` and `eval` share.
struct FusionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How hybrid mode combines the two rankings: convex (α·cosine + (1−α)·BM25 scaled to 0…1) or rrf (reciprocal rank fusion).", valueName: "convex|rrf"))
    var fusion: FusionMethod = .convex

    @Option(parsing: .unconditional, help: ArgumentHelp("Convex fusion: the cosine's share α (0…1); BM25 gets 1 − α.", valueName: "α"))
    var alpha: Double = 0.85

    @Option(parsing: .unconditional, help: ArgumentHelp("Rank fusion constant c: a hit at rank r in a list adds weight/(c + r).", valueName: "c"))
    var rrfK: Double = 60

    @Option(parsing: .unconditional, help: ArgumentHelp("Rank fusion: weight of the vector ranking.", valueName: "w"))
    var vectorWeight: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Rank fusion: weight of the BM25 ranking.", valueName: "w"))
    var lexicalWeight: Double = 1

    func validate() throws {
        // The numbers are parsed with `.unconditional`, so that "-5" reaches this check (the
        // default strategy reads it as an unknown flag and says "Missing value").
        if !(0...1).contains(alpha) { throw ValidationError("--alpha must be between 0 and 1, got \(Self.number(alpha))") }
        for (name, value) in [("--rrf-k", rrfK), ("--vector-weight", vectorWeight), ("--lexical-weight", lexicalWeight)] where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(name) must not be negative (0 or more), got \(Self.number(value))")
        }
        // A hit's fused score is at most (vector weight + lexical weight) / (c + 1): finite
        // unless that sum overflows, and an infinite score cannot be written as JSON.
        if !(vectorWeight + lexicalWeight).isFinite {
            throw ValidationError("--vector-weight and --lexical-weight are too large (their sum overflows), got \(Self.number(vectorWeight)) and \(Self.number(lexicalWeight))")
        }
    }

    var options: Fusion.Options {
        Fusion.Options(method: fusion.method, alpha: alpha, constant: rrfK, vectorWeight: vectorWeight, lexicalWeight: lexicalWeight)
    }

    private static func number(_ x: Double) -> String { String(format: "%g", x) }

    /// One line naming the fusion and its settings, for eval's report.
    var summary: String {
        switch fusion {
        case .convex: return "convex fusion, alpha \(Self.number(alpha))"
        case .rrf: return "reciprocal rank fusion, c \(Self.number(rrfK)), weights \(Self.number(vectorWeight)) vector / \(Self.number(lexicalWeight)) lexical"
        }
    }
}

/// `--fusion`'s values.
enum FusionMethod: String, CaseIterable, ExpressibleByArgument {
    case convex, rrf
    var method: Fusion.Method { self == .convex ? .convex : .rrf }
}
