import Foundation
import KBTestSupport
import XCTest

/// What `kbindex build` shows while it works (issue 13): progress inside a big file, plain
/// lines when stderr is not a terminal, `--verbose`'s list of files, and counts in the
/// singular. The tiny test model keeps embedding cheap; KBINDEX_PROGRESS_INTERVAL=0 makes
/// every step print a line, so nothing here depends on the clock.
final class BuildProgressTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 11).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbprogress-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let corpus { try? FileManager.default.removeItem(at: corpus) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func write(_ path: String, _ text: String) throws {
        let url = corpus.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func build(_ extra: [String] = [], interval: String? = "0", status: Int32 = 0) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(["build", corpus.path, "--model", model.path, "--threads", "2"] + extra,
                                  environment: ["KBINDEX_PROGRESS_INTERVAL": interval])
        XCTAssertEqual(r.status, status, r.stderr)
        return r
    }

    /// (done, total) of each "progress: chunks done/total …" line.
    func progress(_ stderr: String) -> [(done: Int, total: Int)] {
        stderr.split(separator: "\n").compactMap { line -> (Int, Int)? in
            guard line.hasPrefix("progress: chunks ") else { return nil }
            let numbers = line.dropFirst("progress: chunks ".count).prefix { $0 != " " }.split(separator: "/")
            guard numbers.count == 2, let d = Int(numbers[0].replacingOccurrences(of: ",", with: "")),
                  let t = Int(numbers[1].replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "~", with: ""))
            else { return nil }
            return (d, t)
        }
    }

    func testOneBigFileShowsChunkProgressBeforeItIsDoneInPlainLines() throws {
        // One file of a few hundred chunks (the tiny model takes 30 tokens a chunk).
        let words = (0..<12_000).map { "word\($0 % 97)" }
        try write("big.txt", stride(from: 0, to: words.count, by: 12).map { words[$0..<$0 + 12].joined(separator: " ") + "." }.joined(separator: " ") + "\n")
        let r = try build()
        let chunks = try XCTUnwrap(r.stdout.split(separator: "\n").first.flatMap { line in
            line.components(separatedBy: " into ").last?.split(separator: " ").first.flatMap { Int($0.replacingOccurrences(of: ",", with: "")) }
        }, r.stdout)
        XCTAssertGreaterThan(chunks, 100, r.stdout)
        // stderr is a file here: plain lines, no carriage returns or escape codes.
        XCTAssertFalse(r.stderr.contains("\r") || r.stderr.contains("\u{1B}"), r.stderr)
        let lines = progress(r.stderr)
        // Lines before the file was finished (the model reports every batch of a few texts,
        // so there are many whatever the speed), each with the file's exact chunk total.
        let before = lines.filter { $0.done < $0.total }
        XCTAssertGreaterThanOrEqual(before.count, 2, r.stderr)
        XCTAssertTrue(lines.allSatisfy { $0.total == chunks }, r.stderr)
        XCTAssertEqual(lines.map(\.done), lines.map(\.done).sorted(), "done only grows: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("reading and chunking big.txt ("), r.stderr)
        XCTAssertTrue(r.stderr.contains(" chunks/s") && r.stderr.contains(" · ETA "), r.stderr)
        XCTAssertTrue(r.stderr.contains("· files 0/1 ·") && r.stderr.contains("· files 1/1 ·"), r.stderr)
    }

    func testQuietPrintsNoProgress() throws {
        try write("a.md", "# A\n\nSome text.\n")
        let r = try build(["--quiet"])
        XCTAssertEqual(r.stderr, "")
    }

    func testVerboseListsEveryFileWithWhatHappenedToIt() throws {
        try write("notes/a.md", "# A\n\nFirst note about apples.\n")
        try write("b.md", "# B\n\nSecond note about bananas.\n")
        try write("c.txt", "Third note about cherries.\n")
        try write("blank.txt", "   \n\n")
        try write(".hidden.md", "# Hidden\n")
        try Data([0x41, 0x00, 0x42]).write(to: corpus.appendingPathComponent("bin.txt"))
        let first = try build(["--verbose"])
        let out = first.stdout
        XCTAssertTrue(out.contains("notes/a.md: indexed, 1 chunk\n"), out)
        XCTAssertTrue(out.contains("b.md: indexed, 1 chunk\n"), out)
        XCTAssertTrue(out.contains("c.txt: indexed, 1 chunk\n"), out)
        XCTAssertTrue(out.contains("blank.txt: skipped (empty"), out)
        XCTAssertTrue(out.contains("bin.txt: skipped (binary: NUL byte"), out)
        XCTAssertTrue(out.contains(".hidden.md: skipped (ignored: hidden)\n"), out)

        try write("b.md", "# B\n\nSecond note, now about blueberries.\n")
        try FileManager.default.removeItem(at: corpus.appendingPathComponent("c.txt"))
        let second = try build(["--verbose", "--no-compact"]).stdout
        XCTAssertTrue(second.contains("notes/a.md: unchanged\n"), second)
        XCTAssertTrue(second.contains("b.md: changed, indexed, 1 chunk\n"), second)
        XCTAssertTrue(second.contains("c.txt: deleted from the index"), second)
        XCTAssertTrue(second.contains("files: 0 added, 1 changed, 1 deleted, 1 unchanged\n"), second)

        let both = try build(["--verbose", "--quiet"], status: 64)
        XCTAssertTrue(both.stderr.contains("--quiet and --verbose cannot be used together"), both.stderr)
    }

    func testCountsOfOneAreSingular() throws {
        try write("only.md", "# Only\n\nOne short note.\n")
        let r = try build(["--quiet"])
        XCTAssertTrue(r.stdout.hasPrefix("indexed 1 file into 1 chunk ("), r.stdout)
        XCTAssertTrue(r.stdout.contains(" (1 chunk, "), r.stdout)
        XCTAssertTrue(try build(["--quiet"]).stdout.hasPrefix("index is up to date: 1 file, 1 chunk ("))
        let v = try CLIRunner.run(["verify", "--index", indexDir.path])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stdout.contains("manifest, 1 segment ("), v.stdout)
        XCTAssertTrue(v.stdout.contains(", 1 chunk) and 0 deletion files match"), v.stdout)
        let c = try CLIRunner.run(["compact", "--index", indexDir.path])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.hasPrefix("compacted: 1 segment → 1, 0 deleted chunks dropped"), c.stdout)
    }
}
