import Foundation
import KBCore
import KBModelStore
import KBTestSupport
import XCTest

/// `ModelStore.check`: an installed model's files against their pinned SHA-256 (cached by
/// size and mtime) and its weights against the size their header declares.
final class ModelCheckTests: XCTestCase {
    private var root: URL!
    private let repo = "acme/pinned-tiny"

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kbcheck-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    /// A tiny model installed as `name`, and a store whose known-model table pins its files.
    private func installPinned(_ name: String = "pinned-tiny") throws -> (ModelStore, URL) {
        let dir = try TinyModel(seed: 5).write(to: root.appendingPathComponent(name))
        var pins: [String: String] = [:]
        for f in KnownModel.requiredFiles + KnownModel.optionalFiles where FileManager.default.fileExists(atPath: dir.appendingPathComponent(f).path) {
            pins[f] = try Hashing.sha256Hex(ofFile: dir.appendingPathComponent(f).path)
        }
        let known = KnownModel(name: "pinned-tiny", repo: repo, files: KnownModel.standardFiles(pinned: pins))
        return (ModelStore(root: root, knownModels: [known], defaultModelName: "pinned-tiny"), dir)
    }

    private func flipBytes(_ url: URL, at offsets: [Int]) throws {
        var data = try Data(contentsOf: url)
        for o in offsets { data[o] ^= 0xFF }
        let h = try FileHandle(forWritingTo: url)  // in place, as a stray write would
        try h.write(contentsOf: data)
        try h.close()
    }

    private func assertDamaged(_ store: ModelStore, _ name: String, file: String, _ parts: [String], line: UInt = #line) {
        XCTAssertThrowsError(try store.check(name), line: line) { error in
            guard case let .damaged(model, f, reason)? = error as? ModelStoreError else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(model, name, line: line)
            XCTAssertEqual(f, file, line: line)
            for p in parts { XCTAssertTrue(reason.contains(p), "'\(reason)' lacks '\(p)'", line: line) }
            XCTAssertEqual("\(error)", "model '\(name)' is damaged: \(file): \(reason)", line: line)
        }
    }

    func testIntactPinnedModelPasses() throws {
        let (store, dir) = try installPinned()
        XCTAssertNoThrow(try store.check("pinned-tiny"))
        XCTAssertNoThrow(try store.check(folder: dir))
        XCTAssertEqual(store.pinnedModel(for: "pinned-tiny")?.repo, repo)
    }

    func testFlippedBytesInTheWeightsAreFound() throws {
        let (store, dir) = try installPinned()
        try store.check("pinned-tiny")  // hashes recorded
        let weights = dir.appendingPathComponent("model.safetensors")
        let size = try Data(contentsOf: weights).count
        try flipBytes(weights, at: [size - 400, size - 300, size - 200, size - 100])
        let pinned = store.pinnedModel(for: "pinned-tiny")!.files.first { $0.path == "model.safetensors" }!.sha256!
        assertDamaged(store, "pinned-tiny", file: "model.safetensors", ["not the pinned \(pinned)"])
        XCTAssertThrowsError(try store.check(folder: dir))
    }

    func testTruncatedVocabularyIsFound() throws {
        let (store, dir) = try installPinned()
        let vocab = dir.appendingPathComponent("vocab.txt")
        try Data(try Data(contentsOf: vocab).prefix(40)).write(to: vocab)
        assertDamaged(store, "pinned-tiny", file: "vocab.txt", ["its SHA-256 is", "not the pinned"])
    }

    func testTruncatedWeightsAreFoundForAnyModel() throws {
        // No pinned sums: the safetensors header still says how long the file must be.
        let dir = try TinyModel(seed: 5).write(to: root.appendingPathComponent("some-model"))
        let store = ModelStore(root: root, knownModels: [])
        XCTAssertNoThrow(try store.check("some-model"))
        XCTAssertNil(store.pinnedModel(for: "some-model"))
        let weights = dir.appendingPathComponent("model.safetensors")
        let full = try Data(contentsOf: weights)
        try full.prefix(full.count / 2).write(to: weights)
        assertDamaged(store, "some-model", file: "model.safetensors",
                      ["it is \(full.count / 2) bytes but its header declares \(full.count) bytes (truncated)"])
        try full.prefix(5).write(to: weights)
        assertDamaged(store, "some-model", file: "model.safetensors", ["too short for a safetensors header"])
    }

    func testHeaderDeclaringAnEndPastAnyFileIsDamageNotACrash() throws {
        // Offsets near Int64.max once overflowed the "8 + header + end" sum (a trap).
        let dir = try TinyModel(seed: 5).write(to: root.appendingPathComponent("some-model"))
        let store = ModelStore(root: root, knownModels: [])
        let weights = dir.appendingPathComponent("model.safetensors")
        for end in ["9223372036854775807", "18446744073709551615", "1e300", "-4"] {
            let header = Data(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,\#(end)]}}"#.utf8)
            var file = Data()
            for i in 0..<8 { file.append(UInt8((header.count >> (8 * i)) & 0xFF)) }
            try (file + header + Data(count: 4)).write(to: weights)
            assertDamaged(store, "some-model", file: "model.safetensors", ["its header entry 'w' declares data up to byte", "(damaged)"])
        }
    }

    func testMissingFileIsNotInstalled() throws {
        let (store, dir) = try installPinned()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("vocab.txt"))
        XCTAssertThrowsError(try store.check("pinned-tiny")) { XCTAssertEqual($0 as? ModelStoreError, .notInstalled("pinned-tiny")) }
    }

    func testHashesAreCachedBySizeAndMtime() throws {
        let (store, dir) = try installPinned()
        let cacheFile = dir.appendingPathComponent(FileCheckCache.fileName)
        try store.check("pinned-tiny")
        let cached = try String(contentsOf: cacheFile, encoding: .utf8)
        XCTAssertTrue(cached.contains("sha256 model.safetensors"), cached)
        XCTAssertTrue(cached.contains("sha256 1_Pooling/config.json"), cached)

        // Damage in place, then put the old mtime back: the file looks unchanged, so the check
        // trusts the recorded hash and reads nothing (the cache is not even rewritten).
        let weights = dir.appendingPathComponent("model.safetensors")
        let mtime = try FileStatus.of(weights.path).mtimeNanoseconds
        let size = try FileStatus.of(weights.path).size
        try flipBytes(weights, at: [size - 10])
        try setModificationTime(weights, nanoseconds: mtime)
        XCTAssertNoThrow(try store.check("pinned-tiny"))
        XCTAssertEqual(try String(contentsOf: cacheFile, encoding: .utf8), cached)

        // Any other mtime: hashed again, and the damage is found.
        try setModificationTime(weights, nanoseconds: mtime + 1)
        assertDamaged(store, "pinned-tiny", file: "model.safetensors", ["not the pinned"])
    }

    func testCacheHelperRecordsOnlyUnchangedFiles() throws {
        let file = root.appendingPathComponent("data.bin")
        try Data("first".utf8).write(to: file)
        let cache = FileCheckCache(folder: root)
        XCTAssertEqual(try cache.sha256(ofFile: file.path), Hashing.sha256Hex(Data("first".utf8)))
        XCTAssertEqual(cache.value("sha256 data.bin", files: [file.path]), Hashing.sha256Hex(Data("first".utf8)))
        try Data("second!".utf8).write(to: file)
        XCTAssertNil(cache.value("sha256 data.bin", files: [file.path]))
        XCTAssertEqual(try cache.sha256(ofFile: file.path), Hashing.sha256Hex(Data("second!".utf8)))
        // A value computed while the file changed is not recorded.
        let v = cache.value("changing", files: [file.path]) { () -> String in
            try? Data("third, longer".utf8).write(to: file)
            return "stale"
        }
        XCTAssertEqual(v, "stale")
        XCTAssertNil(cache.value("changing", files: [file.path]))
        // A cache in a folder that is not there records nothing and fails nothing.
        let nowhere = FileCheckCache(folder: root.appendingPathComponent("missing"))
        XCTAssertEqual(try nowhere.sha256(ofFile: file.path), Hashing.sha256Hex(Data("third, longer".utf8)))
        // ...but this process remembers it, so a read-only model folder is not hashed on every
        // use (a query loads the model and describes it: two uses).
        var computed = 0
        for _ in 0..<3 { _ = nowhere.value("counted", files: [file.path]) { computed += 1; return "v" } }
        XCTAssertEqual(computed, 1)
        try Data("fourth".utf8).write(to: file)
        _ = nowhere.value("counted", files: [file.path]) { computed += 1; return "v" }
        XCTAssertEqual(computed, 2, "a changed file is checked again")
    }

    func testAnotherModelFetchedUnderAKnownNameIsNotHeldToItsPins() throws {
        let (store, dir) = try installPinned()
        try Data(#"{"repo": "acme/other"}"#.utf8).write(to: dir.appendingPathComponent(ModelStore.sourceFileName))
        XCTAssertEqual(store.source(of: "pinned-tiny"), "acme/other")
        XCTAssertNil(store.pinnedModel(for: "pinned-tiny"))
        try flipBytes(dir.appendingPathComponent("vocab.txt"), at: [0])
        XCTAssertNoThrow(try store.check("pinned-tiny"))
        // Fetched from the known repository under another name: held to its pins.
        let other = try installPinned("renamed").1
        try Data(#"{"repo": "\#(repo)"}"#.utf8).write(to: other.appendingPathComponent(ModelStore.sourceFileName))
        XCTAssertEqual(store.pinnedModel(for: "renamed")?.name, "pinned-tiny")
    }

    func testFetchRecordsTheSource() throws {
        let src = try TinyModel(seed: 5).write(to: root.appendingPathComponent("src"))
        var files: [String: Data] = [:]
        for f in KnownModel.requiredFiles { files[f] = try Data(contentsOf: src.appendingPathComponent(f)) }
        let server = try LocalHTTPServer(routes: FakeHub.routes(repo: "acme/tiny-bert", files: files, lfs: ["model.safetensors"]))
        defer { server.stop() }
        let store = ModelStore(root: root.appendingPathComponent("store"), knownModels: [])
        let dir = try store.fetch("acme/tiny-bert", endpoint: server.baseURL, as: "tb")
        XCTAssertEqual(store.source(of: "tb"), "acme/tiny-bert")
        XCTAssertEqual(store.storeName(of: dir), "tb")
        XCTAssertNil(store.storeName(of: root.appendingPathComponent("src")))
        // The bookkeeping files do not count in the model's size.
        let size = files.values.reduce(0) { $0 + $1.count }
        try store.check("tb")
        XCTAssertEqual(store.installedModels().first?.size, Int64(size))
    }

    func setModificationTime(_ url: URL, nanoseconds ns: Int64) throws {
        var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2 /* UTIME_OMIT */), timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))]
        XCTAssertEqual(utimensat(AT_FDCWD, url.path, &times, 0), 0)
    }
}
