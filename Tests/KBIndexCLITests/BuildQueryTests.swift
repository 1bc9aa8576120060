import Foundation
import KBTestSupport
import XCTest

/// `kbindex build` then `kbindex query` on a small corpus, as a user runs them.
final class BuildQueryTests: XCTestCase {
    var corpus: URL!
    private var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }

    override func setUpWithError() throws {
        _ = try InstalledModels.miniLM()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbcorpus-\(UUID().uuidString)")
        let files: [String: String] = [
            "cooking.md": """
                # Recipes

                ## Lentil soup

                Rinse a cup of red lentils. Soften an onion and two carrots in olive oil, add cumin,
                then the lentils and a litre of stock. Simmer for twenty-five minutes and blend.

                ## Bread

                Mix flour, water, salt and yeast; knead for ten minutes and let the dough rise for an hour.
                """,
            "ops/logging.md": """
                # Operations

                ## Rotating logs

                Configure logrotate to rotate /var/log/app.log weekly, keep eight old files and compress them.
                """,
            "notes.txt": "The garden needs watering twice a week in summer.\n\nTomatoes go in after the last frost.\n",
            "tools/backup.py": "import shutil\n\ndef back_up(src, dst):\n    \"\"\"Copy the database file to the backup disk every night.\"\"\"\n    shutil.copy(src, dst)\n",
            "space.html": "<html><head><title>Astronomy</title><script>var lentil = 1;</script></head><body><nav>Home | About</nav><h1>The Moon</h1><p>The Moon orbits the Earth every 27.3 days &amp; always shows the same face.</p></body></html>",
            "secret/lentils.md": "# Lentil soup\n\nThis file is ignored by .gitignore and must never be returned.\n",
            ".gitignore": "secret/\n",
        ]
        for (path, text) in files {
            let url = corpus.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try Data([0x7F, 0x45, 0x4C, 0x46, 0, 0, 1, 2]).write(to: corpus.appendingPathComponent("a.out.txt"))
    }

    override func tearDownWithError() throws { if let corpus { try? FileManager.default.removeItem(at: corpus) } }

    struct JSONHit: Decodable { let rank: Int; let score: Float; let path: String; let line_start: Int; let line_end: Int; let heading: [String]; let text: String }

    func build() throws -> CLIRunner.Result {
        let r = try CLIRunner.run(["build", corpus.path, "--quiet"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    func query(_ args: [String]) throws -> [JSONHit] {
        let r = try CLIRunner.run(["query", "--index", corpus.appendingPathComponent(".kbindex").path, "--json"] + args, environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try r.stdoutLines.map { try JSONDecoder().decode(JSONHit.self, from: Data($0.utf8)) }
    }

    func testBuildThenQueryReturnsThePassageThatAnswers() throws {
        let b = try build()
        XCTAssertTrue(b.stdout.hasPrefix("indexed 5 files into "), b.stdout)
        XCTAssertTrue(b.stdout.contains("skipped: "), b.stdout)
        XCTAssertTrue(b.stdout.contains("1 binary"), b.stdout)
        XCTAssertTrue(b.stdout.contains("index: \(corpus.appendingPathComponent(".kbindex").path)"), b.stdout)

        let soup = try query(["-k", "3", "how do I cook lentil soup?"])
        XCTAssertEqual(soup.first?.path, "cooking.md")
        XCTAssertEqual(soup.first?.heading, ["Recipes", "Lentil soup"])
        XCTAssertTrue(soup.first?.text.contains("red lentils") ?? false)
        XCTAssertFalse(soup.contains { $0.path.hasPrefix("secret/") }, "a .gitignored file was indexed")
        XCTAssertEqual(soup.map(\.rank), [1, 2, 3])
        XCTAssertGreaterThan(soup[0].score, soup[1].score)

        XCTAssertEqual(try query(["-k", "1", "log rotation schedule"]).first?.path, "ops/logging.md")
        XCTAssertEqual(try query(["-k", "1", "how long does the moon take to go around the earth"]).first?.path, "space.html")
        XCTAssertEqual(try query(["-k", "1", "nightly database backup"]).first?.path, "tools/backup.py")
        let moon = try query(["-k", "1", "moon orbit"])[0]
        XCTAssertFalse(moon.text.contains("var lentil"), "script content leaked into the text")
        XCTAssertFalse(moon.text.contains("Home | About"), "navigation leaked into the text")
        XCTAssertTrue(moon.text.contains("27.3 days & always"), moon.text)
    }

    struct ModeHit: Decodable {
        let rank: Int; let score: Double; let path: String
        let vector_score: Double?; let bm25_score: Double?; let vector_rank: Int?; let lexical_rank: Int?
    }

    func testModesAndFusionShowWhyAHitWasChosen() throws {
        try build()
        func run(_ args: [String]) throws -> [ModeHit] {
            let r = try CLIRunner.run(["query", "--index", corpus.appendingPathComponent(".kbindex").path, "--json", "-k", "8"] + args, environment: env)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try r.stdoutLines.map { try JSONDecoder().decode(ModeHit.self, from: Data($0.utf8)) }
        }
        let question = "back_up the database file"
        // Lexical: identifier parts match ("back", "up"), BM25 only.
        let lexical = try run(["--mode", "lexical", question])
        XCTAssertEqual(lexical.first?.path, "tools/backup.py")
        XCTAssertTrue(lexical.allSatisfy { $0.vector_score == nil && abs($0.bm25_score! - $0.score) < 1e-5 * $0.score && $0.lexical_rank == $0.rank })
        let vector = try run(["--mode", "vector", question])
        XCTAssertTrue(vector.allSatisfy { $0.bm25_score == nil && abs($0.vector_score! - $0.score) < 1e-6 && $0.vector_rank == $0.rank })
        // Hybrid (convex, α = 0.85 by default): every hit carries both scores, and the fused
        // score is α·cosine + (1−α)·BM25/(the best BM25 among the candidates).
        let hybrid = try run([question])
        XCTAssertEqual(hybrid.first?.path, "tools/backup.py")
        let best = try XCTUnwrap(hybrid.compactMap(\.bm25_score).max())
        for h in hybrid {
            let cos = try XCTUnwrap(h.vector_score), bm = try XCTUnwrap(h.bm25_score)
            XCTAssertEqual(h.score, 0.85 * cos + 0.15 * bm / best, accuracy: 1e-5, h.path)
        }
        XCTAssertEqual(hybrid.map(\.score), hybrid.map(\.score).sorted(by: >))
        // α = 1 is the vector ranking; rank fusion scores by ranks only.
        XCTAssertEqual(try run(["--alpha", "1", question]).map(\.path), vector.map(\.path))
        let rrf = try run(["--fusion", "rrf", question])
        for h in rrf {
            let want = (h.vector_rank.map { 1 / (60 + Double($0)) } ?? 0) + (h.lexical_rank.map { 1 / (60 + Double($0)) } ?? 0)
            XCTAssertEqual(h.score, want, accuracy: 1e-9, h.path)
        }
    }

    func testPathFilterAndHumanOutput() throws {
        _ = try build()
        let onlyOps = try query(["-k", "5", "--path", "ops/*", "lentil soup"])
        XCTAssertEqual(Set(onlyOps.map(\.path)), ["ops/logging.md"])
        let r = try CLIRunner.run(["query", "--index", corpus.appendingPathComponent(".kbindex").path, "-k", "1", "lentil soup"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let first = r.stdoutLines.first ?? ""
        XCTAssertTrue(first.hasPrefix("1. 0."), first)
        XCTAssertTrue(first.hasSuffix("  cooking.md:3-6  Recipes › Lentil soup") || first.contains("cooking.md:"), first)
    }

    struct JSONAnswer: Decodable { let line: Int; let question: String; let hits: [JSONHit] }

    func testBatchAnswersEveryLineLikeSingleQueries() throws {
        _ = try build()
        let questions = ["how do I cook lentil soup?", "", "log rotation schedule", "   ", "nightly database backup\r"]
        let file = corpus.appendingPathComponent("questions.txt")
        try Data(questions.joined(separator: "\n").utf8).write(to: file)
        let idx = corpus.appendingPathComponent(".kbindex").path
        for source in [file.path, "-"] {
            let r = try CLIRunner.run(["query", "--index", idx, "-k", "3", "--batch", source], environment: env,
                                      stdin: source == "-" ? Data(questions.joined(separator: "\r\n").utf8) : nil)  // CRLF too
            XCTAssertEqual(r.status, 0, r.stderr)
            let answers = try r.stdoutLines.map { try JSONDecoder().decode(JSONAnswer.self, from: Data($0.utf8)) }
            XCTAssertEqual(answers.map(\.line), [1, 3, 5])
            XCTAssertEqual(answers.map(\.question), ["how do I cook lentil soup?", "log rotation schedule", "nightly database backup"])
            XCTAssertEqual(answers.map { $0.hits.first?.path }, ["cooking.md", "ops/logging.md", "tools/backup.py"])
            // Each answer is what the question alone returns. (Scores may differ in the last
            // float bits: the encoder's matrix products run with other shapes for a batch.)
            for a in answers {
                let single = try query(["-k", "3", a.question])
                XCTAssertEqual(a.hits.map(\.path), single.map(\.path))
                XCTAssertEqual(a.hits.map(\.line_start), single.map(\.line_start))
                for (x, y) in zip(a.hits, single) { XCTAssertEqual(x.score, y.score, accuracy: 1e-5) }
                XCTAssertEqual(a.hits.map(\.rank), [1, 2, 3])
            }
        }
        // A batch with a filter keeps k hits from the allowed documents only.
        let r = try CLIRunner.run(["query", "--index", idx, "-k", "2", "--path", "*.md", "--batch", "-"], environment: env,
                                  stdin: Data("moon orbit\nbread dough".utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        for line in r.stdoutLines {
            let a = try JSONDecoder().decode(JSONAnswer.self, from: Data(line.utf8))
            XCTAssertEqual(a.hits.count, 2)
            XCTAssertTrue(a.hits.allSatisfy { $0.path.hasSuffix(".md") }, "\(a.hits.map(\.path))")
        }
    }

    func testBatchMisuseIsAClearError() throws {
        _ = try build()
        let idx = corpus.appendingPathComponent(".kbindex").path
        let both = try CLIRunner.run(["query", "--index", idx, "--batch", "-", "soup"], environment: env)
        XCTAssertNotEqual(both.status, 0)
        XCTAssertTrue(both.stderr.contains("either a question or --batch"), both.stderr)
        let neither = try CLIRunner.run(["query", "--index", idx], environment: env)
        XCTAssertNotEqual(neither.status, 0)
        XCTAssertTrue(neither.stderr.contains("give a question, or --batch FILE"), neither.stderr)
        let missing = try CLIRunner.run(["query", "--index", idx, "--batch", corpus.appendingPathComponent("nope.txt").path], environment: env)
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("cannot read the questions file"), missing.stderr)
        let empty = try CLIRunner.run(["query", "--index", idx, "--batch", "-"], environment: env, stdin: Data("\n \n".utf8))
        XCTAssertEqual(empty.status, 2)
        XCTAssertTrue(empty.stderr.contains("has no questions"), empty.stderr)
    }

    func testInfoAndNearestIndexLookup() throws {
        _ = try build()
        let r = try CLIRunner.run(["info", "--index", corpus.appendingPathComponent(".kbindex").path, "--verify"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("model:     all-MiniLM-L6-v2, 384 dimensions, mean pooling, normalized, 256 tokens max"), r.stdout)
        XCTAssertTrue(r.stdout.contains("documents: 5\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("verified:  every section's checksum matches"), r.stdout)
    }

    func testQueryWithAnotherModelIsRefused() throws {
        _ = try build()
        let tiny = try TinyModel(seed: 5).writeTemporary()
        defer { try? FileManager.default.removeItem(at: tiny) }
        let r = try CLIRunner.run(["query", "--index", corpus.appendingPathComponent(".kbindex").path, "--model", tiny.path, "lentils"], environment: env)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("rebuild the index"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testQueryWithoutAnIndexSaysHowToBuildOne() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("kbnoindex-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let r = try CLIRunner.run(["query", "--index", empty.path, "anything"], environment: env)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("kbindex build"), r.stderr)
    }

    func testBuildOfAMissingFolderIsAClearError() throws {
        let r = try CLIRunner.run(["build", corpus.appendingPathComponent("nope").path], environment: env)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "error: \(corpus.appendingPathComponent("nope").path) is not a folder\n")
    }

    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    func segmentFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: indexDir.path).filter { $0.hasSuffix(".kbseg") }.sorted()
    }

    func testManySegmentsAnswerLikeOne() throws {
        _ = try build()
        let one = try query(["-k", "6", "lentil soup recipe"])
        XCTAssertEqual(try segmentFiles().count, 1)
        let r = try CLIRunner.run(["build", corpus.path, "--quiet", "--rebuild", "--segment-chunks", "2"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let segments = try segmentFiles()
        XCTAssertGreaterThan(segments.count, 1, "--segment-chunks 2 wrote one segment")
        let info = try CLIRunner.run(["info", "--index", indexDir.path], environment: env)
        XCTAssertTrue(info.stdout.contains("segments:  \(segments.count)\n"), info.stdout)
        XCTAssertTrue(info.stdout.contains("scan:      ") && info.stdout.contains(" kernel on "), info.stdout)
        // A forced kernel is the one the scan reports and uses; an unknown name falls back.
        let forced = try CLIRunner.run(["info", "--index", indexDir.path], environment: env.merging(["KBINDEX_KERNEL": "scalar"]) { $1 })
        XCTAssertTrue(forced.stdout.contains("scan:      scalar kernel"), forced.stdout)
        XCTAssertTrue(forced.stdout.contains("scalar generic for one question, scalar generic for batches"), forced.stdout)
        let bogus = try CLIRunner.run(["info", "--index", indexDir.path], environment: env.merging(["KBINDEX_KERNEL": "bogus"]) { $1 })
        let scanLine = { (out: String) in out.split(separator: "\n").first { $0.hasPrefix("scan:") }.map(String.init) }
        XCTAssertEqual(scanLine(bogus.stdout), scanLine(info.stdout))
        let scalarHits = try CLIRunner.run(["query", "--index", indexDir.path, "--json", "-k", "3", "--threads", "1", "lentil soup"],
                                           environment: env.merging(["KBINDEX_KERNEL": "scalar"]) { $1 })
        let bestHits = try CLIRunner.run(["query", "--index", indexDir.path, "--json", "-k", "3", "lentil soup"], environment: env)
        XCTAssertEqual(scalarHits.status, 0, scalarHits.stderr)
        XCTAssertEqual(scalarHits.stdout, bestHits.stdout, "the scalar kernel and the best one must return the same hits")
        let many = try query(["-k", "6", "lentil soup recipe"])
        XCTAssertEqual(many.map(\.path), one.map(\.path))
        XCTAssertEqual(many.map(\.text), one.map(\.text))
        for (a, b) in zip(many, one) { XCTAssertEqual(a.score, b.score, accuracy: 1e-6) }
    }

    func testChangedFileReplacesItsOldVersionAndRebuildStartsOver() throws {
        _ = try build()
        let before = try segmentFiles()
        try Data("# Recipes\n\n## Pancakes\n\nWhisk eggs, milk and flour; fry thin pancakes in butter.\n".utf8)
            .write(to: corpus.appendingPathComponent("cooking.md"))
        let r = try build()
        XCTAssertTrue(r.stdout.contains("files: 0 added, 1 changed, 0 deleted, 4 unchanged\n"), r.stdout)
        let hit = try query(["-k", "1", "how to make pancakes"])[0]
        XCTAssertEqual(hit.path, "cooking.md")
        XCTAssertTrue(hit.text.contains("pancakes"), hit.text)
        XCTAssertFalse(try query(["-k", "10", "lentil soup"]).contains { $0.text.contains("red lentils") })
        // --rebuild re-embeds everything into one new segment and removes the old ones.
        let again = try CLIRunner.run(["build", corpus.path, "--quiet", "--rebuild"], environment: env)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("files: 5 added, 0 changed, 0 deleted, 0 unchanged\n"), again.stdout)
        let after = try segmentFiles()
        XCTAssertEqual(after.count, 1)
        XCTAssertTrue(Set(before).isDisjoint(with: after), "the old segment was not removed")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: indexDir.path).filter { $0.hasSuffix(".kbdel") }, [])
        XCTAssertEqual(try query(["-k", "1", "how to make pancakes"])[0].text, hit.text)
    }

    func testDamagedSegmentIsAClearErrorNotACrash() throws {
        _ = try build()
        let seg = indexDir.appendingPathComponent(try segmentFiles()[0])
        let bytes = try Data(contentsOf: seg)
        try bytes.prefix(bytes.count - 100).write(to: seg)
        let r = try CLIRunner.run(["query", "--index", indexDir.path, "lentils"], environment: env)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: segment \(seg.path) is truncated"), r.stderr)
        XCTAssertTrue(r.stderr.contains("kbindex build"), r.stderr)
        // A flipped byte in the vectors is caught by info --verify.
        _ = try build()
        let seg2 = indexDir.appendingPathComponent(try segmentFiles()[0])
        var b2 = try Data(contentsOf: seg2)
        b2[b2.count / 3] ^= 0x40
        try b2.write(to: seg2)
        let v = try CLIRunner.run(["info", "--index", indexDir.path, "--verify"], environment: env)
        XCTAssertEqual(v.status, 2, v.stdout)
        XCTAssertTrue(v.stderr.contains("is damaged"), v.stderr)
    }

    /// A build killed with SIGKILL half-way leaves the previous index answering as before;
    /// the next build removes what the killed one left behind.
    func testKilledBuildLeavesTheLastGoodIndexReadable() throws {
        _ = try build()
        let good = try query(["-k", "1", "log rotation schedule"])
        XCTAssertEqual(good.first?.path, "ops/logging.md")
        let manifest = try Data(contentsOf: indexDir.appendingPathComponent("manifest.json"))
        // Enough new files that the build writes several segments and is still busy after the first.
        for i in 0..<400 {
            try Data("Note \(i): the ferry to island \(i) leaves at \(i % 24) o'clock from pier \(i % 7).\n".utf8)
                .write(to: corpus.appendingPathComponent("bulk-\(i).txt"))
        }
        let p = Process()
        p.executableURL = try CLIRunner.binary()
        p.arguments = ["build", corpus.path, "--quiet", "--segment-chunks", "1"]
        var environment = ProcessInfo.processInfo.environment
        environment["KBINDEX_MODEL_DIR"] = InstalledModels.storeRoot.path
        p.environment = environment
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning, Date() < deadline, try segmentFiles().count < 2 { usleep(2_000) }
        guard p.isRunning else { return XCTFail("the build ended before a segment was written; make the corpus larger") }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertGreaterThan(try segmentFiles().count, 1, "the killed build left no segment: the test did not test anything")
        XCTAssertEqual(try Data(contentsOf: indexDir.appendingPathComponent("manifest.json")), manifest)
        let after = try query(["-k", "1", "log rotation schedule"])
        XCTAssertEqual(after.map(\.path), good.map(\.path))
        XCTAssertEqual(after.map(\.score), good.map(\.score))
        // The next build commits (the old segment and one new one for the new files) and
        // removes the killed build's segments.
        let next = try build()
        XCTAssertTrue(next.stdout.contains("files: 400 added, 0 changed, 0 deleted, 5 unchanged\n"), next.stdout)
        XCTAssertEqual(try segmentFiles().count, 2)
        XCTAssertEqual(try query(["-k", "1", "ferry to island 17"]).first?.path.hasPrefix("bulk-"), true)
    }
}
