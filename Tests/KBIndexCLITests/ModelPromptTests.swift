import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// A local model with prompts of its own (Tests/Fixtures/st-models, made with
/// sentence-transformers): the index records them (MODEL version 2), queries use the recorded
/// query prompt, `info` shows them, another document prompt re-embeds every file, and
/// `--query-prompt ''` is remembered as "none" rather than falling back to the model's.
final class ModelPromptTests: XCTestCase {
    var scratch: [URL] = []

    override func tearDownWithError() throws {
        for u in scratch { try? FileManager.default.removeItem(at: u) }
    }

    func temporary(_ prefix: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        scratch.append(u)
        return u
    }

    /// A copy of a fixture model (loading writes a check cache into the model folder).
    func model(_ name: String) throws -> URL {
        let copy = try temporary("kbprompt-model").appendingPathComponent(name)
        try FileManager.default.copyItem(at: Fixtures.root.appendingPathComponent("st-models/\(name)"), to: copy)
        return copy
    }

    func testTheIndexRecordsTheModelsPromptsAndQueriesUseThem() throws {
        let model = try model("cls-query-prompt")
        let corpus = try temporary("kbprompt-corpus")
        try Data("# Apples\n\nthe apple is red\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        try Data("# Pears\n\nthe pear is green\n".utf8).write(to: corpus.appendingPathComponent("b.md"))
        let index = corpus.appendingPathComponent(".kbindex")

        let b = try CLIRunner.run(["build", corpus.path, "--model", model.path])
        XCTAssertEqual(b.status, 0, b.stderr)
        var m = try Manifest.read(from: index.path).model
        XCTAssertEqual(m.version, 2)
        XCTAssertEqual(m.provider, "local")
        XCTAssertEqual(m.pooling, "cls")
        XCTAssertEqual(m.queryPrompt, "Represent this sentence for searching relevant passages: ")
        XCTAssertNil(m.documentPrompt)
        let info = try CLIRunner.run(["info", "--index", index.path])
        XCTAssertTrue(info.stdout.contains("prompts:   query 'Represent this sentence for searching relevant passages: ', document none\n"), info.stdout)
        let q = try CLIRunner.run(["query", "apple", "--index", index.path, "--mode", "vector", "--model", model.path, "-k", "1"])
        XCTAssertEqual(q.status, 0, q.stderr)

        // Nothing changed: nothing to do.
        let again = try CLIRunner.run(["build", corpus.path, "--model", model.path])
        XCTAssertTrue(again.stdout.contains("index is up to date"), again.stdout)

        // Another document prompt: every file again, and said why.
        let doc = try CLIRunner.run(["build", corpus.path, "--model", model.path, "--document-prompt", "passage: "])
        XCTAssertEqual(doc.status, 0, doc.stderr)
        XCTAssertTrue(doc.stderr.contains("note: the index's documents were embedded with no prompt, this build's with the prompt 'passage: '; re-embedding every file"), doc.stderr)
        XCTAssertTrue(doc.stdout.contains("files: 2 added"), doc.stdout)
        m = try Manifest.read(from: index.path).model
        XCTAssertEqual(m.documentPrompt, "passage: ")

        // The next build keeps the index's prompts without being told (no re-embedding), and
        // `--query-prompt ''` is recorded as no query prompt: still version 2.
        let kept = try CLIRunner.run(["build", corpus.path, "--model", model.path])
        XCTAssertTrue(kept.stdout.contains("index is up to date"), kept.stdout)
        let none = try CLIRunner.run(["build", corpus.path, "--model", model.path, "--query-prompt", ""])
        XCTAssertEqual(none.status, 0, none.stderr)
        m = try Manifest.read(from: index.path).model
        XCTAssertEqual(m.version, 2)
        XCTAssertNil(m.queryPrompt)
        XCTAssertEqual(m.documentPrompt, "passage: ")
        XCTAssertEqual(Manifest.formatVersion(for: m), 3)
    }

    func testAModelKbindexCannotReproduceIsRefusedWithTheReason() throws {
        let model = try model("mean-unnormalized")
        let modules = model.appendingPathComponent("modules.json")
        var list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: modules)) as? [[String: Any]])
        list.append(["idx": list.count, "name": "\(list.count)", "path": "2_Dense", "type": "sentence_transformers.models.Dense"])
        try JSONSerialization.data(withJSONObject: list).write(to: modules)
        let corpus = try temporary("kbprompt-dense")
        try Data("# A\n\ntext\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        let r = try CLIRunner.run(["build", corpus.path, "--model", model.path])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(modules.path): "), r.stderr)
        XCTAssertTrue(r.stderr.contains("Dense"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.appendingPathComponent(".kbindex/manifest.json").path))
    }

    /// Another model does not inherit the index's prompts: it brings its own (and re-embeds).
    func testAnotherModelBringsItsOwnPromptsNotTheIndexs() throws {
        let first = try model("max-prompts"), second = try model("mean-unnormalized")
        let corpus = try temporary("kbprompt-switch")
        try Data("# Apples\n\nthe apple is red\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        let index = corpus.appendingPathComponent(".kbindex")
        XCTAssertEqual(try CLIRunner.run(["build", corpus.path, "--model", first.path]).status, 0)
        var m = try Manifest.read(from: index.path).model
        XCTAssertEqual(m.queryPrompt, "query: ")
        XCTAssertEqual(m.documentPrompt, "document: ")
        let r = try CLIRunner.run(["build", corpus.path, "--model", second.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("re-embedding every file"), r.stderr)
        m = try Manifest.read(from: index.path).model
        XCTAssertNil(m.version)  // a model without prompts: version 1, as before version 2 existed
        XCTAssertNil(m.queryPrompt)
        XCTAssertNil(m.documentPrompt)
    }
}
