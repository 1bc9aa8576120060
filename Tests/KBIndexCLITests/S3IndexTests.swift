import Foundation
import KBTestSupport
import XCTest

/// `--index s3://bucket/prefix` end to end against moto's S3 server on loopback (real SigV4
/// checks): build uploads, query from a fresh cache answers as a local build, an incremental
/// build uploads only its new files, serve hot-reloads another build's commit, racing builds
/// commit once, and credential/bucket errors are one clear line without secrets.
final class S3IndexTests: XCTestCase {
    var server: S3TestServer!
    var scratch: [URL] = []
    var serve: Process?
    var model: URL!
    let bucket = "kb-cli"

    static let documents = [
        "logs.md": "# Operations\n\n## Rotating logs\n\nLogs rotate daily at midnight; the last seven days are kept compressed.\n",
        "tea.md": "# Tea\n\nGreen tea wants water below boiling, about eighty degrees, for two minutes.\n",
        "soup.md": "# Soup\n\nRinse the lentils and simmer them with onions and cumin for half an hour.\n",
        "backup.md": "# Backups\n\nThe database is copied to the object store every night and kept for a month.\n",
    ]
    static let questions = ["how long are logs kept?", "how hot should the water be for tea?", "how do I cook lentils?", "where do backups go?"]

    override func setUpWithError() throws {
        model = try InstalledModels.miniLM()
        do { server = try S3TestServer.start() } catch let skip as XCTSkip { throw skip } catch {
            throw XCTSkip("the S3 test server cannot start: \(error)")
        }
        try server.createBucket(bucket)
    }

    override func tearDownWithError() throws {
        if let serve, serve.isRunning { serve.terminate(); serve.waitUntilExit() }
        server?.stop()
        for u in scratch { try? FileManager.default.removeItem(at: u) }
    }

    func folder(_ prefix: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        scratch.append(u)
        return u
    }

    func corpus() throws -> URL {
        let c = try folder("kbs3-corpus")
        for (name, text) in Self.documents { try Data(text.utf8).write(to: c.appendingPathComponent(name)) }
        return c
    }

    /// The server's variables plus a cache folder of its own (a machine of its own).
    func environment(cache: URL, _ changes: [String: String?] = [:]) -> [String: String?] {
        var env: [String: String?] = server.environment.mapValues { $0 }
        env["KBINDEX_CACHE_DIR"] = cache.path
        env["AWS_SESSION_TOKEN"] = nil
        for (k, v) in changes { env[k] = v }
        return env
    }

    func kbindex(_ args: [String], cache: URL, _ changes: [String: String?] = [:]) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(args, environment: environment(cache: cache, changes))
        // No credential ever reaches the output.
        for secret in [server.secretKey, server.accessKey] {
            XCTAssertFalse(r.stdout.contains(secret) || r.stderr.contains(secret), "a credential in the output of \(args)")
        }
        return r
    }

    func build(_ corpus: URL, _ index: String, cache: URL, _ extra: [String] = []) throws -> CLIRunner.Result {
        try kbindex(["build", corpus.path, "--index", index, "--quiet", "--model", model.path] + extra, cache: cache)
    }

    /// `query --json` output for every question.
    func answers(_ index: String, cache: URL) throws -> [String] {
        try Self.questions.map { q in
            let r = try kbindex(["query", q, "--index", index, "--json", "-k", "3"], cache: cache)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r.stdout
        }
    }

    // MARK: -

    func testBuildToS3ThenQueryFromAFreshCacheAnswersAsALocalBuild() throws {
        let docs = try corpus()
        let location = "s3://\(bucket)/team/docs"
        let built = try build(docs, location, cache: try folder("kbs3-cache-writer"))
        XCTAssertEqual(built.status, 0, built.stderr)
        XCTAssertTrue(built.stdout.contains("uploaded 1 file"), built.stdout)
        XCTAssertTrue(built.stdout.contains("committed the new index there"), built.stdout)

        let local = try folder("kbs3-local")
        let r = try CLIRunner.run(["build", docs.path, "--index", local.path, "--quiet", "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = try answers(local.path, cache: try folder("kbs3-unused"))

        let reader = try folder("kbs3-cache-reader")
        let first = try kbindex(["query", Self.questions[0], "--index", location, "--json", "-k", "3"], cache: reader)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("note: downloaded 1 file"), first.stderr)
        XCTAssertEqual(first.stdout, expected[0])
        XCTAssertEqual(try answers(location, cache: reader), expected)
        // Warm: nothing downloaded, nothing said.
        let warm = try kbindex(["query", Self.questions[1], "--index", location, "-k", "1"], cache: reader)
        XCTAssertEqual(warm.status, 0, warm.stderr)
        XCTAssertEqual(warm.stderr, "")

        // info and verify read the mirror.
        let info = try kbindex(["info", "--index", location], cache: reader)
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("documents: 4"), info.stdout)
        let verify = try kbindex(["verify", "--index", location], cache: reader)
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertTrue(verify.stdout.hasPrefix("ok: "), verify.stdout)

        // The store unreachable: the cached generation answers, with a note; no cache: an error.
        server.stop()
        let offline = try kbindex(["query", Self.questions[0], "--index", location, "--json", "-k", "3"], cache: reader)
        XCTAssertEqual(offline.status, 0, offline.stderr)
        XCTAssertEqual(offline.stdout, expected[0])
        XCTAssertTrue(offline.stderr.hasPrefix("note: cannot reach \(location) ("), offline.stderr)
        let cold = try kbindex(["query", Self.questions[0], "--index", location], cache: try folder("kbs3-cold"))
        XCTAssertEqual(cold.status, 2)
        XCTAssertTrue(cold.stderr.hasPrefix("error: "), cold.stderr)
    }

    func testAnIncrementalBuildUploadsOnlyItsNewFiles() throws {
        let docs = try corpus()
        let location = "s3://\(bucket)/inc"
        let cache = try folder("kbs3-cache")
        XCTAssertEqual(try build(docs, location, cache: cache).status, 0)
        try Data("# Bicycles\n\nPump the tyres to the pressure printed on their side before a long ride.\n".utf8)
            .write(to: docs.appendingPathComponent("bikes.md"))
        let second = try build(docs, location, cache: cache)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("uploaded 1 file ("), second.stdout)

        // From another machine (an empty staging folder): only the downloads, nothing to upload.
        let third = try build(docs, location, cache: try folder("kbs3-cache-other"))
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertTrue(third.stdout.contains("index is up to date"), third.stdout)
        XCTAssertTrue(third.stdout.contains("\(location) is up to date: nothing to upload"), third.stdout)

        let reader = try folder("kbs3-reader")
        let hit = try kbindex(["query", "tyre pressure for a ride", "--index", location, "--json", "-k", "1"], cache: reader)
        XCTAssertEqual(hit.status, 0, hit.stderr)
        XCTAssertTrue(hit.stdout.contains("bikes.md"), hit.stdout)
    }

    func testServeHotReloadsAGenerationAnotherBuildCommits() throws {
        let docs = try corpus()
        let location = "s3://\(bucket)/served"
        XCTAssertEqual(try build(docs, location, cache: try folder("kbs3-writer")).status, 0)

        let p = Process()
        p.executableURL = try CLIRunner.binary()
        p.arguments = ["serve", "--index", "kb=\(location)", "--port", "0", "--model", model.path, "--poll-interval", "0.2"]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment(cache: try folder("kbs3-server")) { env[k] = v }
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        serve = p
        var text = ""
        while !text.contains("serving") {
            let data = err.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let range = text.range(of: #"http://127\.0\.0\.1:([0-9]+)"#, options: .regularExpression),
              let port = Int(text[range].split(separator: ":").last ?? "") else {
            return XCTFail("kbindex serve did not start: \(text)")
        }
        XCTAssertTrue(text.contains("note: downloaded 1 file"), text)
        XCTAssertEqual(try info(port)?.documents, 4)

        try Data("# Bicycles\n\nPump the tyres to the pressure printed on their side before a long ride.\n".utf8)
            .write(to: docs.appendingPathComponent("bikes.md"))
        XCTAssertEqual(try build(docs, location, cache: try folder("kbs3-writer2")).status, 0)
        let deadline = Date().addingTimeInterval(30)
        var seen: (generation: Int, documents: Int)?
        while Date() < deadline {
            seen = try info(port)
            if seen?.documents == 5 { break }
            usleep(100_000)
        }
        XCTAssertEqual(seen?.documents, 5)
        XCTAssertEqual(seen?.generation, 2)

        // The store goes away: polls fail (said once), and the current generation stays served.
        let log = LogBuffer()
        let handle = err.fileHandleForReading
        Thread {
            while true {
                let data = handle.availableData
                if data.isEmpty { return }
                log.append(String(decoding: data, as: UTF8.self))
            }
        }.start()
        server.stop()
        let until = Date().addingTimeInterval(30)
        while Date() < until && !log.text.contains("cannot poll") { usleep(200_000) }
        usleep(6_000_000)  // more failing polls
        XCTAssertEqual(log.text.components(separatedBy: "cannot poll").count - 1, 1, log.text)
        XCTAssertTrue(log.text.contains("(the current generation stays served)"), log.text)
        XCTAssertEqual(try info(port)?.documents, 5)
        for secret in [server.secretKey, server.accessKey] { XCTAssertFalse(text.contains(secret) || log.text.contains(secret)) }
    }

    /// GET /v1/info: the first index's generation and documents.
    func info(_ port: Int) throws -> (generation: Int, documents: Int)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "http://127.0.0.1:\(port)/v1/info"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let first = (o["indexes"] as? [[String: Any]])?.first,
              let g = first["generation"] as? Int, let d = first["documents"] as? Int else { return nil }
        return (g, d)
    }

    func testTwoBuildsRacingFromOneBaseCommitOnce() throws {
        let docs = try corpus()
        let location = "s3://\(bucket)/race"
        XCTAssertEqual(try build(docs, location, cache: try folder("kbs3-first")).status, 0)
        try Data("# Bicycles\n\nPump the tyres to the pressure printed on their side before a long ride.\n".utf8)
            .write(to: docs.appendingPathComponent("bikes.md"))
        let caches = [try folder("kbs3-a"), try folder("kbs3-b")]
        let results = RaceResults()
        let args = ["build", docs.path, "--index", location, "--quiet", "--model", model.path]
        let envs = caches.map { environment(cache: $0) }
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            results.set(i, try? CLIRunner.run(args, environment: envs[i]))
        }
        let rs = try (0..<2).map { try XCTUnwrap(results.get($0)) }
        XCTAssertEqual(rs.map(\.status).sorted(), [0, 2], rs.map(\.stderr).joined(separator: "\n"))
        let loser = rs.firstIndex { $0.status != 0 } ?? 0
        XCTAssertEqual(rs[loser].stderr, "error: another build committed \(location) first; run the build again: it continues from that index\n")
        // Again: it continues from the winner's index (nothing left to do).
        let again = try build(docs, location, cache: caches[loser])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("nothing to upload"), again.stdout)
    }

    func testShardsInS3MergeIntoS3AndAnswerAsOneBuild() throws {
        let docs = try corpus()
        for s in 0..<2 {
            let r = try build(docs, "s3://\(bucket)/sharded/shard-\(s)", cache: try folder("kbs3-pod\(s)"), ["--shard", "\(s)/2"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let merged = "s3://\(bucket)/sharded/merged"
        let cache = try folder("kbs3-merge")
        let shards = ["s3://\(bucket)/sharded/shard-0", "s3://\(bucket)/sharded/shard-1"]
        let m = try kbindex(["merge", merged] + shards, cache: cache)
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertTrue(m.stdout.contains("committed the new index there"), m.stdout)
        // Again, as a retried Job: OUT now holds an index, which --replace replaces.
        let refused = try kbindex(["merge", merged] + shards, cache: cache)
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr, "error: \(merged) already holds an index; pass --replace to replace it, or choose another OUT\n")
        let again = try kbindex(["merge", merged, "--replace", "--quiet"] + shards, cache: cache)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, "")

        let local = try folder("kbs3-single")
        XCTAssertEqual(try CLIRunner.run(["build", docs.path, "--index", local.path, "--quiet", "--model", model.path]).status, 0)
        XCTAssertEqual(try answers(merged, cache: try folder("kbs3-reader")), try answers(local.path, cache: cache))
    }

    func testCredentialAndBucketErrorsAreOneClearLine() throws {
        let docs = try corpus()
        let cache = try folder("kbs3-cache")
        let location = "s3://\(bucket)/errors"
        XCTAssertEqual(try build(docs, location, cache: cache).status, 0)

        let wrong = try kbindex(["query", "logs", "--index", location], cache: try folder("kbs3-c1"), ["AWS_SECRET_ACCESS_KEY": "not-the-secret"])
        XCTAssertEqual(wrong.status, 2)
        XCTAssertTrue(wrong.stderr.hasPrefix("error: access denied"), wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"), wrong.stderr)
        XCTAssertEqual(wrong.stderr.filter { $0 == "\n" }.count, 1, wrong.stderr)
        XCTAssertFalse(wrong.stderr.contains("not-the-secret"))

        let noBucket = try kbindex(["query", "logs", "--index", "s3://no-such-bucket/x"], cache: try folder("kbs3-c2"))
        XCTAssertEqual(noBucket.status, 2)
        XCTAssertEqual(noBucket.stderr, "error: the bucket no-such-bucket does not exist: create it first, or check the bucket name in s3://no-such-bucket/x and AWS_ENDPOINT_URL\n")
        let buildNoBucket = try build(docs, "s3://no-such-bucket/x", cache: try folder("kbs3-c3"))
        XCTAssertEqual(buildNoBucket.status, 2)
        XCTAssertTrue(buildNoBucket.stderr.contains("the bucket no-such-bucket does not exist"), buildNoBucket.stderr)

        let none = try kbindex(["query", "logs", "--index", location], cache: try folder("kbs3-c4"),
                               ["AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil])
        XCTAssertEqual(none.status, 2)
        XCTAssertTrue(none.stderr.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), none.stderr)
        XCTAssertTrue(none.stderr.contains("AWS_ENDPOINT_URL"), none.stderr)

        let empty = try kbindex(["query", "logs", "--index", "s3://\(bucket)/nothing-here"], cache: try folder("kbs3-c5"))
        XCTAssertEqual(empty.status, 2)
        XCTAssertEqual(empty.stderr, "error: no index at s3://\(bucket)/nothing-here: build one with 'kbindex build FOLDER --index s3://\(bucket)/nothing-here'\n")
    }
}

private final class RaceResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Int: CLIRunner.Result] = [:]
    func set(_ i: Int, _ r: CLIRunner.Result?) { lock.withLock { results[i] = r } }
    func get(_ i: Int) -> CLIRunner.Result? { lock.withLock { results[i] } }
}

private final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var s = ""
    func append(_ t: String) { lock.withLock { s += t } }
    var text: String { lock.withLock { s } }
}
