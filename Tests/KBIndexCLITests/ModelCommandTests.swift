import Foundation
import KBCore
import KBTestSupport
import XCTest

/// Runs the built `kbindex` binary (next to the test bundle in `.build/<triple>/debug/`)
/// against a fake hub on 127.0.0.1 and a temporary model store.
final class ModelCommandTests: XCTestCase {
    private var tmp: URL!
    private var store: URL { tmp.appendingPathComponent("store", isDirectory: true) }

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kbcli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func kbindex(_ args: [String]) throws -> CLIRunner.Result {
        try CLIRunner.run(args, environment: ["KBINDEX_MODEL_DIR": store.path, "HF_ENDPOINT": nil])
    }

    private static func files() -> [String: Data] {
        var rng = SeededRNG(seed: 42)
        return [
            "config.json": Data(#"{"hidden_size": 8}"#.utf8),
            // Valid safetensors (random values): `model list` checks the file against its header.
            "model.safetensors": SafeTensorsWriter.encode([.init(name: "w", dtype: .f32, shape: [500],
                                                                 values: (0..<500).map { _ in Float.random(in: -1...1, using: &rng) })]),
            "vocab.txt": Data("[PAD]\n[UNK]\n".utf8),
            "tokenizer_config.json": Data("{}".utf8),
            "sentence_bert_config.json": Data(#"{"max_seq_length": 16}"#.utf8),
            "modules.json": Data("[]".utf8),
            "1_Pooling/config.json": Data(#"{"pooling_mode_mean_tokens": true}"#.utf8),
        ]
    }

    func testPathOfMissingModelPrintsOneLineErrorAndFails() throws {
        let r = try kbindex(["model", "path", "missing-model"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(
            r.stderr,
            "error: model 'missing-model' is not installed: run 'kbindex model fetch missing-model' (or scripts/install-model.sh without hub access)\n")
    }

    func testListWithEmptyStoreSaysHowToFetch() throws {
        let r = try kbindex(["model", "list"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.stdoutLines, [
            "no models in \(store.path)",
            "fetch the default model with 'kbindex model fetch' (or scripts/install-model.sh without hub access)",
        ])
    }

    func testFetchThenListThenPath() throws {
        let files = Self.files()
        let server = try LocalHTTPServer(routes: FakeHub.routes(repo: "acme/tiny-bert", files: files, lfs: ["model.safetensors"]))
        defer { server.stop() }
        let dir = store.appendingPathComponent("tiny-bert").path

        let fetch = try kbindex(["model", "fetch", "acme/tiny-bert", "--endpoint", "http://127.0.0.1:\(server.port)"])
        XCTAssertEqual(fetch.status, 0, fetch.stderr)
        XCTAssertEqual(fetch.stdoutLines, [dir])
        let errLines = fetch.stderr.split(separator: "\n").map(String.init)
        XCTAssertTrue(errLines.contains("  model.safetensors  verified (sha256 from X-Linked-Etag)"), fetch.stderr)
        XCTAssertTrue(errLines.contains("  config.json  verified (git blob sha1 from ETag)"), fetch.stderr)
        XCTAssertTrue(errLines.contains("  tokenizer.json  not on the hub (optional)"), fetch.stderr)
        for (name, data) in files {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir).appendingPathComponent(name)), data, name)
        }

        let size = files.values.reduce(0) { $0 + $1.count }  // 2000 + headers + small JSON: a few kB
        let sizeText = String(format: "%.1f kB", Double(size) / 1e3)
        let list = try kbindex(["model", "list"])
        XCTAssertEqual(list.status, 0)
        XCTAssertEqual(list.stdoutLines, [
            "tiny-bert  \(sizeText)  \(dir)",
            "the default model all-MiniLM-L6-v2 is not installed: run 'kbindex model fetch'",
        ])

        let path = try kbindex(["model", "path", "tiny-bert"])
        XCTAssertEqual(path.status, 0, path.stderr)
        XCTAssertEqual(path.stdout, dir + "\n")
        XCTAssertEqual(path.stderr, "")
    }

    func testQuietFetchUnderOtherNameAndNoChecksumWarning() throws {
        var routes: [String: LocalHTTPServer.Response] = [:]
        for (name, data) in Self.files() { routes[FakeHub.resolvePath(repo: "acme/plain", file: name)] = .init(body: data) }
        let server = try LocalHTTPServer(routes: routes)
        defer { server.stop() }
        let r = try kbindex(["model", "fetch", "acme/plain", "--name", "all-MiniLM-L6-v2", "--quiet",
                             "--endpoint", server.baseURL.absoluteString])
        XCTAssertEqual(r.status, 0, r.stderr)
        let dir = store.appendingPathComponent("all-MiniLM-L6-v2").path
        XCTAssertEqual(r.stdoutLines, [dir])
        // --quiet keeps only the warnings.
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 7, r.stderr)
        XCTAssertTrue(r.stderr.contains("  model.safetensors  not verified (no checksum from server)\n"), r.stderr)

        let list = try kbindex(["model", "list"])
        XCTAssertEqual(list.stdoutLines.count, 1)
        XCTAssertTrue(list.stdoutLines[0].hasPrefix("all-MiniLM-L6-v2 (default)  "), list.stdout)
        XCTAssertTrue(list.stdoutLines[0].hasSuffix("  \(dir)"), list.stdout)
        let path = try kbindex(["model", "path"])
        XCTAssertEqual(path.stdout, dir + "\n")
    }

    func testFetchFromUnreachableHubExplainsWhatToDo() throws {
        let server = try LocalHTTPServer()
        let port = server.port
        server.stop()
        let r = try kbindex(["model", "fetch", "--endpoint", "http://127.0.0.1:\(port)"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertTrue(r.stderr.hasPrefix("error: could not reach http://127.0.0.1:\(port) ("), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("install the default model from PyPI with scripts/install-model.sh\n"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1)
    }
}
