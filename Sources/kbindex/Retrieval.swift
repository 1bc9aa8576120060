import ArgumentParser
import Foundation
import KBEmbed
import KBFormat
import KBRetrieval
import KBSearch

extension SearchMode: ExpressibleByArgument {}

/// The query path shared by `query` and `eval`: the question vectors, then the searcher's
/// vector scan, BM25, or both fused, with the advice for each failure added here, once.
struct Retriever {
    let searcher: Searcher
    /// nil when only lexical questions are asked.
    let embedder: (any TextEmbedder)?
    var fusion = Fusion.Options()
    var threads: Int?
    var filter: DocumentFilter?

    init(index: IndexDirectory, embedder: (any TextEmbedder)?, fusion: Fusion.Options = .init(), threads: Int? = nil, filter: DocumentFilter? = nil) {
        self.searcher = Searcher(index: index)
        self.embedder = embedder
        self.fusion = fusion
        self.threads = threads
        self.filter = filter
    }

    /// Answers `questions` in `mode`, k hits each. The vector scans of all questions share one
    /// pass over memory, and the BM25 statistics are computed once. Throws `CLIError` when the
    /// lexical index is missing or damaged (a damaged segment's error says what to run), or
    /// the model's question vectors are not finite (damaged weights).
    func answer(_ questions: [String], mode: SearchMode, k: Int) throws -> [[RankedHit]] {
        // The question vectors first: a damaged model is an error with its own advice.
        var vectors: [[Float]] = []
        if mode != .lexical {
            guard let embedder else { throw CLIError("vector search needs a model, and none was loaded") }
            vectors = try ModelLoading.embed(questions, as: .query, with: embedder)
        }
        do {
            return try searcher.answer(questions, vectors: vectors, mode: mode, k: k, filter: filter, fusion: fusion, threads: threads)
        } catch {
            throw IndexOpening.failure(error, index: searcher.index.url)
        }
    }

    /// `hits` with their texts and ids, as `query --json` prints them. Every text is read
    /// before any returns: a damaged block is one `CLIError` that says what to run.
    func hits(_ ranked: [RankedHit]) throws -> [SearchHit] {
        do { return try searcher.hits(ranked) } catch { throw IndexOpening.failure(error, index: searcher.index.url) }
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
