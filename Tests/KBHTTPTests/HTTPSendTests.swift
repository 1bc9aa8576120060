#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KBHTTP
import KBTestSupport
import XCTest

/// `HTTPClient.send`: any method, bodies from memory or a file range, answers to memory or a file.
final class HTTPSendTests: XCTestCase {
    func testPutFromFileRangeSendsExactlyThoseBytes() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200, headers: [("ETag", "\"x\"")], body: Data("ok".utf8)) }
        defer { server.stop() }
        let path = NSTemporaryDirectory() + "kbhttp-send-\(UUID().uuidString)"
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let sent = SendCounter()
        let reply = try HTTPClient().send(HTTPRequest(
            method: "PUT", url: server.url("/obj?partNumber=2"), headers: [("X-Test", "1")],
            body: .file(fd: fd, offset: 1000, length: 200_000), progress: { sent.set($0) }))
        XCTAssertEqual(reply.status, 200)
        XCTAssertEqual(reply.headers["etag"], "\"x\"")
        XCTAssertEqual(reply.body, Data("ok".utf8))
        let request = try XCTUnwrap(server.requests.last)
        XCTAssertEqual(request.method, "PUT")
        XCTAssertEqual(request.target, "/obj?partNumber=2")
        XCTAssertEqual(request.header("X-Test"), "1")
        XCTAssertNil(request.header("Expect"), "no 100-continue wait without SigV4")
        XCTAssertEqual(request.body, Data(bytes[1000..<201_000]))
        XCTAssertEqual(sent.value, 200_000)
        // The descriptor's own position is untouched (pread), so it can serve the next request.
        XCTAssertEqual(lseek(fd, 0, SEEK_CUR), 0)
    }

    func testMethodsAndMemoryBodies() throws {
        let server = try ThreadedHTTPServer { .respond(status: $0.method == "HEAD" ? 200 : 204, headers: [("X-Method", $0.method)]) }
        defer { server.stop() }
        let client = HTTPClient()
        for method in ["HEAD", "DELETE", "GET"] {
            let reply = try client.send(HTTPRequest(method: method, url: server.url("/k")))
            XCTAssertEqual(reply.headers["X-Method"], method)
        }
        _ = try client.send(HTTPRequest(method: "POST", url: server.url("/k"), body: .data(Data("<xml/>".utf8))))
        _ = try client.send(HTTPRequest(method: "PUT", url: server.url("/k"), body: .data(Data("abc".utf8))))
        _ = try client.send(HTTPRequest(method: "POST", url: server.url("/k")))
        XCTAssertEqual(server.requests.map(\.method), ["HEAD", "DELETE", "GET", "POST", "PUT", "POST"])
        XCTAssertEqual(server.requests.map(\.body), [Data(), Data(), Data(), Data("<xml/>".utf8), Data("abc".utf8), Data()])
    }

    func testFileSinkKeepsErrorBodiesOutOfTheFile() throws {
        let server = try ThreadedHTTPServer { request in
            request.path == "/ok" ? .respond(status: 200, body: Data("payload".utf8))
                : .respond(status: 404, body: Data("<Error><Code>NoSuchKey</Code></Error>".utf8))
        }
        defer { server.stop() }
        let path = NSTemporaryDirectory() + "kbhttp-sink-\(UUID().uuidString)"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd); unlink(path) }
        let missing = try HTTPClient().send(HTTPRequest(method: "GET", url: server.url("/missing"), sink: .file(fd: fd, path: path)))
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(String(decoding: missing.body, as: UTF8.self), "<Error><Code>NoSuchKey</Code></Error>")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data())
        let ok = try HTTPClient().send(HTTPRequest(method: "GET", url: server.url("/ok"), sink: .file(fd: fd, path: path)))
        XCTAssertEqual(ok.bodyBytes, 7)
        XCTAssertEqual(ok.body, Data())
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), Data("payload".utf8))
    }

    func testSigV4SignsHeadersAndNeverSendsTheSecret() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        defer { server.stop() }
        let sig = AWSSigV4(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "eu-west-1")
        _ = try HTTPClient().send(HTTPRequest(
            method: "PUT", url: server.url("/bucket/key?partNumber=1&uploadId=abc"),
            headers: [("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("x-amz-security-token", "tok")],
            body: .data(Data("abc".utf8)), sigV4: sig))
        let request = try XCTUnwrap(server.requests.last)
        let auth = try XCTUnwrap(request.header("Authorization"))
        XCTAssertTrue(auth.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth)
        XCTAssertTrue(auth.contains("/eu-west-1/s3/aws4_request"), auth)
        XCTAssertTrue(auth.contains("x-amz-content-sha256"), auth)
        XCTAssertTrue(auth.contains("x-amz-security-token"), auth)
        XCTAssertNotNil(request.header("x-amz-date"))
        for header in request.headers {
            XCTAssertFalse(header.value.contains("wJalrXUtnFEMI"), header.name)
        }
    }

    // MARK: - Local failures are not network failures

    func testShortFileReadIsAFileErrorNotATransportError() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        defer { server.stop() }
        let path = NSTemporaryDirectory() + "kbhttp-short-\(UUID().uuidString)"
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        // Announces 5000 bytes; the file has 1000.
        XCTAssertThrowsError(try HTTPClient().send(HTTPRequest(method: "PUT", url: server.url("/k"), body: .file(fd: fd, offset: 0, length: 5000)))) { error in
            guard case let HTTPError.file(message) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(message.contains("ended early"), message)
        }
    }

    func testLocalValidationErrorsAreInvalidRequests() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        defer { server.stop() }
        let client = HTTPClient()
        func assertInvalid(_ request: HTTPRequest, line: UInt = #line) {
            XCTAssertThrowsError(try client.send(request), line: line) { error in
                guard case HTTPError.invalidRequest = error else { return XCTFail("got \(error)", line: line) }
                XCTAssertFalse("\(error)".contains("\n"), line: line)
            }
        }
        assertInvalid(HTTPRequest(method: "PUT", url: server.url("/k"), headers: [("x-amz-meta-a", "one\r\nX-Evil: 1")], body: .data(Data("a".utf8))))
        assertInvalid(HTTPRequest(method: "POST", url: server.url("/k"), body: .file(fd: 0, offset: 0, length: 1)))
        // A GET (or HEAD) with a body would have gone out as a PUT.
        assertInvalid(HTTPRequest(method: "GET", url: server.url("/k"), body: .data(Data("a".utf8))))
        assertInvalid(HTTPRequest(method: "HEAD", url: server.url("/k"), body: .data(Data("a".utf8))))
        XCTAssertEqual(server.requests.count, 0, "nothing was sent")
    }

    func testPutWithoutBodySendsContentLengthZero() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        defer { server.stop() }
        _ = try HTTPClient().send(HTTPRequest(method: "PUT", url: server.url("/k")))
        let request = try XCTUnwrap(server.requests.last)
        XCTAssertEqual(request.method, "PUT")
        XCTAssertEqual(request.header("Content-Length"), "0")
    }

    func testPathAsIsKeepsDotSegments() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        defer { server.stop() }
        _ = try HTTPClient().send(HTTPRequest(method: "GET", url: server.url("/pre/x/./y/../z"), pathAsIs: true))
        XCTAssertEqual(server.requests.last?.target, "/pre/x/./y/../z")
        _ = try HTTPClient().send(HTTPRequest(method: "GET", url: server.url("/pre/x/./y")))
        XCTAssertEqual(server.requests.last?.target, "/pre/x/y", "without it libcurl normalizes")
    }

    func testSelfSignedCertificateIsATLSCertificateError() throws {
        // A TLS server with a self-signed certificate (openssl + python3's ssl module).
        guard let openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw XCTSkip("needs openssl and python3") }
        let dir = NSTemporaryDirectory() + "kbhttp-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: openssl)
        gen.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                         "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"]
        gen.standardOutput = FileHandle.nullDevice
        gen.standardError = FileHandle.nullDevice
        try gen.run()
        gen.waitUntilExit()
        guard gen.terminationStatus == 0 else { throw XCTSkip("openssl could not make a certificate") }
        let script = """
            import http.server, ssl, sys
            s = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[1], sys.argv[2])
            s.socket = c.wrap_socket(s.socket, server_side=True)
            print(s.server_port, flush=True)
            s.handle_request()
            """
        let server = Process()
        server.executableURL = URL(fileURLWithPath: python)
        server.arguments = ["-c", script, dir + "/cert.pem", dir + "/key.pem"]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit() }
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let port = try XCTUnwrap(Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertThrowsError(try HTTPClient().send(HTTPRequest(method: "GET", url: URL(string: "https://127.0.0.1:\(port)/k")!))) { error in
            guard case HTTPError.tlsCertificate(host: "127.0.0.1", _) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue("\(error)".contains("TLS certificate"), "\(error)")
        }
    }

    func testCertificateErrorHasItsOwnMessage() {
        let e = HTTPError.tlsCertificate(host: "s3.example", detail: "SSL certificate problem: unable to get local issuer certificate")
        XCTAssertFalse(e.isConnectFailure)
        XCTAssertTrue(e.description.contains("TLS certificate of s3.example"), e.description)
    }

}

private final class SendCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n: Int64 = 0
    var value: Int64 { lock.lock(); defer { lock.unlock() }; return n }
    func set(_ v: Int64) { lock.lock(); n = max(n, v); lock.unlock() }
}
