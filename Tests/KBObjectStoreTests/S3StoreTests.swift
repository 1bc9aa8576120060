import Foundation
import KBHTTP
import KBObjectStore
import KBTestSupport
import XCTest

/// S3Store against moto's S3 (Tests/Python/s3_server.py), which checks access keys and
/// recomputes every SigV4 signature. One server for the class, one bucket per test.
final class S3StoreTests: XCTestCase {
    nonisolated(unsafe) private static var shared: S3TestServer?
    nonisolated(unsafe) private static var startError: Error?
    private var server: S3TestServer!
    private var bucket = ""

    override func setUpWithError() throws {
        if S3StoreTests.shared == nil && S3StoreTests.startError == nil {
            do { S3StoreTests.shared = try S3TestServer.start() } catch { S3StoreTests.startError = error }
        }
        if let error = S3StoreTests.startError { throw error }
        server = S3StoreTests.shared
        bucket = "kb-" + UUID().uuidString.lowercased().prefix(18)
        try server.createBucket(bucket)
        try server.clearFaults()
    }

    override class func tearDown() {
        shared?.stop()
        shared = nil
        super.tearDown()
    }

    private func configuration(_ change: (inout S3Configuration) -> Void = { _ in }) -> S3Configuration {
        var c = S3Configuration(accessKey: server.accessKey, secretKey: server.secretKey, region: server.region,
                                endpoint: server.endpoint, maxAttempts: 4, retryBaseDelay: 0.01, retryMaxDelay: 0.05)
        change(&c)
        return c
    }

    private func store(prefix: String = "idx/one", bucket: String? = nil, _ change: (inout S3Configuration) -> Void = { _ in }) throws -> S3Store {
        S3Store(try S3Location(bucket: bucket ?? self.bucket, prefix: prefix), configuration: configuration(change))
    }

    /// The S3 requests the server saw for this test's bucket.
    private func seen() throws -> [S3TestServer.SeenRequest] {
        try server.requests().filter { $0.path == "/\(bucket)" || $0.path.hasPrefix("/\(bucket)/") }
    }

    private func randomFile(_ size: Int) throws -> (path: String, data: Data) {
        var g = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 8) {
            var v = g.next()
            withUnsafeBytes(of: &v) { raw in for j in 0..<min(8, size - i) { bytes[i + j] = raw[j] } }
        }
        let path = NSTemporaryDirectory() + "kbs3-\(UUID().uuidString)"
        let data = Data(bytes)
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return (path, data)
    }

    private func tempPath() -> String {
        let path = NSTemporaryDirectory() + "kbs3-dl-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func assertError(_ expected: (ObjectStoreError) -> Bool, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let e as ObjectStoreError {
            XCTAssertTrue(expected(e), "unexpected \(e)", file: file, line: line)
        } catch {
            XCTFail("not an ObjectStoreError: \(error)", file: file, line: line)
        }
    }

    func testLocationString() throws {
        XCTAssertEqual(try store().location, "s3://\(bucket)/idx/one")
    }

    func testServerEnvironmentConfiguresAStore() throws {
        // What a child kbindex process gets: AWS_* variables only.
        let c = try S3Configuration.fromEnvironment(server.environment)
        XCTAssertTrue(c.pathStyle)
        let s = S3Store(try S3Location(parsing: "s3://\(bucket)/from/env"), configuration: c)
        try s.put(Data("e".utf8), to: "k", condition: .ifAbsent, metadata: [:])
        XCTAssertEqual(try s.list(prefix: "").map(\.key), ["k"])
    }

    func testSmallRoundTripWithMetadata() throws {
        let s = try store()
        let (path, data) = try randomFile(100_003)
        let info = try s.upload(file: path, to: "seg/a b+c.kbseg", condition: .always, metadata: ["Kind": "segment", "sha256": "abc"], progress: nil)
        XCTAssertEqual(info.size, 100_003)
        XCTAssertTrue(info.etag.hasPrefix("\""), info.etag)
        let head = try XCTUnwrap(s.head("seg/a b+c.kbseg"))
        XCTAssertEqual(head.size, 100_003)
        XCTAssertEqual(head.etag, info.etag)
        XCTAssertEqual(head.metadata, ["kind": "segment", "sha256": "abc"])
        XCTAssertNotNil(head.lastModified)
        let out = tempPath()
        let got = try s.download("seg/a b+c.kbseg", to: out, progress: nil)
        XCTAssertEqual(got.size, 100_003)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), data)
        let small = try XCTUnwrap(s.get("seg/a b+c.kbseg", limit: 1 << 20, ifNoneMatch: nil))
        XCTAssertEqual(small.data, data)
        XCTAssertEqual(small.info.etag, info.etag)
        assertError({ if case .integrity(key: "idx/one/seg/a b+c.kbseg", _) = $0 { true } else { false } }) { _ = try s.get("seg/a b+c.kbseg", limit: 1000, ifNoneMatch: nil) }
    }

    func testMultipartRoundTrip() throws {
        let s = try store { $0.partSize = 1 << 20; $0.multipartThreshold = 1 << 20 }
        let (path, data) = try randomFile(3 * (1 << 20) + 12345)
        let progress = Counter()
        let info = try s.upload(file: path, to: "big.kbseg", condition: .ifAbsent, metadata: ["k": "v"], progress: { progress.set($0) })
        XCTAssertTrue(info.etag.hasSuffix("-4\""), info.etag)
        XCTAssertEqual(progress.value, Int64(data.count))
        let parts = try seen().filter { $0.method == "PUT" && $0.query.contains("partNumber") }
        XCTAssertEqual(parts.count, 4)
        let out = tempPath()
        try s.download("big.kbseg", to: out, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), data)
        XCTAssertEqual(try s.head("big.kbseg")?.metadata["k"], "v")
        XCTAssertEqual(try server.unfinishedUploads(bucket: bucket), [])
        // The condition travels on CompleteMultipartUpload.
        assertError({ $0 == .preconditionFailed(key: "idx/one/big.kbseg") }) {
            try s.upload(file: path, to: "big.kbseg", condition: .ifAbsent, metadata: [:], progress: nil)
        }
        XCTAssertEqual(try server.unfinishedUploads(bucket: bucket), [], "the losing upload was aborted")
    }

    func testMissingKeys() throws {
        let s = try store()
        XCTAssertNil(try s.head("nothing"))
        assertError({ $0 == .notFound(key: "idx/one/nothing") }) { _ = try s.get("nothing", limit: 100, ifNoneMatch: nil) }
        let out = tempPath()
        assertError({ $0 == .notFound(key: "idx/one/nothing") }) { try s.download("nothing", to: out, progress: nil) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a failed download leaves no file")
        try s.delete("nothing")
    }

    func testGetIfNoneMatch() throws {
        let s = try store()
        let info = try s.put(Data("v1".utf8), to: "manifest.json", condition: .always, metadata: [:])
        XCTAssertNil(try s.get("manifest.json", limit: 100, ifNoneMatch: info.etag))
        let newer = try s.put(Data("v2".utf8), to: "manifest.json", condition: .ifMatch(etag: info.etag), metadata: [:])
        let got = try XCTUnwrap(s.get("manifest.json", limit: 100, ifNoneMatch: info.etag))
        XCTAssertEqual(got.data, Data("v2".utf8))
        XCTAssertEqual(got.info.etag, newer.etag)
    }

    func testConditionalWrites() throws {
        let s = try store()
        let first = try s.put(Data("one".utf8), to: "manifest.json", condition: .ifAbsent, metadata: [:])
        assertError({ $0 == .preconditionFailed(key: "idx/one/manifest.json") }) {
            try s.put(Data("two".utf8), to: "manifest.json", condition: .ifAbsent, metadata: [:])
        }
        let second = try s.put(Data("three".utf8), to: "manifest.json", condition: .ifMatch(etag: first.etag), metadata: [:])
        assertError({ $0 == .preconditionFailed(key: "idx/one/manifest.json") }) {
            try s.put(Data("four".utf8), to: "manifest.json", condition: .ifMatch(etag: first.etag), metadata: [:])
        }
        XCTAssertEqual(try s.get("manifest.json", limit: 100, ifNoneMatch: nil)?.data, Data("three".utf8))
        XCTAssertEqual(try s.head("manifest.json")?.etag, second.etag)
        // A 412 is an answer, not a failure: never retried.
        XCTAssertEqual(try seen().filter { $0.method == "PUT" }.count, 4)
    }

    func testConcurrentWritersOneWins() throws {
        let s = try store()
        let base = try s.put(Data("base".utf8), to: "manifest.json", condition: .always, metadata: [:])
        let wins = Counter(), losses = Counter()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            do {
                _ = try s.put(Data("writer \(i)".utf8), to: "manifest.json", condition: .ifMatch(etag: base.etag), metadata: [:])
                wins.add(1)
            } catch ObjectStoreError.preconditionFailed {
                losses.add(1)
            } catch {
                XCTFail("\(error)")
            }
        }
        XCTAssertEqual(wins.value, 1)
        XCTAssertEqual(losses.value, 1)
    }

    func testListPaginatesAndStripsThePrefix() throws {
        let s = try store { $0.listPageSize = 3 }
        for i in 0..<10 { try s.put(Data("\(i)".utf8), to: "segs/seg-\(i).kbseg", condition: .always, metadata: [:]) }
        try s.put(Data("m".utf8), to: "manifest.json", condition: .always, metadata: [:])
        try store(prefix: "idx/other").put(Data("x".utf8), to: "segs/seg-x.kbseg", condition: .always, metadata: [:])
        let listed = try s.list(prefix: "segs/")
        XCTAssertEqual(listed.map(\.key).sorted(), (0..<10).map { "segs/seg-\($0).kbseg" }.sorted())
        XCTAssertEqual(listed.first?.size, 1)
        XCTAssertFalse(listed.first?.etag.isEmpty ?? true)
        XCTAssertEqual(try s.list(prefix: "").count, 11)
        XCTAssertGreaterThanOrEqual(try seen().filter { $0.query.contains("continuation-token") }.count, 3)
        try s.delete("segs/seg-0.kbseg")
        XCTAssertEqual(try s.list(prefix: "segs/").count, 9)
        XCTAssertNil(try s.head("segs/seg-0.kbseg"))
    }

    func testWrongCredentials() throws {
        let badKey = try store { $0.accessKey = "AKIANOTAREALKEY00000" }
        assertError({ if case .accessDenied(code: "InvalidAccessKeyId", _) = $0 { true } else { false } }) {
            try badKey.put(Data("x".utf8), to: "k", condition: .always, metadata: [:])
        }
        let badSecret = try store { $0.secretKey = "wrong" + $0.secretKey }
        assertError({ if case .accessDenied(code: "SignatureDoesNotMatch", _) = $0 { true } else { false } }) {
            _ = try badSecret.list(prefix: "")
        }
        assertError({ if case .accessDenied = $0 { true } else { false } }) { _ = try badSecret.head("k") }
        // The secret never shows in an error.
        do { _ = try badSecret.get("k", limit: 10, ifNoneMatch: nil) } catch {
            XCTAssertFalse("\(error)".contains(server.secretKey))
        }
    }

    func testSessionToken() throws {
        let s = try store {
            $0.accessKey = server.sessionAccessKey
            $0.secretKey = server.sessionSecretKey
            $0.sessionToken = server.sessionToken
        }
        try s.put(Data("t".utf8), to: "with-token", condition: .always, metadata: [:])
        XCTAssertEqual(try s.get("with-token", limit: 10, ifNoneMatch: nil)?.data, Data("t".utf8))
        XCTAssertEqual(try seen().last?.securityToken, server.sessionToken)
        XCTAssertTrue(try seen().allSatisfy { $0.securityToken == server.sessionToken })
        let noToken = try store {
            $0.accessKey = server.sessionAccessKey
            $0.secretKey = server.sessionSecretKey
        }
        assertError({ if case .accessDenied = $0 { true } else { false } }) {
            try noToken.put(Data("t".utf8), to: "with-token", condition: .always, metadata: [:])
        }
    }

    func testMissingBucket() throws {
        let s = try store(bucket: "kb-no-such-bucket-here")
        assertError({ $0 == .noSuchBucket(bucket: "kb-no-such-bucket-here") }) {
            try s.put(Data("x".utf8), to: "k", condition: .always, metadata: [:])
        }
        assertError({ $0 == .noSuchBucket(bucket: "kb-no-such-bucket-here") }) { _ = try s.list(prefix: "") }
    }

    func testSlowDownIsRetried() throws {
        let s = try store()
        try server.injectFault(status: 503, code: "SlowDown", count: 2, method: "PUT", keySuffix: ".kbseg")
        let (path, data) = try randomFile(5000)
        try s.upload(file: path, to: "retried.kbseg", condition: .ifAbsent, metadata: [:], progress: nil)
        let puts = try seen().filter { $0.method == "PUT" && $0.path.hasSuffix("retried.kbseg") }
        XCTAssertEqual(puts.count, 3)
        XCTAssertEqual(puts.filter(\.faulted).count, 2)
        XCTAssertEqual(try s.get("retried.kbseg", limit: 1 << 20, ifNoneMatch: nil)?.data, data)
    }

    func testSlowDownBeyondMaxAttemptsIsThrottled() throws {
        let s = try store { $0.maxAttempts = 3 }
        try server.injectFault(status: 503, code: "SlowDown", count: 10, method: "PUT")
        assertError({ $0 == .throttled(key: "idx/one/throttled", attempts: 3) }) {
            try s.put(Data("x".utf8), to: "throttled", condition: .always, metadata: [:])
        }
        try server.clearFaults()
        XCTAssertEqual(try seen().filter { $0.method == "PUT" }.count, 3)
        XCTAssertNil(try s.head("throttled"))
    }

    func testInternalErrorIsRetried() throws {
        let s = try store()
        try server.injectFault(status: 500, code: "InternalError", count: 1, method: "GET")
        try s.put(Data("x".utf8), to: "k", condition: .always, metadata: [:])
        XCTAssertEqual(try s.get("k", limit: 10, ifNoneMatch: nil)?.data, Data("x".utf8))
    }

    func testDroppedConnectionMidUploadIsRetried() throws {
        let s = try store()
        let (path, data) = try randomFile(2 << 20)
        try server.injectFault(dropAfterBytes: 256 << 10, count: 1, method: "PUT", keySuffix: "dropped.kbseg")
        try s.upload(file: path, to: "dropped.kbseg", condition: .ifAbsent, metadata: [:], progress: nil)
        let puts = try seen().filter { $0.method == "PUT" && $0.path.hasSuffix("dropped.kbseg") }
        XCTAssertEqual(puts.count, 2)
        let out = tempPath()
        try s.download("dropped.kbseg", to: out, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), data)
    }

    func testConditionalWriteWhoseAnswerWasLostStillSucceeds() throws {
        let s = try store()
        try server.injectFault(dropResponse: true, count: 1, method: "PUT", keySuffix: "manifest.json")
        let info = try s.put(Data("mine".utf8), to: "manifest.json", condition: .ifAbsent, metadata: [:])
        XCTAssertEqual(try s.head("manifest.json")?.etag, info.etag)
        XCTAssertEqual(try seen().filter { $0.method == "PUT" }.count, 2, "the retry met the first attempt's object")
        // Someone else's bytes are still a lost race.
        try server.injectFault(dropResponse: true, count: 1, method: "PUT", keySuffix: "other.json")
        try s.put(Data("theirs".utf8), to: "other.json", condition: .always, metadata: [:])
        assertError({ $0 == .preconditionFailed(key: "idx/one/other.json") }) {
            try s.put(Data("mine".utf8), to: "other.json", condition: .ifAbsent, metadata: [:])
        }
    }

    func testMultipartCompletionWhoseAnswerWasLostStillSucceeds() throws {
        let s = try store { $0.partSize = 256 << 10; $0.multipartThreshold = 256 << 10 }
        let (path, data) = try randomFile(600 << 10)
        try server.injectFault(dropResponse: true, count: 1, method: "POST", queryContains: "uploadId")
        try s.upload(file: path, to: "lost.kbseg", condition: .ifAbsent, metadata: [:], progress: nil)
        XCTAssertEqual(try s.get("lost.kbseg", limit: 1 << 20, ifNoneMatch: nil)?.data, data)
    }

    func testCorruptDownloadIsAnIntegrityErrorAndLeavesNoFile() throws {
        let s = try store()
        let (path, _) = try randomFile(70_000)
        try s.upload(file: path, to: "seg.kbseg", condition: .always, metadata: [:], progress: nil)
        try server.injectFault(corruptBody: true, count: 1, method: "GET", keySuffix: "seg.kbseg")
        let out = tempPath()
        assertError({ if case .integrity(key: "idx/one/seg.kbseg", _) = $0 { true } else { false } }) {
            try s.download("seg.kbseg", to: out, progress: nil)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        try s.download("seg.kbseg", to: out, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func testFailedMultipartIsAborted() throws {
        let s = try store { $0.partSize = 256 << 10; $0.multipartThreshold = 256 << 10 }
        let (path, _) = try randomFile(1 << 20)
        try server.injectFault(status: 400, code: "InvalidPart", count: 1, method: "PUT", queryContains: "partNumber=3")
        assertError({ if case .server(400, "InvalidPart", _) = $0 { true } else { false } }) {
            try s.upload(file: path, to: "aborted.kbseg", condition: .always, metadata: [:], progress: nil)
        }
        XCTAssertEqual(try server.unfinishedUploads(bucket: bucket), [])
        XCTAssertTrue(try seen().contains { $0.method == "DELETE" && $0.query.contains("uploadId") })
        XCTAssertNil(try s.head("aborted.kbseg"))
    }

    func testDownloadOfTooShortBodyFailsCleanly() throws {
        // A connection refused for every attempt: a transport error, and no file left.
        var c = configuration { $0.maxAttempts = 2 }
        c.endpoint = URL(string: "http://127.0.0.1:1")
        let s = S3Store(try S3Location(bucket: bucket), configuration: c)
        let out = tempPath()
        assertError({ if case .transport = $0 { true } else { false } }) { try s.download("k", to: out, progress: nil) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n: Int64 = 0
    var value: Int64 { lock.lock(); defer { lock.unlock() }; return n }
    func add(_ d: Int64) { lock.lock(); n += d; lock.unlock() }
    func set(_ v: Int64) { lock.lock(); n = max(n, v); lock.unlock() }
}
