import ArgumentParser
import Foundation
import KBEmbed
import KBEval
import KBRetrieval
import KBFormat
import KBSearch

/// `kbindex eval QUESTIONS`: how well the index finds the passages that answer your questions.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure what the index finds for a set of questions with known answers.",
        discussion: """
            QUESTIONS is a TSV file with the header id<TAB>question<TAB>relevant_paths, or \
            JSON lines with the fields id, question and relevant_paths. Relevant paths are \
            relative to the indexed folder and comma-separated, each optionally with #anchor \
            or a line range :L10-L40 (for a PDF a page range :P3-P5, or #page=3). A retrieved \
            chunk is relevant when its document is one of them (and, with a range, when its \
            lines or pages overlap the range).

            Every question is run against the index, and the table shows, per retrieval mode: \
            recall@1/5/10 (share of a question's relevant places found in the first k hits), \
            MRR@10 (1/rank of the first relevant hit), nDCG@10 (binary gains, each place counted \
            once), hit rate (a relevant hit in the top 10), and p50/p95 query latency (embedding \
            included, one question at a time). Then it lists the questions that failed (no \
            relevant hit in the top 10) with what came back instead.

            Modes: lexical (BM25), vector (the exact int8 scan) and hybrid (both, fused as \
            'kbindex query' fuses them; --fusion, --alpha and the rank fusion options change \
            how). An index built before BM25 existed has no lexical section and is evaluated \
            in vector mode only.

            Questions are embedded in the precision each index was built in (f32 or int8), \
            unless --precision says; the first line names it. To compare the precisions, \
            build the folder twice ('kbindex build --precision int8 --index DIR') and \
            evaluate one index with --compare the other.

            Examples:
              kbindex eval Benchmarks/questions/python-docs.tsv \\
                  --index .demo/pydocs.kbindex
              kbindex eval questions.jsonl --json > eval.json
              kbindex eval questions.tsv --index small.kbindex --compare big.kbindex
              kbindex eval questions.tsv --index f32.kbindex --compare int8.kbindex
              kbindex eval questions.tsv --fusion rrf --rrf-k 20
            """
    )

    @Argument(help: "The question file (TSV with a header, or JSON lines).")
    var questions: String

    @Option(help: ArgumentHelp("The index folder, or s3://bucket/prefix (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    @Option(help: ArgumentHelp("A second index to run the same questions against, side by side.", valueName: "dir"))
    var compare: String?

    @OptionGroup(title: "Embedding")
    var embedding: EmbedderChoice

    @OptionGroup var precision: PrecisionOption

    @Option(parsing: .unconditional, help: ArgumentHelp("How many failed questions to list (0: none).", valueName: "n"))
    var failures = 20

    @OptionGroup(title: "Hybrid search")
    var fusion: FusionOptions

    @Flag(help: "One JSON object: modes with their metrics, and per-question results.")
    var json = false

    func validate() throws {
        // Parsed with `.unconditional`: "--failures -1" reaches this check, not "Missing value".
        if failures < 0 { throw ValidationError("--failures must not be negative (0 lists none), got \(failures)") }
    }

    func run() throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: questions)) } catch {
            throw CLIError("cannot read the question file \(questions): \(error.localizedDescription)")
        }
        let set: [Question]
        do { set = try QuestionSet.parse(data, file: questions) } catch { throw CLIError(error) }

        var runs: [Run] = [try evaluate(set, indexOption: index)]
        if let compare { runs.append(try evaluate(set, indexOption: compare)) }

        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let out = runs[0].json
            out.fusion = fusion.summary
            if runs.count > 1 { out.compare = runs[1].json }
            print(String(decoding: try enc.encode(out), as: UTF8.self))
            return
        }
        // The precision the questions were embedded in: one, or each index's when they differ.
        let precisions = Set(runs.map(\.precision)).count == 1 ? "\(runs[0].precision)"
            : runs.map { "\($0.precision) (\($0.name))" }.joined(separator: ", ")
        print("\(Format.counted(set.count, "question")) from \(questions); hybrid: \(fusion.summary); precision \(precisions)")
        let header = ["index", "mode", "recall@1", "recall@5", "recall@10", "MRR@10", "nDCG@10", "hit rate", "p50 ms", "p95 ms"]
        var rows: [[String]] = []
        for run in runs {
            for (mode, s) in run.summaries {
                rows.append([run.name, mode, f(s.recallAt1), f(s.recallAt5), f(s.recallAt10), f(s.mrrAt10), f(s.ndcgAt10), f(s.hitRate),
                             String(format: "%.1f", s.latencyP50 * 1000), String(format: "%.1f", s.latencyP95 * 1000)])
            }
        }
        print(Self.table(header, rows))
        for run in runs {
            for (mode, results) in run.results {
                let failed = results.filter { !$0.score.hit }
                guard !failed.isEmpty, failures > 0 else { continue }
                print("\nfailed (\(mode)\(runs.count > 1 ? ", \(run.name)" : "")): \(failed.count) of \(Format.counted(results.count, "question")) had no relevant passage in the top 10")
                for r in failed.prefix(failures) {
                    print(Format.displayed("  \(r.question.id): \(r.question.text)"))
                    print("    wanted:   \(Format.displayed(r.question.relevant.map(\.location).joined(separator: ", ")))")
                    let got = r.returned.prefix(3).map { Format.cited($0.path, $0.unit, $0.lines.lowerBound, $0.lines.upperBound) }
                    print("    returned: \(got.isEmpty ? "nothing" : got.joined(separator: ", "))")
                }
                if failed.count > failures { print("  … and \(failed.count - failures) more (--failures N)") }
            }
        }
    }

    private func f(_ x: Double) -> String { String(format: "%.3f", x) }

    typealias QuestionResult = Evaluation.QuestionResult

    struct Run {
        var name: String
        /// The precision its questions were embedded in.
        var precision: Precision
        var summaries: [(String, EvalSummary)]
        var results: [(String, [QuestionResult])]
        var json: JSONRun {
            JSONRun(index: name, precision: precision.rawValue,
                    modes: Dictionary(uniqueKeysWithValues: summaries.map { ($0.0, JSONMetrics($0.1)) }),
                    questions: results.first!.1.indices.map { i in
                        let q = results.first!.1[i].question
                        return JSONQuestion(id: q.id, question: q.text, relevant_paths: q.relevant.map(\.path),
                                            modes: Dictionary(uniqueKeysWithValues: results.map { mode, rs in
                                                (mode, JSONQuestionResult(rs[i]))
                                            }))
                    })
        }
    }

    /// Runs every question against the index of `indexOption` in every mode.
    func evaluate(_ set: [Question], indexOption: String?) throws -> Run {
        let idx = try IndexOpening.open(try S3IndexOption.localIndex(indexOption))  // s3://…: the local mirror, pulled
        let embedder = try ModelLoading.load(embedding.options(), forIndexBuiltWith: idx.manifest.model, precision: precision.precision,
                                             index: compare == nil ? "the index" : "the index \(idx.url.path)", verb: "evaluate")
        let documents = Set(idx.segments.indices.flatMap { idx.liveDocuments(inSegment: $0) })
        for (q, path) in QuestionSet.unknownPaths(in: set, documents: documents) {
            warn("\(questions):\(q.line): question \(q.id): the relevant path '\(path)' is in no document of \(idx.url.path) (a typo?): it cannot be found")
        }
        let searcher = Searcher(index: idx)
        let modes: [SearchMode] = searcher.hasLexical ? [.lexical, .vector, .hybrid] : [.vector]
        let runs: [Evaluation.ModeRun]
        do {
            runs = try Evaluation.run(set, searcher: searcher, modes: modes, fusion: fusion.options) { try ModelLoading.embed($0, as: .query, with: embedder) }
        } catch let error as CLIError {
            throw error
        } catch {
            throw IndexOpening.failure(error, index: idx.url)
        }
        let summaries = runs.map { ($0.mode.rawValue, $0.summary) }
        let all = runs.map { ($0.mode.rawValue, $0.results) }
        return Run(name: idx.url.path, precision: (embedder as? Embedder)?.precision ?? .f32, summaries: summaries, results: all)
    }

    /// A plain text table: columns padded to their widest cell, numbers right-aligned.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max()! }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in
                let pad = String(repeating: " ", count: widths[c] - s.count)
                return c < 2 ? s + pad : pad + s
            }.joined(separator: "  ")
        }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)).joined(separator: "\n")
    }
}

struct JSONMetrics: Encodable {
    let questions: Int
    let recall1, recall5, recall10, mrr10, ndcg10, hitRate, p50, p95: Double
    init(_ s: EvalSummary) {
        questions = s.questions
        recall1 = s.recallAt1; recall5 = s.recallAt5; recall10 = s.recallAt10
        mrr10 = s.mrrAt10; ndcg10 = s.ndcgAt10; hitRate = s.hitRate
        p50 = s.latencyP50 * 1000; p95 = s.latencyP95 * 1000
    }
    enum CodingKeys: String, CodingKey {
        case questions, recall1 = "recall@1", recall5 = "recall@5", recall10 = "recall@10", mrr10 = "mrr@10", ndcg10 = "ndcg@10"
        case hitRate = "hit_rate", p50 = "latency_p50_ms", p95 = "latency_p95_ms"
    }
}

struct JSONQuestionResult: Encodable {
    let first_relevant_rank: Int?
    let recall_at_10: Double
    let reciprocal_rank: Double
    let ndcg_at_10: Double
    let returned: [String]
    init(_ r: EvalCommand.QuestionResult) {
        first_relevant_rank = r.score.firstRelevantRank
        recall_at_10 = r.score.recallAt10
        reciprocal_rank = r.score.reciprocalRank
        ndcg_at_10 = r.score.ndcgAt10
        returned = r.returned.map(\.location)
    }
}

struct JSONQuestion: Encodable {
    let id: String
    let question: String
    let relevant_paths: [String]
    let modes: [String: JSONQuestionResult]
}

final class JSONRun: Encodable {
    let index: String
    /// The precision the questions were embedded in: "f32" or "int8".
    let precision: String
    let modes: [String: JSONMetrics]
    let questions: [JSONQuestion]
    /// How hybrid mode fused (`FusionOptions.summary`), on the top-level run.
    var fusion: String?
    var compare: JSONRun?
    init(index: String, precision: String, modes: [String: JSONMetrics], questions: [JSONQuestion]) {
        self.index = index
        self.precision = precision
        self.modes = modes
        self.questions = questions
    }
}
