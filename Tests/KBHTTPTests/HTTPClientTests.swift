import Foundation
import KBHTTP
import KBTestSupport
import XCTest

final class KBHTTPTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kbhttp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func randomBytes(_ n: Int, seed: UInt64) -> Data {
        var rng = SeededRNG(seed: seed)
        return Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    func testGetReturnsBodyStatusAndHeaders() throws {
        let server = try LocalHTTPServer(routes: [
            "/hello": .init(headers: [("X-Test", "yes"), ("ETag", "\"abc\"")], body: Data("hello world".utf8)),
        ])
        defer { server.stop() }
        let r = try HTTPClient().get(url: server.url("/hello"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "hello world")
        XCTAssertEqual(r.headers["x-test"], "yes")
        XCTAssertEqual(r.headers["ETag"], "\"abc\"")
        XCTAssertEqual(r.headers["Content-Length"], "11")
        XCTAssertEqual(server.requestCount("/hello"), 1)
    }

    func testGetReportsErrorStatusWithoutThrowing() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let r = try HTTPClient().get(url: server.url("/missing"))
        XCTAssertEqual(r.status, 404)
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "Entry not found", "an error body is returned, as documented")
    }

    func testGetRejectsBodyOverLimit() throws {
        let server = try LocalHTTPServer(routes: ["/big": .init(body: randomBytes(10_000, seed: 1))])
        defer { server.stop() }
        XCTAssertThrowsError(try HTTPClient().get(url: server.url("/big"), limit: 1000)) { error in
            guard case HTTPError.bodyTooLarge = error else { return XCTFail("got \(error)") }
        }
    }

    func testDownloadStreamsBodyToFile() throws {
        let body = randomBytes(300_000, seed: 7)
        let server = try LocalHTTPServer(routes: ["/blob": .init(headers: [("ETag", "\"e1\"")], body: body)])
        defer { server.stop() }
        let dest = tmp.appendingPathComponent("blob").path
        var calls = 0
        var last: (Int64, Int64?) = (0, nil)
        let r = try HTTPClient().download(url: server.url("/blob"), to: dest) { got, total in
            calls += 1
            last = (got, total)
        }
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.bodyBytes, Int64(body.count))
        XCTAssertEqual(r.hops.count, 1)
        XCTAssertEqual(r.firstHeader("etag"), "\"e1\"")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dest)), body)
        XCTAssertGreaterThan(calls, 0)
        XCTAssertEqual(last.0, Int64(body.count))
        XCTAssertEqual(last.1, Int64(body.count))
    }

    func testDownload404ThrowsAndLeavesNoFile() throws {
        let server = try LocalHTTPServer()
        defer { server.stop() }
        let dest = tmp.appendingPathComponent("nothing").path
        let url = server.url("/owner/repo/resolve/main/nothing.bin")
        XCTAssertThrowsError(try HTTPClient().download(url: url, to: dest)) { error in
            XCTAssertEqual(error as? HTTPError, .status(404, url: url.absoluteString))
            XCTAssertEqual("\(error)", "HTTP 404 for \(url.absoluteString)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }

    func testRedirectIsFollowedAndFirstHopHeadersKept() throws {
        let body = randomBytes(5000, seed: 3)
        let server = try LocalHTTPServer(routes: [
            "/file": .redirect(to: "/cdn/file", headers: [("X-Linked-Etag", "\"sha-of-file\""), ("X-Linked-Size", "5000")]),
            "/cdn/file": .init(headers: [("ETag", "\"cdn-etag\"")], body: body),
        ])
        defer { server.stop() }
        let dest = tmp.appendingPathComponent("file").path
        let r = try HTTPClient().download(url: server.url("/file"), to: dest)
        XCTAssertEqual(r.hops.map(\.status), [302, 200])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.url, server.url("/cdn/file").absoluteString)
        XCTAssertEqual(r.firstHeader("X-Linked-Etag"), "\"sha-of-file\"")
        XCTAssertEqual(r.firstHeader("x-linked-size"), "5000")
        XCTAssertEqual(r.firstHeader("ETag"), "\"cdn-etag\"")  // the 302 had none
        XCTAssertNil(r.headers["X-Linked-Etag"])  // final hop headers only
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dest)), body)
        XCTAssertEqual(server.requestCount("/file"), 1)
        XCTAssertEqual(server.requestCount("/cdn/file"), 1)
    }

    func testCutConnectionIsAnErrorNotAShortFile() throws {
        let body = randomBytes(200_000, seed: 9)
        let server = try LocalHTTPServer(routes: ["/cut": .init(body: body, cutAfter: 50_000)])
        defer { server.stop() }
        let dest = tmp.appendingPathComponent("cut").path
        XCTAssertThrowsError(try HTTPClient().download(url: server.url("/cut"), to: dest)) { error in
            guard case let HTTPError.interrupted(bytes, _, _) = error else { return XCTFail("got \(error)") }
            XCTAssertLessThan(bytes, Int64(body.count))
            XCTAssertTrue("\(error)".hasPrefix("transfer interrupted after \(bytes) bytes"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }

    func testStalledTransferIsAborted() throws {
        let body = randomBytes(20_000, seed: 11)
        // The server would resume after 60 s and complete the transfer; the client must give
        // up first. What is checked is the order of events (the client hung up while the
        // server was still stalling), not a duration: a slow machine cannot break it.
        let server = try LocalHTTPServer(routes: ["/slow": .init(body: body, stall: (afterBytes: 1000, seconds: 60))])
        defer { server.stop() }
        let dest = tmp.appendingPathComponent("slow").path
        XCTAssertThrowsError(try HTTPClient(lowSpeedTime: 1, lowSpeedLimit: 100_000).download(url: server.url("/slow"), to: dest)) { error in
            guard case let HTTPError.stalled(bytes, _, _) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(bytes, 1000)
            XCTAssertTrue("\(error)".hasPrefix("transfer stalled after 1000 bytes"), "\(error)")
        }
        // The server notices the hang-up on its next poll of the connection.
        for _ in 0..<400 where server.stallsAbandoned == 0 { usleep(25_000) }
        XCTAssertEqual(server.stallsAbandoned, 1, "the client did not hang up during the stall")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }

    func testExpectedSizeMismatchIsAnError() throws {
        let server = try LocalHTTPServer(routes: ["/small": .init(body: Data("12345".utf8))])
        defer { server.stop() }
        let dest = tmp.appendingPathComponent("small").path
        XCTAssertThrowsError(try HTTPClient().download(url: server.url("/small"), to: dest, expectedSize: 10)) { error in
            guard case HTTPError.interrupted(5, _, _) = error else { return XCTFail("got \(error)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }

    func testRefusedConnectionIsCouldNotConnect() throws {
        // Take a free port and close it again, so nothing listens there.
        let server = try LocalHTTPServer()
        let port = server.port
        server.stop()
        XCTAssertThrowsError(try HTTPClient(connectTimeout: 5).get(url: URL(string: "http://127.0.0.1:\(port)/x")!)) { error in
            XCTAssertTrue((error as? HTTPError)?.isConnectFailure ?? false, "\(error)")
            XCTAssertTrue("\(error)".hasPrefix("could not connect to 127.0.0.1 ("), "\(error)")
        }
    }

    // MARK: POST

    func testPostSendsBodyAndHeadersAndReturnsAnyStatusWithItsBody() throws {
        let server = try ThreadedHTTPServer { request in
            let status = request.path == "/fail" ? 500 : 201
            return .respond(status: status, headers: [("X-Echo", request.header("X-Test") ?? "")],
                            body: Data("\(request.method) ".utf8) + request.body)
        }
        defer { server.stop() }
        // Over 1 MiB: libcurl would wait for a 100 Continue that this server never sends.
        let big = randomBytes(1_500_000, seed: 3)
        let r = try HTTPClient().post(url: server.url("/echo"), headers: [("X-Test", "yes"), ("Content-Type", "application/octet-stream")],
                                      body: big, timeout: 10, limit: 4 << 20)
        XCTAssertEqual(r.status, 201)
        XCTAssertEqual(r.headers["x-echo"], "yes")
        XCTAssertEqual(r.body, Data("POST ".utf8) + big)
        let request = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(request.header("Content-Length"), "1500000")
        XCTAssertEqual(request.header("Content-Type"), "application/octet-stream")
        XCTAssertNil(request.header("Expect"))
        XCTAssertEqual(request.header("User-Agent"), HTTPClient().userAgent)

        let failed = try HTTPClient().post(url: server.url("/fail"), body: Data("{}".utf8))
        XCTAssertEqual(failed.status, 500)
        XCTAssertEqual(String(decoding: failed.body, as: UTF8.self), "POST {}")
        let empty = try HTTPClient().post(url: server.url("/echo"), body: Data())
        XCTAssertEqual(String(decoding: empty.body, as: UTF8.self), "POST ")
    }

    func testPostDoesNotFollowRedirects() throws {
        let server = try ThreadedHTTPServer { request in
            request.path == "/old" ? .respond(status: 307, headers: [("Location", "/new")], body: Data("moved".utf8)) : .respond(status: 200)
        }
        defer { server.stop() }
        let r = try HTTPClient().post(url: server.url("/old"), headers: [("Authorization", "Bearer k")], body: Data("x".utf8))
        XCTAssertEqual(r.status, 307)
        XCTAssertEqual(r.headers["Location"], "/new")
        XCTAssertEqual(server.requests.map(\.path), ["/old"])
    }

    func testPostTimeoutIsTimedOut() throws {
        let server = try ThreadedHTTPServer { _ in .hang(seconds: 10) }
        defer { server.stop() }
        let url = server.url("/slow")
        XCTAssertThrowsError(try HTTPClient().post(url: url, body: Data("x".utf8), timeout: 0.3)) { error in
            XCTAssertEqual(error as? HTTPError, .timedOut(seconds: 0.3, bytes: 0, url: url.absoluteString))
            XCTAssertEqual("\(error)", "no complete answer from \(url.absoluteString) within 0.3 s (0 bytes of body received)")
        }
    }

    func testPostCutAnswerIsInterruptedAndTooLargeIsRefused() throws {
        let server = try ThreadedHTTPServer { request in
            request.path == "/cut" ? .cut(status: 200, body: Data(count: 1000), after: 100) : .respond(status: 200, body: Data(count: 1000))
        }
        defer { server.stop() }
        XCTAssertThrowsError(try HTTPClient().post(url: server.url("/cut"), body: Data("x".utf8), timeout: 10)) { error in
            guard case HTTPError.interrupted(100, _, _) = error else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try HTTPClient().post(url: server.url("/big"), body: Data("x".utf8), limit: 999)) { error in
            XCTAssertEqual(error as? HTTPError, .bodyTooLarge(limit: 999, url: server.url("/big").absoluteString))
        }
    }

    func testPostRefusesAHeaderWithALineBreak() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        defer { server.stop() }
        XCTAssertThrowsError(try HTTPClient().post(url: server.url("/x"), headers: [("Authorization", "Bearer a\r\nX-Evil: 1")], body: Data())) { error in
            XCTAssertTrue("\(error)".contains("the value of header 'Authorization' contains a line break"), "\(error)")
            XCTAssertFalse("\(error)".contains("Bearer"))
        }
        XCTAssertEqual(server.requests.count, 0)
    }

    func testPostToARefusedPortIsCouldNotConnect() throws {
        let server = try ThreadedHTTPServer { _ in .respond(status: 200) }
        let url = server.url("/x")
        server.stop()
        XCTAssertThrowsError(try HTTPClient().post(url: url, body: Data("x".utf8), timeout: 5)) { error in
            XCTAssertTrue((error as? HTTPError)?.isConnectFailure ?? false, "\(error)")
        }
    }
}
