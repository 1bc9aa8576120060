import Foundation
import KBEmbed
import KBFormat
import KBTestSupport
import XCTest

/// `--precision` on the commands that embed questions (query, eval, serve, mcp) and on embed:
/// a question is embedded the way its index was (`ModelDescriptor.precision`), `--precision`
/// overrides with a note, a precision this kbindex does not know is a clear error, and the
/// chosen precision is shown (eval's report, serve's line, MCP status, embed's output).
///
/// The int8 indexes here are f32 builds whose manifest then records "int8" (rewritten with
/// `Manifest.write`, which recomputes the checksum): what is tested is what the commands read
/// and choose, not the int8 encoder. The tiny test model keeps embedding cheap.
final class PrecisionTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var scratch: [URL] = []
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 11).writeTemporary()
        corpus = try folder("kbprecision")
        try put("soup.md", "# Soup\n\nRinse the lentils and simmer them with onions for half an hour.\n", in: corpus)
        try put("notes/tea.md", "# Tea\n\nGreen tea wants water below boiling, about eighty degrees.\n", in: corpus)
        try build(corpus)
    }

    override func tearDownWithError() throws {
        for u in scratch { try? FileManager.default.removeItem(at: u) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func folder(_ prefix: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        scratch.append(u)
        return u
    }

    func put(_ name: String, _ text: String, in root: URL) throws {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// Indexes `root` and makes its manifest record f32 (whatever `Precision.default` is).
    func build(_ root: URL) throws {
        let r = try CLIRunner.run(["build", root.path, "--quiet", "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        try record(nil, in: root.appendingPathComponent(".kbindex"))
    }

    /// Makes the index in `dir` record `precision` (nil: f32, the key absent) in its manifest.
    func record(_ precision: String?, in dir: URL? = nil) throws {
        let path = (dir ?? indexDir).path
        var manifest = try Manifest.read(from: path)
        manifest.model.precision = precision
        try manifest.write(to: path)
    }

    func query(_ args: [String], stdin: Data? = nil) throws -> CLIRunner.Result {
        try CLIRunner.run(["query", "--index", indexDir.path, "--model", model.path] + args, stdin: stdin)
    }

    // MARK: - query

    func testQueryEmbedsTheIndexsWayAndAnotherPrecisionIsANote() throws {
        // An f32 index: no flag, or --precision f32, says nothing; int8 is allowed, with a note.
        for flags in [[], ["--precision", "f32"]] {
            let r = try query(flags + ["lentils"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stderr, "", "\(flags)")
            XCTAssertFalse(r.stdout.isEmpty)
        }
        let toInt8 = try query(["--precision", "int8", "lentils"])
        XCTAssertEqual(toInt8.status, 0, toInt8.stderr)
        XCTAssertEqual(toInt8.stderr, "note: the index was embedded in f32; the question is embedded in int8, as --precision asks\n")
        XCTAssertFalse(toInt8.stdout.isEmpty)

        // An int8 index: its own precision says nothing; f32 is the note now, once for a batch.
        try record("int8")
        for flags in [[], ["--precision", "int8"]] {
            let r = try query(flags + ["lentils"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stderr, "", "\(flags)")
        }
        let batch = try query(["--precision", "f32", "--batch", "-"], stdin: Data("lentils\ntea\nonions\n".utf8))
        XCTAssertEqual(batch.status, 0, batch.stderr)
        XCTAssertEqual(batch.stderr, "note: the index was embedded in int8; the question is embedded in f32, as --precision asks\n")
        XCTAssertEqual(batch.stdoutLines.count, 3, batch.stdout)
    }

    func testAPrecisionThisKbindexDoesNotKnowIsAClearError() throws {
        try record("int4")
        let r = try query(["lentils"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "error: the index was embedded in precision 'int4', which this kbindex does not know (it knows f32, int8): embed questions in one it knows with --precision f32 or --precision int8, rebuild the index with 'kbindex build --rebuild', or upgrade kbindex\n")

        // Its vectors are comparable all the same: a precision given explicitly answers.
        let told = try query(["--precision", "f32", "lentils"])
        XCTAssertEqual(told.status, 0, told.stderr)
        XCTAssertEqual(told.stderr, "note: the index was embedded in int4; the question is embedded in f32, as --precision asks\n")
        XCTAssertFalse(told.stdout.isEmpty)

        // Lexical search embeds nothing: no model is loaded, so the precision does not matter
        // (as a remote index's BM25 search needs no service).
        let lexical = try query(["--mode", "lexical", "lentils"])
        XCTAssertEqual(lexical.status, 0, lexical.stderr)
        XCTAssertTrue(lexical.stdout.contains("soup.md"), lexical.stdout)

        // A value from a hostile file is shown escaped and cut short.
        try record("int\u{1B}[31m" + String(repeating: "x", count: 200))
        let hostile = try query(["lentils"])
        XCTAssertEqual(hostile.status, 2)
        XCTAssertFalse(hostile.stderr.contains("\u{1B}"), hostile.stderr)
        XCTAssertLessThan(hostile.stderr.count, 400, hostile.stderr)
    }

    func testAnUnknownPrecisionValueIsAUsageError() throws {
        for sub in [["query", "--index", indexDir.path, "lentils"], ["embed", "hello"], ["eval", "q.tsv"], ["mcp", "--index", indexDir.path]] {
            let r = try CLIRunner.run(sub + ["--precision", "fp16"])
            XCTAssertEqual(r.status, 64, "\(sub): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("fp16"), r.stderr)
        }
    }

    // MARK: - eval

    struct EvalReport: Decodable {
        struct Other: Decodable { let precision: String }
        let precision: String
        let compare: Other?
    }

    func testEvalNamesThePrecisionOfEachIndex() throws {
        let questions = corpus.appendingPathComponent("q.tsv")
        try Data("id\tquestion\trelevant_paths\nsoup\tlentils and onions\tsoup.md\n".utf8).write(to: questions)
        let other = try folder("kbprecision-f32")
        try put("soup.md", "# Soup\n\nRinse the lentils and simmer them with onions for half an hour.\n", in: other)
        try build(other)
        let f32Index = other.appendingPathComponent(".kbindex").path
        func eval(_ args: [String]) throws -> CLIRunner.Result {
            let r = try CLIRunner.run(["eval", questions.path, "--index", indexDir.path, "--model", model.path] + args)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r
        }

        try record("int8")
        let json = try eval(["--json", "--compare", f32Index])
        let report = try JSONDecoder().decode(EvalReport.self, from: Data(json.stdout.utf8))
        XCTAssertEqual(report.precision, "int8")
        XCTAssertEqual(report.compare?.precision, "f32")
        XCTAssertEqual(json.stderr, "")

        let text = try eval([])
        XCTAssertEqual(text.stdoutLines.first, "1 question from \(questions.path); hybrid: convex fusion, alpha 0.85; precision int8")
        let both = try eval(["--compare", f32Index])
        XCTAssertEqual(both.stdoutLines.first, "1 question from \(questions.path); hybrid: convex fusion, alpha 0.85; precision int8 (\(indexDir.path)), f32 (\(f32Index))")

        // --precision applies to both indexes, with a note for the one it differs from.
        let told = try eval(["--json", "--precision", "f32", "--compare", f32Index])
        let toldReport = try JSONDecoder().decode(EvalReport.self, from: Data(told.stdout.utf8))
        XCTAssertEqual(toldReport.precision, "f32")
        XCTAssertEqual(toldReport.compare?.precision, "f32")
        XCTAssertEqual(told.stderr, "note: the index \(indexDir.path) was embedded in int8; questions are embedded in f32, as --precision asks\n")

        try record("int4")
        let unknown = try CLIRunner.run(["eval", questions.path, "--index", indexDir.path, "--model", model.path])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.hasPrefix("error: the index was embedded in precision 'int4', which this kbindex does not know"), unknown.stderr)
    }

    // MARK: - embed

    func testEmbedRunsInTheAskedPrecisionAndSaysWhich() throws {
        struct Line: Decodable { let precision: String; let embedding: [Float] }
        for (flags, want) in [([String](), Precision.default.rawValue), (["--precision", "int8"], "int8"), (["--precision", "f32"], "f32")] {
            let r = try CLIRunner.run(["embed", "--json", "--model", model.path] + flags + ["hello"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let line = try JSONDecoder().decode(Line.self, from: Data(r.stdout.utf8))
            XCTAssertEqual(line.precision, want, "\(flags)")
            XCTAssertFalse(line.embedding.isEmpty)
            let human = try CLIRunner.run(["embed", "--model", model.path] + flags + ["hello"])
            XCTAssertEqual(human.status, 0, human.stderr)
            XCTAssertTrue(human.stdoutLines.first?.hasSuffix(", \(want)") ?? false, human.stdout)
        }
    }

    // MARK: - mcp and serve

    /// The MCP status tool's model and indexes, and stderr, of `kbindex mcp` with `args`.
    func mcpStatus(_ args: [String]) throws -> (status: [String: Any], stderr: String) {
        let lines = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"status","arguments":{}}}"#,
        ]
        let r = try CLIRunner.run(["mcp", "--model", model.path] + args, stdin: Data((lines.joined(separator: "\n") + "\n").utf8), killAfter: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        let answer = try r.stdoutLines.compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.first { $0["id"] as? Int == 2 }
        let result = try XCTUnwrap(answer?["result"] as? [String: Any], r.stdout)
        return (try XCTUnwrap(result["structuredContent"] as? [String: Any], r.stdout), r.stderr)
    }

    func testServedIndexesShareTheFirstIndexsPrecisionWithANote() throws {
        let other = try folder("kbprecision-other")
        try put("tea.md", "# Tea\n\nGreen tea wants water below boiling.\n", in: other)
        try build(other)
        let otherIndex = other.appendingPathComponent(".kbindex")
        try record("int8")

        let (status, stderr) = try mcpStatus(["--index", "a=\(indexDir.path)", "--index", "b=\(otherIndex.path)"])
        XCTAssertEqual((status["model"] as? [String: Any])?["precision"] as? String, "int8")
        let indexes = try XCTUnwrap(status["indexes"] as? [[String: Any]])
        XCTAssertEqual(indexes.map { $0["precision"] as? String }, ["int8", "f32"])
        XCTAssertTrue(stderr.hasPrefix("note: index 'b' was embedded in f32; questions are embedded in int8, as index 'a' was (the vectors are comparable; --precision chooses)\n"), stderr)

        let (told, toldErr) = try mcpStatus(["--precision", "f32", "--index", "a=\(indexDir.path)", "--index", "b=\(otherIndex.path)"])
        XCTAssertEqual((told["model"] as? [String: Any])?["precision"] as? String, "f32")
        XCTAssertTrue(toldErr.hasPrefix("note: index 'a' was embedded in int8; questions are embedded in f32, as --precision asks\n"), toldErr)

        let (alone, aloneErr) = try mcpStatus(["--index", indexDir.path])
        XCTAssertEqual((alone["model"] as? [String: Any])?["precision"] as? String, "int8")
        XCTAssertFalse(aloneErr.contains("note: index"), aloneErr)

        // A precision it does not know, in any served index, is a start-up error naming it.
        try record("int4", in: otherIndex)
        let r = try CLIRunner.run(["mcp", "--model", model.path, "--index", "a=\(indexDir.path)", "--index", "b=\(otherIndex.path)"], stdin: Data())
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.hasPrefix("error: index 'b' was embedded in precision 'int4', which this kbindex does not know"), r.stderr)
    }

    /// The stderr lines of `kbindex serve ARGS` up to its "serving" line; then it is stopped.
    func serveLines(_ args: [String]) throws -> [String] {
        let process = Process()
        process.executableURL = try CLIRunner.binary()
        process.arguments = ["serve", "--index", indexDir.path, "--model", model.path, "--port", "0"] + args
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        var text = ""
        while !text.contains("Ctrl-C stops") {
            let data = stderr.fileHandleForReading.availableData
            if data.isEmpty { break }  // the process ended
            text += String(decoding: data, as: UTF8.self)
        }
        return text.split(separator: "\n").map(String.init)
    }

    func testServeSaysWhichPrecisionItEmbedsQuestionsIn() throws {
        try record("int8")
        let own = try serveLines([])
        XCTAssertEqual(own.count, 1, "\(own)")
        XCTAssertTrue(own.last?.hasSuffix(", precision int8; Ctrl-C stops)") ?? false, "\(own)")

        let told = try serveLines(["--precision", "f32"])
        XCTAssertEqual(told.count, 2, "\(told)")
        XCTAssertEqual(told.first, "note: index '\(corpus.lastPathComponent)' was embedded in int8; questions are embedded in f32, as --precision asks")
        XCTAssertTrue(told.last?.hasSuffix(", precision f32; Ctrl-C stops)") ?? false, "\(told)")
    }
}
