import Foundation
import KBTestSupport
import XCTest

/// `kbindex build` on a folder of PDFs, good and bad, next to markdown: the good ones are
/// indexed and cited by page, each bad one is one warning line naming it and the reason, the
/// build exits 0. Uses the PDFs of Tests/Fixtures/pdf and the tiny test model; needs
/// poppler-utils.
final class PDFBuildTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        try XCTSkipIf(!FileManager.default.isExecutableFile(atPath: "/usr/bin/pdftotext"), "pdftotext is not installed (apt install poppler-utils)")
        model = try TinyModel(seed: 15).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbpdf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        let fixtures = Fixtures.root.appendingPathComponent("pdf")
        for name in ["outline.pdf", "headers.pdf", "encrypted.pdf", "image-only.pdf"] {
            try FileManager.default.copyItem(at: fixtures.appendingPathComponent(name), to: corpus.appendingPathComponent(name))
        }
        let whole = try Data(contentsOf: fixtures.appendingPathComponent("headers.pdf"))
        try whole.prefix(whole.count / 2).write(to: corpus.appendingPathComponent("truncated.pdf"))
        try Data("# Notes\n\nThe walrus colony moved north this spring.\n".utf8).write(to: corpus.appendingPathComponent("notes.md"))
    }

    override func tearDownWithError() throws {
        if let corpus { try? FileManager.default.removeItem(at: corpus) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func kb(_ args: [String], environment: [String: String?] = [:]) throws -> CLIRunner.Result {
        try CLIRunner.run(args, environment: environment)
    }

    struct JSONHit: Decodable { let path: String; let page: Int?; let page_end: Int?; let line_start: Int?; let heading: [String]; let text: String }

    func query(_ question: String) throws -> [JSONHit] {
        let r = try kb(["query", "--index", indexDir.path, "--model", model.path, "--mode", "lexical", "--json", question])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try r.stdoutLines.map { try JSONDecoder().decode(JSONHit.self, from: Data($0.utf8)) }
    }

    func testGoodPDFsAreIndexedByPageAndBadOnesAreOneWarningEach() throws {
        let r = try kb(["build", corpus.path, "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        for (name, reason) in [("encrypted.pdf", "encrypted (needs a password)"), ("image-only.pdf", "no text layer (image-only or scanned pages)"),
                               ("truncated.pdf", "damaged: couldn't read xref table")] {
            let lines = warnings.filter { $0.contains(name) }
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(lines.first?.hasPrefix("warning: \(name): skipped (\(reason)") ?? false, r.stderr)
        }
        XCTAssertEqual(warnings.count, 3, r.stderr)
        XCTAssertTrue(r.stdout.contains("files: 3 added"), r.stdout)

        // A hit cites its page, in JSON and for people.
        let zebra = try XCTUnwrap(try query("zebrafish").first)
        XCTAssertEqual(zebra.path, "outline.pdf")
        XCTAssertEqual(zebra.page, 2)
        XCTAssertEqual(zebra.page_end, 2)
        XCTAssertNil(zebra.line_start)
        XCTAssertEqual(zebra.heading, ["1 Installation", "1.1 Linux"])
        let pelican = try XCTUnwrap(try query("pelican").first)
        XCTAssertEqual(pelican.path, "headers.pdf")
        XCTAssertEqual(pelican.page_end, 5)
        XCTAssertFalse(pelican.text.contains("ACME"), pelican.text)
        let human = try kb(["query", "--index", indexDir.path, "--model", model.path, "--mode", "lexical", "quokka timeout"])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.contains("outline.pdf, p. 3  2 Configuration › 2.1 Network settings"), human.stdout)
        let walrus = try XCTUnwrap(try query("walrus").first)
        XCTAssertEqual(walrus.path, "notes.md")
        XCTAssertEqual(walrus.line_start, 3)
    }

    func testWithoutPdftotextTheRestIsIndexed() throws {
        let r = try kb(["build", corpus.path, "--model", model.path], environment: ["KBINDEX_PDFTOTEXT": corpus.appendingPathComponent("no-such-tool").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("files: 1 added"), r.stdout)
        XCTAssertTrue(r.stdout.contains("5 files not read: pdftotext is not installed; install poppler-utils"), r.stdout)
        let warned = r.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        XCTAssertEqual(warned.count, 1, "one line for the first PDF, a count for the rest: \(r.stderr)")
    }

    /// Files that give no text are read again by every build; a build that finds nothing else
    /// to do still says how many, even with --quiet.
    func testAnUpToDateIndexStillCountsTheFilesItCouldNotRead() throws {
        XCTAssertEqual(try kb(["build", corpus.path, "--model", model.path]).status, 0)
        let again = try kb(["build", corpus.path, "--model", model.path, "--quiet"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("index is up to date: 3 files"), again.stdout)
        XCTAssertTrue(again.stdout.contains("not indexed: 3 not extracted"), again.stdout)
        XCTAssertTrue(again.stdout.contains("warnings: 3 (run without --quiet to see them)"), again.stdout)
        XCTAssertEqual(again.stderr, "")
    }

    /// A PDF indexed before that now gives no text (here: replaced by an encrypted one) keeps
    /// its indexed version: never lose what was findable because of one bad file.
    func testAPDFThatTurnsBadKeepsItsIndexedVersion() throws {
        XCTAssertEqual(try kb(["build", corpus.path, "--model", model.path]).status, 0)
        XCTAssertEqual(try query("zebrafish").first?.path, "outline.pdf")
        try FileManager.default.removeItem(at: corpus.appendingPathComponent("outline.pdf"))
        try FileManager.default.copyItem(at: corpus.appendingPathComponent("encrypted.pdf"), to: corpus.appendingPathComponent("outline.pdf"))
        let r = try kb(["build", corpus.path, "--model", model.path, "--verbose"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: outline.pdf: skipped (encrypted (needs a password); index a decrypted copy"), r.stderr)
        XCTAssertTrue(r.stdout.contains("outline.pdf: skipped (encrypted (needs a password)); its indexed version stays"), r.stdout)
        let hit = try XCTUnwrap(try query("zebrafish").first)
        XCTAssertEqual(hit.path, "outline.pdf")
        XCTAssertEqual(hit.page, 2)
    }
}
