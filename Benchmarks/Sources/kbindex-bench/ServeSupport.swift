import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client over one keep-alive TCP connection, for load tests.
///
/// Each client of the load test owns one, on its own thread: a blocking socket costs no
/// allocation or scheduling beyond the request itself, so the latency measured is the
/// server's plus loopback, not a client framework's. Reads `Content-Length` and `chunked`
/// bodies; reconnects when the server closed the connection. Not thread-safe.
final class HTTPConnection {
    struct Response {
        var status: Int
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// The connection was found closed before the server saw the request (an idle
        /// keep-alive connection it dropped): sending again on a new one is safe.
        var retryable = false
    }

    let host: String
    let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var position = 0
    private let readChunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    /// Connects now (so a load test's clock does not include connecting). Throws `Failure`.
    init(host: String, port: Int, timeoutSeconds: Int = 120) throws {
        self.host = host
        self.port = port
        self.timeoutSeconds = timeoutSeconds
        try connect()
    }

    private let timeoutSeconds: Int

    deinit {
        if fd >= 0 { close(fd) }
        readChunk.deallocate()
    }

    private func connect() throws {
        disconnect()
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw Failure(description: "not an IPv4 address: \(host)") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            fd = -1
            throw Failure(description: "cannot connect to \(host):\(port): \(why)")
        }
    }

    /// Sends one request and reads its response. On a connection the server closed between
    /// requests (a keep-alive timeout), reconnects and sends it once more. Throws `Failure`.
    func request(_ method: String, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json") throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: kbindex-bench\r\nAccept: */*\r\n"
        if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (body ?? [])
        do {
            do {
                if fd < 0 { try connect() }
                return try exchange(bytes)
            } catch let e as Failure where e.retryable {
                try connect()
                return try exchange(bytes)
            }
        } catch {
            // The connection is in an unknown state (half an answer read): the next request
            // starts on a new one.
            disconnect()
            throw error
        }
    }

    private func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
        buffer.removeAll(keepingCapacity: true)
        position = 0
    }

    private func exchange(_ bytes: [UInt8]) throws -> Response {
        try bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw Failure(description: "closed while sending: \(String(cString: strerror(errno)))", retryable: true) }
                sent += n
            }
        }
        // Status line and headers.
        var headerLines: [String] = []
        while true {
            let line = try readLine(first: headerLines.isEmpty)
            if line.isEmpty { break }
            headerLines.append(line)
        }
        let statusParts = headerLines[0].split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw Failure(description: "not an HTTP response: \(headerLines[0].prefix(80))")
        }
        var length: Int? = nil, chunked = false, closeAfter = false
        for h in headerLines.dropFirst() {
            guard let colon = h.firstIndex(of: ":") else { continue }
            let name = h[..<colon].lowercased(), value = h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            switch name {
            case "content-length": length = Int(value)
            case "transfer-encoding": chunked = value.contains("chunked")
            case "connection": closeAfter = value.contains("close")
            default: break
            }
        }
        var body: [UInt8] = []
        if chunked {
            while true {
                let sizeLine = try readLine(first: false)
                guard let size = Int(sizeLine.split(separator: ";").first.map(String.init) ?? "", radix: 16) else {
                    throw Failure(description: "bad chunk size \(sizeLine.prefix(20))")
                }
                if size == 0 {
                    while try !readLine(first: false).isEmpty {}  // trailers
                    break
                }
                body += try read(size)
                _ = try readLine(first: false)
            }
        } else if let length {
            body = try read(length)
        } else if status >= 200 && status != 204 && status != 304 {
            // No length: the body ends when the server closes the connection.
            while let more = try fill(allowEOF: true), more > 0 {}
            body = Array(buffer[position...])
            position = buffer.count
            closeAfter = true
        }
        if closeAfter { disconnect() }
        return Response(status: status, body: body)
    }

    /// Reads more bytes into `buffer`; returns how many (0 at EOF when `allowEOF`).
    @discardableResult
    private func fill(allowEOF: Bool = false) throws -> Int? {
        if position > 0 && position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        }
        while true {
            let n = recv(fd, readChunk.baseAddress!, readChunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw Failure(description: "timed out after \(timeoutSeconds) s waiting for the server") }
            if n < 0 { throw Failure(description: "closed: \(String(cString: strerror(errno)))") }
            if n == 0 {
                if allowEOF { return 0 }
                throw Failure(description: "closed by the server")
            }
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: readChunk[0..<n]))
            return n
        }
    }

    private func readLine(first: Bool) throws -> String {
        while true {
            if let nl = buffer[position...].firstIndex(of: 0x0A) {
                var end = nl
                if end > position && buffer[end - 1] == 0x0D { end -= 1 }
                let line = String(decoding: buffer[position..<end], as: UTF8.self)
                position = nl + 1
                return line
            }
            if first && buffer.count == position {
                // EOF before any byte of a response: the server closed an idle connection.
                guard try fill(allowEOF: true) != 0 else { throw Failure(description: "closed by the server before answering", retryable: true) }
            } else {
                try fill()
            }
        }
    }

    private func read(_ count: Int) throws -> [UInt8] {
        while buffer.count - position < count { try fill() }
        let out = Array(buffer[position..<position + count])
        position += count
        return out
    }
}

/// A `kbindex serve` (or any) process started with its standard output and error on a pipe,
/// read by a thread of its own so a chatty server never blocks on a full pipe.
final class ServerProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial: [UInt8] = []
    private var eof = false
    private let changed = DispatchSemaphore(value: 0)
    private var exitStatus: Int32?

    /// Starts `exe` with `args`. Throws `HTTPConnection.Failure` when it cannot.
    init(_ exe: String, _ args: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw HTTPConnection.Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw HTTPConnection.Failure(description: "cannot start \(exe): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        let readFD = fds[0]
        let reader = Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { Glibc.read(readFD, $0.baseAddress!, $0.count) }
                if n < 0 && errno == EINTR { continue }
                lock.lock()
                if n <= 0 {
                    if !partial.isEmpty { lines.append(String(decoding: partial, as: UTF8.self)) }
                    partial = []
                    eof = true
                } else {
                    partial += chunk[0..<n]
                    while let nl = partial.firstIndex(of: 0x0A) {
                        lines.append(String(decoding: partial[..<nl], as: UTF8.self))
                        partial.removeSubrange(...nl)
                    }
                    if lines.count > 2000 { lines.removeFirst(lines.count - 1000) }
                }
                lock.unlock()
                changed.signal()
                if n <= 0 { break }
            }
            close(readFD)
        }
        reader.start()
    }

    /// Everything the process printed so far (the last 1,000 lines at most).
    var output: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }

    /// Waits up to `timeout` seconds for a line that `match` accepts; returns it, or nil when
    /// the process ended or the time ran out.
    func waitForLine(timeout: Double, _ match: (String) -> Bool) -> String? {
        let deadline = now() + timeout
        var checked = 0
        while true {
            lock.lock()
            let snapshot = lines, ended = eof
            lock.unlock()
            // `lines` may have been trimmed; re-scan from the start then.
            if checked > snapshot.count { checked = 0 }
            if let hit = snapshot[checked...].first(where: match) { return hit }
            checked = snapshot.count
            if ended || now() > deadline || hasExited() { return nil }
            _ = changed.wait(timeout: .now() + 0.2)
        }
    }

    /// Whether the process has ended (reaps it once).
    func hasExited() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if exitStatus != nil { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return true
        }
        return false
    }

    /// Whether the process ends within `timeout` seconds.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = now() + timeout
        while !hasExited() {
            if now() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Sends SIGTERM and waits up to `grace` seconds for the exit status (then SIGKILL).
    /// Returns the exit status (128 + signal when killed by one).
    @discardableResult
    func terminate(grace: Double = 30) -> Int32 {
        if !hasExited() { kill(pid, SIGTERM) }
        let deadline = now() + grace
        while !hasExited() {
            if now() > deadline {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                lock.lock()
                exitStatus = 128 + SIGKILL
                lock.unlock()
                break
            }
            usleep(20_000)
        }
        lock.lock()
        defer { lock.unlock() }
        return exitStatus ?? -1
    }

    /// Resident memory now (VmRSS) and at peak (VmHWM), in bytes; nil after the process ended.
    func memory() -> (rss: Int, peak: Int)? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        var rss = 0, peak = 0
        for line in status.split(separator: "\n") {
            let kb = { line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0 }
            if line.hasPrefix("VmRSS:") { rss = kb() * 1024 }
            if line.hasPrefix("VmHWM:") { peak = kb() * 1024 }
        }
        return rss == 0 ? nil : (rss, peak)
    }
}

/// Prometheus text exposition (version 0.0.4), reduced to what the load test reads.
enum PrometheusText {
    /// Every sample as (metric name, labels text without braces, value). Comments, blank and
    /// malformed lines are skipped. O(text length).
    static func samples(_ text: String) -> [(name: String, labels: String, value: Double)] {
        var out: [(String, String, Double)] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var name = Substring(line), labels = Substring(""), rest = Substring("")
            if let brace = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"), brace < close {
                name = line[..<brace]
                labels = line[line.index(after: brace)..<close]
                rest = line[line.index(after: close)...]
            } else if let space = line.firstIndex(of: " ") {
                name = line[..<space]
                rest = line[space...]
            } else { continue }
            guard let valueText = rest.split(separator: " ").first else { continue }
            let value: Double? = switch valueText {
            case "+Inf": .infinity
            case "-Inf": -.infinity
            case "NaN": .nan
            default: Double(valueText)
            }
            if let value { out.append((String(name), String(labels), value)) }
        }
        return out
    }

    /// The value of label `key` in a labels text like `le="0.5",index="docs"`.
    static func label(_ key: String, in labels: String) -> String? {
        guard let r = labels.range(of: "\(key)=\"") else { return nil }
        let tail = labels[r.upperBound...]
        guard let end = tail.firstIndex(of: "\"") else { return nil }
        return String(tail[..<end])
    }
}

/// A histogram scraped from /metrics: its buckets' cumulative counts (summed over label sets),
/// sum and count.
struct ScrapedHistogram {
    var name: String
    var buckets: [Double: Double]  // upper bound -> cumulative count
    var sum: Double
    var count: Double

    /// The histogram in `text` whose base name contains `fragment` (preferring one that also
    /// contains "size"), or nil when there is none.
    static func find(_ fragment: String, in text: String) -> ScrapedHistogram? {
        let samples = PrometheusText.samples(text)
        let bases = Set(samples.compactMap { s -> String? in
            guard s.name.hasSuffix("_count") else { return nil }
            let base = String(s.name.dropLast("_count".count))
            return base.lowercased().contains(fragment) ? base : nil
        }).filter { base in samples.contains { $0.name == base + "_sum" } }
        guard let base = bases.sorted(by: { ($0.contains("size") ? 0 : 1, $0) < ($1.contains("size") ? 0 : 1, $1) }).first else { return nil }
        var h = ScrapedHistogram(name: base, buckets: [:], sum: 0, count: 0)
        for s in samples {
            if s.name == base + "_sum" { h.sum += s.value }
            if s.name == base + "_count" { h.count += s.value }
            if s.name == base + "_bucket", let le = PrometheusText.label("le", in: s.labels),
               let bound = le == "+Inf" ? Double.infinity : Double(le) {
                h.buckets[bound, default: 0] += s.value
            }
        }
        return h
    }

    /// What happened between `before` and `self` (nil before: everything since start).
    func since(_ before: ScrapedHistogram?) -> ScrapedHistogram {
        guard let before else { return self }
        var d = self
        d.sum -= before.sum
        d.count -= before.count
        // A bound the earlier scrape lacked counts from the nearest lower bound it had
        // (buckets are cumulative, so that is what had been observed below it).
        let earlier = before.buckets.keys.sorted()
        for b in buckets.keys {
            let c = before.buckets[b] ?? earlier.last(where: { $0 < b }).map { before.buckets[$0]! } ?? 0
            d.buckets[b] = buckets[b]! - c
        }
        return d
    }

    /// The upper bound of the bucket holding the q-th quantile (0…1), nil without buckets.
    func quantileBound(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        for b in buckets.keys.sorted() where buckets[b]! >= q * count { return b }
        return nil
    }

    var mean: Double? { count > 0 ? sum / count : nil }
}
