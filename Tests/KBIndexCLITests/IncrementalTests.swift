import Foundation
import KBCore
import KBTestSupport
import XCTest

/// Incremental builds, compaction, verify and the write lock, through the CLI.
final class IncrementalTests: XCTestCase {
    var corpus: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }
    private var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }

    override func setUpWithError() throws {
        _ = try InstalledModels.miniLM()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbincr-\(UUID().uuidString)")
        for (path, text) in [
            "birds.md": "# Birds\n\n## Swifts\n\nSwifts spend most of their life in the air and sleep while flying.\n",
            "trains.md": "# Trains\n\nThe night train to Vienna leaves at ten and has sleeping cars.\n",
            "tea.txt": "Green tea should steep for two minutes in water below boiling.\n",
            "code/sum.py": "def total(values):\n    \"\"\"Add up a list of prices.\"\"\"\n    return sum(values)\n",
            "garden/roses.md": "# Roses\n\nPrune roses in late winter, just above an outward-facing bud.\n",
        ] {
            try write(path, text)
        }
    }

    override func tearDownWithError() throws { if let corpus { try? FileManager.default.removeItem(at: corpus) } }

    func write(_ path: String, _ text: String) throws {
        let url = corpus.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    @discardableResult
    func kb(_ args: [String], status: Int32 = 0) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(args, environment: env)
        XCTAssertEqual(r.status, status, "kbindex \(args.joined(separator: " ")): \(r.stderr)")
        return r
    }

    func build(_ extra: [String] = []) throws -> CLIRunner.Result { try kb(["build", corpus.path, "--quiet"] + extra) }
    func query(_ q: String, k: Int = 5) throws -> String { try kb(["query", "--index", indexDir.path, "--json", "-k", "\(k)", q]).stdout }
    func files(_ suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: indexDir.path).filter { $0.hasSuffix(suffix) }.sorted()
    }

    func testABuildWithNothingChangedIsUpToDateAndWritesNothing() throws {
        let first = try build()
        XCTAssertTrue(first.stdout.contains("files: 5 added, 0 changed, 0 deleted, 0 unchanged\n"), first.stdout)
        let manifest = try Data(contentsOf: indexDir.appendingPathComponent("manifest.json"))
        // Same content, new modification time: read and hashed again, but not re-embedded.
        try write("tea.txt", "Green tea should steep for two minutes in water below boiling.\n")
        let again = try build()
        XCTAssertEqual(again.stdout, "index is up to date: 5 files, 5 chunks (files: 0 added, 0 changed, 0 deleted, 5 unchanged)\n")
        XCTAssertEqual(try Data(contentsOf: indexDir.appendingPathComponent("manifest.json")), manifest)
    }

    func testAddedChangedAndDeletedFilesAreEmbeddedOnceAndOldVersionsNeverReturned() throws {
        _ = try build()
        try write("trains.md", "# Trains\n\nThe morning ferry to Helsinki carries bicycles for free.\n")
        try write("volcano.md", "# Volcanoes\n\nMagma that reaches the surface is called lava.\n")
        try FileManager.default.removeItem(at: corpus.appendingPathComponent("garden/roses.md"))
        let r = try build(["--no-compact"])
        XCTAssertTrue(r.stdout.hasPrefix("indexed 2 files into 2 chunks"), r.stdout)  // only the new and the changed one
        XCTAssertTrue(r.stdout.contains("files: 1 added, 1 changed, 1 deleted, 3 unchanged\n"), r.stdout)
        XCTAssertEqual(try files(".kbseg").count, 2)
        XCTAssertEqual(try files(".kbdel").count, 1)

        let info = try kb(["info", "--index", indexDir.path]).stdout
        XCTAssertTrue(info.contains("documents: 5 (and 2 deleted)\n"), info)
        XCTAssertTrue(info.contains("chunks:    5 (and 2 deleted, which 'kbindex compact' drops)\n"), info)
        let all = try query("night train sleeping cars roses pruning ferry lava", k: 10)
        XCTAssertFalse(all.contains("night train"), all)
        XCTAssertFalse(all.contains("Prune roses"), all)
        XCTAssertTrue(all.contains("ferry to Helsinki") && all.contains("lava"), all)
        XCTAssertEqual(all.split(separator: "\n").count, 5, "k=10 over 5 live chunks returns exactly the 5 live ones")

        // Compaction drops the deleted chunks and answers exactly as before.
        let c = try kb(["compact", "--index", indexDir.path]).stdout
        XCTAssertTrue(c.hasPrefix("compacted: 2 segments → 1, 2 deleted chunks dropped"), c)
        XCTAssertEqual(try files(".kbseg").count, 1)
        XCTAssertEqual(try files(".kbdel"), [])
        XCTAssertEqual(try query("night train sleeping cars roses pruning ferry lava", k: 10), all)
        XCTAssertTrue(try kb(["info", "--index", indexDir.path]).stdout.contains("chunks:    5\n"))
        XCTAssertTrue(try kb(["verify", "--index", indexDir.path]).stdout.hasPrefix("ok: "))
    }

    func testBuildCompactsOnItsOwnPastAQuarterDeleted() throws {
        _ = try build()
        try write("birds.md", "# Birds\n\n## Owls\n\nOwls hunt at night and swallow their prey whole.\n")
        try write("tea.txt", "Black tea wants boiling water and four minutes.\n")
        let r = try build()  // 2 of 5 chunks deleted: over a quarter
        XCTAssertTrue(r.stdout.contains("files: 0 added, 2 changed, 0 deleted, 3 unchanged\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("compacted: 2 segments → 1, 2 deleted chunks dropped"), r.stdout)
        XCTAssertEqual(try files(".kbseg").count, 1)
        XCTAssertTrue(try query("owls hunting", k: 1).contains("swallow their prey"))
    }

    func testAnUnreadablePathKeepsItsIndexedVersion() throws {
        _ = try build()
        // A dangling symbolic link where the file was: the walk cannot read it (as it could
        // not read a file without permission), so its indexed version stays.
        try FileManager.default.removeItem(at: corpus.appendingPathComponent("tea.txt"))
        try FileManager.default.createSymbolicLink(atPath: corpus.appendingPathComponent("tea.txt").path, withDestinationPath: "/nonexistent/tea")
        let r = try kb(["build", corpus.path])
        // The file is named once: the reason follows without the path again.
        XCTAssertTrue(r.stderr.contains("warning: tea.txt: skipped (unreadable: cannot stat: No such file or directory)\n"), r.stderr)
        XCTAssertFalse(r.stderr.contains(corpus.path), r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("index is up to date"), r.stdout)
        XCTAssertTrue(try query("how long to steep green tea", k: 1).contains("\"path\":\"tea.txt\""))
    }

    func testASecondWriterFailsAtOnceWhileTheLockIsHeld() throws {
        _ = try build()
        let lock = try XCTUnwrap(try FileLock.tryLock(indexDir.appendingPathComponent(".lock").path))
        defer { lock.unlock() }
        try write("new.md", "# New\n\nSomething new to index.\n")
        let r = try kb(["build", corpus.path, "--quiet"], status: 2)
        XCTAssertEqual(r.stderr, "error: another kbindex build, compact or merge is writing \(indexDir.path); wait for it to finish\n")
        let c = try kb(["compact", "--index", indexDir.path], status: 2)
        XCTAssertTrue(c.stderr.hasPrefix("error: another kbindex build, compact or merge"), c.stderr)
        // Readers need no lock.
        XCTAssertTrue(try query("swifts sleep while flying", k: 1).contains("birds.md"))
    }

    func testVerifyReportsEveryDamagedFileAndSection() throws {
        _ = try build(["--segment-chunks", "2"])
        try write("tea.txt", "Oolong tea is between green and black.\n")
        _ = try build(["--segment-chunks", "2", "--no-compact"])
        XCTAssertTrue(try kb(["verify", "--index", indexDir.path]).stdout.contains("and 1 deletion file match their checksums"))
        let segs = try files(".kbseg")
        XCTAssertGreaterThanOrEqual(segs.count, 3)
        // Damage a byte in the vectors of one segment, the text of another (directory entries
        // 0 and 7, format-spec.md §4), and the deletion file's checksum.
        func flip(_ name: String, entry: Int?) throws {
            let url = indexDir.appendingPathComponent(name)
            var b = [UInt8](try Data(contentsOf: url))
            func le(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(b[at + $1]) << (8 * $1) } }
            let at = entry.map { le(64 + 32 * $0 + 8) + le(64 + 32 * $0 + 16) / 2 } ?? b.count - 2
            b[at] ^= 0x10
            try Data(b).write(to: url)
        }
        let before = try query("green tea", k: 3)
        try flip(segs[0], entry: 0)
        try flip(segs[1], entry: 7)
        try flip(try files(".kbdel")[0], entry: nil)
        let v = try kb(["verify", "--index", indexDir.path], status: 2)
        let damaged = v.stderr.split(separator: "\n").filter { $0.hasPrefix("damaged: ") }
        XCTAssertEqual(damaged.count, 3, v.stderr)
        XCTAssertTrue(damaged[0].contains(segs[0]) && damaged[0].hasSuffix("section VECTORS does not match its checksum"), v.stderr)
        XCTAssertTrue(damaged[1].contains(segs[1]) && damaged[1].hasSuffix("section TEXT does not match its checksum"), v.stderr)
        XCTAssertTrue(v.stderr.contains(".kbdel is damaged (checksum mismatch)"), v.stderr)
        XCTAssertTrue(v.stderr.hasSuffix("error: 3 problems in \(indexDir.path): 'kbindex build \(corpus.path)' re-embeds the damaged segment's documents\n"), v.stderr)
        // A query names the damaged deletion file instead of crashing.
        let q = try kb(["query", "--index", indexDir.path, "green tea"], status: 2)
        XCTAssertTrue(q.stderr.hasPrefix("error: deletion file ") && q.stderr.contains(".kbdel is damaged"), q.stderr)
        // One piece of advice, said once, and the same as verify's: a plain build repairs it.
        XCTAssertTrue(q.stderr.hasSuffix(".kbdel is damaged (checksum mismatch): 'kbindex build \(corpus.path)' writes the index anew\n"), q.stderr)
        XCTAssertFalse(v.stderr.contains("--rebuild"), v.stderr)
        // A rebuild writes a good index again.
        _ = try build(["--rebuild"])
        XCTAssertTrue(try kb(["verify", "--index", indexDir.path]).stdout.hasPrefix("ok: "))
        XCTAssertEqual(try query("green tea", k: 3).split(separator: "\n").count, before.split(separator: "\n").count)
    }
}
