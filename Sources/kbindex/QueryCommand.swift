import ArgumentParser
import Foundation
import KBEmbed
import KBEval
import KBFormat
import KBIngest
import KBSearch

/// `kbindex query "question"`: embed the question and print the best chunks.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Find the passages that best answer a question.",
        discussion: """
            Finds the chunks that answer the question and prints the best: rank, score, \
            path:lines, heading path, and the text (trimmed; whole with --full). Without \
            --index, kbindex looks for .kbindex in the current folder and its parents.

            Modes (--mode): vector embeds the question with the model the index was built \
            with and scores every chunk exactly (cosine similarity, -1…1); lexical ranks \
            chunks by BM25 over their words (identifiers like os.path.join and camelCase are \
            also split into parts); hybrid (the default) runs both at once and fuses them. \
            By default (--fusion convex) every chunk in either search's top 100 scores \
            α·cosine + (1−α)·BM25/(the best BM25 among them), α = --alpha (0.85, chosen on \
            a dev question set; see Benchmarks/RESULTS.md); --fusion rrf uses reciprocal rank \
            fusion instead: a chunk at rank r in a list adds weight/(c + r), c = --rrf-k. \
            Hybrid output shows each hit's fused score, cosine and BM25 score; --json adds \
            vector_score, bm25_score, vector_rank and lexical_rank.

            With --batch FILE (one question per line, - for standard input), every question \
            is answered in one pass over the index, and each prints as one JSON line: \
            {"line", "question", "hits": [...]}, the hits as --json prints them.

            Examples:
              kbindex query "how do I rotate the logs?"
              kbindex query -k 10 --path 'library/*' "read a file line by line"
              kbindex query --json --full "deadline for the report" | jq -r .text
              kbindex query --batch questions.txt -k 3 > answers.jsonl
              kbindex query --mode lexical "os.path.join"
            """
    )

    @Argument(help: "The question (any text); omit it with --batch.")
    var question: String?

    @Option(help: ArgumentHelp("Answer every line of this file (- for standard input) as JSON lines.", valueName: "file"))
    var batch: String?

    @Option(name: .short, help: "How many passages to print.")
    var k = 5

    @Option(help: ArgumentHelp("The index folder (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    @Option(help: ArgumentHelp("Only documents whose path matches this glob (repeatable), as in .gitignore: '*.md' matches names at any depth, 'notes/*' a path; relative to the current folder inside the indexed one.", valueName: "glob"))
    var path: [String] = []

    @Option(help: ArgumentHelp("Model name or folder (default: the model the index was built with).", valueName: "name|path"))
    var model: String?

    @Option(help: ArgumentHelp("Threads scanning the index (default: every core).", valueName: "n"))
    var threads: Int?

    @Option(help: ArgumentHelp("hybrid (default), vector or lexical.", valueName: "mode"))
    var mode: SearchMode?

    @OptionGroup(title: "Hybrid search")
    var fusion: FusionOptions

    @Flag(help: "Print whole chunks instead of trimming them.")
    var full = false

    @Flag(help: "One JSON object per hit: rank, score, path, lines, heading, text.")
    var json = false

    func validate() throws {
        if k < 1 { throw ValidationError("-k must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if question == nil && batch == nil { throw ValidationError("give a question, or --batch FILE with one question per line") }
        if question != nil && batch != nil { throw ValidationError("give either a question or --batch FILE, not both") }
        _ = try PathOption.filter(path, index: index)  // an invalid glob is a usage error
    }

    /// Questions answered per pass over the index: bounds memory for long files, and keeps
    /// output flowing.
    static let batchGroup = 256

    func run() throws {
        let idx = try IndexOpening.open(index)
        let embedder = try ModelLoading.load(model, forIndexBuiltWith: idx.manifest.model, verb: "query")
        let filter = try PathOption.filter(path, index: index)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Hybrid needs the LEXICAL section; an index built before it existed falls back to
        // vector search when no mode was asked for.
        let mode: SearchMode
        if let asked = self.mode {
            mode = asked
        } else if LexicalSearch.isAvailable(in: idx) {
            mode = .hybrid
        } else {
            note("this index has no lexical section (built before BM25 search): vector search only; 'kbindex build --rebuild' adds it")
            mode = .vector
        }
        let retriever = Retriever(index: idx, embedder: embedder, fusion: fusion.options, threads: threads, filter: filter)

        if let batch {
            let lines = try Self.readQuestions(batch)
            for start in stride(from: 0, to: lines.count, by: Self.batchGroup) {
                let group = Array(lines[start..<min(start + Self.batchGroup, lines.count)])
                let results = try retriever.answer(group.map(\.text), mode: mode, k: k)
                for (q, hits) in zip(group, results) {
                    let answer = JSONAnswer(line: q.line, question: q.text, hits: try hits.enumerated().map { try jsonHit($1, rank: $0 + 1, in: idx) })
                    print(String(decoding: try encoder.encode(answer), as: UTF8.self))
                }
            }
            return
        }

        let hits = try retriever.answer([question ?? ""], mode: mode, k: k)[0]
        if hits.isEmpty, !json {
            print(idx.liveChunkCount == 0 ? "the index is empty" : path.isEmpty ? "no chunk matches" : "no chunk matches --path \(path.joined(separator: " "))")
            return
        }
        for (rank, hit) in hits.enumerated() {
            if json {
                print(String(decoding: try encoder.encode(try jsonHit(hit, rank: rank + 1, in: idx)), as: UTF8.self))
                continue
            }
            let seg = idx.segments[hit.segment]
            let chunk = seg.chunk(hit.chunk)
            let doc = seg.document(Int(chunk.document))
            let text: String
            do { text = try seg.text(ofChunk: hit.chunk) } catch { throw CLIError(error) }
            let heading = chunk.headingPath.joined(separator: " › ")
            print("\(rank + 1). \(Self.scoreText(hit, mode))  \(doc.path):\(chunk.lineStart)-\(chunk.lineEnd)\(heading.isEmpty ? "" : "  \(heading)")")
            let body = full ? text : Self.trim(text, to: 400)
            for l in body.split(separator: "\n", omittingEmptySubsequences: true) { print("   \(l)") }
            if rank + 1 < hits.count { print("") }
        }
    }

    /// "0.512" (vector), "bm25 7.31" (lexical), "0.6125 (cos 0.512, bm25 7.31)" (hybrid; with
    /// --fusion rrf, a dash where the hit was not in that list's top 100).
    static func scoreText(_ h: RankedHit, _ mode: SearchMode) -> String {
        switch mode {
        case .vector: return String(format: "%.3f", h.score)
        case .lexical: return String(format: "bm25 %.2f", h.score)
        case .hybrid:
            return String(format: "%.4f", h.score) + " (cos " + (h.vectorScore.map { String(format: "%.3f", $0) } ?? "–")
                + ", bm25 " + (h.bm25Score.map { String(format: "%.2f", $0) } ?? "–") + ")"
        }
    }

    private func jsonHit(_ hit: RankedHit, rank: Int, in idx: IndexDirectory) throws -> JSONHit {
        let seg = idx.segments[hit.segment]
        let chunk = seg.chunk(hit.chunk)
        let doc = seg.document(Int(chunk.document))
        let text: String
        do { text = try seg.text(ofChunk: hit.chunk) } catch { throw CLIError(error) }
        return JSONHit(rank: rank, score: hit.score, vector_score: hit.vectorScore, bm25_score: hit.bm25Score,
                       vector_rank: hit.vectorRank, lexical_rank: hit.lexicalRank, path: doc.path, title: doc.title,
                       line_start: Int(chunk.lineStart), line_end: Int(chunk.lineEnd),
                       heading: chunk.headingPath, text: full ? text : Self.trim(text, to: 600))
    }

    /// The non-blank lines of `file` (- = standard input) with their 1-based line numbers;
    /// invalid UTF-8 is replaced with U+FFFD, and a trailing \r is dropped.
    static func readQuestions(_ file: String) throws -> [(line: Int, text: String)] {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
                throw CLIError("cannot read the questions file \(file): \(error.localizedDescription)")
            }
        }
        var out: [(Int, String)] = []
        for (i, q) in QuestionSet.lines(of: String(decoding: data, as: UTF8.self)).enumerated() where !q.allSatisfy(\.isWhitespace) {
            out.append((i + 1, q))
        }
        if out.isEmpty { throw CLIError("the questions file \(file) has no questions (one per line)") }
        return out
    }

    /// At most `limit` characters, cut at a word boundary, with "…" when cut.
    static func trim(_ text: String, to limit: Int) -> String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.count > limit else { return t }
        var cut = String(t.prefix(limit))
        if let space = cut.lastIndex(where: { $0 == " " || $0 == "\n" }), cut.distance(from: cut.startIndex, to: space) > limit / 2 {
            cut = String(cut[..<space])
        }
        return cut + " …"
    }
}

private struct JSONAnswer: Encodable {
    let line: Int
    let question: String
    let hits: [JSONHit]
}

private struct JSONHit: Encodable {
    let rank: Int
    /// The mode's ranking score: cosine, BM25, or the fused score (convex or rank fusion).
    let score: Double
    let vector_score: Float?
    let bm25_score: Float?
    let vector_rank: Int?
    let lexical_rank: Int?
    let path: String
    let title: String
    let line_start: Int
    let line_end: Int
    let heading: [String]
    let text: String
}
