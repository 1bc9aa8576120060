import Foundation
import KBRetrieval
@testable import KBServer
import KBTestSupport
import XCTest

/// Auth, Host and Origin checks, CORS, and the start-up refusals.
final class SecurityTests: XCTestCase {
    nonisolated(unsafe) static var corpus: Corpus!
    override class func setUp() {
        super.setUp()
        do { corpus = try Corpus(name: "kbserver-sec"); try corpus.build() } catch { XCTFail("\(error)") }
    }
    override class func tearDown() { corpus?.remove(); super.tearDown() }

    func start(_ configuration: ServerConfiguration) throws -> RunningServer {
        try RunningServer(indexes: [("docs", Self.corpus.index)], configuration: configuration)
    }

    func testWithoutATokenEveryRouteIsOpen() throws {
        let server = try start(.init())
        defer { server.stop() }
        XCTAssertEqual(try server.http.get("/v1/info").status, 200)
        XCTAssertEqual(try server.http.post("/v1/search", json: #"{"query": "soup"}"#).status, 200)
    }

    func testATokenIsRequiredOnEveryRouteButHealthz() throws {
        let token = "s3cret-token-0123456789"
        let server = try start(.init(token: token))
        defer { server.stop() }
        let http = server.http
        for (method, path) in [("GET", "/v1/info"), ("POST", "/v1/search"), ("GET", "/metrics"), ("GET", "/openapi.json"),
                               ("GET", "/v1/chunks/0123456789abcdef-0"), ("POST", "/v1/embeddings"), ("POST", "/mcp"), ("GET", "/nowhere")] {
            let missing = try http.send(method, path, body: method == "POST" ? Data("{}".utf8) : nil)
            XCTAssertEqual(missing.status, 401, "\(method) \(path): \(missing.text)")
            XCTAssertEqual(missing.errorCode, "unauthorized")
            XCTAssertEqual(missing.headers["www-authenticate"], #"Bearer realm="kbindex""#)
            for wrong in ["Bearer s3cret-token-012345678", "Bearer s3cret-token-01234567890", "Bearer S3CRET-TOKEN-0123456789", "Basic \(token)", token, "Bearer"] {
                let r = try http.send(method, path, headers: [("Authorization", wrong)], body: method == "POST" ? Data("{}".utf8) : nil)
                XCTAssertEqual(r.status, 401, "\(wrong) on \(method) \(path)")
                XCTAssertTrue(r.headers["www-authenticate"]?.hasPrefix("Bearer") ?? false)
            }
        }
        XCTAssertEqual(try http.get("/healthz").status, 200)
        XCTAssertEqual(try http.get("/v1/info", headers: [("Authorization", "Bearer \(token)")]).status, 200)
        XCTAssertEqual(try http.get("/v1/info", headers: [("Authorization", "bearer \(token)")]).status, 200)
        let search = try http.post("/v1/search", json: #"{"query": "soup"}"#, headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(search.status, 200, search.text)
        // An authorised request to an unknown route is a 404, not a 401.
        XCTAssertEqual(try http.get("/nowhere", headers: [("Authorization", "Bearer \(token)")]).status, 404)
    }

    func testConstantTimeCompare() {
        let t = Array("abcdef".utf8)
        XCTAssertTrue(Gatekeeper.constantTimeEquals(t, t))
        XCTAssertFalse(Gatekeeper.constantTimeEquals(Array("abcdeg".utf8), t))
        XCTAssertFalse(Gatekeeper.constantTimeEquals(Array("abcde".utf8), t))
        XCTAssertFalse(Gatekeeper.constantTimeEquals(Array("abcdefg".utf8), t))
        XCTAssertFalse(Gatekeeper.constantTimeEquals([], t))
    }

    /// DNS rebinding: a page at evil.example resolves its name to 127.0.0.1; its requests carry
    /// Host: evil.example and Origin: http://evil.example. Both are refused.
    func testForeignHostAndOriginAreRefused() throws {
        let server = try start(.init(allowedOrigins: ["https://app.example.com"]))
        defer { server.stop() }
        let http = server.http
        for path in ["/v1/info", "/mcp", "/healthz"] {
            let host = try http.send(path == "/mcp" ? "POST" : "GET", path, headers: [("Host", "evil.example:\(server.port)")], body: path == "/mcp" ? Data("{}".utf8) : nil)
            XCTAssertEqual(host.status, 403, "\(path): \(host.text)")
            XCTAssertEqual(host.errorCode, "forbidden_host")
            let origin = try http.send(path == "/mcp" ? "POST" : "GET", path, headers: [("Origin", "http://evil.example:\(server.port)")], body: path == "/mcp" ? Data("{}".utf8) : nil)
            XCTAssertEqual(origin.status, 403, "\(path): \(origin.text)")
            XCTAssertEqual(origin.errorCode, "forbidden_origin")
            XCTAssertEqual(try http.send("GET", path, headers: [("Origin", "null")]).status, 403)
        }
        for host in ["localhost:\(server.port)", "127.0.0.1", "[::1]:\(server.port)", "LOCALHOST"] {
            XCTAssertEqual(try http.get("/v1/info", headers: [("Host", host)]).status, 200, host)
        }
        for origin in ["http://localhost:3000", "http://127.0.0.1:\(server.port)", "https://[::1]"] {
            let r = try http.get("/v1/info", headers: [("Origin", origin)])
            XCTAssertEqual(r.status, 200, origin)
            XCTAssertNil(r.headers["access-control-allow-origin"], "a loopback origin gets no CORS grant")
        }
        XCTAssertEqual(try http.get("/v1/info", headers: [("Origin", "http://localhost.evil.example")]).status, 403)
        // An allowed origin gets CORS headers, on errors too, and its preflight is answered.
        let allowed = try http.get("/v1/info", headers: [("Origin", "https://app.example.com")])
        XCTAssertEqual(allowed.status, 200)
        XCTAssertEqual(allowed.headers["access-control-allow-origin"], "https://app.example.com")
        XCTAssertEqual(try http.get("/nowhere", headers: [("Origin", "https://app.example.com")]).headers["access-control-allow-origin"], "https://app.example.com")
        let preflight = try http.send("OPTIONS", "/v1/search", headers: [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")])
        XCTAssertEqual(preflight.status, 204)
        XCTAssertTrue(preflight.headers["access-control-allow-headers"]?.contains("Authorization") ?? false)
        let foreignPreflight = try http.send("OPTIONS", "/v1/search", headers: [("Origin", "https://other.example.com"), ("Access-Control-Request-Method", "POST")])
        XCTAssertEqual(foreignPreflight.status, 403)
    }

    /// Behind a reverse proxy that passes the client's Host (Caddy, Traefik), the public name
    /// is allowed with `allowedHosts` (`--allow-host`); other names are still refused.
    func testAnAllowedHostPassesAndOthersAreRefused() throws {
        let server = try start(.init(allowedHosts: ["kb.example.com"]))
        defer { server.stop() }
        let http = server.http
        for host in ["kb.example.com", "KB.Example.COM:443", "kb.example.com:\(server.port)"] {
            let r = try http.get("/v1/info", headers: [("Host", host)])
            XCTAssertEqual(r.status, 200, "\(host): \(r.text)")
        }
        for host in ["evil.example", "kb.example.com.evil.example", "example.com"] {
            let r = try http.get("/v1/info", headers: [("Host", host)])
            XCTAssertEqual(r.status, 403, host)
            XCTAssertEqual(r.errorCode, "forbidden_host", host)
            XCTAssertTrue(r.errorMessage?.contains("--allow-host") ?? false, r.text)
        }
        XCTAssertEqual(try http.get("/v1/info", headers: [("Host", "localhost")]).status, 200)
    }

    /// A body that ends before its Content-Length (the client stops sending) is not "larger
    /// than the limit" nor a server error: 400.
    func testABodyCutShortIsNotTooLarge() throws {
        let server = try start(.init())
        defer { server.stop() }
        for path in ["/mcp", "/v1/search", "/v1/embeddings"] {
            let fd = try server.http.connection()
            defer { close(fd) }
            let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n"
            RawHTTP.write(Data((head + #"{"jsonrpc""#).utf8), to: fd)
            shutdown(fd, Int32(SHUT_WR))
            let r = try RawHTTP.readAll(fd)
            XCTAssertEqual(r.status, 400, "\(path): \(r.text)")
            XCTAssertFalse(r.text.contains("larger than"), "\(path): \(r.text)")
        }
        XCTAssertEqual(try server.http.get("/healthz").status, 200)
    }

    /// The printed address: an IPv6 zone id ("%eth0") is percent-encoded, never a crash.
    func testTheListeningURLOfAnyHost() {
        let cases: [(String, Int, String)] = [
            ("fe80::1%eth0", 8765, "http://[fe80::1%25eth0]:8765"),
            ("[fe80::1%eth0]", 80, "http://[fe80::1%25eth0]:80"),
            ("::1", 8765, "http://[::1]:8765"),
            ("127.0.0.1", 0, "http://127.0.0.1:0"),
            ("localhost", 8765, "http://localhost:8765"),
        ]
        for (host, port, expected) in cases {
            let url = KBServerApp.baseURL(host: host, port: port)
            XCTAssertEqual(url.absoluteString, expected, host)
            XCTAssertEqual(url.port, port, host)
        }
        XCTAssertEqual(KBServerApp.baseURL(host: "bad host/name", port: 1).port, 1)
    }

    func testANonLoopbackHostNeedsAToken() throws {
        let service = try RetrievalService(indexes: [("docs", Self.corpus.index)])
        for host in ["0.0.0.0", "::", "192.168.1.10", "example.com"] {
            XCTAssertThrowsError(try KBServerApp(service: service, configuration: .init(host: host, port: 0))) { error in
                guard case ServerError.tokenRequired = error else { return XCTFail("\(host): \(error)") }
            }
            XCTAssertNoThrow(try KBServerApp(service: service, configuration: .init(host: host, port: 0, token: "t0ken")))
        }
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1"] {
            XCTAssertNoThrow(try KBServerApp(service: service, configuration: .init(host: host, port: 0)), host)
        }
        XCTAssertThrowsError(try KBServerApp(service: service, configuration: .init(token: "")))
        XCTAssertThrowsError(try KBServerApp(service: service, configuration: .init(token: "two words")))
    }

    /// Bound to a non-loopback address (with a token), any Host is accepted: the token guards.
    func testHostIsNotCheckedWhenBoundToAllInterfaces() throws {
        let server = try start(.init(host: "0.0.0.0", token: "t0ken"))
        defer { server.stop() }
        let r = try server.http.get("/v1/info", headers: [("Host", "kb.example.com"), ("Authorization", "Bearer t0ken")])
        XCTAssertEqual(r.status, 200, r.text)
    }

    func testTheRequestDeadline() async throws {
        // Work that never ends is abandoned at the deadline.
        do {
            _ = try await withDeadline(.milliseconds(1)) { () async throws -> Int in
                while true { try await Task.sleep(for: .seconds(3600)) }
            }
            XCTFail("no timeout")
        } catch is RequestTimeout {}
        // Work that ends gives its result, and its error.
        let value = try await withDeadline(.seconds(3600)) { 42 }
        XCTAssertEqual(value, 42)
        do {
            _ = try await withDeadline(.seconds(3600)) { () async throws -> Int in throw APIError.badRequest("no") }
            XCTFail("no error")
        } catch let e as APIError { XCTAssertEqual(e.code, "invalid_request") }
        XCTAssertEqual(APIError.from(RequestTimeout()).status, .serviceUnavailable)
        XCTAssertEqual(APIError.from(RequestTimeout()).code, "timeout")
    }

    func testErrorStatusesAreMappedInOnePlace() {
        let url = URL(fileURLWithPath: "/tmp/x")
        let cases: [(RetrievalError, Int, String)] = [
            (.invalidRequest("k must be 1 or more"), 400, "invalid_request"),
            (.unknownIndex("x", known: ["a"]), 404, "unknown_index"),
            (.unknownChunk("x"), 404, "unknown_chunk"),
            (.lexicalUnavailable(index: "a"), 400, "invalid_request"),
            (.indexNotNamed(known: ["a", "b"]), 400, "invalid_request"),
            (.openFailed(index: url, reason: "gone"), 503, "index_unavailable"),
            (.model("NaN vectors", folder: nil, isDamage: true), 500, "model_error"),
            (.busy("64 questions are waiting already"), 503, "busy"),
        ]
        for (error, status, code) in cases {
            let e = APIError.from(error)
            XCTAssertEqual(Int(e.status.code), status, "\(error)")
            XCTAssertEqual(e.code, code, "\(error)")
        }
        XCTAssertEqual(APIError.from(RetrievalError.busy("full")).headers[.retryAfter], "1")
        XCTAssertEqual(APIError.from(CancellationError()).code, "shutting_down")
        struct Strange: Error {}
        XCTAssertEqual(APIError.from(Strange()).status, .internalServerError)
        XCTAssertFalse(APIError.from(Strange()).message.contains("Strange"))
        XCTAssertEqual(APIError.oneLine("a\nb\rc"), "a b c")
    }
}
