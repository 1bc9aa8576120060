import ArgumentParser
import Foundation
import KBEmbed
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
    /// pass over memory. Throws `CLIError` when the lexical index is missing or damaged.
    func answer(_ questions: [String], mode: SearchMode, k: Int) throws -> [[RankedHit]] {
        let depth = mode == .hybrid ? max(k, Fusion.depth) : k
        var vector: [[Hit]] = Array(repeating: [], count: questions.count)
        if mode != .lexical {
            vector = Search.topK(batch: embedder.embed(questions), k: depth, in: index, documentFilter: filter, options: .init(threads: threads))
        }
        var lexical: [[Hit]] = Array(repeating: [], count: questions.count)
        if mode != .vector {
            do {
                lexical = try questions.map { try LexicalSearch.topK($0, k: depth, in: index, documentFilter: filter) }
            } catch {
                throw CLIError(error)
            }
        }
        return zip(vector, lexical).map { v, l in
            switch mode {
            case .vector:
                return v.enumerated().map { RankedHit(segment: $1.segment, chunk: $1.chunk, score: Double($1.score), vectorScore: $1.score, vectorRank: $0 + 1) }
            case .lexical:
                return l.enumerated().map { RankedHit(segment: $1.segment, chunk: $1.chunk, score: Double($1.score), bm25Score: $1.score, lexicalRank: $0 + 1) }
            case .hybrid:
                return Fusion.fuse(vector: v, lexical: l, k: k, options: fusion).map {
                    RankedHit(segment: $0.segment, chunk: $0.chunk, score: $0.score, vectorScore: $0.vectorScore, vectorRank: $0.vectorRank,
                              bm25Score: $0.lexicalScore, lexicalRank: $0.lexicalRank)
                }
            }
        }
    }
}

/// The fusion options `query` and `eval` share.
struct FusionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Reciprocal rank fusion constant c: a hit at rank r in a list adds weight/(c + r).", valueName: "c"))
    var rrfK: Double = 60

    @Option(help: ArgumentHelp("Weight of the vector ranking in hybrid mode.", valueName: "w"))
    var vectorWeight: Double = 1

    @Option(help: ArgumentHelp("Weight of the BM25 ranking in hybrid mode.", valueName: "w"))
    var lexicalWeight: Double = 1

    func validate() throws {
        if rrfK < 0 || vectorWeight < 0 || lexicalWeight < 0 { throw ValidationError("--rrf-k and the weights must not be negative") }
    }

    var options: Fusion.Options { Fusion.Options(constant: rrfK, vectorWeight: vectorWeight, lexicalWeight: lexicalWeight) }
}
