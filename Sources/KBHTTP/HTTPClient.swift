// A small blocking HTTP client over libcurl: enough to download model files.
//
// Each call runs one curl easy handle on the calling thread. Redirects are followed and
// the headers of every hop are kept; bodies are streamed to a file descriptor (downloads)
// or collected up to a limit (get). Proxies come from the environment (HTTPS_PROXY,
// https_proxy, NO_PROXY, ...) exactly as libcurl reads them by default.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CCurl
import Foundation
import KBCore

/// `curl_global_init` runs once per process, on first use (a global `let` is initialized
/// lazily and atomically).
private let curlGlobalInitResult: UInt32 = kb_curl_global_init_default().rawValue

/// A blocking HTTP(S) client over libcurl.
///
/// ```swift
/// let client = HTTPClient()
/// let response = try client.download(url: url, to: "/tmp/model.safetensors.part")
/// print(response.firstHeader("X-Linked-Etag") ?? "no etag")
/// ```
///
/// Calls are independent and may run on several threads at once.
public struct HTTPClient: Sendable {
    /// Seconds allowed to establish the TCP (and TLS) connection.
    public var connectTimeout: Int
    /// A transfer slower than `lowSpeedLimit` bytes/second for this many seconds is
    /// aborted as stalled.
    public var lowSpeedTime: Int
    /// See `lowSpeedTime`.
    public var lowSpeedLimit: Int
    /// How many redirects to follow before giving up.
    public var maxRedirects: Int
    /// Sent as `User-Agent`.
    public var userAgent: String

    /// Creates a client. The defaults suit a 90 MB download over a slow link: 30 s to
    /// connect, abort when less than 1 byte/s arrives for 60 s.
    public init(
        connectTimeout: Int = 30,
        lowSpeedTime: Int = 60,
        lowSpeedLimit: Int = 1,
        maxRedirects: Int = 10,
        userAgent: String = "kbindex/0.1 (libcurl)"
    ) {
        self.connectTimeout = connectTimeout
        self.lowSpeedTime = lowSpeedTime
        self.lowSpeedLimit = lowSpeedLimit
        self.maxRedirects = maxRedirects
        self.userAgent = userAgent
    }

    /// Downloads `url` into the file at `path` (created or truncated), streaming the body
    /// so that memory use does not depend on its size.
    ///
    /// - Parameters:
    ///   - expectedSize: when given, a body of any other length is an error.
    ///   - progress: called after each received chunk with the bytes so far and the total
    ///     (`expectedSize`, else the final hop's `Content-Length`, else nil).
    /// - Returns: the response, with the headers of every redirect hop.
    /// - Throws: `HTTPError`; `.status` for a final status of 300 or more, `.interrupted`
    ///   when the body is shorter than announced. On any error the file is removed, so a
    ///   short file is never left behind looking like a success.
    @discardableResult
    public func download(
        url: URL,
        to path: String,
        expectedSize: Int64? = nil,
        progress: ((_ received: Int64, _ total: Int64?) -> Void)? = nil
    ) throws -> HTTPResponse {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HTTPError.file(FileError(path: path, operation: "cannot create").description) }
        let ctx = TransferContext(sink: .file(fd, path), expectedSize: expectedSize, progress: progress)
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        let response = try perform(url: url, ctx: ctx)
        guard (200..<300).contains(response.status) else {
            throw HTTPError.status(response.status, url: response.url)
        }
        if let expectedSize, response.bodyBytes != expectedSize {
            throw HTTPError.interrupted(
                bytes: response.bodyBytes, url: response.url,
                detail: "expected \(expectedSize) bytes")
        }
        ok = true
        return response
    }

    /// Fetches a small body into memory. Does not throw for HTTP error statuses: the
    /// caller reads `status` (4xx and 5xx bodies are returned too; redirect bodies are not).
    ///
    /// - Parameter limit: the largest body accepted, in bytes (default 16 MiB).
    /// - Throws: `HTTPError` for transport failures and bodies over `limit`.
    public func get(url: URL, limit: Int = 16 << 20) throws -> (status: Int, headers: HTTPHeaders, body: Data) {
        let ctx = TransferContext(sink: .memory(limit: limit), expectedSize: nil, progress: nil)
        let response = try perform(url: url, ctx: ctx)
        return (response.status, response.headers, ctx.body)
    }

    /// Sends `body` with POST and collects the answer in memory, for small JSON APIs.
    /// Redirects are not followed (a 3xx comes back as the status, with its `Location`), so
    /// the body and the request headers never travel to a host the caller did not name.
    /// Does not throw for HTTP error statuses: the caller reads `status`, and the body of
    /// any status (a 4xx or 5xx body usually says why).
    ///
    /// - Parameters:
    ///   - headers: request headers, sent as given (`Content-Type`, `Authorization`, ...);
    ///     `User-Agent` is `userAgent` unless given here. `Expect: 100-continue` is never sent.
    ///   - timeout: seconds the whole request may take, connecting included (nil: no total
    ///     limit, only `connectTimeout` and the low-speed abort). With a timeout the low-speed
    ///     abort is off: a server may think longer than `lowSpeedTime` before its first byte.
    ///   - limit: the largest body accepted, in bytes (default 16 MiB).
    /// - Throws: `HTTPError`: `.couldNotConnect` when no connection was made (refused,
    ///   unresolvable, TLS handshake), `.tlsCertificate` when the server's certificate was
    ///   refused, `.invalidRequest` for a header value with a line break, `.timedOut` when the
    ///   request was sent but no complete answer came
    ///   within `timeout`, `.interrupted` when the connection dropped before the answer was
    ///   complete, `.bodyTooLarge` over `limit`, `.transport` for anything else.
    /// - Complexity: one request, O(body + answer) memory.
    public func post(
        url: URL, headers: [(name: String, value: String)] = [], body: Data, timeout: Double? = nil, limit: Int = 16 << 20
    ) throws -> (status: Int, headers: HTTPHeaders, body: Data) {
        let ctx = TransferContext(sink: .memory(limit: limit), expectedSize: nil, progress: nil)
        let request = Request(method: .post(body), headers: headers, timeout: timeout, followRedirects: false)
        let response = try perform(url: url, ctx: ctx, request: request)
        return (response.status, response.headers, ctx.body)
    }

    /// Sends one request of any method (`HTTPRequest`): a body from memory or streamed from a
    /// file, the answer into memory or a file, optionally signed with AWS Signature V4 by
    /// libcurl. Does not throw for HTTP error statuses: the caller reads `status` and the body.
    ///
    /// - Throws: `HTTPError` for transport failures (as `post` describes), `.bodyTooLarge`
    ///   over a memory sink's limit, `.file` when the response file cannot be written or the
    ///   request body's file cannot be read, `.invalidRequest` for a body on GET or HEAD, a
    ///   POST body from a file, or a header value with a line break (nothing is sent then).
    ///   A PUT without a body sends `Content-Length: 0`.
    public func send(_ request: HTTPRequest) throws -> HTTPReply {
        let sink: TransferContext.Sink
        switch request.sink {
        case let .memory(limit): sink = .memory(limit: limit)
        case let .file(fd, path): sink = .file(fd, path)
        }
        let ctx = TransferContext(sink: sink, expectedSize: nil, progress: request.progress.map { p in { bytes, _ in p(bytes) } })
        var inner = Request(method: .get, headers: request.headers, timeout: request.timeout, followRedirects: request.followRedirects)
        inner.verb = request.method.uppercased()
        inner.sigV4 = request.sigV4
        inner.pathAsIs = request.pathAsIs
        inner.progress = request.progress
        switch request.body {
        case .none:
            if inner.verb == "POST" { inner.method = .post(Data()) }
            // An empty upload: libcurl then sends "Content-Length: 0", which S3 and proxies want on a PUT.
            if inner.verb == "PUT" { inner.upload = UploadSource(data: Data()) }
        case let .data(data):
            try Self.checkCanCarryBody(inner.verb, url: request.url)
            if inner.verb == "POST" { inner.method = .post(data) } else { inner.upload = UploadSource(data: data) }
        case let .file(fd, offset, length):
            try Self.checkCanCarryBody(inner.verb, url: request.url)
            guard inner.verb != "POST" else {
                throw HTTPError.invalidRequest(url: request.url.absoluteString, detail: "POST bodies come from memory only")
            }
            inner.upload = UploadSource(fd: fd, offset: offset, length: length)
        }
        let response = try perform(url: request.url, ctx: ctx, request: inner)
        return HTTPReply(status: response.status, headers: response.headers, body: ctx.body, bodyBytes: response.bodyBytes)
    }

    /// A body on GET or HEAD would make libcurl send a PUT (CURLOPT_UPLOAD): refused instead.
    private static func checkCanCarryBody(_ verb: String?, url: URL) throws {
        if let verb, verb == "GET" || verb == "HEAD" {
            throw HTTPError.invalidRequest(url: url.absoluteString, detail: "a \(verb) request cannot carry a body")
        }
    }

    // MARK: - libcurl

    /// What a transfer sends, beyond the URL: GET by default.
    private struct Request {
        enum Method {
            case get
            case post(Data)
        }
        var method: Method = .get
        var headers: [(name: String, value: String)] = []
        /// Seconds for the whole transfer (CURLOPT_TIMEOUT_MS); nil for none.
        var timeout: Double? = nil
        var followRedirects = true
        /// The method when it is neither GET nor POST-with-`.post` (HEAD, PUT, DELETE, ...).
        var verb: String? = nil
        /// A body read through the read callback (any method but POST).
        var upload: UploadSource? = nil
        var sigV4: AWSSigV4? = nil
        var progress: (@Sendable (Int64) -> Void)? = nil
        var pathAsIs = false
    }

    private func perform(url: URL, ctx: TransferContext, request: Request = Request()) throws -> HTTPResponse {
        switch request.method {
        case .get:
            return try perform(url: url, ctx: ctx, request: request, body: nil)
        case let .post(data):
            // libcurl reads the body during curl_easy_perform, so the pointer only has to
            // live as long as this closure. An empty body still needs a valid pointer.
            return try (data.isEmpty ? Data([0]) : data).withUnsafeBytes { raw in
                try perform(url: url, ctx: ctx, request: request, body: UnsafeRawBufferPointer(rebasing: raw[0..<data.count]))
            }
        }
    }

    private func perform(url: URL, ctx: TransferContext, request: Request, body: UnsafeRawBufferPointer?) throws -> HTTPResponse {
        // curl_global_init fails only when the process is out of memory at startup.
        guard curlGlobalInitResult == CURLE_OK.rawValue else {
            throw HTTPError.transport(code: Int(curlGlobalInitResult), url: url.absoluteString, detail: "curl_global_init failed")
        }
        guard let h = curl_easy_init() else {
            throw HTTPError.transport(code: -1, url: url.absoluteString, detail: "curl_easy_init failed")
        }
        defer { curl_easy_cleanup(h) }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }

        let context = Unmanaged.passRetained(ctx)
        defer { context.release() }
        let urlString = url.absoluteString
        _ = kb_curl_setopt_string(h, CURLOPT_URL, urlString)
        _ = kb_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, request.followRedirects ? 1 : 0)
        _ = kb_curl_setopt_long(h, CURLOPT_MAXREDIRS, maxRedirects)
        if let timeout = request.timeout {
            // At least 1 ms (0 would mean no limit at all), at most a day.
            let ms = timeout.isNaN ? 1 : max(1, Int(min(max(timeout, 0), 86_400) * 1000))
            _ = kb_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, ms)
        }
        if let body, let base = body.baseAddress {
            _ = kb_curl_setopt_long(h, CURLOPT_POST, 1)
            _ = kb_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.count)
            _ = kb_curl_setopt_pointer(h, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: base))
        }
        var uploadContext: Unmanaged<UploadSource>? = nil
        defer { uploadContext?.release() }
        if let upload = request.upload {
            upload.position = 0
            upload.progress = request.progress
            let u = Unmanaged.passRetained(upload)
            uploadContext = u
            _ = kb_curl_setopt_long(h, CURLOPT_UPLOAD, 1)
            _ = kb_curl_setopt_off_t(h, CURLOPT_INFILESIZE_LARGE, curl_off_t(upload.length))
            _ = kb_curl_setopt_read_callback(h, uploadReadCallback)
            _ = kb_curl_setopt_pointer(h, CURLOPT_READDATA, u.toOpaque())
        }
        switch request.verb {
        case nil, "GET", "POST":
            break
        case "HEAD":
            _ = kb_curl_setopt_long(h, CURLOPT_NOBODY, 1)
        case "PUT" where request.upload != nil:
            break
        case let verb?:
            _ = kb_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, verb)
        }
        if request.pathAsIs {
            // Keep "." and ".." segments (S3 keys may contain them): libcurl would remove them.
            _ = kb_curl_setopt_long(h, CURLOPT_PATH_AS_IS, 1)
        }
        if let sig = request.sigV4 {
            _ = kb_curl_setopt_string(h, CURLOPT_AWS_SIGV4, "aws:amz:\(sig.region):\(sig.service)")
            _ = kb_curl_setopt_string(h, CURLOPT_USERNAME, sig.accessKey)
            _ = kb_curl_setopt_string(h, CURLOPT_PASSWORD, sig.secretKey)
        }
        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(headerList) }
        let sendsBody = body != nil || request.upload != nil
        if !request.headers.isEmpty || sendsBody {
            // An empty "Expect:" stops libcurl from waiting for a 100 Continue on larger bodies.
            // Not with SigV4: libcurl 7.88 would sign "expect" (empty) yet not send it, so the
            // signature could never match; its own "Expect: 100-continue" is not signed.
            let lines = request.headers.map { "\($0.name): \($0.value)" } + (sendsBody && request.sigV4 == nil ? ["Expect:"] : [])
            for line in lines {
                // Scalars, not Characters: "\r\n" is one Character, equal to neither.
                guard !line.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                    let name = line.prefix { $0 != ":" }
                    throw HTTPError.invalidRequest(url: urlString, detail: "the value of header '\(name)' contains a line break")
                }
                headerList = curl_slist_append(headerList, line)
            }
            _ = kb_curl_setopt_slist(h, CURLOPT_HTTPHEADER, headerList)
        }
        _ = kb_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT, connectTimeout)
        if request.timeout == nil {
            // With a total limit, a server that thinks before answering is not "stalled".
            _ = kb_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, lowSpeedLimit)
            _ = kb_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, lowSpeedTime)
        }
        _ = kb_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = kb_curl_setopt_long(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1)
        _ = kb_curl_setopt_string(h, CURLOPT_USERAGENT, userAgent)
        _ = kb_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        if let host = url.host, ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) {
            // A proxy from the environment can never reach this machine's loopback.
            _ = kb_curl_setopt_string(h, CURLOPT_NOPROXY, "*")
        }
        _ = kb_curl_setopt_write_callback(h, transferWriteCallback)
        _ = kb_curl_setopt_pointer(h, CURLOPT_WRITEDATA, context.toOpaque())
        _ = kb_curl_setopt_header_callback(h, transferHeaderCallback)
        _ = kb_curl_setopt_pointer(h, CURLOPT_HEADERDATA, context.toOpaque())

        let rc = curl_easy_perform(h)

        var effective: UnsafeMutablePointer<CChar>? = nil
        _ = kb_curl_getinfo_string(h, CURLINFO_EFFECTIVE_URL, &effective)
        let finalURL = effective.map { String(cString: $0) } ?? urlString
        ctx.finishHop()

        if rc != CURLE_OK {
            if case let .bodyTooLarge(limit, _) = ctx.sinkError { throw HTTPError.bodyTooLarge(limit: limit, url: finalURL) }
            if let error = ctx.sinkError { throw error }
            if let readError = request.upload?.readError {
                // The body could not be read locally: not a network failure, and not worth retrying.
                throw HTTPError.file("cannot read the request body for \(finalURL): \(readError)")
            }
            var detail = String(cString: errorBuffer)
            if detail.isEmpty { detail = String(cString: curl_easy_strerror(rc)) }
            let host = URLComponents(string: finalURL)?.host ?? finalURL
            switch rc {
            case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
                CURLE_SSL_CONNECT_ERROR:
                throw HTTPError.couldNotConnect(host: host, detail: detail)
            case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
                CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE:
                throw HTTPError.tlsCertificate(host: host, detail: detail)
            case CURLE_OPERATION_TIMEDOUT:
                if let timeout = request.timeout {
                    // Whether the request went out tells a slow server from an unreachable one.
                    var sent: Int = 0
                    _ = kb_curl_getinfo_long(h, CURLINFO_REQUEST_SIZE, &sent)
                    if sent > 0 || !ctx.hops.isEmpty {
                        throw HTTPError.timedOut(seconds: timeout, bytes: ctx.bytes, url: finalURL)
                    }
                }
                if ctx.hops.isEmpty { throw HTTPError.couldNotConnect(host: host, detail: detail) }
                throw HTTPError.stalled(bytes: ctx.bytes, url: finalURL, detail: detail)
            case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2_STREAM, CURLE_HTTP2:
                throw HTTPError.interrupted(bytes: ctx.bytes, url: finalURL, detail: detail)
            default:
                throw HTTPError.transport(code: Int(rc.rawValue), url: finalURL, detail: detail)
            }
        }
        return HTTPResponse(hops: ctx.hops, url: finalURL, bodyBytes: ctx.bytes)
    }
}

/// State shared with the C callbacks of one transfer.
private final class TransferContext {
    enum Sink {
        case file(Int32, String)
        case memory(limit: Int)
    }

    let sink: Sink
    let expectedSize: Int64?
    let progress: ((Int64, Int64?) -> Void)?
    var hops: [HTTPHop] = []
    var currentStatus: Int? = nil
    var currentHeaders = HTTPHeaders()
    var body = Data()
    var bytes: Int64 = 0
    var sinkError: HTTPError? = nil

    init(sink: Sink, expectedSize: Int64?, progress: ((Int64, Int64?) -> Void)?) {
        self.sink = sink
        self.expectedSize = expectedSize
        self.progress = progress
    }

    /// Records the hop being read (if any). Informational 1xx answers are dropped.
    func finishHop() {
        if let status = currentStatus, !(100..<200).contains(status) {
            hops.append(HTTPHop(status: status, headers: currentHeaders))
        }
        currentStatus = nil
        currentHeaders = HTTPHeaders()
    }

    func header(line raw: String) {
        let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            finishHop()
            let parts = line.split(separator: " ", maxSplits: 2)
            currentStatus = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            bytes = 0
            body.removeAll(keepingCapacity: true)
        } else if line.isEmpty {
            finishHop()
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            currentHeaders.append(name: name, value: value)
        }
    }

    /// Takes one chunk of body. Returns false to make libcurl abort.
    func write(_ chunk: UnsafeRawBufferPointer) -> Bool {
        let status = currentStatus ?? hops.last?.status ?? 0
        switch sink {
        case .file:
            // Bodies of redirects and errors never reach the destination file; an error's
            // (its first 64 KiB) is kept in memory, since it usually says why.
            guard (200..<300).contains(status) else {
                if body.count < 64 << 10 { body.append(contentsOf: chunk.prefix(64 << 10 - body.count)) }
                return true
            }
        case .memory:
            // The body of the last hop is the answer, whatever its status (an error body
            // says why); a redirect's is dropped when the next hop starts.
            break
        }
        switch sink {
        case let .file(fd, path):
            var done = 0
            while done < chunk.count {
                let n = Glibc.write(fd, chunk.baseAddress! + done, chunk.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    sinkError = .file(FileError(path: path, operation: "cannot write").description)
                    return false
                }
                done += n
            }
        case let .memory(limit):
            if body.count + chunk.count > limit {
                sinkError = .bodyTooLarge(limit: limit, url: "")
                return false
            }
            body.append(contentsOf: chunk)
        }
        bytes += Int64(chunk.count)
        if let progress {
            let total = expectedSize ?? hops.last?.headers["Content-Length"].flatMap { Int64($0) }
            progress(bytes, total)
        }
        return true
    }
}

private let transferWriteCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    data, size, count, user in
    guard let user else { return 0 }
    let ctx = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    guard n > 0, let data else { return n }
    return ctx.write(UnsafeRawBufferPointer(start: data, count: n)) ? n : 0
}

private let transferHeaderCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    data, size, count, user in
    guard let user else { return 0 }
    let ctx = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    guard n > 0, let data else { return n }
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
    ctx.header(line: line)
    return n
}

/// A request body read by libcurl's read callback: bytes in memory, or a range of a file read
/// with pread. `position` restarts at 0 for every transfer, so a retry re-sends it all.
final class UploadSource: @unchecked Sendable {
    let data: Data?
    let fd: Int32
    let offset: Int64
    let length: Int64
    var position: Int64 = 0
    var progress: (@Sendable (Int64) -> Void)? = nil
    /// Set when the file could not be read (libcurl then aborts the transfer).
    var readError: String? = nil

    init(data: Data) {
        self.data = data
        self.fd = -1
        self.offset = 0
        self.length = Int64(data.count)
    }

    init(fd: Int32, offset: Int64, length: Int64) {
        self.data = nil
        self.fd = fd
        self.offset = offset
        self.length = length
    }

    /// Fills `buffer` with the next bytes; 0 at the end; nil on a read error.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let want = Int(min(Int64(buffer.count), length - position))
        guard want > 0 else { return 0 }
        let before = position
        if let data {
            let start = data.startIndex + Int(position)
            data.copyBytes(to: buffer.bindMemory(to: UInt8.self), from: start..<(start + want))
            position += Int64(want)
        } else {
            while true {
                let n = pread(fd, buffer.baseAddress!, want, off_t(offset + position))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    readError = n == 0 ? "the file ended early" : String(cString: strerror(errno))
                    return nil
                }
                position += Int64(n)
                break
            }
        }
        progress?(position)
        return Int(position - before)
    }
}

private let uploadReadCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    buffer, size, count, user in
    guard let user, let buffer else { return Int(CURL_READFUNC_ABORT) }
    let source = Unmanaged<UploadSource>.fromOpaque(user).takeUnretainedValue()
    let before = source.position
    guard source.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count)) != nil else {
        return Int(CURL_READFUNC_ABORT)
    }
    return Int(source.position - before)
}
