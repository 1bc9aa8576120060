import ArgumentParser
import Foundation
import KBEmbed
import KBEval
import KBFormat
import KBIngest
import KBRetrieval
import KBSearch

/// `kbindex query "question"`: embed the question and print the best chunks.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Find the passages that best answer a question.",
        discussion: """
            Finds the chunks that answer the question and prints the best: rank, score, \
            where it is (path:lines; for a PDF "path, p. 12"; for DOCX, ODT, EPUB "path, ¶ 4–9"), \
            heading path, and the text (trimmed; whole with --full). --json prints one object \
            per hit with the whole text (line_start/line_end, page/page_end or \
            paragraph_start/paragraph_end). Without --index, kbindex looks for \
            .kbindex in the current folder and its parents. --index s3://bucket/prefix \
            downloads the index into a local cache first (each file checked, reused by later \
            runs, at most KBINDEX_CACHE_SIZE, default 20G; a note on stderr says what was \
            downloaded) and searches it there.

            Modes (--mode): vector embeds the question with the model the index was built \
            with, in the precision it was built in (f32 or int8, unless --precision says), \
            and scores every chunk exactly (cosine similarity, -1…1); lexical ranks \
            chunks by BM25 over their words (case-folded, so Straße matches STRASSE; \
            identifiers like os.path.join and camelCase are also split into parts; Chinese, \
            Japanese and Korean text is cut into overlapping character pairs); hybrid (the default) runs both at once and fuses them. \
            By default (--fusion convex) every chunk in either search's top 100 scores \
            α·cosine + (1−α)·BM25/(the best BM25 among them), α = --alpha (0.85, chosen on \
            a dev question set; see Benchmarks/RESULTS.md); --fusion rrf uses reciprocal rank \
            fusion instead: a chunk at rank r in a list adds weight/(c + r), c = --rrf-k. \
            Hybrid output shows each hit's fused score, cosine and BM25 score; --json adds \
            vector_score, bm25_score, vector_rank and lexical_rank.

            With --batch FILE (one question per line, - for standard input), every question \
            is answered in one pass over the index, and each prints as one JSON line: \
            {"line", "question", "hits": [...]}, the hits as --json prints them. Each hit's \
            id names its chunk as long as its document is unchanged (kbindex serve's \
            /v1/chunks/ID and the MCP fetch tool take it).

            Exit status: 0 when something matched; 1 when nothing did (--path selected no \
            document, the index is empty, or no chunk has a word of the question in lexical \
            mode), with the reason on stderr and nothing on stdout; 2 on an error; 64 on a \
            usage error (an empty question, -k 0). With --batch, 1 when no question matched.

            Examples:
              kbindex query "how do I rotate the logs?"
              kbindex query -k 10 --path 'library/*' "read a file line by line"
              kbindex query --json "deadline for the report" | jq -r .text
              kbindex query --batch questions.txt -k 3 > answers.jsonl
              kbindex query --mode lexical "os.path.join"
            """
    )

    @Argument(help: "The question (any text); omit it with --batch.")
    var question: String?

    @Option(help: ArgumentHelp("Answer every line of this file (- for standard input) as JSON lines.", valueName: "file"))
    var batch: String?

    @Option(name: .short, parsing: .unconditional, help: "How many passages to print.")
    var k = 5

    @Option(help: ArgumentHelp("The index folder, or s3://bucket/prefix (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    @Option(help: ArgumentHelp("Only documents whose path matches this glob (repeatable), as in .gitignore: '*.md' matches names at any depth, 'notes/*' a path; relative to the current folder inside the indexed one.", valueName: "glob"))
    var path: [String] = []

    @OptionGroup(title: "Embedding")
    var embedding: EmbedderChoice

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads scanning the index (default: every core).", valueName: "n"))
    var threads: Int?

    @OptionGroup var precision: PrecisionOption

    @Option(help: ArgumentHelp("hybrid (default), vector or lexical.", valueName: "mode"))
    var mode: SearchMode?

    @OptionGroup(title: "Hybrid search")
    var fusion: FusionOptions

    @Flag(help: "Print whole chunks instead of trimming them (--json always has the whole text).")
    var full = false

    @Flag(help: "One JSON object per hit: rank, score, path, lines, heading, text.")
    var json = false

    func validate() throws {
        // -k and --threads are parsed with `.unconditional`: "-k -1" reaches this check (the
        // default strategy reads "-1" as a flag and says "Missing value").
        if k < 1 { throw ValidationError("-k must be a positive number (1 or more), got \(k)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be a positive number (1 or more), got \(threads)") }
        if let question, question.allSatisfy(\.isWhitespace) {
            throw ValidationError("the question is empty: give the words to search for")
        }
        if question == nil && batch == nil { throw ValidationError("give a question, or --batch FILE with one question per line") }
        if question != nil && batch != nil { throw ValidationError("give either a question or --batch FILE, not both") }
        _ = try PathOption.filter(path, index: index)  // an invalid glob is a usage error
    }

    /// Questions answered per pass over the index: bounds memory for long files, and keeps
    /// output flowing.
    static let batchGroup = 256

    func run() throws {
        let index = try S3IndexOption.localIndex(self.index)  // s3://…: the local mirror, pulled
        let idx = try IndexOpening.open(index)
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
        // BM25 alone embeds nothing: no model to load, no service to reach.
        let embedder = mode == .lexical ? nil
            : try ModelLoading.load(embedding.options(threads: threads), forIndexBuiltWith: idx.manifest.model, precision: precision.precision, verb: "query")
        let retriever = Retriever(index: idx, embedder: embedder, fusion: fusion.options, threads: threads, filter: filter)

        if let batch {
            let lines = try Self.readQuestions(batch)
            var found = false
            for start in stride(from: 0, to: lines.count, by: Self.batchGroup) {
                let group = Array(lines[start..<min(start + Self.batchGroup, lines.count)])
                let results = try retriever.answer(group.map(\.text), mode: mode, k: k)
                // Every text of the group is read before its answers print (see below).
                let answers = try zip(group, results).map { q, hits in
                    JSONAnswer(line: q.line, question: q.text, hits: try retriever.hits(hits))
                }
                for answer in answers {
                    print(String(decoding: try encoder.encode(answer), as: UTF8.self))
                    found = found || !answer.hits.isEmpty
                }
            }
            if !found { throw NothingFound(message: nothingFound(in: idx)) }
            return
        }

        let ranked = try retriever.answer([question ?? ""], mode: mode, k: k)[0]
        if ranked.isEmpty {
            throw NothingFound(message: nothingFound(in: idx))
        }
        // Every hit's text is read before anything prints: a damaged text block is one error
        // line, not an error after half the hits.
        let hits = try retriever.hits(ranked)
        for (rank, (r, hit)) in zip(ranked, hits).enumerated() {
            if json {
                print(String(decoding: try encoder.encode(hit), as: UTF8.self))
                continue
            }
            let heading = Self.headingLine(hit.heading)
            print("\(rank + 1). \(Self.scoreText(r, mode))  \(Format.cited(hit.path, hit.unit, hit.lineStart, hit.lineEnd))\(heading.isEmpty ? "" : "  \(heading)")")
            let body = full ? hit.text : Self.trim(hit.text, to: 400)
            for l in body.split(separator: "\n", omittingEmptySubsequences: true) { print("   \(Self.displayedKeepingTabs(String(l)))") }
            if rank + 1 < hits.count { print("") }
        }
    }

    /// Why a search returned no hit (status 1, on stderr): an empty index, a --path that
    /// selects nothing, or (lexical mode) no word of the question in any chunk.
    private func nothingFound(in idx: IndexDirectory) -> String {
        if idx.liveChunkCount == 0 { return "the index \(idx.url.path) is empty: nothing to search" }
        if !path.isEmpty { return "no chunk matches --path \(path.joined(separator: " "))" }
        return "no chunk matches the question"
    }

    /// The most characters of one heading, and of the whole heading path, that a hit's line
    /// shows: a heading can be any length (a 20,000-character one was seen), and it would
    /// repeat on every hit. JSON keeps the whole headings.
    static let headingPartLimit = 80, headingLineLimit = 200

    /// `path` joined with " › " for a hit's line: control characters escaped, each heading cut
    /// to `headingPartLimit` characters and the whole to `headingLineLimit`, with "…" where cut.
    static func headingLine(_ path: [String]) -> String {
        let line = path.map { shortened(Format.displayed($0), to: headingPartLimit) }.joined(separator: " › ")
        return shortened(line, to: headingLineLimit)
    }

    /// `s` if it has at most `limit` characters, else its first `limit - 1` and "…".
    static func shortened(_ s: String, to limit: Int) -> String { SearchHit.shortened(s, to: limit) }

    /// A line of chunk text for the terminal: control characters escaped as
    /// `Format.displayed` does, except tabs (code is indented with them).
    static func displayedKeepingTabs(_ line: String) -> String {
        guard line.contains("\t") else { return Format.displayed(line) }
        return line.split(separator: "\t", omittingEmptySubsequences: false).map { Format.displayed(String($0)) }.joined(separator: "\t")
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
    let hits: [SearchHit]
}
