import Foundation
import KBRetrieval
import KBServer
import KBTestSupport
import XCTest

/// `kbindex serve` as a user runs it: the line it prints, SIGTERM, and start-up errors.
final class ServeCommandTests: XCTestCase {
    nonisolated(unsafe) static var corpus: Corpus!
    override class func setUp() {
        super.setUp()
        do { corpus = try Corpus(name: "kbserver-cli"); try corpus.build() } catch { XCTFail("\(error)") }
    }
    override class func tearDown() { corpus?.remove(); super.tearDown() }

    /// A running `kbindex serve`: its stderr is read until the "serving" line.
    final class ServeProcess {
        let process = Process()
        let stderr = Pipe()
        var line = ""
        var port = 0

        init(_ args: [String], environment: [String: String] = [:]) throws {
            process.executableURL = try CLIRunner.binary()
            process.arguments = ["serve"] + args
            var env = ProcessInfo.processInfo.environment
            env["KBINDEX_MODEL_DIR"] = InstalledModels.storeRoot.path
            for (k, v) in environment { env[k] = v }
            process.environment = env
            process.standardError = stderr
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            var text = ""
            while !text.contains("\n") {
                let data = stderr.fileHandleForReading.availableData
                if data.isEmpty { break }  // the process ended
                text += String(decoding: data, as: UTF8.self)
            }
            line = text
            if let r = text.range(of: #"http://127\.0\.0\.1:([0-9]+)"#, options: .regularExpression) {
                port = Int(text[r].split(separator: ":").last ?? "") ?? 0
            }
        }

        /// Sends `signal` and returns the exit status.
        func stop(_ signal: Int32 = SIGTERM) -> Int32 {
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    func testServePrintsItsAddressAnswersAndExitsZeroOnSIGTERM() throws {
        let serve = try ServeProcess(["--index", "kb=\(Self.corpus.index.path)", "--port", "0"])
        XCTAssertTrue(serve.line.hasPrefix("kbindex: serving index 'kb' on http://127.0.0.1:"), serve.line)
        XCTAssertEqual(serve.line.filter { $0 == "\n" }.count, 1, serve.line)
        XCTAssertGreaterThan(serve.port, 0, serve.line)
        let http = RawHTTP(port: serve.port)
        XCTAssertEqual(try http.get("/healthz").status, 200)
        let r = try http.post("/v1/search", json: #"{"query": "lentil soup", "k": 1}"#)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(((try r.json()["results"] as? [[String: Any]])?.first?["index"]) as? String, "kb")
        XCTAssertEqual(serve.stop(SIGTERM), 0)
        XCTAssertEqual(serve.process.terminationReason, .exit)
    }

    /// SIGTERM at once after the line: it was armed before the line printed (it killed the
    /// process with status 143 when swift-service-lifecycle armed it, later).
    func testSIGTERMRightAfterTheLineExitsZero() throws {
        for _ in 0..<3 {
            let serve = try ServeProcess(["--index", Self.corpus.index.path, "--port", "0"])
            XCTAssertGreaterThan(serve.port, 0, serve.line)
            XCTAssertEqual(serve.stop(SIGTERM), 0)
            XCTAssertEqual(serve.process.terminationReason, .exit)
        }
    }

    /// A SIGTERM right after the line is a graceful stop too (the signal is armed before the
    /// line prints), and a request in flight when it comes is answered before the exit.
    func testSIGTERMDrainsTheRequestInFlight() throws {
        let serve = try ServeProcess(["--index", Self.corpus.index.path, "--port", "0"])
        XCTAssertGreaterThan(serve.port, 0, serve.line)
        let http = RawHTTP(port: serve.port)
        // A request whose body has not all arrived yet.
        let body = Data(#"{"query": "lentil soup", "k": 2}"#.utf8)
        let fd = try http.connection()
        defer { close(fd) }
        RawHTTP.write(Data("POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body.prefix(5), to: fd)
        // The head is read once /healthz on another connection has been answered after it.
        XCTAssertEqual(try http.get("/healthz").status, 200)
        kill(serve.process.processIdentifier, SIGTERM)
        // Shutdown has begun once new connections are refused.
        var refused = false
        for _ in 0..<10_000 where !refused {
            do { let c = try http.connection(); close(c); usleep(1000) } catch { refused = true }
        }
        XCTAssertTrue(refused, "the server still accepts connections after SIGTERM")
        RawHTTP.write(body.dropFirst(5), to: fd)
        let r = try RawHTTP.readAll(fd)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(((try r.json()["results"] as? [[String: Any]])?.first?["hits"] as? [Any])?.count, 2)
        serve.process.waitUntilExit()
        XCTAssertEqual(serve.process.terminationReason, .exit)
        XCTAssertEqual(serve.process.terminationStatus, 0)
    }

    func testSIGINTAlsoStopsCleanlyAndSeveralIndexesAreNamed() throws {
        let other = try Corpus(name: "kbserver-cli2", files: ["x.md": "# X\n\nAnother note about zebras.\n"])
        defer { other.remove() }
        try other.build()
        let serve = try ServeProcess(["--index", Self.corpus.index.path, "--index", "second=\(other.folder.path)", "--port", "0"])
        XCTAssertTrue(serve.line.contains("serving 2 indexes ("), serve.line)
        XCTAssertTrue(serve.line.contains("second"), serve.line)
        let http = RawHTTP(port: serve.port)
        let both = try http.get("/v1/info").json()
        XCTAssertEqual(((both["indexes"] as? [[String: Any]]) ?? []).count, 2)
        let zebra = try http.post("/v1/search", json: #"{"query": "zebras", "index": "second", "k": 1}"#)
        XCTAssertEqual(zebra.status, 200, zebra.text)
        XCTAssertEqual(serve.stop(SIGINT), 0)
    }

    func testATokenFromTheEnvironmentIsRequired() throws {
        let serve = try ServeProcess(["--index", Self.corpus.index.path, "--port", "0"], environment: ["KBINDEX_TOKEN": "from-env-123"])
        XCTAssertTrue(serve.line.contains("token required"), serve.line)
        let http = RawHTTP(port: serve.port)
        XCTAssertEqual(try http.get("/v1/info").status, 401)
        XCTAssertEqual(try http.get("/v1/info", headers: [("Authorization", "Bearer from-env-123")]).status, 200)
        XCTAssertEqual(serve.stop(), 0)
    }

    func testStartUpErrorsAreOneLineWithStatus2() throws {
        // A host reachable from other machines without a token.
        let open = try CLIRunner.run(["serve", "--index", Self.corpus.index.path, "--host", "0.0.0.0", "--port", "0"], environment: Corpus.env.merging(["KBINDEX_TOKEN": nil]) { $1 }, killAfter: 120)
        XCTAssertEqual(open.status, 2, open.stderr)
        XCTAssertTrue(open.stderr.contains("--token"), open.stderr)
        XCTAssertEqual(open.stderr.filter { $0 == "\n" }.count, 1, open.stderr)
        // No index there.
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("kbserver-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = try CLIRunner.run(["serve", "--index", empty.path, "--port", "0"], environment: Corpus.env, killAfter: 120)
        XCTAssertEqual(none.status, 2, none.stderr)
        XCTAssertTrue(none.stderr.hasPrefix("error: "), none.stderr)
        XCTAssertTrue(none.stderr.contains("kbindex build"), none.stderr)
        XCTAssertEqual(none.stderr.filter { $0 == "\n" }.count, 1, none.stderr)
        // The port is taken.
        let server = try RunningServer(indexes: [("docs", Self.corpus.index)])
        defer { server.stop() }
        let taken = try CLIRunner.run(["serve", "--index", Self.corpus.index.path, "--port", String(server.port)], environment: Corpus.env, killAfter: 120)
        XCTAssertEqual(taken.status, 2, taken.stderr)
        XCTAssertTrue(taken.stderr.contains("\(server.port)") && taken.stderr.contains("in use"), taken.stderr)
        XCTAssertEqual(taken.stderr.filter { $0 == "\n" }.count, 1, taken.stderr)
        // Usage errors: 64.
        for args in [["--port", "70000"], ["--index", "a=\(Self.corpus.index.path)", "--index", "a=\(empty.path)"], ["--threads", "0"], ["--allow-origin", "evil.example"]] {
            let r = try CLIRunner.run(["serve"] + args, environment: Corpus.env, killAfter: 120)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
        }
    }

    func testHelpHasCurlExamples() throws {
        let r = try CLIRunner.run(["serve", "--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.contains("curl -s localhost:8765/v1/search -d '{\"query\""), r.stdout)
        XCTAssertTrue(r.stdout.contains("KBINDEX_TOKEN"), r.stdout)
    }
}
