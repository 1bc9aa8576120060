import Foundation
import KBCore
import KBTestSupport
import XCTest

/// Sharded builds (`build --shard`, or JOB_COMPLETION_INDEX with KBINDEX_SHARDS as a
/// Kubernetes Indexed Job sets them) and `kbindex merge`, through the CLI: the merged index
/// answers exactly as a single build of the same folder.
final class ShardMergeTests: XCTestCase {
    var root: URL!
    var corpus: URL { root.appendingPathComponent("corpus") }
    private var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path, "JOB_COMPLETION_INDEX": nil, "KBINDEX_SHARDS": nil] }

    override func setUpWithError() throws {
        _ = try InstalledModels.miniLM()
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kbshard-\(UUID().uuidString)")
        // Several kinds, distinct texts (no two chunks equal: equal scores would tie, and ties
        // break by position, which differs between one build and a merge), and words that
        // repeat across files so BM25's document frequencies and lengths matter.
        let topics = ["tea", "trains", "birds", "roses", "volcanoes", "bread", "rivers", "comets", "violins", "glaciers", "bees", "lanterns"]
        for (i, t) in topics.enumerated() {
            let repeatWord = String(repeating: "harbour ", count: i % 4 + 1)
            try write("notes/\(t).md", "# About \(t)\n\nNote \(i): \(t) are discussed here, near the harbour. \(repeatWord)\n\n## Care of \(t)\n\nThe care of \(t) takes patience; item \(i * 7) of the list says so.\n")
            try write("plain/\(t)-\(i).txt", "Plain text \(i) about \(t). The harbour master likes \(t) and keeps \(i + 2) of them.\n")
        }
        try write("code/sum.py", "def total(values):\n    \"\"\"Add up a list of harbour fees.\"\"\"\n    return sum(values)\n")
        try write("code/greet.py", "def greet(name):\n    \"\"\"Say hello to a visitor of the harbour.\"\"\"\n    return 'hello ' + name\n")
        try write("web/index.html", "<html><head><title>Harbour guide</title></head><body><h1>Guide</h1><p>Ferries leave the harbour at dawn with tea and bread.</p></body></html>\n")
        try write("été/über.md", "# Über\n\nÜber den Fluss fährt eine Fähre zum Hafen.\n")
    }

    override func tearDownWithError() throws { if let root { try? FileManager.default.removeItem(at: root) } }

    func write(_ path: String, _ text: String) throws {
        let url = corpus.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    @discardableResult
    func kb(_ args: [String], status: Int32 = 0, environment: [String: String?] = [:]) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(args, environment: env.merging(environment) { $1 })
        XCTAssertEqual(r.status, status, "kbindex \(args.joined(separator: " ")): \(r.stdout) \(r.stderr)")
        return r
    }

    func index(_ name: String) -> String { root.appendingPathComponent(name).path }

    /// Builds shards 0..<n as n concurrent processes, each told its shard by the environment
    /// alone (as the pods of a Kubernetes Indexed Job are).
    func buildShards(_ n: Int, extra: [String] = []) throws -> [CLIRunner.Result] {
        let results = ShardResults(count: n)
        let corpus = corpus.path, env = env
        let indexes = (0..<n).map { index("shard\($0)") }
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let e = env.merging(["JOB_COMPLETION_INDEX": "\(i)", "KBINDEX_SHARDS": "\(n)"]) { $1 }
            results.set(i, Result { try CLIRunner.run(["build", corpus, "--index", indexes[i], "--threads", "1"] + extra, environment: e) })
        }
        return try (0..<n).map { i in
            let r = try results.get(i)
            XCTAssertEqual(r.status, 0, "shard \(i): \(r.stdout) \(r.stderr)")
            return r
        }
    }

    /// The hits of `kbindex query --json` for every chunk that matches (k above the chunk
    /// count, so no group of equal scores is cut at k), grouped by score in rank order: each
    /// group a set of hits without their id and ranks. The fixture's chunks all differ, but
    /// BM25 gives equal scores to chunks whose lengths and query-term counts are equal ("The
    /// care of tea …", "The care of roses …"), and equal scores break by (segment, chunk)
    /// position, which differs between a single build (walk order) and a merge (shard order);
    /// within such a group the order, and so the ranks (rank, lexical_rank, vector_rank, the
    /// last two also in hybrid mode), legitimately differ. Everything else must be identical:
    /// paths, places, headings, texts, every score exactly, and the order of the groups.
    func hits(_ indexDir: String, _ question: String, mode: String) throws -> [Set<[String: String]>] {
        let out = try kb(["query", "--index", indexDir, "--json", "-k", "200", "--mode", mode, question]).stdout
        var groups: [(score: String, hits: Set<[String: String]>)] = []
        for (i, line) in out.split(separator: "\n").enumerated() {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(object["rank"] as? Int, i + 1)
            var d: [String: String] = [:]
            for (k, v) in object where !["id", "rank", "lexical_rank", "vector_rank"].contains(k) { d[k] = "\(v)" }
            let score = try XCTUnwrap(d["score"])
            if groups.last?.score == score { groups[groups.count - 1].hits.insert(d) } else { groups.append((score, [d])) }
        }
        return groups.map(\.hits)
    }

    func documentPaths(_ indexDir: String) throws -> [String] {
        let out = try kb(["query", "--index", indexDir, "--json", "-k", "1000", "--mode", "vector", "harbour"]).stdout
        return Set(try out.split(separator: "\n").map { line in
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["path"] as? String)
        }).sorted()
    }

    func info(_ indexDir: String) throws -> String { try kb(["info", "--index", indexDir]).stdout }

    func assertSameAnswers(_ single: String, _ merged: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let questions = ["How long should tea steep near the harbour?", "patience in the care of roses", "harbour fees sum",
                         "Fähre zum Hafen", "comets and glaciers", "ferries at dawn"]
        var compared = 0
        for q in questions {
            for mode in ["vector", "lexical", "hybrid"] {
                let a = try hits(single, q, mode: mode), b = try hits(merged, q, mode: mode)
                XCTAssertEqual(a, b, "\(mode): \(q)", file: file, line: line)
                // Cosine scores of distinct texts do not tie: there the order itself is compared.
                if mode == "vector" { XCTAssertTrue(a.allSatisfy { $0.count == 1 }, "\(q)", file: file, line: line) }
                compared += a.reduce(0) { $0 + $1.count }
            }
        }
        XCTAssertGreaterThan(compared, 300, file: file, line: line)
    }

    func testThreeConcurrentShardsMergeIntoTheSingleBuildsAnswers() throws {
        try kb(["build", corpus.path, "--index", index("single"), "--quiet"])
        let shards = try buildShards(3)
        for (i, r) in shards.enumerated() {
            XCTAssertTrue(r.stdout.contains("shard \(i)/3: "), r.stdout)
            XCTAssertTrue(r.stdout.contains(" of 28 files\n"), r.stdout)
        }
        // The shards partition the files: each document in exactly one, together all of them.
        let single = try documentPaths(index("single"))
        XCTAssertEqual(single.count, 28)
        let perShard = try (0..<3).map { try documentPaths(index("shard\($0)")) }
        XCTAssertTrue(perShard.allSatisfy { !$0.isEmpty }, "\(perShard)")
        XCTAssertEqual(perShard.flatMap { $0 }.sorted(), single)

        let m = try kb(["merge", index("merged"), index("shard2"), index("shard0"), index("shard1")]).stdout
        XCTAssertTrue(m.hasPrefix("merged 3 shards ("), m)
        XCTAssertTrue(m.contains(" 28 documents) into \(index("merged")) in "), m)
        XCTAssertTrue(m.hasSuffix(" copied\n") && m.contains(" linked, 0 B copied"), m)  // one file system: links
        try assertSameAnswers(index("single"), index("merged"))
        let a = try info(index("single")), b = try info(index("merged"))
        func line(_ text: String, _ prefix: String) -> String? { text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init) }
        XCTAssertNotNil(line(a, "chunks:"), a)
        XCTAssertEqual(line(a, "chunks:"), line(b, "chunks:"))
        XCTAssertEqual(line(a, "documents:"), line(b, "documents:"))
        // The merged manifest records no shard; the shards' do.
        let manifest = try String(contentsOfFile: index("merged") + "/manifest.json", encoding: .utf8)
        XCTAssertFalse(manifest.contains("\"shard\""), manifest)
        XCTAssertTrue(try String(contentsOfFile: index("shard1") + "/manifest.json", encoding: .utf8).contains("\"shard\" : {"))
        XCTAssertFalse(try String(contentsOfFile: index("single") + "/manifest.json", encoding: .utf8).contains("\"shard\""))

        // A second merge into the same place is refused; --replace is not.
        let again = try kb(["merge", index("merged"), index("shard0"), index("shard1"), index("shard2")], status: 2)
        XCTAssertTrue(again.stderr.contains("already holds an index; pass --replace"), again.stderr)

        // One file changes: rebuilding only its shard and merging again matches a single build
        // updated the same way.
        let changed = "plain/tea-0.txt"
        try write(changed, "Plain text about tea, rewritten: oolong leaves unfurl slowly in the harbour teahouse.\n")
        try FileManager.default.removeItem(at: corpus.appendingPathComponent("notes/bees.md"))
        try kb(["build", corpus.path, "--index", index("single"), "--quiet"])
        let owners = (0..<3).filter { perShard[$0].contains(changed) }
        XCTAssertEqual(owners.count, 1)
        for i in 0..<3 {
            let r = try kb(["build", corpus.path, "--index", index("shard\(i)"), "--shard", "\(i)/3"])
            if i == owners[0] { XCTAssertTrue(r.stdout.contains("1 changed"), r.stdout) }
        }
        // Compaction keeps the shard in the manifest (merge would refuse the shard otherwise).
        try kb(["compact", "--index", index("shard\(owners[0])")])
        XCTAssertTrue(try info(index("shard\(owners[0])")).contains("shard:     \(owners[0])/3 of a sharded build"))
        let replaced = try kb(["merge", "--replace", "--quiet", index("merged"), index("shard0"), index("shard1"), index("shard2")])
        XCTAssertEqual(replaced.stdout, "")
        try assertSameAnswers(index("single"), index("merged"))
        XCTAssertEqual(try documentPaths(index("merged")), try documentPaths(index("single")))
        XCTAssertFalse(try documentPaths(index("merged")).contains("notes/bees.md"))
        try kb(["verify", "--index", index("merged")])
    }

    func testRefusals() throws {
        _ = try buildShards(2)
        // A shard built with another precision (another model descriptor).
        try kb(["build", corpus.path, "--index", index("int8"), "--shard", "1/2", "--precision", "int8", "--quiet"])
        var r = try kb(["merge", index("out"), index("shard0"), index("int8")], status: 2)
        XCTAssertTrue(r.stderr.contains("different models") && r.stderr.contains("int8"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        // Another count.
        try kb(["build", corpus.path, "--index", index("of3"), "--shard", "1/3", "--quiet"])
        r = try kb(["merge", index("out"), index("shard0"), index("of3")], status: 2)
        XCTAssertTrue(r.stderr.contains("is one of 2 shards") && r.stderr.contains("one of 3"), r.stderr)
        // Missing and duplicate shards.
        r = try kb(["merge", index("out"), index("shard0")], status: 2)
        XCTAssertTrue(r.stderr.contains("shard 1 of 2 is missing"), r.stderr)
        r = try kb(["merge", index("out"), index("shard0"), index("shard0")], status: 2)
        XCTAssertTrue(r.stderr.contains("shard 1 of 2 is missing; shard 0 is given more than once"), r.stderr)
        // Another file selection.
        try kb(["build", corpus.path, "--index", index("md"), "--shard", "1/2", "--include", "*.md", "--quiet"])
        r = try kb(["merge", index("out"), index("shard0"), index("md")], status: 2)
        XCTAssertTrue(r.stderr.contains("different file-selection options"), r.stderr)
        // An unsharded index among shards.
        try kb(["build", corpus.path, "--index", index("whole"), "--quiet"])
        r = try kb(["merge", index("out"), index("shard0"), index("whole")], status: 2)
        XCTAssertTrue(r.stderr.contains("is not a shard's index"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: index("out") + "/manifest.json"))
        // The refused merges left no OUT folder (nor its .lock) behind.
        XCTAssertFalse(FileManager.default.fileExists(atPath: index("out")))

        // A user's folder is no index folder: merge and build refuse it, and its files named
        // like kbindex's temporary, segment or deletion files stay.
        let user = root.appendingPathComponent("user")
        try FileManager.default.createDirectory(at: user, withIntermediateDirectories: true)
        let mine = ["backup.kbseg", "draft.tmp-2024.md", "old.kbdel"]
        for f in mine { try Data("mine".utf8).write(to: user.appendingPathComponent(f)) }
        for args in [["merge", user.path, index("shard0"), index("shard1")], ["build", corpus.path, "--index", user.path]] {
            r = try kb(args, status: 2)
            XCTAssertTrue(r.stderr.contains("\(user.path) is not an index folder") && r.stderr.contains("choose an empty or new folder"), r.stderr)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: user.path).sorted(), mine)
        }

        // --shard into an unsharded index, and an unsharded build into a shard's index: refused
        // with advice, the index untouched; --rebuild starts it over.
        let before = try Data(contentsOf: URL(fileURLWithPath: index("whole") + "/manifest.json"))
        r = try kb(["build", corpus.path, "--index", index("whole"), "--shard", "0/2"], status: 2)
        XCTAssertTrue(r.stderr.contains("is an unsharded index of 28 documents") && r.stderr.contains("--rebuild"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: index("whole") + "/manifest.json")), before)
        r = try kb(["build", corpus.path, "--index", index("shard0")], status: 2)
        XCTAssertTrue(r.stderr.contains("holds shard 0/2 of a sharded build"), r.stderr)
        r = try kb(["build", corpus.path, "--index", index("shard0"), "--shard", "1/2"], status: 2)
        XCTAssertTrue(r.stderr.contains("holds shard 0/2; building shard 1/2 into it would drop"), r.stderr)
        // The same shard with another file selection is an update (as unsharded): what is no
        // longer selected goes, and the new selection is recorded, so merge refuses the mix.
        try kb(["build", corpus.path, "--index", index("shard0"), "--shard", "0/2", "--include", "*.md", "--quiet"])
        let mdOnly = try documentPaths(index("shard0"))
        XCTAssertFalse(mdOnly.isEmpty)
        XCTAssertTrue(mdOnly.allSatisfy { $0.hasSuffix(".md") }, "\(mdOnly)")
        r = try kb(["merge", index("out"), index("shard0"), index("shard1")], status: 2)
        XCTAssertTrue(r.stderr.contains("different file-selection options"), r.stderr)
        // --shard wins over the environment.
        r = try kb(["build", corpus.path, "--index", index("shard0"), "--shard", "0/2", "--quiet"], environment: ["JOB_COMPLETION_INDEX": "1", "KBINDEX_SHARDS": "5"])
        XCTAssertTrue(r.stdout.hasPrefix("shard 0/2: "), r.stdout)

        // The variables half set or wrong: usage errors naming both.
        for (job, count) in [(nil, "3"), ("3", "3"), ("x", "3"), ("0", "0")] as [(String?, String?)] {
            r = try kb(["build", corpus.path, "--index", index("env")], status: 64, environment: ["JOB_COMPLETION_INDEX": job, "KBINDEX_SHARDS": count])
            XCTAssertTrue(r.stderr.contains("JOB_COMPLETION_INDEX") && r.stderr.contains("KBINDEX_SHARDS"), r.stderr)
        }
        // JOB_COMPLETION_INDEX alone (Kubernetes sets it in every Indexed Job): an unsharded
        // build, with a note unless --quiet.
        r = try kb(["build", corpus.path, "--index", index("whole")], environment: ["JOB_COMPLETION_INDEX": "1"])
        XCTAssertTrue(r.stderr.contains("note: JOB_COMPLETION_INDEX=1 is ignored: KBINDEX_SHARDS is not set"), r.stderr)
        XCTAssertFalse(r.stdout.contains("shard "), r.stdout)
        r = try kb(["build", corpus.path, "--index", index("whole"), "--quiet"], environment: ["JOB_COMPLETION_INDEX": "1"])
        XCTAssertEqual(r.stderr, "")
        // A shard being built (its write lock held): merge says so and waits for nothing.
        do {
            let held = try XCTUnwrap(try FileLock.tryLock(index("shard1") + "/.lock"))
            defer { held.unlock() }
            r = try kb(["merge", index("busy"), index("shard0"), index("shard1")], status: 2)
            XCTAssertTrue(r.stderr.contains("shard 1 is being built in \(index("shard1"))") && r.stderr.contains("wait for it"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: index("busy")))
        }
        // A negative shard number reaches the check (not "Missing value").
        r = try kb(["build", corpus.path, "--shard", "-1/2"], status: 64)
        XCTAssertTrue(r.stderr.contains("is not of the form I/N"), r.stderr)
        r = try kb(["build", corpus.path, "--shard", "2/2"], status: 64)
        XCTAssertTrue(r.stderr.contains("between 0 and 1"), r.stderr)
    }

    /// An interrupted shard build (Ctrl-C after its first group) leaves a checkpoint: merge
    /// refuses the shard until the same command, run again, resumes and finishes it.
    func testAnInterruptedShardIsRefusedUntilItsBuildResumes() throws {
        _ = try buildShards(2)
        for i in 0..<200 { try write("more/\(i).md", "# Extra \(i)\n\nExtra note \(i) about lighthouse keeper number \(i * 3).\n") }
        let args = ["build", corpus.path, "--index", index("shard0"), "--shard", "0/2", "--quiet", "--checkpoint-chunks", "20"]
        let stopped = try kb(args, status: 130, environment: ["KBINDEX_FAULT": "interrupt@group-done"])
        XCTAssertTrue(stopped.stderr.contains("run the same command again to resume"), stopped.stderr)
        var r = try kb(["merge", index("merged"), index("shard0"), index("shard1")], status: 2)
        XCTAssertTrue(r.stderr.contains("the build of shard 0 in \(index("shard0")) was interrupted") && r.stderr.contains("run that shard's build again"), r.stderr)
        r = try kb(args)
        XCTAssertTrue(r.stderr.contains("resuming an interrupted build"), r.stderr)
        try kb(["build", corpus.path, "--index", index("shard1"), "--shard", "1/2", "--quiet"])
        try kb(["merge", index("merged"), index("shard0"), index("shard1"), "--quiet"])
        try kb(["build", corpus.path, "--index", index("single"), "--quiet"])
        let single = try documentPaths(index("single"))
        XCTAssertEqual(single.count, 228)
        XCTAssertEqual(try documentPaths(index("merged")), single)
    }

    func testAnEmptyShardCommitsAnEmptyIndexThatMerges() throws {
        // Two files and 8 shards: most shards select nothing, yet each commits its manifest.
        try FileManager.default.removeItem(at: corpus)
        try write("a.md", "# A\n\nThe first of two documents, about lighthouses.\n")
        try write("b.md", "# B\n\nThe second of two documents, about kettles.\n")
        let results = try buildShards(8)
        let empty = (0..<8).filter { results[$0].stdout.contains("shard \($0)/8: 0 of 2 files") }
        XCTAssertGreaterThanOrEqual(empty.count, 6)
        for i in empty { XCTAssertTrue(FileManager.default.fileExists(atPath: index("shard\(i)") + "/manifest.json")) }
        let m = try kb(["merge", index("merged")] + (0..<8).map { index("shard\($0)") }).stdout
        XCTAssertTrue(m.contains("2 documents"), m)
        XCTAssertEqual(try documentPaths(index("merged")), ["a.md", "b.md"])
    }
}

/// Results written by concurrent workers, one slot each.
final class ShardResults: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<CLIRunner.Result, Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<CLIRunner.Result, Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> CLIRunner.Result {
        lock.lock(); defer { lock.unlock() }
        guard let r = slots[i] else { throw CLIRunner.NotRun() }
        return try r.get()
    }
}

extension CLIRunner { struct NotRun: Error {} }
