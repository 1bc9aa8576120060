import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import kbindex_bench

/// The parts of `kbindex-bench serve` that turn bytes into numbers: if they misread, the
/// benchmark reports wrong numbers without failing.
final class ServeClientTests: XCTestCase {
    // MARK: - The server's listening line

    func testListeningAddressFromKbindexAndHummingbirdLines() {
        let kb = ServeBench.listeningAddress("kbindex: serving index 'docs' on http://127.0.0.1:43210 (model all-MiniLM-L6-v2; Ctrl-C stops)")
        XCTAssertEqual(kb?.0, "127.0.0.1")
        XCTAssertEqual(kb?.1, 43210)
        let hb = ServeBench.listeningAddress("2026-12-02T07:00:00+0000 info Hummingbird: [HummingbirdCore] Server started and listening on 127.0.0.1:8765")
        XCTAssertEqual(hb?.1, 8765)
        XCTAssertEqual(ServeBench.listeningAddress("listening on http://0.0.0.0:9000")?.0, "127.0.0.1")
        XCTAssertEqual(ServeBench.listeningAddress("http://localhost:9001/")?.0, "127.0.0.1")
        XCTAssertNil(ServeBench.listeningAddress("kbindex: loading index 'docs' (14,105 chunks)"))
        XCTAssertNil(ServeBench.listeningAddress("see http://127.0.0.1:0"))
        XCTAssertNil(ServeBench.listeningAddress("http://127.0.0.1:99999"))
    }

    // MARK: - Prometheus text

    static let metricsBefore = """
        # HELP kbindex_search_batch_size Questions embedded and scanned together in one batch.
        # TYPE kbindex_search_batch_size histogram
        kbindex_search_batch_size_bucket{le="1.0"} 4
        kbindex_search_batch_size_bucket{le="2.0"} 5
        kbindex_search_batch_size_bucket{le="4.0"} 6
        kbindex_search_batch_size_bucket{le="+Inf"} 6
        kbindex_search_batch_size_sum 9.0
        kbindex_search_batch_size_count 6
        # TYPE kbindex_http_request_duration_seconds histogram
        kbindex_http_request_duration_seconds_bucket{route="/v1/search",le="0.01"} 6
        kbindex_http_request_duration_seconds_sum{route="/v1/search"} 0.03
        kbindex_http_request_duration_seconds_count{route="/v1/search"} 6
        kbindex_http_requests_total{route="/v1/search",method="POST",status="200"} 6
        """

    static let metricsAfter = """
        # TYPE kbindex_search_batch_size histogram
        kbindex_search_batch_size_bucket{le="1.0"} 4
        kbindex_search_batch_size_bucket{le="2.0"} 6
        kbindex_search_batch_size_bucket{le="4.0"} 8
        kbindex_search_batch_size_bucket{le="8.0"} 10
        kbindex_search_batch_size_bucket{le="+Inf"} 10
        kbindex_search_batch_size_sum 37.0
        kbindex_search_batch_size_count 10
        kbindex_http_requests_total{route="/v1/search",method="POST",status="200"} 34
        """

    func testSamplesSkipCommentsAndReadLabelsAndInfinity() {
        let s = PrometheusText.samples(Self.metricsBefore + "\nnot a sample\nkbindex_up +Inf\n")
        XCTAssertEqual(s.count, 11)
        XCTAssertEqual(s.first?.name, "kbindex_search_batch_size_bucket")
        XCTAssertEqual(s.first?.labels, #"le="1.0""#)
        XCTAssertEqual(s.last?.value, .infinity)
        XCTAssertEqual(PrometheusText.label("le", in: #"route="/v1/search",le="0.01""#), "0.01")
        XCTAssertNil(PrometheusText.label("le", in: #"route="/v1/search""#))
    }

    func testBatchHistogramDeltaMeanAndQuantiles() throws {
        let before = try XCTUnwrap(ScrapedHistogram.find("batch", in: Self.metricsBefore))
        XCTAssertEqual(before.name, "kbindex_search_batch_size")  // not the duration histogram
        let after = try XCTUnwrap(ScrapedHistogram.find("batch", in: Self.metricsAfter))
        let d = after.since(before)
        // 4 batches holding 28 questions: sizes 2, 4, 8+... as the buckets say.
        XCTAssertEqual(d.count, 4)
        XCTAssertEqual(d.sum, 28)
        XCTAssertEqual(d.mean, 7)
        XCTAssertEqual(d.buckets[1], 0)
        XCTAssertEqual(d.buckets[2], 1)
        XCTAssertEqual(d.buckets[8], 4)
        XCTAssertEqual(d.quantileBound(0.5), 4)
        XCTAssertEqual(d.quantileBound(1), 8)
        XCTAssertNil(ScrapedHistogram.find("batch", in: "kbindex_http_requests_total 3\n"))
    }

    func testHistogramSeriesWithLabelsAreSummed() throws {
        let text = """
            kbindex_search_batch_size_bucket{index="a",le="1"} 2
            kbindex_search_batch_size_bucket{index="b",le="1"} 3
            kbindex_search_batch_size_bucket{index="a",le="+Inf"} 2
            kbindex_search_batch_size_bucket{index="b",le="+Inf"} 5
            kbindex_search_batch_size_sum{index="a"} 2
            kbindex_search_batch_size_sum{index="b"} 9
            kbindex_search_batch_size_count{index="a"} 2
            kbindex_search_batch_size_count{index="b"} 5
            """
        let h = try XCTUnwrap(ScrapedHistogram.find("batch", in: text))
        XCTAssertEqual(h.count, 7)
        XCTAssertEqual(h.sum, 11)
        XCTAssertEqual(h.buckets[1], 5)
        XCTAssertEqual(h.quantileBound(1), .infinity)
    }

    // MARK: - The HTTP/1.1 client, against a scripted server

    func testContentLengthChunkedAndKeepAliveOnOneConnection() throws {
        let server = try ScriptedServer(responses: [
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"hits\":[]}",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
        ])
        let c = try HTTPConnection(host: "127.0.0.1", port: server.port, timeoutSeconds: 10)
        let a = try c.request("POST", "/v1/search", body: Array(#"{"query":"q","k":10}"#.utf8))
        XCTAssertEqual(a.status, 200)
        XCTAssertEqual(a.text, #"{"hits":[]}"#)
        let b = try c.request("GET", "/metrics")
        XCTAssertEqual(b.text, "abcdefg")
        let n = try c.request("GET", "/nothing")
        XCTAssertEqual(n.status, 404)
        XCTAssertEqual(n.text, "{}")
        XCTAssertEqual(server.connections, 1)
        // The request the server got: method, path, length and the body itself.
        let first = try XCTUnwrap(server.requests.first)
        XCTAssertTrue(first.hasPrefix("POST /v1/search HTTP/1.1\r\n"), first)
        XCTAssertTrue(first.contains("Content-Length: 20\r\n"), first)
        XCTAssertTrue(first.hasSuffix(#"{"query":"q","k":10}"#), first)
    }

    func testReconnectsAfterConnectionCloseAndAfterAnIdleClose() throws {
        let server = try ScriptedServer(responses: [
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",  // then the server drops the connection unannounced
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain",
        ], closeAfter: [0, 1])
        let c = try HTTPConnection(host: "127.0.0.1", port: server.port, timeoutSeconds: 10)
        XCTAssertEqual(try c.request("GET", "/a").status, 503)
        XCTAssertEqual(try c.request("GET", "/b").text, "ok")
        usleep(100_000)  // the server has closed it by now
        XCTAssertEqual(try c.request("GET", "/c").text, "again")
        XCTAssertEqual(server.connections, 3)
        XCTAssertEqual(server.requests.count, 3)  // the idle close cost no request twice
    }

    func testAnswerCutShortIsAnErrorNotARetry() throws {
        // A retry would get the second answer and hide the failure.
        let server = try ScriptedServer(responses: ["HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ntoo short",
                                                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"], closeAfter: [0])
        let c = try HTTPConnection(host: "127.0.0.1", port: server.port, timeoutSeconds: 10)
        XCTAssertThrowsError(try c.request("GET", "/x"))
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertEqual(try c.request("GET", "/y").text, "ok")  // and the next request goes on a new connection
    }

    func testGroupedNumbers() {
        XCTAssertEqual(grouped(0), "0")
        XCTAssertEqual(grouped(999), "999")
        XCTAssertEqual(grouped(1000), "1,000")
        XCTAssertEqual(grouped(1_000_000), "1,000,000")
        XCTAssertEqual(grouped(-20_000), "-20,000")
    }
}

/// A loopback server that answers the n-th request it reads with `responses[n]`, closing the
/// connection afterwards when n is in `closeAfter`. One connection at a time, on a thread.
final class ScriptedServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var _requests: [String] = []
    private var _connections = 0
    var requests: [String] { lock.lock(); defer { lock.unlock() }; return _requests }
    var connections: Int { lock.lock(); defer { lock.unlock() }; return _connections }

    init(responses: [String], closeAfter: Set<Int> = []) throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(sock, p, len) == 0 && listen(sock, 8) == 0 && getsockname(sock, p, &len) == 0
            }
        }
        guard ok else {
            close(sock)
            throw HTTPConnection.Failure(description: "cannot listen: \(String(cString: strerror(errno)))")
        }
        listener = sock
        port = Int(UInt16(bigEndian: addr.sin_port))
        let listenFD = listener
        Thread { [self] in
            var n = 0
            while n < responses.count {
                let fd = accept(listenFD, nil, nil)
                guard fd >= 0 else { return }
                lock.lock(); _connections += 1; lock.unlock()
                var buffer: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                connection: while n < responses.count {
                    // One request: headers, then Content-Length bytes of body.
                    var end: Int? = nil
                    while true {
                        if let r = Self.find([13, 10, 13, 10], in: buffer) {
                            let head = String(decoding: buffer[..<r], as: UTF8.self).lowercased()
                            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                            if buffer.count >= r + 4 + length { end = r + 4 + length; break }
                        }
                        let got = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                        if got <= 0 { break connection }
                        buffer += chunk[0..<got]
                    }
                    guard let end else { break }
                    lock.lock(); _requests.append(String(decoding: buffer[..<end], as: UTF8.self)); lock.unlock()
                    buffer.removeSubrange(..<end)
                    // Written in two parts, so the client must reassemble.
                    let out = Array(responses[n].utf8), half = out.count / 2
                    _ = out[..<half].withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                    usleep(2_000)
                    _ = out[half...].withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                    n += 1
                    if closeAfter.contains(n - 1) { break }
                }
                close(fd)
            }
            close(listenFD)
        }.start()
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<i + needle.count].elementsEqual(needle) { return i }
        return nil
    }
}
