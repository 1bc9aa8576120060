import Foundation
import KBTestSupport
import XCTest

/// What a user meets at `kbindex query` first: empty questions, negative numbers, exit
/// statuses as rg has them, odd file names, huge headings, damage found while printing. The
/// tiny test model keeps embedding cheap; what is tested is the command line.
final class QueryFaceTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 11).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbqueryface-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let corpus { try? FileManager.default.removeItem(at: corpus) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func put(_ name: String, _ text: String) throws {
        let url = corpus.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func kb(_ args: [String]) throws -> CLIRunner.Result { try CLIRunner.run(args) }

    @discardableResult
    func build() throws -> CLIRunner.Result {
        let r = try kb(["build", corpus.path, "--quiet", "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    func query(_ args: [String], stdin: Data? = nil) throws -> CLIRunner.Result {
        try CLIRunner.run(["query", "--index", indexDir.path, "--model", model.path] + args, stdin: stdin)
    }

    func smallCorpus() throws {
        try put("soup.md", "# Soup\n\nRinse the lentils and simmer them with onions for half an hour.\n")
        try put("notes/tea.md", "# Tea\n\nGreen tea wants water below boiling, about eighty degrees.\n")
        try build()
    }

    // MARK: - Questions and options

    func testAnEmptyQuestionIsAUsageError() throws {
        try smallCorpus()
        for q in ["", "   ", "\t\n"] {
            let r = try query([q])
            XCTAssertEqual(r.status, 64, "question \(q.debugDescription): \(r.stdout)")
            XCTAssertTrue(r.stderr.contains("the question is empty"), r.stderr)
            XCTAssertEqual(r.stdout, "")
        }
        // Blank lines of a --batch file are still skipped, not errors.
        let ok = try query(["--batch", "-"], stdin: Data("lentils\n\n   \ntea\n".utf8))
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.stdoutLines.count, 2, ok.stdout)
    }

    func testNegativeNumbersSayWhatIsWrong() throws {
        let cases: [([String], String)] = [
            (["query", "-k", "-1", "soup"], "-k must be a positive number"),
            (["query", "-k", "0", "soup"], "-k must be a positive number"),
            (["query", "--threads", "-2", "soup"], "--threads must be a positive number"),
            (["query", "--rrf-k", "-5", "soup"], "--rrf-k must not be negative"),
            (["query", "--vector-weight", "-1", "soup"], "--vector-weight must not be negative"),
            (["query", "--alpha", "-0.5", "soup"], "--alpha must be between 0 and 1"),
            (["query", "--vector-weight", "1e308", "--lexical-weight", "1e308", "soup"], "their sum overflows"),
            (["eval", "q.tsv", "--failures", "-1"], "--failures must not be negative"),
            (["eval", "q.tsv", "--lexical-weight", "-2"], "--lexical-weight must not be negative"),
            (["build", corpus.path, "--threads", "-1"], "--threads must be a positive number"),
            (["build", corpus.path, "--max-file-size", "-3"], "--max-file-size must be a positive number"),
            (["embed", "--threads", "-4", "hello"], "--threads must be a positive number"),
            (["compact", "--segment-chunks", "0"], "--segment-chunks must be a positive number"),
            (["compact", "--segment-chunks", "-1"], "--segment-chunks must be a positive number"),
        ]
        for (args, message) in cases {
            let r = try kb(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
        }
    }

    func testHugeNumbersAreNotACrash() throws {
        try smallCorpus()
        // A top-k list sized for k before it knew how many chunks there are could not be allocated.
        for mode in ["vector", "lexical", "hybrid"] {
            let q = try query(["-k", "\(Int.max)", "--mode", mode, "lentils"])
            XCTAssertEqual(q.status, 0, "\(mode): \(q.stderr)")
            XCTAssertTrue(q.stdout.hasPrefix("1. "), q.stdout)
        }
        // --threads sized embedding batches with (total + threads - 1): an overflow trap.
        let manyThreads = ["--threads", "\(Int.max)"]
        let b = try kb(["build", corpus.path, "--quiet", "--rebuild", "--model", model.path] + manyThreads)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(try kb(["embed", "--model", model.path, "hello"] + manyThreads).status, 0)
        XCTAssertEqual(try query(manyThreads + ["lentils"]).status, 0)
        // compact's hidden --segment-chunks reached Compaction.compact's precondition (≥ 1).
        let compact = try kb(["compact", "--index", indexDir.path, "--segment-chunks", "0"])
        XCTAssertEqual(compact.status, 64, compact.stderr)
        XCTAssertTrue(compact.stderr.contains("--segment-chunks must be a positive number"), compact.stderr)
        // Int(1e300 * 1 MiB) trapped: a huge limit (or inf) means no limit.
        for size in ["1e300", "inf"] {
            let r = try kb(["build", corpus.path, "--quiet", "--model", model.path, "--max-file-size", size, "--rebuild"])
            XCTAssertEqual(r.status, 0, "\(size): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("files: 2 added"), r.stdout)
        }
    }

    func testAnErrorNamingAnOddFileIsEscaped() throws {
        try smallCorpus()
        let name = corpus.appendingPathComponent("q\u{1B}[31mred.txt").path
        let r = try query(["--batch", name])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: cannot read the questions file "), r.stderr)
        XCTAssertTrue(r.stderr.contains("q\\x1b[31mred.txt"), r.stderr)
        XCTAssertFalse(r.stderr.contains("\u{1B}"), r.stderr)
    }

    func testNoSubcommandIsAUsageError() throws {
        let r = try kb([])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("USAGE: kbindex <subcommand>"), r.stderr)
        XCTAssertEqual(r.stdout, "")
        let model = try kb(["model"])
        XCTAssertEqual(model.status, 64)
        XCTAssertTrue(model.stderr.contains("USAGE: kbindex model <subcommand>"), model.stderr)
        // Asked for, the help is on stdout with status 0.
        let help = try kb(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("Exit status"), help.stdout)
    }

    // MARK: - Exit statuses

    func testNothingFoundExitsOneWithTheReasonOnStderr() throws {
        try smallCorpus()
        for extra in [[], ["--json"]] {
            let r = try query(extra + ["--path", "nothing/*", "lentils"])
            XCTAssertEqual(r.status, 1, "\(extra): \(r.stderr)")
            XCTAssertEqual(r.stdout, "", "\(extra)")
            XCTAssertTrue(r.stderr.contains("no chunk matches --path nothing/*"), r.stderr)
            XCTAssertFalse(r.stderr.hasPrefix("error:"), r.stderr)
        }
        // A batch where no question finds anything exits 1 too (each answer still prints).
        let batch = try query(["--path", "nothing/*", "--batch", "-"], stdin: Data("soup\ntea\n".utf8))
        XCTAssertEqual(batch.status, 1, batch.stderr)
        XCTAssertEqual(batch.stdoutLines.count, 2)
        // Something found: 0.
        XCTAssertEqual(try query(["--path", "notes/*", "tea"]).status, 0)
        // An error is 2, not 1: a script can tell "nothing found" from "could not answer".
        let noIndex = try kb(["query", "--index", corpus.appendingPathComponent("nope").path, "tea"])
        XCTAssertEqual(noIndex.status, 2, noIndex.stderr)
        XCTAssertTrue(noIndex.stderr.hasPrefix("error: no index in "), noIndex.stderr)
    }

    func testAMissingOrDamagedManifestGetsItsAdviceOnce() throws {
        try put("notes/tea.md", "# Tea\n\nGreen tea is steeped at eighty degrees.\n")
        let none = try kb(["query", "--index", indexDir.path, "tea"])
        XCTAssertEqual(none.status, 2, none.stderr)
        XCTAssertEqual(none.stderr, "error: no index in \(indexDir.path): index a folder first with 'kbindex build \(corpus.path)'\n")

        try build()
        try Data("{ not json".utf8).write(to: indexDir.appendingPathComponent("manifest.json"))
        let damaged = try query(["tea"])
        XCTAssertEqual(damaged.status, 2, damaged.stderr)
        XCTAssertTrue(damaged.stderr.hasPrefix("error: the index manifest \(indexDir.path)/manifest.json is damaged ("), damaged.stderr)
        XCTAssertTrue(damaged.stderr.hasSuffix("): 'kbindex build \(corpus.path)' writes the index anew\n"), damaged.stderr)
        // The build that follows that advice says what it does, without advising itself.
        let rebuilt = try kb(["build", corpus.path, "--model", model.path])
        XCTAssertEqual(rebuilt.status, 0, rebuilt.stderr)
        XCTAssertTrue(rebuilt.stderr.contains("warning: the existing index cannot be updated (the index manifest"), rebuilt.stderr)
        XCTAssertFalse(rebuilt.stderr.contains("run 'kbindex build'"), rebuilt.stderr)
        XCTAssertEqual(try query(["tea"]).status, 0)
    }

    func testAnEmptyIndexFindsNothing() throws {
        try put("only.bin", "\u{0}\u{1}\u{2}")
        try build()
        let r = try query(["--json", "anything"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.contains("is empty"), r.stderr)
    }

    func testIndexOptionNamingTheIndexedFolderSuggestsTheIndex() throws {
        try smallCorpus()
        let r = try kb(["query", "--index", corpus.path, "tea"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("use --index \(corpus.path)/.kbindex"), r.stderr)
        let slash = try kb(["query", "--index", corpus.path + "/", "tea"])
        XCTAssertTrue(slash.stderr.contains("use --index \(corpus.path)/.kbindex"), slash.stderr)
        // Every command that reads an index says it alike (verify reads the manifest itself).
        for command in ["info", "verify", "compact"] {
            let other = try kb([command, "--index", corpus.path])
            XCTAssertEqual(other.status, 2, command)
            XCTAssertTrue(other.stderr.contains("use --index \(corpus.path)/.kbindex"), "\(command): \(other.stderr)")
        }
    }

    // MARK: - Names, headings and text

    struct Hit: Decodable { let path: String; let title: String; let heading: [String]; let text: String }

    func testOddNamesAreEscapedForTheTerminalAndRealInJSON() throws {
        let esc = "esc\u{1B}[31mred.md", nl = "new\nline.md"
        try put(esc, "# Red \u{1B}[1mbold\n\nPaprika colours the stew red \u{1B}[31m here.\n")
        try put(nl, "# Split\n\nPaprika in a file whose name splits lines.\n")
        try build()
        let r = try query(["-k", "2", "--mode", "lexical", "paprika"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("\u{1B}"), r.stdout.debugDescription)
        XCTAssertTrue(r.stdout.contains("esc\\x1b[31mred.md:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("new\\nline.md:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Red \\x1b[1mbold"), r.stdout)
        // Every hit line starts with its rank: no name split it.
        let hitLines = r.stdoutLines.filter { !$0.isEmpty && !$0.hasPrefix("   ") }
        XCTAssertEqual(hitLines.map { $0.prefix(3) }, ["1. ", "2. "], r.stdout)
        let j = try query(["-k", "2", "--mode", "lexical", "--json", "paprika"])
        let hits = try j.stdoutLines.map { try JSONDecoder().decode(Hit.self, from: Data($0.utf8)) }
        XCTAssertEqual(Set(hits.map(\.path)), [esc, nl])
    }

    func testAHugeHeadingIsShortenedOnTheTerminalAndNotRepeatedInJSON() throws {
        let heading = (0..<4000).map { "w\($0 % 10)" }.joined(separator: " ")  // ~12,000 characters
        XCTAssertGreaterThan(heading.count, 10_000)
        try put("huge.md", "# \(heading)\n\nThe cardamom note sits under an endless heading.\n")
        try build()
        let r = try query(["-k", "1", "--mode", "lexical", "cardamom"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdoutLines.first)
        XCTAssertTrue(line.hasPrefix("1. ") && line.contains("huge.md:"), line)
        XCTAssertLessThanOrEqual(line.count, 260, line)
        XCTAssertTrue(line.hasSuffix("…"), line)
        let j = try query(["-k", "1", "--mode", "lexical", "--json", "cardamom"])
        XCTAssertEqual(j.stdoutLines.count, 1)
        let hit = try JSONDecoder().decode(Hit.self, from: Data(try XCTUnwrap(j.stdoutLines.first).utf8))
        XCTAssertEqual(hit.heading, [heading], "JSON keeps the whole heading")
        XCTAssertLessThanOrEqual(hit.title.count, 200)
        // The heading is in the hit once, not twice (it was both the title and the heading).
        XCTAssertLessThan(j.stdout.count, heading.count + 1000)
    }

    /// With the real model: the tiny one's chunks are too short to be trimmed.
    func testJSONCarriesTheWholeTextWithoutFull() throws {
        _ = try InstalledModels.miniLM()
        let env: [String: String?] = ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path]
        let long = (0..<90).map { "saffron step \($0) of the long recipe;" }.joined(separator: " ") + " end."
        XCTAssertGreaterThan(long.count, 1000)
        try put("long.md", "# Long\n\n\(long)\n")
        XCTAssertEqual(try CLIRunner.run(["build", corpus.path, "--quiet"], environment: env).status, 0)
        let base = ["query", "--index", indexDir.path, "-k", "1", "--mode", "lexical"]
        let j = try CLIRunner.run(base + ["--json", "saffron"], environment: env)
        XCTAssertEqual(j.status, 0, j.stderr)
        let hit = try JSONDecoder().decode(Hit.self, from: Data(try XCTUnwrap(j.stdoutLines.first).utf8))
        XCTAssertGreaterThan(hit.text.count, 700, "the chunk should be longer than what was cut")
        XCTAssertFalse(hit.text.hasSuffix("…"), hit.text)
        XCTAssertTrue(long.contains(hit.text.trimmingCharacters(in: .whitespacesAndNewlines)), hit.text)
        // Human output is trimmed unless --full.
        let h = try CLIRunner.run(base + ["saffron"], environment: env)
        XCTAssertTrue(h.stdout.hasSuffix(" …\n"), h.stdout)
        let full = try CLIRunner.run(base + ["--full", "saffron"], environment: env)
        XCTAssertFalse(full.stdout.contains("…"), full.stdout)
        XCTAssertGreaterThan(full.stdout.count, h.stdout.count)
    }

    // MARK: - Damage found late

    /// The directory entry (format-spec.md §5) of section `kind` in a segment's bytes:
    /// (offset, length).
    func section(_ kind: UInt32, in b: [UInt8]) -> (Int, Int)? {
        func le(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
        let count = le(16, 4)
        for i in 0..<count where le(64 + 32 * i, 4) == Int(kind) {
            return (le(64 + 32 * i + 8, 8), le(64 + 32 * i + 16, 8))
        }
        return nil
    }

    func testADamagedTextBlockIsOneErrorWithAdviceAndNoPartialOutput() throws {
        // Enough distinct text for several LZ4 blocks (about 32 KiB each).
        for f in 0..<40 {
            let text = (0..<60).map { "note\(f) item\($0) value\(f * 100 + $0)" }.joined(separator: ". ")
            try put("doc\(f).md", "# Doc \(f)\n\n\(text)\n")
        }
        try build()
        let segName = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: indexDir.path).first { $0.hasSuffix(".kbseg") })
        let seg = indexDir.appendingPathComponent(segName)
        var b = [UInt8](try Data(contentsOf: seg))
        let (indexAt, indexLength) = try XCTUnwrap(section(8, in: b))
        let (textAt, _) = try XCTUnwrap(section(9, in: b))
        let blocks = indexLength / 16
        XCTAssertGreaterThan(blocks, 1, "the corpus should fill several text blocks")
        // The last block's header (its compressed length) no longer matches TEXT_INDEX.
        let last = indexAt + 16 * (blocks - 1)
        let blockOffset = (0..<8).reduce(0) { $0 | Int(b[last + $1]) << (8 * $1) }
        b[textAt + blockOffset] ^= 0x01
        try Data(b).write(to: seg)

        for extra in [[], ["--json"]] {
            let r = try query(extra + ["-k", "1000", "note1"])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stdout, "", "hits printed before the error")
            XCTAssertTrue(r.stderr.hasPrefix("error: segment \(seg.path) is damaged: text block \(blocks - 1)"), r.stderr)
            XCTAssertTrue(r.stderr.contains("'kbindex verify' for the full check"), r.stderr)
            XCTAssertTrue(r.stderr.contains("'kbindex build \(corpus.path)' re-embeds the damaged segment's documents"), r.stderr)
            XCTAssertEqual(r.stderr.components(separatedBy: "kbindex build").count, 2, "advice given more than once: \(r.stderr)")
        }
    }

    func testATruncatedSegmentGivesItsAdviceOnce() throws {
        try smallCorpus()
        let segName = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: indexDir.path).first { $0.hasSuffix(".kbseg") })
        let seg = indexDir.appendingPathComponent(segName)
        let bytes = try Data(contentsOf: seg)
        try bytes.prefix(bytes.count - 100).write(to: seg)
        let r = try query(["tea"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("error: segment \(seg.path) is truncated"), r.stderr)
        XCTAssertFalse(r.stderr.contains("rebuild the index"), r.stderr)
        XCTAssertEqual(r.stderr.components(separatedBy: "kbindex build").count, 2, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    /// An index outside its folder: the advice names both, as the build needs them.
    func testTheAdviceForAnIndexElsewhereNamesIt() throws {
        try put("tea.md", "# Tea\n\nGreen tea wants water below boiling.\n")
        let elsewhere = corpus.appendingPathComponent("elsewhere/tea.kbindex")
        let b = try kb(["build", corpus.path, "--quiet", "--model", model.path, "--index", elsewhere.path])
        XCTAssertEqual(b.status, 0, b.stderr)
        let segName = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).first { $0.hasSuffix(".kbseg") })
        let seg = elsewhere.appendingPathComponent(segName)
        let bytes = try Data(contentsOf: seg)
        try bytes.prefix(bytes.count - 100).write(to: seg)
        let r = try CLIRunner.run(["query", "--index", elsewhere.path, "--model", model.path, "tea"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("'kbindex build FOLDER --index \(elsewhere.path)' re-embeds"), r.stderr)
    }
}
