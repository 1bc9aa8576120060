// A minimal HTTP/1.1 server for tests: POSIX sockets on 127.0.0.1, an ephemeral port,
// one background thread answering requests one after another from a route table.
// It never reaches beyond the loopback interface.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import KBCore

/// A tiny HTTP server bound to `127.0.0.1:<ephemeral port>`, for tests.
///
/// ```swift
/// let server = try LocalHTTPServer(routes: ["/hello": .init(body: Data("hi".utf8))])
/// defer { server.stop() }
/// let url = server.url("/hello")
/// ```
///
/// Requests are handled sequentially (one connection at a time, `Connection: close`).
/// Unknown paths get 404. Routes can be replaced while the server runs, and each path's
/// request count is recorded. The server stops on `stop()` or when released.
public final class LocalHTTPServer: @unchecked Sendable {
    /// One canned answer.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data
        /// When set, the server announces the full `Content-Length` but closes the
        /// connection after sending this many body bytes (an interrupted transfer).
        public var cutAfter: Int?
        /// When set, the server sends `afterBytes` body bytes, then sends nothing for
        /// `seconds` (a stalled transfer) before going on; a client that hangs up during
        /// the stall ends it early and is counted in `stallsAbandoned`. Blocks the server
        /// meanwhile.
        public var stall: (afterBytes: Int, seconds: Double)?

        public init(
            status: Int = 200, headers: [(String, String)] = [], body: Data = Data(), cutAfter: Int? = nil,
            stall: (afterBytes: Int, seconds: Double)? = nil
        ) {
            self.status = status
            self.headers = headers
            self.body = body
            self.cutAfter = cutAfter
            self.stall = stall
        }

        /// A `302 Found` pointing at `location` (a path on this server or a full URL),
        /// with extra headers on the redirect itself.
        public static func redirect(to location: String, headers: [(String, String)] = []) -> Response {
            Response(status: 302, headers: [("Location", location)] + headers)
        }
    }

    /// The port the server listens on (chosen by the kernel).
    public let port: UInt16

    private let listenFD: Int32
    private let lock = NSLock()
    private var routes: [String: Response]
    private var counts: [String: Int] = [:]
    private var abandoned = 0
    private var stopped = false
    private let finished = DispatchSemaphore(value: 0)

    /// Starts serving `routes` (keyed by path, without query string).
    public init(routes: [String: Response] = [:]) throws {
        self.routes = routes
        (listenFD, port) = try LoopbackSocket.listen(backlog: 16)
        let thread = Thread { [self] in self.serve() }
        thread.name = "LocalHTTPServer:\(port)"
        thread.start()
    }

    deinit {
        stop()
    }

    /// `http://127.0.0.1:PORT`.
    public var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// `http://127.0.0.1:PORT/path`.
    public func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    /// Replaces (or adds) the answer for `path`.
    public func setRoute(_ path: String, _ response: Response?) {
        lock.withLock { routes[path] = response }
    }

    /// How many requests arrived for `path` so far.
    public func requestCount(_ path: String) -> Int {
        lock.withLock { counts[path, default: 0] }
    }

    /// All request counts, by path.
    public var requestCounts: [String: Int] { lock.withLock { counts } }

    /// Stops accepting, waits for the serving thread to finish (at most 5 s), closes
    /// the socket. Safe to call more than once.
    public func stop() {
        let first: Bool = lock.withLock {
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        _ = finished.wait(timeout: .now() + 5)
        close(listenFD)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func serve() {
        defer { finished.signal() }
        while !isStopped {
            var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 50)
            if ready <= 0 { continue }
            let conn = accept(listenFD, nil, nil)
            if conn < 0 { continue }
            handle(conn)
            close(conn)
        }
    }

    /// Reads one request (headers only, at most 64 KiB, 5 s) and answers it.
    private func handle(_ conn: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while request.count < 65536 {
            let n = recv(conn, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request += buffer[0..<n]
            if request.count >= 4, (0...(request.count - 4)).contains(where: { Array(request[$0..<$0 + 4]) == end }) { break }
        }
        let text = String(decoding: request, as: UTF8.self)
        let requestLine = text.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        guard parts.count >= 2 else { return }
        let method = String(parts[0])
        var path = String(parts[1])
        if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }

        let response: Response = lock.withLock {
            counts[path, default: 0] += 1
            return routes[path] ?? Response(status: 404, body: Data("Entry not found".utf8))
        }
        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        guard sendAll(conn, Array(head.utf8)) else { return }
        if method == "HEAD" { return }
        let count = min(response.cutAfter ?? response.body.count, response.body.count)
        var sent = 0
        if let stall = response.stall, stall.afterBytes < count {
            guard sendAll(conn, Array(response.body.prefix(stall.afterBytes))) else { return }
            sent = stall.afterBytes
            if waitForHangUp(conn, seconds: stall.seconds) {
                lock.withLock { abandoned += 1 }
                return
            }
        }
        _ = sendAll(conn, Array(response.body[sent..<count]))
        // With cutAfter the connection is closed here, short of Content-Length.
    }

    /// Waits up to `seconds` for the client to close `conn` (or for `stop()`); true when the
    /// client hung up. Anything the client sends meanwhile is read and dropped.
    private func waitForHangUp(_ conn: Int32, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 512)
        while Date() < deadline && !isStopped {
            var p = pollfd(fd: conn, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = recv(conn, &buffer, buffer.count, 0)
            if n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN) { return true }
        }
        return false
    }

    /// How many stalled transfers the client abandoned before the stall ended.
    public var stallsAbandoned: Int { lock.withLock { abandoned } }

    private func sendAll(_ conn: Int32, _ bytes: [UInt8]) -> Bool { LoopbackSocket.sendAll(conn, bytes) }

    private static func reason(_ status: Int) -> String { LoopbackSocket.reason(status) }
}

/// A fake Hugging Face hub for tests, in the hub's URL layout
/// (`/OWNER/REPO/resolve/main/FILE`).
///
/// Files listed in `lfs` are answered like the hub answers LFS files: a 302 carrying
/// `X-Linked-Etag` (the SHA-256) and `X-Linked-Size`, to `/cdn/...` which serves the bytes
/// with an unrelated ETag. Other files are answered directly with `ETag` = git blob SHA-1.
public enum FakeHub {
    /// The route table for `repo` serving `files` (path in repo → bytes).
    public static func routes(repo: String, files: [String: Data], lfs: Set<String> = []) -> [String: LocalHTTPServer.Response] {
        var table: [String: LocalHTTPServer.Response] = [:]
        for (name, data) in files {
            table[resolvePath(repo: repo, file: name)] = response(repo: repo, file: name, data: data, lfs: lfs.contains(name))
            if lfs.contains(name) {
                table[cdnPath(repo: repo, file: name)] = .init(headers: [("ETag", "\"cdn-\(data.count)\"")], body: data)
            }
        }
        return table
    }

    /// The hub-side answer for one file (the 302 for LFS files, the body otherwise).
    public static func response(repo: String, file: String, data: Data, lfs: Bool) -> LocalHTTPServer.Response {
        if lfs {
            let sha = Hashing.sha256Hex(data)
            return .redirect(to: cdnPath(repo: repo, file: file), headers: [
                ("X-Linked-Etag", "\"\(sha)\""), ("X-Linked-Size", "\(data.count)"), ("ETag", "\"\(sha)\""),
            ])
        }
        let sha1 = data.withUnsafeBytes { Hashing.gitBlobSHA1Hex($0) }
        return .init(headers: [("ETag", "\"\(sha1)\"")], body: data)
    }

    /// `/REPO/resolve/main/FILE`.
    public static func resolvePath(repo: String, file: String) -> String { "/\(repo)/resolve/main/\(file)" }

    /// Where LFS files redirect to.
    public static func cdnPath(repo: String, file: String) -> String { "/cdn/\(repo)/\(file)" }
}

/// A listening TCP socket on 127.0.0.1 at a port the kernel picks: what the test servers
/// (`LocalHTTPServer`, `ThreadedHTTPServer`) accept connections on.
enum LoopbackSocket {
    /// The socket and its port. Throws `FileError` when the socket cannot be made or bound.
    static func listen(backlog: Int32) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FileError(path: "127.0.0.1", operation: "socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            close(fd)
            throw FileError(path: "127.0.0.1:0", operation: "bind/listen", code: e)
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else {
            let e = errno
            close(fd)
            throw FileError(path: "127.0.0.1", operation: "getsockname", code: e)
        }
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    /// Writes all of `bytes` to `conn` (retrying after EINTR, no SIGPIPE); false when the
    /// peer is gone.
    static func sendAll(_ conn: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            done += n
        }
        return true
    }

    /// The reason phrase of a status line.
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 307: return "Temporary Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}
