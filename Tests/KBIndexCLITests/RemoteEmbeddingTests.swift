import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// `kbindex build --embedder openai` against a real OpenAI-compatible service: another
/// `kbindex serve`'s POST /v1/embeddings on loopback, serving all-MiniLM-L6-v2. An index built
/// through it answers as the same model in-process does; it remembers the service, so `query`
/// needs no flags; no API key reaches the index or any output; a mismatched model is refused.
final class RemoteEmbeddingTests: XCTestCase {
    var scratch: [URL] = []
    var serve: Process?

    override func tearDownWithError() throws {
        if let serve, serve.isRunning { serve.terminate(); serve.waitUntilExit() }
        for u in scratch { try? FileManager.default.removeItem(at: u) }
    }

    func folder(_ prefix: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        scratch.append(u)
        return u
    }

    static let documents = [
        "logs.md": "# Operations\n\n## Rotating logs\n\nLogs rotate daily at midnight; the last seven days are kept compressed.\n",
        "tea.md": "# Tea\n\nGreen tea wants water below boiling, about eighty degrees, for two minutes.\n",
        "soup.md": "# Soup\n\nRinse the lentils and simmer them with onions and cumin for half an hour.\n",
        "backup.md": "# Backups\n\nThe database is copied to the object store every night and kept for a month.\n",
        "bikes.md": "# Bicycles\n\nPump the tyres to the pressure printed on their side before a long ride.\n",
    ]
    static let questions = ["how long are logs kept?", "how hot should the water be for tea?", "how do I cook lentils?",
                            "where do backups go?", "what pressure for bike tyres?"]

    /// A corpus, its index built in-process with MiniLM, and `kbindex serve` on it.
    func servedCorpus(environment: [String: String] = [:]) throws -> (corpus: URL, local: URL, port: Int) {
        let model = try InstalledModels.miniLM()
        let corpus = try folder("kbremote-corpus")
        for (name, text) in Self.documents { try Data(text.utf8).write(to: corpus.appendingPathComponent(name)) }
        let local = try folder("kbremote-local")
        let r = try CLIRunner.run(["build", corpus.path, "--index", local.path, "--quiet", "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)

        let p = Process()
        p.executableURL = try CLIRunner.binary()
        p.arguments = ["serve", "--index", "kb=\(local.path)", "--port", "0", "--model", model.path]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        serve = p
        var text = ""
        while !text.contains("\n") {
            let data = err.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let range = text.range(of: #"http://127\.0\.0\.1:([0-9]+)"#, options: .regularExpression),
              let port = Int(text[range].split(separator: ":").last ?? "") else {
            throw XCTSkip("kbindex serve did not start: \(text)")
        }
        return (corpus, local, port)
    }

    /// `kbindex query --json` answers (path, score) for each question.
    func answers(_ index: URL, _ extra: [String] = [], environment: [String: String?] = [:]) throws -> [[(String, Double)]] {
        try Self.questions.map { q in
            let r = try CLIRunner.run(["query", q, "--index", index.path, "--json", "--mode", "vector", "-k", "3"] + extra, environment: environment)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try r.stdoutLines.map { line in
                let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return (try XCTUnwrap(o["path"] as? String), try XCTUnwrap(o["score"] as? Double))
            }
        }
    }

    func testAnIndexBuiltThroughServeAnswersAsTheLocalModelAndRemembersTheService() throws {
        let (corpus, local, port) = try servedCorpus()
        let remote = try folder("kbremote-remote")
        let url = "http://127.0.0.1:\(port)/v1"
        let b = try CLIRunner.run(["build", corpus.path, "--index", remote.path, "--quiet", "--embedder", "openai",
                                   "--embed-url", url, "--embed-model", "all-MiniLM-L6-v2", "--embed-batch-size", "2"])
        XCTAssertEqual(b.status, 0, b.stderr)

        // The index records the service, not a weights hash, and says so.
        let manifest = try Manifest.read(from: remote.path)
        XCTAssertEqual(manifest.model.version, 2)
        XCTAssertEqual(manifest.model.provider, "openai")
        XCTAssertEqual(manifest.model.url, url)
        XCTAssertEqual(manifest.model.model, "all-MiniLM-L6-v2")
        XCTAssertNil(manifest.model.weightsSHA256)
        XCTAssertEqual(manifest.model.dimensions, 384)
        let info = try CLIRunner.run(["info", "--index", remote.path])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("model:     all-MiniLM-L6-v2 via openai at \(url), 384 dimensions, normalized"), info.stdout)

        // Same answers as in-process, to float noise; `query` embeds through the service
        // without being told.
        let expected = try answers(local)
        let got = try answers(remote)
        for (e, g) in zip(expected, got) {
            XCTAssertEqual(e.map(\.0), g.map(\.0))
            for (a, b) in zip(e, g) { XCTAssertEqual(a.1, b.1, accuracy: 2e-3) }
        }

        // A second build finds nothing to do (the descriptor is the same), a rebuild agrees.
        let again = try CLIRunner.run(["build", corpus.path, "--index", remote.path])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("index is up to date"), again.stdout)

        // A local model's questions are not comparable with a remote model's vectors.
        let mixed = try CLIRunner.run(["query", "logs", "--index", remote.path, "--embedder", "local", "--model", try InstalledModels.miniLM().path])
        XCTAssertEqual(mixed.status, 2)
        XCTAssertTrue(mixed.stderr.contains("error: ") && mixed.stderr.contains("rebuild the index"), mixed.stderr)
        XCTAssertEqual(mixed.stdout, "")
    }

    func testTheAPIKeyNeverReachesTheIndexOrAnyOutput() throws {
        let (corpus, _, port) = try servedCorpus()
        let remote = try folder("kbremote-key")
        let secret = "sk-test-\(UUID().uuidString)"
        let env: [String: String?] = ["KBINDEX_EMBED_API_KEY": secret]
        let b = try CLIRunner.run(["build", corpus.path, "--index", remote.path, "--verbose", "--embedder", "openai",
                                   "--embed-url", "http://127.0.0.1:\(port)/v1", "--embed-model", "all-MiniLM-L6-v2"], environment: env)
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertFalse(b.stdout.contains(secret) || b.stderr.contains(secret))
        for name in try FileManager.default.contentsOfDirectory(atPath: remote.path) {
            let data = try Data(contentsOf: remote.appendingPathComponent(name))
            XCTAssertNil(data.range(of: Data(secret.utf8)), "\(name) holds the API key")
        }
        // A wrong model name is the service's 404, said plainly, and no key in it.
        let wrong = try CLIRunner.run(["build", corpus.path, "--index", try folder("kbremote-wrong").path, "--embedder", "openai",
                                       "--embed-url", "http://127.0.0.1:\(port)/v1", "--embed-model", "no-such-model"], environment: env)
        XCTAssertEqual(wrong.status, 2, wrong.stderr)
        XCTAssertTrue(wrong.stderr.hasPrefix("error: "), wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("404"), wrong.stderr)
        XCTAssertFalse(wrong.stderr.contains(secret), wrong.stderr)
    }

    func testAServiceThatCannotBeReachedIsOneClearErrorAndNoIndex() throws {
        let corpus = try folder("kbremote-down")
        try Data("# Note\n\nSomething to index.\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        // A port nothing listens on (bound, then closed).
        let index = corpus.appendingPathComponent(".kbindex")
        let r = try CLIRunner.run(["build", corpus.path, "--embedder", "ollama", "--embed-url", "http://127.0.0.1:9", "--embed-model", "nomic-embed-text",
                                   "--embed-timeout", "5"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains("127.0.0.1"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: index.appendingPathComponent(Manifest.fileName).path))
        // Usage errors for flags that do not go together.
        let both = try CLIRunner.run(["build", corpus.path, "--embedder", "openai", "--model", "all-MiniLM-L6-v2"])
        XCTAssertEqual(both.status, 64, both.stderr)
        XCTAssertTrue(both.stderr.contains("--embed-model"), both.stderr)
        let precision = try CLIRunner.run(["build", corpus.path, "--embedder", "openai", "--embed-model", "m", "--precision", "int8"])
        XCTAssertEqual(precision.status, 64, precision.stderr)
    }
}

/// A build through a service that fails mid-build (a fake OpenAI-compatible service on
/// loopback, `FakeEmbeddingService`): the last good index stays as it was and answers, what
/// was embedded is saved, and the next build resumes without asking the service for it again.
final class RemoteFailureTests: XCTestCase {
    var scratch: [URL] = []

    override func tearDownWithError() throws {
        for u in scratch { try? FileManager.default.removeItem(at: u) }
    }

    func testAServiceThatFailsMidBuildKeepsTheIndexAndTheNextBuildDoesNotPayAgain() throws {
        let service = try FakeEmbeddingService(dimensions: 8)
        defer { service.stop() }
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbremote-fail-\(UUID().uuidString)")
        scratch.append(corpus)
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        func put(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: corpus.appendingPathComponent(name)) }
        try put("a-first.md", "# First\n\nThe first note, about apples.\n")
        try put("a-second.md", "# Second\n\nThe second note, about pears.\n")
        let flags = ["--embedder", "openai", "--embed-url", service.openAIURL.absoluteString, "--embed-model", "fake",
                     "--embed-batch-size", "4", "--embed-concurrency", "1", "--embed-retries", "1", "--checkpoint-chunks", "1"]
        let first = try CLIRunner.run(["build", corpus.path, "--quiet"] + flags)
        XCTAssertEqual(first.status, 0, first.stderr)
        let index = corpus.appendingPathComponent(".kbindex")
        let before = try Data(contentsOf: index.appendingPathComponent(Manifest.fileName))

        // 40 more files: the walk takes them in two groups (32 files, then 8); the first group's
        // requests succeed, then the service fails for good (500 on every try).
        for i in 0..<40 { try put(String(format: "n%02d.md", i), "# Note \(i)\n\nNote number \(i) says something of its own: \(i * 7919).\n") }
        service.inject(.pass)  // the probe
        for _ in 0..<8 { service.inject(.pass) }  // 32 chunks in batches of 4
        for _ in 0..<50 { service.inject(.status(500, body: #"{"error":{"message":"the GPU fell over"}}"#)) }
        let failed = try CLIRunner.run(["build", corpus.path, "--quiet"] + flags)
        XCTAssertEqual(failed.status, 2, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("warning: HTTP 500"), failed.stderr)  // the retry is said
        XCTAssertTrue(failed.stderr.contains("error: no answer from"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("the GPU fell over"), failed.stderr)
        XCTAssertTrue(failed.stderr.contains("32 chunks of 32 files saved; run the same command again to resume"), failed.stderr)
        // The last good index is untouched and answers.
        XCTAssertEqual(try Data(contentsOf: index.appendingPathComponent(Manifest.fileName)), before)
        let info = try CLIRunner.run(["info", "--index", index.path])
        XCTAssertTrue(info.stdout.contains("documents: 2\n") && info.stdout.contains("an interrupted build has 32 chunks of 32 files saved aside"), info.stdout)

        // The service recovers: the next build embeds only the 8 files not saved.
        let seen = service.batches.count
        service.clearFaults()  // the 500s the failed build did not use
        let resumed = try CLIRunner.run(["build", corpus.path, "--quiet"] + flags)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming an interrupted build: 32 chunks of 32 files already embedded"), resumed.stderr)
        let texts = service.batches.dropFirst(seen).dropFirst().flatMap { $0 }  // after the probe
        XCTAssertEqual(texts.count, 8, "\(texts)")
        XCTAssertTrue(resumed.stdout.contains("files: 40 added, 0 changed, 0 deleted, 2 unchanged"), resumed.stdout)
        let m = try Manifest.read(from: index.path)
        XCTAssertEqual(m.segments.reduce(0) { $0 + $1.chunks }, 42)
    }

    /// Every kind of bad answer, one build each: the build fails with the service's error
    /// (exit 2), the index stays byte for byte as it was and still answers; a 429 with
    /// Retry-After and a timeout that a retry gets past do not fail the build.
    func testTheIndexStaysIntactThroughEveryKindOfBadAnswer() throws {
        let service = try FakeEmbeddingService(dimensions: 8)
        defer { service.stop() }
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbremote-faults-\(UUID().uuidString)")
        scratch.append(corpus)
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        try Data("# First\n\nThe first note.\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        func flags(retries: Int) -> [String] {
            ["--embedder", "openai", "--embed-url", service.openAIURL.absoluteString, "--embed-model", "fake",
             "--embed-retries", "\(retries)", "--embed-timeout", "1"]
        }
        XCTAssertEqual(try CLIRunner.run(["build", corpus.path, "--quiet"] + flags(retries: 0)).status, 0)
        let manifest = corpus.appendingPathComponent(".kbindex/\(Manifest.fileName)")
        let before = try Data(contentsOf: manifest)

        let cases: [(FakeEmbeddingService.Fault, String)] = [
            (.dimensions(5), "5 dimensions where the model's first had 8"),
            (.body("{not json"), "the answer is not JSON"),
            (.cut, "dropped"),
            (.reset, "from \(service.openAIURL.absoluteString)"),
            (.hang(seconds: 3), "within 1 s"),
            (.vector(index: 0, json: "null"), "is null, not an array of numbers"),
            (.dropOne, "vectors for"),
            (.status(401, body: #"{"error":{"message":"bad key"}}"#), "HTTP 401"),
        ]
        for (i, (fault, expected)) in cases.enumerated() {
            try Data("# Note \(i)\n\nA new note, number \(i).\n".utf8).write(to: corpus.appendingPathComponent("n\(i).md"))
            service.clearFaults()
            service.inject(.pass, fault)  // the probe passes, the build's request fails
            let r = try CLIRunner.run(["build", corpus.path, "--quiet"] + flags(retries: 0))
            XCTAssertEqual(r.status, 2, "\(fault): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains(expected), "\(fault): \(r.stderr)")
            XCTAssertEqual(try Data(contentsOf: manifest), before, "\(fault)")
            service.clearFaults()
            let q = try CLIRunner.run(["query", "first note", "--index", corpus.appendingPathComponent(".kbindex").path, "--mode", "vector", "-k", "1"])
            XCTAssertEqual(q.status, 0, q.stderr)
            XCTAssertTrue(q.stdout.contains("a.md"), q.stdout)
        }

        // Faults a retry gets past: the build succeeds.
        service.clearFaults()
        service.inject(.pass, .status(429, headers: [("Retry-After", "0")]), .hang(seconds: 3))
        let ok = try CLIRunner.run(["build", corpus.path] + flags(retries: 2))
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("warning: HTTP 429"), ok.stderr)
        XCTAssertTrue(ok.stdout.contains("files: \(cases.count) added"), ok.stdout)
    }

    /// The provider's own key goes only where the user points it: to a URL an index recorded,
    /// only KBINDEX_EMBED_API_KEY goes (a cloned index folder cannot harvest OPENAI_API_KEY).
    func testTheProvidersKeyIsNotSentToAURLTheIndexNames() throws {
        let service = try FakeEmbeddingService(dimensions: 8, requiredKey: "sk-right")
        defer { service.stop() }
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbremote-key-\(UUID().uuidString)")
        scratch.append(corpus)
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        try Data("# First\n\nThe first note.\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        let url = service.openAIURL.absoluteString
        let openai: [String: String?] = ["OPENAI_API_KEY": "sk-right", "KBINDEX_EMBED_API_KEY": nil]
        let b = try CLIRunner.run(["build", corpus.path, "--quiet", "--embedder", "openai", "--embed-url", url, "--embed-model", "fake"],
                                  environment: openai)
        XCTAssertEqual(b.status, 0, b.stderr)
        let index = corpus.appendingPathComponent(".kbindex").path

        // The URL comes from the index: OPENAI_API_KEY stays home, the server says 401.
        let withheld = try CLIRunner.run(["query", "first", "--index", index, "--mode", "vector"], environment: openai)
        XCTAssertEqual(withheld.status, 2, withheld.stderr)
        XCTAssertTrue(withheld.stderr.contains("note: OPENAI_API_KEY is not sent to 127.0.0.1, which the index names"), withheld.stderr)
        XCTAssertTrue(withheld.stderr.contains("HTTP 401"), withheld.stderr)
        XCTAssertFalse(withheld.stderr.contains("sk-right"), withheld.stderr)
        // Given on the command line, or kbindex's own variable: it goes.
        XCTAssertEqual(try CLIRunner.run(["query", "first", "--index", index, "--mode", "vector", "--embed-url", url], environment: openai).status, 0)
        let own = try CLIRunner.run(["query", "first", "--index", index, "--mode", "vector"], environment: ["KBINDEX_EMBED_API_KEY": "sk-right"])
        XCTAssertEqual(own.status, 0, own.stderr)
        // BM25 alone needs no service at all.
        service.stop()
        let lexical = try CLIRunner.run(["query", "first", "--index", index, "--mode", "lexical"], environment: openai)
        XCTAssertEqual(lexical.status, 0, lexical.stderr)
        XCTAssertTrue(lexical.stdout.contains("a.md"), lexical.stdout)
    }

    func testARemoteModelOrURLNeedsARemoteEmbedder() throws {
        let corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbremote-flags-\(UUID().uuidString)")
        scratch.append(corpus)
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        try Data("# A\n\ntext\n".utf8).write(to: corpus.appendingPathComponent("a.md"))
        let r = try CLIRunner.run(["build", corpus.path, "--embed-model", "text-embedding-3-small"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--embedder openai or ollama"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.appendingPathComponent(".kbindex/manifest.json").path))
    }
}
