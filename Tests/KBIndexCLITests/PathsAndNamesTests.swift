import Foundation
import KBTestSupport
import XCTest

/// `--path` globs as git and rg read them, file names that are not UTF-8, UTF-16 text,
/// and symbolic links out of the folder, seen from the command line. The tiny test model
/// keeps embedding cheap; lexical search makes the hits exact.
final class PathsAndNamesTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var scratch: [URL] = []
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 13).writeTemporary()
        corpus = try folder("kbpaths")
    }

    override func tearDownWithError() throws {
        for url in scratch { try? FileManager.default.removeItem(at: url) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func folder(_ prefix: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        scratch.append(url)
        return url
    }

    func put(_ name: String, _ text: String, in root: URL? = nil) throws { try put(name, Data(text.utf8), in: root) }

    func put(_ name: String, _ data: Data, in root: URL? = nil) throws {
        let url = (root ?? corpus).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    struct Run {
        let status: Int32, stdout: String, stderr: String
        var stdoutLines: [String] { stdout.split(separator: "\n").map(String.init) }
    }

    /// Runs kbindex in `directory` (the test's own folder when nil).
    func kb(_ args: [String], in directory: URL? = nil) throws -> Run {
        guard let directory else {
            let r = try CLIRunner.run(args)
            return Run(status: r.status, stdout: r.stdout, stderr: r.stderr)
        }
        // CLIRunner runs in the test's folder: go through the shell to run elsewhere.
        let command = "cd '\(directory.path)' && exec '\(try CLIRunner.binary().path)' " + args.map { "'\($0)'" }.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func build(_ extra: [String] = []) throws -> Run {
        let r = try kb(["build", corpus.path, "--model", model.path] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    struct Hit: Decodable { let path: String; let text: String }

    /// The paths of the documents a lexical query returns (sorted, each once).
    func paths(_ question: String, _ args: [String] = [], in directory: URL? = nil) throws -> [String] {
        let r = try kb(["query", "--model", model.path, "--mode", "lexical", "--json", "-k", "100"] + args + [question], in: directory)
        XCTAssertEqual(r.status, 0, r.stderr)
        return Set(try r.stdoutLines.map { try JSONDecoder().decode(Hit.self, from: Data($0.utf8)).path }).sorted()
    }

    // MARK: - Globs and --path

    func testInvalidGlobIsAUsageErrorThatSaysWhatIsWrong() throws {
        try put("a.md", "# A\n\nSome words.\n")
        _ = try build()
        let q = try kb(["query", "--index", indexDir.path, "--model", model.path, "--path", "[abc", "words"])
        XCTAssertEqual(q.status, 64, q.stdout + q.stderr)
        XCTAssertTrue(q.stderr.contains("invalid glob '[abc': '[' has no closing ']'"), q.stderr)
        XCTAssertEqual(q.stdout, "")
        for option in ["--include", "--exclude"] {
            let b = try kb(["build", corpus.path, "--model", model.path, option, "docs/[z-a].md"])
            XCTAssertEqual(b.status, 64, b.stdout + b.stderr)
            XCTAssertTrue(b.stderr.contains("invalid glob 'docs/[z-a].md': the range 'z-a' is reversed"), b.stderr)
        }
    }

    func testPathGlobWithoutSlashMatchesNamesAtAnyDepth() throws {
        try put("notes/deadlines.md", "# Deadlines\n\nThe report deadline is Friday.\n")
        try put("top.md", "# Top\n\nAnother deadline here.\n")
        try put("notes/deadline.txt", "A deadline in a text file.\n")
        try put("library/deep/x.md", "# X\n\nA deadline deep in the library.\n")
        _ = try build()
        let index = ["--index", indexDir.path]
        XCTAssertEqual(try paths("deadline", index), ["library/deep/x.md", "notes/deadline.txt", "notes/deadlines.md", "top.md"])
        XCTAssertEqual(try paths("deadline", index + ["--path", "*.md"]), ["library/deep/x.md", "notes/deadlines.md", "top.md"])
        XCTAssertEqual(try paths("deadline", index + ["--path", "notes/*.md"]), ["notes/deadlines.md"])
        XCTAssertEqual(try paths("deadline", index + ["--path", "/*.md"]), ["top.md"])
        // A glob that matches a folder takes everything inside it, as in .gitignore.
        XCTAssertEqual(try paths("deadline", index + ["--path", "library/*"]), ["library/deep/x.md"])
        XCTAssertEqual(try paths("deadline", index + ["--path", "notes"]), ["notes/deadline.txt", "notes/deadlines.md"])
    }

    func testPathIsRelativeToTheCurrentFolderInsideTheIndexedFolder() throws {
        try put("docs/notes/logging.md", "# Logging\n\nRotate the logs weekly.\n")
        try put("docs/logging.md", "# Logging\n\nOther logs live here.\n")
        try put("logging.md", "# Logging\n\nTop-level logs.\n")
        try put("docs/notes/sub/more.md", "# More\n\nMore logs.\n")
        _ = try build()
        let notes = corpus.appendingPathComponent("docs/notes")
        // The index is found from the current folder, and --path starts there.
        XCTAssertEqual(try paths("logs", ["--path", "logging.md"], in: notes), ["docs/notes/logging.md"])
        XCTAssertEqual(try paths("logs", ["--path", "*.md"], in: notes), ["docs/notes/logging.md", "docs/notes/sub/more.md"])
        XCTAssertEqual(try paths("logs", ["--path", "../logging.md"], in: notes), ["docs/logging.md"])
        XCTAssertEqual(try paths("logs", ["--path", "/logging.md"], in: notes), ["logging.md"])
        // With --index given, the same: the current folder is inside the indexed folder.
        XCTAssertEqual(try paths("logs", ["--index", indexDir.path, "--path", "sub/*"], in: notes), ["docs/notes/sub/more.md"])
        // From outside the indexed folder, globs are relative to its root.
        let elsewhere = try folder("kbelsewhere")
        XCTAssertEqual(try paths("logs", ["--index", indexDir.path, "--path", "logging.md"], in: elsewhere),
                       ["docs/logging.md", "docs/notes/logging.md", "logging.md"])
        // Climbing above the indexed folder is an error, not an empty answer.
        let up = try kb(["query", "--model", model.path, "--path", "../../../x.md", "logs"], in: notes)
        XCTAssertEqual(up.status, 64, up.stdout + up.stderr)
        XCTAssertTrue(up.stderr.contains("leads out of the indexed folder"), up.stderr)
    }

    // MARK: - File names and odd files

    func testFileWhoseNameIsNotUTF8IsIndexedAndStaysUpToDate() throws {
        try put("plain.md", "# Plain\n\nNothing special here.\n")
        // "café.md" in Latin-1: the name's 0xE9 byte is not UTF-8.
        let name = Array("caf".utf8) + [0xE9] + Array(".md".utf8)
        let path = Array(corpus.path.utf8) + [UInt8(ascii: "/")] + name
        let fd = (path + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o644) } }
        XCTAssertGreaterThanOrEqual(fd, 0)
        let text = Array("# Menu\n\nThe espresso costs two euros.\n".utf8)
        XCTAssertEqual(text.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }, text.count)
        close(fd)

        let first = try build()
        XCTAssertFalse(first.stderr.contains("cannot lstat"), first.stderr)
        XCTAssertTrue(first.stdout.contains("files: 2 added"), first.stdout)
        XCTAssertEqual(try paths("espresso", ["--index", indexDir.path]), ["caf\u{FFFD}.md"])
        // The next build recognises it: nothing changed.
        let second = try build()
        XCTAssertTrue(second.stdout.contains("index is up to date"), second.stdout)
        XCTAssertTrue(second.stdout.contains("0 added, 0 changed, 0 deleted, 2 unchanged"), second.stdout)
    }

    func testUTF16AndUTF32FilesWithAByteOrderMarkAreIndexed() throws {
        let text = "# Tea\n\nGreen tea steeps for two minutes.\n"
        try put("le.md", Data([0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
        try put("be.txt", Data([0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }))
        try put("wide.md", Data([0xFF, 0xFE, 0, 0] + text.unicodeScalars.flatMap { s in (0..<4).map { UInt8((s.value >> (8 * $0)) & 0xFF) } }))
        let r = try build()
        XCTAssertTrue(r.stdout.contains("files: 3 added"), r.stdout)
        XCTAssertFalse(r.stdout.contains("binary"), r.stdout)
        let hits = try kb(["query", "--index", indexDir.path, "--model", model.path, "--mode", "lexical", "--json", "steeps"])
        let decoded = try hits.stdoutLines.map { try JSONDecoder().decode(Hit.self, from: Data($0.utf8)) }
        XCTAssertEqual(Set(decoded.map(\.path)), ["le.md", "be.txt", "wide.md"])
        XCTAssertTrue(decoded.allSatisfy { $0.text.contains("Green tea steeps for two minutes.") }, "\(decoded)")
    }

    func testSymbolicLinksOutOfTheFolderAreFollowedOnlyWithFollow() throws {
        let outside = try folder("kboutside")
        try put("elsewhere.md", "# Elsewhere\n\nThe lighthouse keeper's log.\n", in: outside)
        try put("real.md", "# Real\n\nThe lighthouse is white.\n")
        let fm = FileManager.default
        try fm.createSymbolicLink(atPath: corpus.appendingPathComponent("out.md").path, withDestinationPath: outside.appendingPathComponent("elsewhere.md").path)
        try fm.createSymbolicLink(atPath: corpus.appendingPathComponent("outdir").path, withDestinationPath: outside.path)
        // A link to a file inside the folder: the file is indexed once, under its own path.
        try fm.createSymbolicLink(atPath: corpus.appendingPathComponent("alias.md").path, withDestinationPath: "real.md")

        let r = try build()
        XCTAssertTrue(r.stdout.contains("files: 1 added"), r.stdout)
        XCTAssertTrue(r.stdout.contains("1 reached twice") && r.stdout.contains("2 links out of the folder"), r.stdout)
        XCTAssertTrue(r.stderr.contains("note: 2 symbolic links out of \(corpus.standardizedFileURL.path) not followed ('kbindex build --follow' follows them)"), r.stderr)
        XCTAssertEqual(try paths("lighthouse", ["--index", indexDir.path]), ["real.md"])

        let followed = try build(["--follow"])
        XCTAssertTrue(followed.stdout.contains("files: 1 added, 0 changed, 0 deleted, 1 unchanged"), followed.stdout)
        XCTAssertTrue(followed.stdout.contains("2 reached twice"), followed.stdout)
        XCTAssertEqual(try paths("lighthouse", ["--index", indexDir.path]), ["out.md", "real.md"],
                       "the folder link and the file link reach the same outside file: indexed once")
        // Without --follow again, the outside file leaves the index.
        let again = try build()
        XCTAssertTrue(again.stdout.contains("1 deleted"), again.stdout)
        XCTAssertEqual(try paths("lighthouse", ["--index", indexDir.path]), ["real.md"])
    }

    func testWarningsNameTheFileOnceAndSayLoopsInWords() throws {
        try put("latin1.md", Data("caf".utf8) + Data([0xE9]) + Data(" au lait\n".utf8))
        try FileManager.default.createSymbolicLink(atPath: corpus.appendingPathComponent("loop").path, withDestinationPath: "loop")
        let r = try build()
        XCTAssertTrue(r.stderr.contains("warning: latin1.md: invalid UTF-8 on 1 line(s)"), r.stderr)
        XCTAssertFalse(r.stderr.contains("latin1.md: latin1.md"), r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: loop: skipped (symbolic link loop: "), r.stderr)
        XCTAssertFalse(r.stderr.contains("symlinkLoop"), r.stderr)
        // --verbose names the reason in the same words as the warning.
        let v = try build(["--verbose"])
        XCTAssertTrue(v.stdout.contains("loop: skipped (symbolic link loop: "), v.stdout)
    }
}
