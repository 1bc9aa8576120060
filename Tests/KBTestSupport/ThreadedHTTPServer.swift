// An HTTP/1.1 server for tests that answers from a closure, one thread per connection, so
// that several requests can be in flight at once; it reads request bodies (POST) and can
// misbehave on purpose (hang, cut the answer, reset the connection). 127.0.0.1 only.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import KBCore

/// A tiny concurrent HTTP server bound to `127.0.0.1:<ephemeral port>`, for tests.
///
/// ```swift
/// let server = try ThreadedHTTPServer { request in
///     .respond(status: 200, body: request.body)      // echo
/// }
/// defer { server.stop() }
/// ```
///
/// Every connection carries one request (`Connection: close`). The handler runs on the
/// connection's thread and may block (to hold requests in flight). Requests are recorded in
/// arrival order; `maxInFlight` is the most requests being handled at once.
public final class ThreadedHTTPServer: @unchecked Sendable {
    /// One request as it arrived.
    public struct Request: Sendable {
        public let method: String
        /// The path, without the query string.
        public let path: String
        /// The request target as sent (path and query).
        public let target: String
        public let headers: [(name: String, value: String)]
        public let body: Data

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// What to do with a request.
    public enum Action: Sendable {
        /// Answer with this status, headers and body (`Content-Length` and `Connection: close` are added).
        case respond(status: Int, headers: [(String, String)] = [], body: Data = Data())
        /// Announce the whole body's length, send `after` bytes of it, then close: a dropped connection.
        case cut(status: Int, headers: [(String, String)] = [], body: Data, after: Int)
        /// Send nothing until the client hangs up, `stop()`, or `seconds` pass (then close): a stuck server.
        case hang(seconds: Double)
        /// Close at once with a TCP reset, nothing sent.
        case reset
    }

    /// The port the server listens on (chosen by the kernel).
    public let port: UInt16

    private let listenFD: Int32
    private let handler: @Sendable (Request) -> Action
    private let lock = NSLock()
    private var log: [Request] = []
    private var inFlight = 0
    private var maxSeen = 0
    private var connections = 0
    private var stopped = false
    private let acceptDone = DispatchSemaphore(value: 0)

    /// Starts serving; `handler` decides every answer.
    public init(handler: @escaping @Sendable (Request) -> Action) throws {
        self.handler = handler
        (listenFD, port) = try LoopbackSocket.listen(backlog: 64)
        let thread = Thread { [self] in self.acceptLoop() }
        thread.name = "ThreadedHTTPServer:\(port)"
        thread.start()
    }

    deinit {
        stop()
    }

    /// `http://127.0.0.1:PORT`.
    public var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// `http://127.0.0.1:PORT/path`.
    public func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Every request so far, in arrival order.
    public var requests: [Request] { lock.withLock { log } }

    /// The most requests handled at the same time so far.
    public var maxInFlight: Int { lock.withLock { maxSeen } }

    /// Requests being handled now.
    public var currentInFlight: Int { lock.withLock { inFlight } }

    /// Stops accepting, waits (at most 5 s) for the connection threads to end, closes the socket.
    /// Safe to call more than once.
    public func stop() {
        let first: Bool = lock.withLock {
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        _ = acceptDone.wait(timeout: .now() + 5)
        let deadline = Date().addingTimeInterval(5)
        while lock.withLock({ connections > 0 }) && Date() < deadline { usleep(10_000) }
        close(listenFD)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        defer { acceptDone.signal() }
        while !isStopped {
            var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 50) <= 0 { continue }
            let conn = accept(listenFD, nil, nil)
            if conn < 0 { continue }
            lock.withLock { connections += 1 }
            let thread = Thread { [self] in
                self.handle(conn)
                close(conn)
                self.lock.withLock { self.connections -= 1 }
            }
            thread.start()
        }
    }

    /// Reads one request (headers at most 64 KiB, a body of `Content-Length` at most 64 MiB,
    /// 10 s without a byte ends it) and answers it.
    private func handle(_ conn: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int? = nil
        while headerEnd == nil {
            guard data.count < 65536 else { return }
            let n = recv(conn, &buffer, buffer.count, 0)
            if n <= 0 { return }
            let from = max(0, data.count - 3)
            data += buffer[0..<n]
            if data.count >= 4 {
                for k in from...(data.count - 4) where data[k] == 13 && data[k + 1] == 10 && data[k + 2] == 13 && data[k + 3] == 10 {
                    headerEnd = k
                    break
                }
            }
        }
        let head = String(decoding: data[0..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                            String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        let length = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
        guard length <= 64 << 20 else { return }
        var body = Array(data[(headerEnd! + 4)...])
        while body.count < length {
            let n = recv(conn, &buffer, min(buffer.count, length - body.count), 0)
            if n <= 0 { return }
            body += buffer[0..<n]
        }
        let target = String(requestLine[1])
        let path = target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
        let request = Request(method: String(requestLine[0]), path: path, target: target, headers: headers, body: Data(body.prefix(length)))
        lock.withLock {
            log.append(request)
            inFlight += 1
            maxSeen = max(maxSeen, inFlight)
        }
        defer { lock.withLock { inFlight -= 1 } }

        switch handler(request) {
        case let .respond(status, headers, body):
            _ = sendAll(conn, Self.head(status, headers, length: body.count) + Array(body))
        case let .cut(status, headers, body, after):
            _ = sendAll(conn, Self.head(status, headers, length: body.count) + Array(body.prefix(after)))
        case let .hang(seconds):
            let deadline = Date().addingTimeInterval(seconds)
            var scratch = [UInt8](repeating: 0, count: 512)
            while Date() < deadline && !isStopped {
                var p = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 50) > 0 else { continue }
                let n = recv(conn, &scratch, scratch.count, 0)
                if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return }
            }
        case .reset:
            var lg = linger(l_onoff: 1, l_linger: 0)
            setsockopt(conn, SOL_SOCKET, SO_LINGER, &lg, socklen_t(MemoryLayout<linger>.size))
        }
    }

    private static func head(_ status: Int, _ headers: [(String, String)], length: Int) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(length)\r\nConnection: close\r\n\r\n"
        return Array(text.utf8)
    }

    private func sendAll(_ conn: Int32, _ bytes: [UInt8]) -> Bool { LoopbackSocket.sendAll(conn, bytes) }

    private static func reason(_ status: Int) -> String { LoopbackSocket.reason(status) }
}
