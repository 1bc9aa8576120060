import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// Builds that survive interruption (Ctrl-C, a killed rebuild, damaged checkpoints) and
/// identical texts embedded once, through the CLI.
///
/// The corpus has 70 one-chunk notes: a build reads them in three groups (32, 32, 6 files),
/// and `--checkpoint-chunks 20` saves progress after each of the first two.
final class ResumeTests: XCTestCase {
    var work: URL!
    var corpus: URL { work.appendingPathComponent("corpus") }
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }
    var checkpointFile: URL { indexDir.appendingPathComponent("checkpoint.json") }
    private var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }

    static let topics = ["sailing knots", "sourdough starters", "comet tails", "chess openings", "tax returns",
                         "bee keeping", "violin strings", "glacier melt", "rust compiler errors", "tide tables"]
    static let questions = "how do I tie a bowline\nfeeding a sourdough starter\nwhy do comets have tails\n"
        + "best opening for beginners\nwhen is the tax deadline\nhoney harvest\nglaciers\nborrow checker error\n"

    override func setUpWithError() throws {
        _ = try InstalledModels.miniLM()
        work = FileManager.default.temporaryDirectory.appendingPathComponent("kbresume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        for i in 0..<70 { try write("notes/\(String(format: "%02d", i)).md", Self.note(i)) }
    }

    override func tearDownWithError() throws { if let work { try? FileManager.default.removeItem(at: work) } }

    static func note(_ i: Int, version: Int = 0) -> String {
        let t = topics[i % topics.count]
        return "# \(t.capitalized) \(i)\n\nNote \(i) (version \(version)) about \(t): fact number \(i * 7 + version) for later.\n"
    }

    func write(_ path: String, _ text: String, in root: URL? = nil) throws {
        let url = (root ?? corpus).appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func build(_ extra: [String] = [], fault: String? = nil, root: URL? = nil, index: URL? = nil) throws -> CLIRunner.Result {
        var environment = env
        if let fault { environment["KBINDEX_FAULT"] = fault }
        return try CLIRunner.run(["build", (root ?? corpus).path, "--index", (index ?? indexDir).path, "--quiet", "--checkpoint-chunks", "20"] + extra,
                                 environment: environment)
    }

    /// The answers to `questions`, without the lexical ranks: BM25 ties (equal scores) are
    /// ranked by segment order, which differs between an index built in one go and one
    /// whose build was continued (its aside segments come first).
    func answers(_ index: URL? = nil) throws -> String {
        let r = try CLIRunner.run(["query", "--index", (index ?? indexDir).path, "--batch", "-", "-k", "4"], environment: env, stdin: Data(Self.questions.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        return Self.withoutLexicalRanks(r.stdout)
    }

    static func withoutLexicalRanks(_ s: String) -> String {
        s.replacingOccurrences(of: #""lexical_rank":[0-9]+,"#, with: "", options: .regularExpression)
    }

    /// The answers of an uninterrupted build of the corpus as it is now.
    func referenceAnswers() throws -> String {
        let ref = work.appendingPathComponent("reference")
        try? FileManager.default.removeItem(at: ref)
        let r = try build(index: ref)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try answers(ref)
    }

    func names(_ dir: URL? = nil) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: (dir ?? indexDir).path).sorted() }

    /// The chunks' indexed numbers in the build's summary ("indexed 38 files into 38 chunks").
    func indexedFiles(_ stdout: String) -> Int? {
        guard let r = stdout.range(of: "indexed ") else { return nil }
        return Int(stdout[r.upperBound...].prefix { $0.isNumber })
    }

    func testCtrlCSavesWhatIsFinishedAndTheNextBuildResumesToTheSameIndex() throws {
        let reference = try referenceAnswers()
        // SIGINT once the first group is embedded (and checkpointed): the build stops before
        // the second one.
        let r = try build(fault: "interrupt@group-done")
        XCTAssertEqual(r.status, 130, r.stderr)
        XCTAssertTrue(r.stderr.contains("interrupted: 32 chunks of 32 files saved; run the same command again to resume\n"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpointFile.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: indexDir.appendingPathComponent("manifest.json").path), "nothing committed yet")

        let again = try build()
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("note: resuming an interrupted build: 32 chunks of 32 files already embedded\n"), again.stderr)
        XCTAssertEqual(indexedFiles(again.stdout), 38, again.stdout)
        XCTAssertTrue(again.stdout.contains("files: 70 added, 0 changed, 0 deleted, 0 unchanged\n"), again.stdout)
        XCTAssertTrue(again.stdout.contains("resumed: 32 chunks of 32 files were embedded by the interrupted build\n"), again.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpointFile.path))
        XCTAssertEqual(try answers(), reference)
        XCTAssertEqual(try CLIRunner.run(["verify", "--index", indexDir.path], environment: env).status, 0)
    }

    func testCtrlCInsideTheFirstEmbeddingSavesNothingAndLeavesTheIndexAlone() throws {
        let first = try build()
        XCTAssertEqual(first.status, 0, first.stderr)
        let manifest = try Data(contentsOf: indexDir.appendingPathComponent("manifest.json"))
        for i in 0..<40 { try write("notes/\(String(format: "%02d", i)).md", Self.note(i, version: 1)) }
        let r = try build(fault: "interrupt@before-embedding")
        XCTAssertEqual(r.status, 130, r.stderr)
        XCTAssertTrue(r.stderr.contains("interrupted: nothing was embedded yet; the index is unchanged\n"), r.stderr)
        XCTAssertEqual(r.stderr.components(separatedBy: "note: stopping: the running batches finish and what is done is saved").count, 2, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: checkpointFile.path))
        XCTAssertEqual(try Data(contentsOf: indexDir.appendingPathComponent("manifest.json")), manifest)
        let again = try build()
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stderr.contains("resuming"), again.stderr)
        XCTAssertEqual(try answers(), try referenceAnswers())
    }

    func testAKilledRebuildLeavesTheOldIndexAndAPlainBuildContinuesIt() throws {
        XCTAssertEqual(try build().status, 0)
        let old = try answers()
        for i in 0..<70 where i % 3 == 0 { try write("notes/\(String(format: "%02d", i)).md", Self.note(i, version: 2)) }
        let reference = try referenceAnswers()
        XCTAssertNotEqual(old, reference)

        let killed = try build(["--rebuild"], fault: "checkpoint-written")
        XCTAssertTrue(killed.killed, killed.stderr)
        XCTAssertEqual(try answers(), old, "readers still get the old index")
        let verify = try CLIRunner.run(["verify", "--index", indexDir.path], environment: env)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertTrue(verify.stdout.contains("an interrupted rebuild has 32 chunks of 32 files saved aside (not searched yet); 'kbindex build' of the indexed folder resumes it\n"), verify.stdout)
        XCTAssertFalse(verify.stdout.contains("stray"), verify.stdout)
        let info = try CLIRunner.run(["info", "--index", indexDir.path], environment: env)
        XCTAssertTrue(info.stdout.contains("pending:   an interrupted rebuild has 32 chunks"), info.stdout)
        XCTAssertFalse(info.stdout.contains("stray"), info.stdout)

        // A compaction meanwhile keeps the aside segments.
        let compact = try CLIRunner.run(["compact", "--index", indexDir.path], environment: env)
        XCTAssertEqual(compact.status, 0, compact.stderr)
        XCTAssertEqual(try answers(), old)

        let again = try build()  // no --rebuild: the rebuild goes on
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("note: continuing an interrupted rebuild; queries use the current index until it finishes\n"), again.stderr)
        XCTAssertTrue(again.stderr.contains("note: resuming an interrupted build: 32 chunks of 32 files already embedded\n"), again.stderr)
        XCTAssertEqual(indexedFiles(again.stdout), 38, again.stdout)
        XCTAssertEqual(try answers(), reference)
        // The old segment is gone: one rebuild's worth of chunks, and no leftovers.
        let info2 = try CLIRunner.run(["info", "--index", indexDir.path], environment: env).stdout
        XCTAssertTrue(info2.contains("chunks:    70\n"), info2)
        XCTAssertFalse(try names().contains("checkpoint.json"))
    }

    func testRebuildOverAnUpdatesCheckpointStartsOver() throws {
        XCTAssertEqual(try build().status, 0)
        for i in 0..<70 { try write("notes/\(String(format: "%02d", i)).md", Self.note(i, version: 3)) }
        XCTAssertTrue(try build(fault: "checkpoint-written").killed)
        let r = try build(["--rebuild"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("note: discarding the 32 chunks an interrupted build saved aside: they belong to an update, and --rebuild starts over\n"), r.stderr)
        XCTAssertEqual(indexedFiles(r.stdout), 70, r.stdout)
        XCTAssertEqual(try answers(), try referenceAnswers())
    }

    func testADamagedCheckpointIsDiscardedAndTheBuildStartsOver() throws {
        let reference = try referenceAnswers()
        XCTAssertEqual(try build(fault: "interrupt@group-done").status, 130)
        let cp = try JSONSerialization.jsonObject(with: Data(contentsOf: checkpointFile)) as! [String: Any]
        let aside = (cp["segments"] as! [[String: Any]]).map { $0["file"] as! String }
        XCTAssertEqual(aside.count, 1)
        var bytes = try Data(contentsOf: checkpointFile)
        bytes[40] ^= 0x01
        try bytes.write(to: checkpointFile)
        let r = try build()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("note: the checkpoint \(checkpointFile.path) is damaged (sha256 mismatch): discarding it; this build starts over\n"), r.stderr)
        XCTAssertFalse(r.stderr.contains("resuming"), r.stderr)
        XCTAssertEqual(indexedFiles(r.stdout), 70, r.stdout)
        XCTAssertEqual(try answers(), reference)
        // The segment the damaged checkpoint named went with the commit.
        let left = try names()
        XCTAssertFalse(left.contains(aside[0]) || left.contains("checkpoint.json"), "\(left)")
    }

    func testACheckpointNamingAMissingSegmentLosesOnlyThatSegment() throws {
        XCTAssertEqual(try build().status, 0)
        for i in 0..<70 { try write("notes/\(String(format: "%02d", i)).md", Self.note(i, version: 4)) }
        let reference = try referenceAnswers()
        // Two checkpoints (two aside segments), then a kill before the last group.
        let killed = try build(fault: "interrupt@group-done")
        XCTAssertEqual(killed.status, 130, killed.stderr)
        let again = try build(fault: "checkpoint-written")  // resumes and saves a second segment
        XCTAssertTrue(again.killed, again.stderr)
        let cp = try JSONSerialization.jsonObject(with: Data(contentsOf: checkpointFile)) as! [String: Any]
        let segs = (cp["segments"] as! [[String: Any]]).map { $0["file"] as! String }
        XCTAssertEqual(segs.count, 2, "\(cp)")
        try FileManager.default.removeItem(at: indexDir.appendingPathComponent(segs[0]))
        let r = try build()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(indexDir.appendingPathComponent(segs[0]).path): missing; the interrupted build's documents in it are read and embedded again\n"), r.stderr)
        XCTAssertTrue(r.stderr.contains("note: resuming an interrupted build: 32 chunks of 32 files already embedded\n"), r.stderr)
        XCTAssertEqual(indexedFiles(r.stdout), 38, r.stdout)
        XCTAssertTrue(r.stdout.contains("files: 0 added, 70 changed, 0 deleted, 0 unchanged\n"), r.stdout)
        XCTAssertEqual(try answers(), reference)
        XCTAssertEqual(try CLIRunner.run(["verify", "--index", indexDir.path], environment: env).status, 0)
    }

    func testAFileChangedSinceItsAsideVersionIsEmbeddedAgain() throws {
        XCTAssertEqual(try build(fault: "interrupt@group-done").status, 130)
        // Files 00 and 01 were saved aside; change one, delete the other.
        try write("notes/00.md", Self.note(0, version: 5))
        try FileManager.default.removeItem(at: corpus.appendingPathComponent("notes/01.md"))
        let reference = try referenceAnswers()
        let r = try build()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("note: resuming an interrupted build: 30 chunks of 30 files already embedded\n"), r.stderr)
        XCTAssertEqual(indexedFiles(r.stdout), 39, r.stdout)
        XCTAssertTrue(r.stdout.contains("files: 69 added, 0 changed, 0 deleted, 0 unchanged\n"), r.stdout)
        XCTAssertEqual(try answers(), reference)
        let all = try CLIRunner.run(["query", "--index", indexDir.path, "--json", "-k", "100", "sailing knots note 0"], environment: env).stdout
        XCTAssertFalse(all.contains("(version 0) about sailing knots: fact number 0 "), "the aside version of 00.md is deleted")
        XCTAssertFalse(all.contains("notes/01.md"), all)
    }

    func testACheckpointOfAnotherPrecisionIsDiscardedAndTheCheckpointsPrecisionIsTheDefault() throws {
        XCTAssertEqual(try build(["--precision", "int8"], fault: "interrupt@group-done").status, 130)
        // Without --precision, the interrupted build's precision goes on.
        let r = try build()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("resuming an interrupted build: 32 chunks"), r.stderr)
        let manifest = try String(contentsOf: indexDir.appendingPathComponent("manifest.json"), encoding: .utf8)
        XCTAssertTrue(manifest.contains("\"precision\" : \"int8\""), manifest)

        // f32 over an int8 index: everything again, aside until the switch.
        try write("notes/00.md", Self.note(0, version: 6))
        XCTAssertTrue(try build(["--precision", "f32"], fault: "checkpoint-written").killed)
        XCTAssertTrue(try String(contentsOf: indexDir.appendingPathComponent("manifest.json"), encoding: .utf8).contains("\"precision\" : \"int8\""))
        let other = try build(["--precision", "int8"])
        XCTAssertEqual(other.status, 0, other.stderr)
        XCTAssertTrue(other.stderr.contains("note: discarding the 32 chunks an interrupted build saved aside: they were embedded with all-MiniLM-L6-v2 in f32, this build embeds with all-MiniLM-L6-v2 in int8\n"), other.stderr)
        XCTAssertEqual(indexedFiles(other.stdout), 1, other.stdout)
        let f32 = try build(["--precision", "f32"])
        XCTAssertEqual(f32.status, 0, f32.stderr)
        XCTAssertTrue(f32.stderr.contains("note: the index was embedded in int8; re-embedding every file in f32 (queries use the current index until this build finishes)\n"), f32.stderr)
        XCTAssertEqual(indexedFiles(f32.stdout), 70, f32.stdout)
        XCTAssertFalse(try String(contentsOf: indexDir.appendingPathComponent("manifest.json"), encoding: .utf8).contains("precision"))
    }

    func testIdenticalTextsAreEmbeddedOnceWithTheVectorsTheyWouldGetAlone() throws {
        let license = "# License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software.\n"
        // Six copies, spread over both groups of the build (files are read in path order).
        for dir in ["a", "b", "m", "x", "y", "z"] { try write("\(dir)/LICENSE.md", license) }
        let r = try build()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("identical texts: 5 chunks reused an earlier vector\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("into 76 chunks"), r.stdout)

        // The same texts, each once, in another corpus: every stored row equals its text's.
        let single = work.appendingPathComponent("single")
        try write("LICENSE.md", license, in: single)
        for i in 0..<70 { try write("notes/\(String(format: "%02d", i)).md", Self.note(i), in: single) }
        let singleIndex = work.appendingPathComponent("single-index")
        let s = try build(root: single, index: singleIndex)
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertFalse(s.stdout.contains("identical texts"), s.stdout)
        let reused = try rows(indexDir), alone = try rows(singleIndex)
        XCTAssertEqual(reused.count, 71, "distinct texts")
        XCTAssertEqual(Set(reused.keys), Set(alone.keys))
        for (text, row) in reused { XCTAssertEqual(row, alone[text], text) }

        let q = try CLIRunner.run(["query", "--index", indexDir.path, "--json", "-k", "6", "permission free of charge software license"], environment: env)
        for dir in ["a", "b", "m", "x", "y", "z"] { XCTAssertTrue(q.stdout.contains("\(dir)/LICENSE.md"), q.stdout) }
    }

    /// Each chunk text of the index in `dir` with its stored row (int8 values and scale);
    /// fails when two chunks of one text have different rows.
    func rows(_ dir: URL) throws -> [String: [Int8]] {
        var out: [String: [Int8]] = [:]
        for name in try names(dir) where name.hasSuffix(".kbseg") {
            let seg = try SegmentReader(path: dir.appendingPathComponent(name).path)
            for c in 0..<seg.chunkCount {
                let text = try seg.text(ofChunk: c)
                let row = Array(UnsafeBufferPointer(start: seg.vectorBase + c * seg.rowStride, count: seg.dimensions))
                let scale = seg.scale(ofChunk: c).bitPattern
                let key = row + (0..<4).map { Int8(truncatingIfNeeded: scale >> (8 * $0)) }
                if let seen = out[text] { XCTAssertEqual(seen, key, "two rows for \(text)") }
                out[text] = key
            }
        }
        return out
    }
}
