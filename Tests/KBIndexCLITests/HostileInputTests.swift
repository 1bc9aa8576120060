import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// Folders full of junk, and files that change under the build: warnings, never a crash,
/// never a lost index. The tiny test model keeps embedding cheap; what is tested is reading,
/// parsing, chunking and committing.
final class HostileInputTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 9).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbhostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let corpus { try? FileManager.default.removeItem(at: corpus) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func put(_ name: String, _ bytes: [UInt8]) throws {
        let url = corpus.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    func kb(_ args: [String]) throws -> CLIRunner.Result { try CLIRunner.run(args) }
    func build() throws -> CLIRunner.Result { try kb(["build", corpus.path, "--model", model.path]) }

    func testJunkIsWarningsAndTheBuildGoesOn() throws {
        try put("long.md", Array((0..<200_000).map { "w\($0)\n" }.joined().utf8))
        try put("deep.html", Array(("<html><body>" + String(repeating: "<div><span>", count: 50_000) + "deep text"
                                    + String(repeating: "</span></div>", count: 50_000) + "</body></html>").utf8))
        try put("unclosed.html", Array(("<p>" + String(repeating: "<b><i><table><tr><td>", count: 20_000) + "cells").utf8))
        // (Not FF FE: that is UTF-16LE's byte-order mark, and such a file is read as UTF-16.)
        try put("bad-utf8.md", [0xFF, 0xFD, 0x41, 0xC3, 0x28, 0x0A] + Array("# Still text\n\nwith \u{FFFD} and more\n".utf8) + [0xED, 0xA0, 0x80, 0x0A])
        try put("nul.txt", Array("text with a NUL \0 inside\n".utf8))
        try put("good.md", Array("# Good\n\nA normal note.\n".utf8))
        // A 1 GiB file (sparse: no disk used): over --max-file-size, skipped without being read.
        let huge = corpus.appendingPathComponent("huge.txt")
        FileManager.default.createFile(atPath: huge.path, contents: nil)
        let h = try FileHandle(forWritingTo: huge)
        try h.truncate(atOffset: 1 << 30)
        try h.close()
        try FileManager.default.createSymbolicLink(atPath: corpus.appendingPathComponent("loop").path, withDestinationPath: "loop")
        try FileManager.default.createDirectory(at: corpus.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: corpus.appendingPathComponent("sub/up").path, withDestinationPath: "..")

        let r = try build()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("files: 5 added, 0 changed, 0 deleted, 0 unchanged\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("1 binary") && r.stdout.contains("1 too large") && r.stdout.contains("2 symbolic link loops"), r.stdout)
        XCTAssertTrue(r.stderr.contains("warning: bad-utf8.md: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: loop: skipped (symbolic link loop: "), r.stderr)
        let info = try kb(["info", "--index", indexDir.path])
        XCTAssertTrue(info.stdout.contains("documents: 5\n"), info.stdout)
        XCTAssertEqual(try kb(["verify", "--index", indexDir.path]).status, 0)
        let q = try kb(["query", "--index", indexDir.path, "--model", model.path, "--json", "-k", "100", "--path", "*.html", "deep text"])
        XCTAssertEqual(q.status, 0, q.stderr)
        let texts = q.stdoutLines.joined()
        XCTAssertTrue(texts.contains("deep text") && texts.contains("cells"), String(texts.prefix(500)))
        // Every line of the long file is in some chunk, the last one included.
        let manifest = try Manifest.read(from: indexDir.path)
        var lines = Set<Int>()
        for entry in manifest.segments {
            let seg = try SegmentReader(path: indexDir.appendingPathComponent(entry.file).path)
            for c in 0..<seg.chunkCount {
                let r = seg.chunk(c)
                guard seg.document(Int(r.document)).path == "long.md" else { continue }
                lines.formUnion(Int(r.lineStart)...Int(r.lineEnd))
            }
        }
        XCTAssertEqual(lines, Set(1...200_000))
    }

    /// Files rewritten, deleted and created while the build reads them: the build finishes
    /// (with warnings for what vanished), the index verifies, and the next build, with the
    /// folder quiet again, brings it exactly up to date.
    func testFilesChangingDuringTheBuild() throws {
        let n = 400
        let body = String(repeating: "Some words to chunk and embed. ", count: 60)
        for i in 0..<n { try put("f\(i).md", Array("# File \(i)\n\nfirst version of file \(i)\n\n\(body)\n".utf8)) }
        XCTAssertEqual(try build().status, 0)
        for i in 0..<n where i % 3 == 0 { try put("f\(i).md", Array("# File \(i)\n\nsecond version \(i)\n".utf8)) }

        let stop = ManagedAtomicFlag()
        let rounds = ManagedCounter()
        let churn = Thread { [corpus] in
            var round = 0
            while !stop.isSet {
                round += 1
                rounds.increment()
                let i = (round * 7) % n
                let url = corpus!.appendingPathComponent("f\(i).md")
                if round % 4 == 0 {
                    try? FileManager.default.removeItem(at: url)
                } else {
                    try? Data("# File \(i)\n\nchurned \(round) ".utf8 + Data(repeating: UInt8(ascii: "z"), count: round % 5000)).write(to: url)
                }
            }
        }
        churn.start()
        let during = try build()
        let churned = rounds.value
        stop.set()
        while !churn.isFinished { usleep(1000) }
        XCTAssertEqual(during.status, 0, during.stderr)
        XCTAssertGreaterThan(churned, 50, "the files hardly changed during the build: the test tested nothing")
        XCTAssertEqual(try kb(["verify", "--index", indexDir.path]).status, 0)

        let after = try build()
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertEqual(try kb(["verify", "--index", indexDir.path]).status, 0)
        let present = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".md") }.count
        let info = try kb(["info", "--index", indexDir.path]).stdout
        // Live documents; deleted ones (old versions, not yet compacted) are listed apart.
        XCTAssertTrue(info.contains("documents: \(present)\n") || info.contains("documents: \(present) (and "), "\(present) files: \(info)")
        XCTAssertTrue(try build().stdout.hasPrefix("index is up to date: \(present) files"))
    }
}

/// A counter one thread increments and another reads.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    func increment() { lock.lock(); count += 1; lock.unlock() }
}

/// A flag one thread sets and another reads.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
