#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import XCTest

/// An S3-compatible server for tests: moto's S3 in server mode on 127.0.0.1
/// (Tests/Python/s3_server.py, run with the test virtualenv's Python), checking credentials
/// and AWS Signature V4 for real, with a control API for buckets and injected faults.
///
/// ```swift
/// let server = try S3TestServer.start()          // XCTSkip when the virtualenv is missing
/// defer { server.stop() }
/// try server.createBucket("kb-test")
/// // In-process: S3Configuration(accessKey: server.accessKey, secretKey: server.secretKey,
/// //                             endpoint: server.endpoint)
/// // A child kbindex: CLIRunner.run([...], environment: server.environment)
/// try server.injectFault(status: 503, code: "SlowDown", count: 2, method: "PUT")
/// ```
///
/// The Python comes from `KBINDEX_TEST_PYTHON` (scripts/test.sh sets it), else
/// `.venv-tests/bin/python` in the package root. The server ends with `stop()`, on deinit,
/// and by itself when this process ends (it exits when its stdin closes).
public final class S3TestServer: @unchecked Sendable {
    /// `http://127.0.0.1:PORT` (path-style addressing: `endpoint/bucket/key`).
    public let endpoint: URL
    /// An IAM user's access key allowed s3:* (any other key gets 403 InvalidAccessKeyId).
    public let accessKey: String
    /// Its secret (any other gets 403 SignatureDoesNotMatch).
    public let secretKey: String
    /// Temporary credentials of an assumed role: they work only with `sessionToken`.
    public let sessionAccessKey: String
    public let sessionSecretKey: String
    public let sessionToken: String
    /// The region to sign for.
    public let region = "us-east-1"
    private let process: Process
    private let stdinPipe: Pipe
    private let lock = NSLock()
    private var stopped = false

    /// The AWS_* variables that point a child `kbindex` process at this server (the user's keys).
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_REGION": region,
         "AWS_ENDPOINT_URL": endpoint.absoluteString]
    }

    /// The package root (this file is Tests/KBTestSupport/S3TestServer.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Starts a server (a few seconds: moto imports slowly).
    /// - Parameter partMinSize: the smallest multipart part the server accepts but for the last
    ///   (S3: 5 MiB; default here 64 KiB so tests can use small parts).
    /// - Throws: `XCTSkip` when there is no test virtualenv (run scripts/test.sh, which makes
    ///   .venv-tests with moto), or an error when the server does not come up.
    /// - Parameters:
    ///   - python: the interpreter (default: `KBINDEX_TEST_PYTHON`, else the package's venv).
    ///   - startTimeout: seconds to wait for the port and credentials; past it the process is
    ///     killed and the error shows the end of its stderr (a hung import never blocks the tests).
    public static func start(partMinSize: Int = 64 << 10, python: String? = nil, startTimeout: Double = 60) throws -> S3TestServer {
        let python = python ?? ProcessInfo.processInfo.environment["KBINDEX_TEST_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
            ?? packageRoot.appendingPathComponent(".venv-tests/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("no test virtualenv at \(python): run scripts/test.sh (it makes .venv-tests with moto)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [packageRoot.appendingPathComponent("Tests/Python/s3_server.py").path, "--part-min-size", String(partMinSize)]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        // stderr into a file (a pipe nobody drains could fill and block the server), read back
        // when the server does not come up.
        let errorPath = NSTemporaryDirectory() + "kbs3-server-\(UUID().uuidString).stderr"
        FileManager.default.createFile(atPath: errorPath, contents: nil)
        let errorHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        process.standardError = errorHandle
        defer { try? errorHandle.close() }
        try process.run()
        func failure(_ what: String) -> StartError {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            unlink(errorPath)
            let tail = stderr.split(separator: "\n").suffix(15).joined(separator: "\n")
            return StartError(description: "the S3 test server (\(python) Tests/Python/s3_server.py) \(what); is moto installed? run scripts/python-venv.sh" + (tail.isEmpty ? "" : "\nits stderr:\n\(tail)"))
        }
        // The first two lines: the port, then the credentials as JSON, read on another thread
        // so that a server that never prints cannot block here.
        final class Reader: @unchecked Sendable { var buffer = Data() }
        let reader = Reader()
        let done = DispatchSemaphore(value: 0)
        let handle = output.fileHandleForReading
        Thread.detachNewThread {
            while reader.buffer.split(separator: 0x0A).count < 2 || reader.buffer.last != 0x0A {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                reader.buffer.append(chunk)
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + startTimeout) == .success else {
            // Killing the process ends the reader thread (EOF on the pipe).
            let error = failure("printed nothing within \(Int(startTimeout)) s and was killed")
            _ = done.wait(timeout: .now() + 5)
            throw error
        }
        let buffer = reader.buffer
        guard buffer.split(separator: 0x0A).count >= 2 else { throw failure("exited before it listened") }
        unlink(errorPath)
        let lines = buffer.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        struct Keys: Decodable {
            struct Session: Decodable { let access_key: String; let secret_key: String; let token: String }
            let access_key: String
            let secret_key: String
            let session: Session
        }
        guard let port = Int(lines[0]), let keys = try? JSONDecoder().decode(Keys.self, from: Data(lines[1].utf8)) else {
            process.terminate()
            throw StartError(description: "the S3 test server printed something unexpected")
        }
        return S3TestServer(
            endpoint: URL(string: "http://127.0.0.1:\(port)")!, keys: (keys.access_key, keys.secret_key),
            session: (keys.session.access_key, keys.session.secret_key, keys.session.token), process: process, stdin: input)
    }

    private init(endpoint: URL, keys: (String, String), session: (String, String, String), process: Process, stdin: Pipe) {
        self.endpoint = endpoint
        self.accessKey = keys.0
        self.secretKey = keys.1
        self.sessionAccessKey = session.0
        self.sessionSecretKey = session.1
        self.sessionToken = session.2
        self.process = process
        self.stdinPipe = stdin
    }

    deinit { stop() }

    /// Ends the server and waits for it.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        try? stdinPipe.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Creates a bucket (3 to 63 of a-z, 0-9, '.', '-').
    public func createBucket(_ name: String) throws {
        _ = try control("POST", "/_kbtest/buckets/\(name)")
    }

    /// Makes the next `count` requests that match (`method`, a path ending in `keySuffix`, a
    /// query containing `queryContains`; nil matches anything) fail: with `status` and an S3
    /// error `code`, or, with `dropAfterBytes`, by reading that many bytes of the request body
    /// and closing the connection without an answer.
    /// With `dropResponse`, the request takes effect and its answer is lost (the connection
    /// closes); with `corruptBody`, the answer comes with one byte of its body flipped.
    /// With `truncateBody`, the answer announces its full Content-Length, sends only that many
    /// bytes of the body and closes the connection.
    public func injectFault(status: Int? = nil, code: String? = nil, dropAfterBytes: Int? = nil, dropResponse: Bool = false,
                            corruptBody: Bool = false, truncateBody: Int? = nil, count: Int = 1, method: String? = nil,
                            keySuffix: String? = nil, queryContains: String? = nil) throws {
        var fault: [String: Any] = ["count": count]
        if let truncateBody { fault["truncate_body"] = truncateBody }
        if corruptBody { fault["corrupt_body"] = true }
        if dropResponse { fault["drop_response"] = true }
        if let status { fault["status"] = status }
        if let code { fault["code"] = code }
        if let dropAfterBytes { fault["drop_after_bytes"] = dropAfterBytes }
        if let method { fault["method"] = method }
        if let keySuffix { fault["key_suffix"] = keySuffix }
        if let queryContains { fault["query_contains"] = queryContains }
        _ = try control("POST", "/_kbtest/faults", body: try JSONSerialization.data(withJSONObject: fault))
    }

    /// Removes every injected fault not used up yet.
    public func clearFaults() throws { _ = try control("DELETE", "/_kbtest/faults") }

    /// One S3 request the server saw (faulted ones included), oldest first.
    public struct SeenRequest: Decodable, Sendable {
        public let method: String
        /// "/bucket/key", decoded.
        public let path: String
        public let query: String
        /// Whether a fault was injected into this request.
        public var faulted: Bool { fault != nil }
        public let securityToken: String?
        let fault: [String: FaultValue]?
        enum CodingKeys: String, CodingKey { case method, path, query, fault, securityToken = "security_token" }
    }

    struct FaultValue: Decodable, Sendable {
        init(from decoder: Decoder) throws {}
    }

    /// Every S3 request seen so far.
    public func requests() throws -> [SeenRequest] {
        try JSONDecoder().decode([SeenRequest].self, from: control("GET", "/_kbtest/requests"))
    }

    /// Keys of the bucket's multipart uploads that were neither completed nor aborted.
    public func unfinishedUploads(bucket: String) throws -> [String] {
        struct Upload: Decodable { let key: String }
        return try JSONDecoder().decode([Upload].self, from: control("GET", "/_kbtest/uploads/\(bucket)")).map(\.key)
    }

    struct StartError: Error, CustomStringConvertible { let description: String }

    /// One HTTP/1.0 exchange with the control API over a plain socket (KBTestSupport has no HTTP client).
    private func control(_ method: String, _ path: String, body: Data = Data()) throws -> Data {
        let port = UInt16(endpoint.port!)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw StartError(description: "cannot connect to the S3 test server") }
        var request = Data("\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        request.append(body)
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, 0)
                guard n > 0 else { throw StartError(description: "cannot send to the S3 test server") }
                sent += n
            }
        }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            response.append(contentsOf: chunk[0..<n])
        }
        guard let split = response.range(of: Data("\r\n\r\n".utf8)) else { throw StartError(description: "no answer from the S3 test server") }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let payload = Data(response[split.upperBound...])
        guard status == 200 else {
            throw StartError(description: "\(method) \(path) → \(status): \(String(decoding: payload, as: UTF8.self))")
        }
        return payload
    }
}
