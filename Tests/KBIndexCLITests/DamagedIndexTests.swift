import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// Damage found late (issue 13): a flipped byte inside a section that opening does not
/// check. `build` must find it and index the segment's documents again, `info` points to
/// `verify`, and both report files a killed writer left, without removing them.
final class DamagedIndexTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 12).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbdamaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        try write("a.md", "# Animals\n\nThe QuokkaZebra lives on an island and smiles.\n")
        try write("b.md", "# Boats\n\nA ketch has two masts.\n")
        try write("c.txt", "Cherries ripen in early summer.\n")
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

    func kb(_ args: [String], status: Int32 = 0) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(args)
        XCTAssertEqual(r.status, status, "kbindex \(args.joined(separator: " ")): \(r.stdout)\(r.stderr)")
        return r
    }

    func build(_ extra: [String] = []) throws -> CLIRunner.Result {
        try kb(["build", corpus.path, "--model", model.path, "--no-compact"] + extra)
    }

    func segments() throws -> [String] { try Manifest.read(from: indexDir.path).segments.map(\.file) }

    /// Flips one byte of the text "QuokkaZebra" in segment `name` (LZ4 keeps a word seen once
    /// as a literal, so it lies in the TEXT section as it is).
    func damageText(in name: String) throws {
        let url = indexDir.appendingPathComponent(name)
        var bytes = try Data(contentsOf: url)
        let at = try XCTUnwrap(bytes.range(of: Data("QuokkaZebra".utf8)), "the word is not stored as a literal")
        bytes[at.lowerBound + 3] ^= 0x20
        try bytes.write(to: url)
    }

    func testBuildFindsADamagedSegmentAndIndexesItsDocumentsAgain() throws {
        _ = try build()
        let first = try segments()
        XCTAssertEqual(first.count, 1)
        try write("d.md", "# Dogs\n\nA dachshund was bred to hunt badgers.\n")
        _ = try build()
        XCTAssertEqual(try segments().count, 2)
        try damageText(in: first[0])
        XCTAssertEqual(try kb(["verify", "--index", indexDir.path], status: 2).stderr.contains("section TEXT does not match"), true)
        // Opening cannot see it; info says what it checked and where the full check is.
        let info = try kb(["info", "--index", indexDir.path]).stdout
        XCTAssertTrue(info.contains("checked:   headers and record bounds; 'kbindex verify' also checks every section's checksum"), info)
        // info --verify finds it too, and says what to do (the library text has no advice).
        let deep = try kb(["info", "--verify", "--index", indexDir.path], status: 2).stderr
        XCTAssertTrue(deep.contains("the TEXT checksum does not match; 'kbindex verify' for the full check; 'kbindex build \(corpus.path)' re-embeds the damaged segment's documents\n"), deep)

        // compact would copy the damage under fresh checksums: it refuses and changes nothing.
        let c = try kb(["compact", "--index", indexDir.path], status: 2)
        XCTAssertTrue(c.stderr.hasPrefix("error: segment \(indexDir.appendingPathComponent(first[0]).path) is damaged: the TEXT checksum does not match; nothing was changed; 'kbindex build \(corpus.path)' re-embeds the damaged segment's documents\n"), c.stderr)
        XCTAssertEqual(try segments().count, 2)

        try FileManager.default.removeItem(at: corpus.appendingPathComponent("c.txt"))
        let r = try build()
        XCTAssertTrue(r.stderr.contains("warning: \(indexDir.appendingPathComponent(first[0]).path): TEXT section does not match its checksum; reading its 3 documents again and dropping the segment\n"), r.stderr)
        XCTAssertTrue(r.stdout.contains("files: 0 added, 0 changed, 1 deleted, 1 unchanged, 2 indexed again from a damaged segment\n"), r.stdout)
        let now = try segments()
        XCTAssertFalse(now.contains(first[0]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: indexDir.appendingPathComponent(first[0]).path))
        XCTAssertTrue(try kb(["verify", "--index", indexDir.path]).stdout.hasPrefix("ok: "))
        // Every file on disk is indexed once, with its text intact.
        var paths: [String] = []
        var texts = ""
        for name in now {
            let seg = try SegmentReader(path: indexDir.appendingPathComponent(name).path)
            paths += (0..<seg.documentCount).map { seg.document($0).path }
            for c in 0..<seg.chunkCount { texts += try seg.text(ofChunk: c) }
        }
        XCTAssertEqual(paths.sorted(), ["a.md", "b.md", "d.md"])
        XCTAssertTrue(texts.contains("QuokkaZebra"), texts)
        XCTAssertTrue(try build().stdout.hasPrefix("index is up to date: 3 files"))
    }

    /// A process id no process has now (one that ran and ended).
    func deadProcessID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    func testVerifyAndInfoReportStrayFilesWithoutRemovingThem() throws {
        _ = try build()
        let dead = try deadProcessID()
        // Process id 0 is no writer's (kill(0, 0) would answer for a group). ("….tmp--1" is
        // not a name kbindex writes at all, so cleanup leaves it alone.)
        let strays = ["seg-20260101T000000-\(dead)-c-0.kbseg", "manifest.json.tmp-\(dead)", "manifest.json.tmp-0"]
        // A writer at work (this test's own process) is not a killed one: not reported.
        let busy = "seg-20260101T000000-\(getpid())-0.kbseg"
        for name in strays + [busy] { try Data("partial".utf8).write(to: indexDir.appendingPathComponent(name)) }
        let line = "stray files: \(strays.sorted().joined(separator: ", ")), removed by the next 'kbindex build' or 'kbindex compact'\n"
        let v = try kb(["verify", "--index", indexDir.path])
        XCTAssertTrue(v.stdout.hasPrefix("ok: "), v.stdout)
        XCTAssertTrue(v.stdout.hasSuffix(line), v.stdout)
        let info = try kb(["info", "--index", indexDir.path]).stdout
        XCTAssertTrue(info.contains(line), info)
        for name in strays + [busy] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: indexDir.appendingPathComponent(name).path), name)
        }
        // The next writer removes them.
        try FileManager.default.removeItem(at: indexDir.appendingPathComponent(busy))
        _ = try build()
        XCTAssertFalse(try kb(["verify", "--index", indexDir.path]).stdout.contains("stray"))
        for name in strays { XCTAssertFalse(FileManager.default.fileExists(atPath: indexDir.appendingPathComponent(name).path), name) }
    }
}
