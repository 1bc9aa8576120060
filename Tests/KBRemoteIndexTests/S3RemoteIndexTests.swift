import Foundation
import KBCore
import KBFormat
import KBObjectStore
import KBSearch
import KBTestSupport
import XCTest

@testable import KBRemoteIndex

/// An `ObjectStore` that runs a hook before each call of another one (to interleave a second
/// writer at a chosen moment against a real server).
final class HookedStore: ObjectStore, @unchecked Sendable {
    let base: any ObjectStore
    let hook: @Sendable (_ method: String, _ key: String) throws -> Void
    init(_ base: any ObjectStore, hook: @escaping @Sendable (String, String) throws -> Void) {
        self.base = base
        self.hook = hook
    }
    var location: String { base.location }
    func head(_ key: String) throws -> ObjectInfo? { try hook("HEAD", key); return try base.head(key) }
    func get(_ key: String, limit: Int, ifNoneMatch: String?) throws -> (info: ObjectInfo, data: Data)? {
        try hook("GET", key)
        return try base.get(key, limit: limit, ifNoneMatch: ifNoneMatch)
    }
    func download(_ key: String, to path: String, progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        try hook("DOWNLOAD", key)
        return try base.download(key, to: path, progress: progress)
    }
    func upload(file path: String, to key: String, condition: WriteCondition, metadata: [String: String],
                progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        try hook("UPLOAD", key)
        return try base.upload(file: path, to: key, condition: condition, metadata: metadata, progress: progress)
    }
    func put(_ data: Data, to key: String, condition: WriteCondition, metadata: [String: String]) throws -> ObjectInfo {
        try hook("PUT", key)
        return try base.put(data, to: key, condition: condition, metadata: metadata)
    }
    func delete(_ key: String) throws { try hook("DELETE", key); try base.delete(key) }
    func list(prefix: String) throws -> [ObjectInfo] { try hook("LIST", prefix); return try base.list(prefix: prefix) }
}

/// The remote index against moto's S3 server (real SigV4, conditional writes, metadata):
/// skipped, with the reason, when the test virtualenv is missing.
final class S3RemoteIndexTests: XCTestCase {
    var server: S3TestServer!
    var root: URL!
    let bucket = "kb-remote"

    override func setUpWithError() throws {
        do { server = try S3TestServer.start() } catch let skip as XCTSkip { throw skip } catch {
            throw XCTSkip("the S3 test server cannot start: \(error)")
        }
        try server.createBucket(bucket)
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kbs3remote-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        server?.stop()
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func folder(_ name: String) -> URL { root.appendingPathComponent(name) }

    func store(_ location: String? = nil, secret: String? = nil, maxAttempts: Int = 5) throws -> S3Store {
        S3Store(try S3Location(parsing: location ?? "s3://\(bucket)/idx"),
                configuration: S3Configuration(accessKey: server.accessKey, secretKey: secret ?? server.secretKey,
                                               endpoint: server.endpoint, maxAttempts: maxAttempts, retryBaseDelay: 0.01, retryMaxDelay: 0.05))
    }

    func firstGeneration(_ index: RemoteIndex) throws -> (TestIndex, PushResult) {
        let w = try TestIndex(dir: folder("writer"))
        for s in 0..<3 { try w.addSegment(seed: UInt64(s)) }
        try w.delete(document: 1, ofSegment: 2)
        try w.commit()
        return (w, try index.push(from: w.dir, base: nil))
    }

    func testRoundTripReuseAndUnchangedPulls() throws {
        let index = RemoteIndex(store: try store())
        let (w, first) = try firstGeneration(index)
        XCTAssertEqual(first.uploadedFiles, 4)
        for s in w.segments {
            XCTAssertEqual(try index.store.head(s.file)?.metadata["sha256"], try Hashing.sha256Hex(ofFile: w.dir.appendingPathComponent(s.file).path))
        }
        let mirror = folder("mirror")
        let pulled = try index.pull(into: mirror)
        XCTAssertEqual(pulled.downloadedFiles, 4)
        for name in IndexFiles.referenced(by: try Manifest.read(from: w.dir.path)).sorted() + ["manifest.json"] {
            XCTAssertEqual(try Data(contentsOf: mirror.appendingPathComponent(name)), try Data(contentsOf: w.dir.appendingPathComponent(name)), name)
        }
        XCTAssertFalse(try index.pull(into: mirror).changed)

        try w.addSegment(seed: 7)
        try w.commit()
        let second = try index.push(from: w.dir, base: first.etag)
        XCTAssertEqual(second.uploadedFiles, 1)
        let again = try index.pull(into: mirror)
        XCTAssertEqual(again.downloadedFiles, 1)
        XCTAssertEqual(again.reusedFiles, 4)
        XCTAssertEqual(try IndexDirectory(url: mirror).segments.count, 4)
    }

    func testTwoWritersFromOneBaseCommitOnce() throws {
        let plain = RemoteIndex(store: try store())
        let (_, first) = try firstGeneration(plain)
        let a = try TestIndex(dir: folder("a")), b = try TestIndex(dir: folder("b"))
        for w in [a, b] {
            _ = try plain.pull(into: w.dir)
            try w.adopt()
            try w.addSegment(seed: 50)
            try w.commit()
        }
        let once = Box(false)
        let bDir = b.dir
        let base = try store()
        let hooked = HookedStore(base) { method, key in
            guard method == "PUT", key == "manifest.json", !once.value else { return }
            once.value = true
            _ = try RemoteIndex(store: base).push(from: bDir, base: first.etag)
        }
        XCTAssertThrowsError(try RemoteIndex(store: hooked).push(from: a.dir, base: first.etag)) { error in
            XCTAssertEqual(error as? RemoteIndexError, .conflict(location: "s3://\(bucket)/idx"))
        }
        XCTAssertEqual(try plain.current()?.data, try Data(contentsOf: b.dir.appendingPathComponent("manifest.json")))
        XCTAssertNil(try base.head(a.segments.last!.file), "the loser's upload is removed")
        XCTAssertNotNil(try base.head(b.segments.last!.file))
    }

    func testATamperedObjectIsRefused() throws {
        let s = try store()
        let index = RemoteIndex(store: s)
        let (w, _) = try firstGeneration(index)
        let victim = w.segments[0].file
        var bytes = [UInt8](try Data(contentsOf: w.dir.appendingPathComponent(victim)))
        bytes[bytes.count / 2] ^= 1
        let meta = try XCTUnwrap(try s.head(victim)).metadata
        _ = try s.put(Data(bytes), to: victim, condition: .always, metadata: meta)
        let mirror = folder("mirror")
        XCTAssertThrowsError(try index.pull(into: mirror)) { error in
            guard case RemoteIndexError.damagedObject(_, let key, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, victim)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: mirror.appendingPathComponent(victim).path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: mirror.appendingPathComponent("manifest.json").path))
    }

    func testThrottlingIsRetriedAndAnInterruptedPushLeavesTheIndexUnchanged() throws {
        let index = RemoteIndex(store: try store(maxAttempts: 2), parallelism: 1)
        try server.injectFault(status: 503, code: "SlowDown", count: 1, method: "PUT")
        let (w, first) = try firstGeneration(index)
        XCTAssertTrue(first.committed)

        for s in 0..<2 { try w.addSegment(seed: UInt64(60 + s)) }
        try w.commit()
        // Every upload of a segment is cut off: more times than the store retries.
        try server.injectFault(dropAfterBytes: 100, count: 4, method: "PUT", keySuffix: ".kbseg")
        XCTAssertThrowsError(try index.push(from: w.dir, base: first.etag))
        try server.clearFaults()
        XCTAssertEqual(try index.current()?.etag, first.etag)
        let retried = try index.push(from: w.dir, base: first.etag)
        XCTAssertTrue(retried.committed)
        _ = try index.pull(into: folder("mirror"))
        XCTAssertEqual(try IndexDirectory(url: folder("mirror")).segments.count, 5)
    }

    func testAReaderDuringCommitsSeesCompleteGenerations() throws {
        var writerIndex = RemoteIndex(store: try store())
        writerIndex.garbageGrace = 0
        let (w, first) = try firstGeneration(writerIndex)
        let done = Box(false)
        let failure = Box<Error?>(nil)
        let writer = writerIndex
        let thread = Thread {
            var base = first.etag
            do {
                for i in 0..<5 {
                    w.segments.removeFirst()
                    try w.addSegment(seed: UInt64(100 + i))
                    try w.commit()
                    base = try writer.push(from: w.dir, base: base).etag
                }
            } catch { failure.value = error }
            done.value = true
        }
        thread.start()
        let reader = RemoteIndex(store: try store())
        let mirror = folder("mirror")
        var pulls = 0
        while !done.value || pulls == 0 {
            do { _ = try reader.pull(into: mirror) } catch RemoteIndexError.unstable { continue }
            pulls += 1
            let opened = try IndexDirectory(url: mirror)
            XCTAssertEqual(opened.segments.count, 3)
            XCTAssertTrue(opened.damagedSegments().isEmpty)
        }
        XCTAssertNil(failure.value)
        _ = try reader.pull(into: mirror)
        XCTAssertEqual(try Data(contentsOf: mirror.appendingPathComponent("manifest.json")), try Data(contentsOf: w.dir.appendingPathComponent("manifest.json")))
    }

    func testMissingBucketAndWrongCredentials() throws {
        XCTAssertThrowsError(try RemoteIndex(store: try store("s3://no-such-bucket/x")).pull(into: folder("m1"))) { error in
            XCTAssertEqual(error as? RemoteIndexError, .store(.noSuchBucket(bucket: "no-such-bucket")))
        }
        XCTAssertThrowsError(try RemoteIndex(store: try store(secret: "wrong")).current()) { error in
            guard case RemoteIndexError.store(.accessDenied) = error else { return XCTFail("\(error)") }
            XCTAssertFalse("\(error)".contains(self.server.secretKey))
        }
        let w = try TestIndex(dir: folder("w"))
        try w.addSegment()
        try w.commit()
        XCTAssertThrowsError(try RemoteIndex(store: try store(secret: "wrong")).push(from: w.dir, base: nil)) { error in
            guard case RemoteIndexError.store(.accessDenied) = error else { return XCTFail("\(error)") }
        }
    }
}
