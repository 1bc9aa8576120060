// S3 (and S3-compatible stores) over KBHTTP, signed by libcurl's AWS Signature V4.
//
// Every request carries x-amz-content-sha256 (the body's SHA-256; libcurl 7.88 signs the
// header's value as the payload hash) and a canonical query (sorted, percent-encoded, every
// parameter with "=", as AWSSigV4.canonicalQuery builds it), because libcurl 7.88 puts the
// query into the signature as given. Uploads read the file twice: once for MD5 and SHA-256,
// once to send it; the MD5 goes out as Content-MD5 (the store refuses a body that does not
// match) and is compared with the returned ETag.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation
import KBCore
import KBHTTP

/// An `ObjectStore` on S3 or an S3-compatible server (MinIO, Ceph, R2, moto, ...).
///
/// ```swift
/// let store = S3Store(try S3Location(parsing: "s3://bucket/indexes/docs"),
///                     configuration: try .fromEnvironment())
/// try store.put(Data("{}".utf8), to: "manifest.json", condition: .ifAbsent, metadata: [:])
/// ```
///
/// Blocking; calls may run on several threads at once (each request has its own curl handle).
public final class S3Store: ObjectStore {
    public let s3Location: S3Location
    public let configuration: S3Configuration
    /// Backoff between attempts (`configuration.retryBaseDelay`/`retryMaxDelay`); tests may
    /// replace its `sleep`.
    public let retryPolicy: RetryPolicy
    private let client: HTTPClient
    private let signer: AWSSigV4
    /// Scheme, host and port, plus "/bucket" when path-style; no trailing "/".
    private let base: String
    private let pathStyle: Bool

    public var location: String { s3Location.description }

    public init(_ location: S3Location, configuration: S3Configuration, retryPolicy: RetryPolicy? = nil) {
        self.s3Location = location
        self.configuration = configuration
        self.retryPolicy = retryPolicy ?? RetryPolicy(baseDelay: configuration.retryBaseDelay, maxDelay: configuration.retryMaxDelay)
        self.client = HTTPClient(connectTimeout: configuration.connectTimeout, lowSpeedTime: configuration.lowSpeedTime)
        self.signer = AWSSigV4(accessKey: configuration.accessKey, secretKey: configuration.secretKey, region: configuration.region)
        let pathStyle = configuration.pathStyle || location.bucket.contains(".")
        self.pathStyle = pathStyle
        if let endpoint = configuration.endpoint {
            var root = endpoint.absoluteString
            while root.hasSuffix("/") { root.removeLast() }
            if pathStyle {
                base = "\(root)/\(location.bucket)"
            } else {
                let scheme = endpoint.scheme ?? "https"
                base = root.replacingOccurrences(of: "\(scheme)://", with: "\(scheme)://\(location.bucket).", options: .anchored)
            }
        } else if pathStyle {
            base = "https://s3.\(configuration.region).amazonaws.com/\(location.bucket)"
        } else {
            base = "https://\(location.bucket).s3.\(configuration.region).amazonaws.com"
        }
    }

    // MARK: - ObjectStore

    public func head(_ key: String) throws -> ObjectInfo? {
        let reply = try perform(key: key, method: "HEAD", query: [], headers: [], body: .none)
        if reply.status == 404 {
            // A HEAD answer has no body to say NoSuchBucket: ask the bucket itself once.
            let bucket = try perform(key: nil, method: "HEAD", query: [], headers: [], body: .none)
            if bucket.status == 404 { throw ObjectStoreError.noSuchBucket(bucket: s3Location.bucket) }
            return nil
        }
        guard (200..<300).contains(reply.status) else { throw error(reply, key: key) }
        return info(key: key, headers: reply.headers, size: nil)
    }

    public func get(_ key: String, limit: Int, ifNoneMatch: String?) throws -> (info: ObjectInfo, data: Data)? {
        var headers: [(String, String)] = []
        if let ifNoneMatch { headers.append(("If-None-Match", ifNoneMatch)) }
        // Room for an error's XML whatever the limit; a 2xx body is held to `limit` below.
        let reply = try perform(key: key, method: "GET", query: [], headers: headers, body: .none, sink: { .memory(limit: max(limit, 64 << 10)) })
        if reply.status == 304 { return nil }
        guard (200..<300).contains(reply.status) else { throw error(reply, key: key) }
        guard reply.body.count <= limit else {
            throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "larger than the \(limit) bytes allowed")
        }
        let info = info(key: key, headers: reply.headers, size: Int64(reply.body.count))
        if let announced = reply.headers["Content-Length"].flatMap(Int64.init), announced != Int64(reply.body.count) {
            throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "received \(reply.body.count) bytes of \(announced)")
        }
        // As download: a single-part object's ETag is its MD5.
        let etag = S3Store.bareETag(info.etag)
        if etagIsMD5(reply.headers), etag.count == 32, etag.allSatisfy(\.isHexDigit) {
            let md5 = hex(Insecure.MD5.hash(data: reply.body))
            guard md5 == etag else {
                throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "the received bytes' MD5 \(md5) is not the ETag \(etag)")
            }
        }
        return (info, reply.body)
    }

    @discardableResult
    public func download(_ key: String, to path: String, progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ObjectStoreError.file("cannot create \(path): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        let reply = try perform(
            key: key, method: "GET", query: [], headers: [], body: .none,
            sink: {
                // Every attempt starts the file again.
                _ = ftruncate(fd, 0)
                _ = lseek(fd, 0, SEEK_SET)
                return .file(fd: fd, path: path)
            }, progress: progress)
        guard (200..<300).contains(reply.status) else { throw error(reply, key: key) }
        if let announced = reply.headers["Content-Length"].flatMap(Int64.init), announced != reply.bodyBytes {
            throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "received \(reply.bodyBytes) bytes of \(announced)")
        }
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw ObjectStoreError.file("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        // A single-part object's ETag is its MD5: read the file back and compare (local disk
        // reads are cheap next to the network; multipart and SSE-KMS ETags are not MD5s).
        let etag = S3Store.bareETag(S3Store.normalizedETag(reply.headers["ETag"]) ?? "")
        if etagIsMD5(reply.headers), etag.count == 32, etag.allSatisfy(\.isHexDigit) {
            let readFD = open(path, O_RDONLY | O_CLOEXEC)
            guard readFD >= 0 else { throw ObjectStoreError.file("cannot read \(path) back: \(String(cString: strerror(errno)))") }
            defer { close(readFD) }
            let md5 = hex(try digests(fd: readFD, offset: 0, length: reply.bodyBytes, path: path).md5)
            guard md5 == etag else {
                throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "the downloaded bytes' MD5 \(md5) is not the ETag \(etag)")
            }
        }
        ok = true
        return info(key: key, headers: reply.headers, size: reply.bodyBytes)
    }

    @discardableResult
    public func upload(file path: String, to key: String, condition: WriteCondition, metadata: [String: String],
                       progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ObjectStoreError.file("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ObjectStoreError.file("cannot read \(path): \(String(cString: strerror(errno)))") }
        let size = Int64(st.st_size)
        if size <= configuration.multipartThreshold {
            let digest = try digests(fd: fd, offset: 0, length: size, path: path)
            return try putObject(key: key, body: .file(fd: fd, offset: 0, length: size), size: size, digest: digest,
                                 condition: condition, metadata: metadata, progress: progress)
        }
        return try multipartUpload(fd: fd, path: path, size: size, key: key, condition: condition, metadata: metadata, progress: progress)
    }

    @discardableResult
    public func put(_ data: Data, to key: String, condition: WriteCondition, metadata: [String: String]) throws -> ObjectInfo {
        let digest = Digests(md5: Data(Insecure.MD5.hash(data: data)), sha256: hex(SHA256.hash(data: data)))
        return try putObject(key: key, body: .data(data), size: Int64(data.count), digest: digest,
                             condition: condition, metadata: metadata, progress: nil)
    }

    public func delete(_ key: String) throws {
        let reply = try perform(key: key, method: "DELETE", query: [], headers: [], body: .none)
        if (200..<300).contains(reply.status) { return }
        let e = error(reply, key: key)
        if case .notFound = e { return }
        throw e
    }

    public func list(prefix: String) throws -> [ObjectInfo] {
        try S3Store.validate(key: prefix, isPrefix: true)
        let full = s3Location.objectKey(prefix)
        // Bytes, not Characters: a prefix ending in a combining mark must not swallow the key's next byte.
        let fullBytes = Array(full.utf8)
        let strip = s3Location.prefix.isEmpty ? 0 : s3Location.prefix.utf8.count + 1
        var token: String? = nil
        var seenTokens: Set<String> = []
        var result: [ObjectInfo] = []
        repeat {
            var query = [("list-type", "2"), ("prefix", full)]
            if let token { query.append(("continuation-token", token)) }
            if let n = configuration.listPageSize { query.append(("max-keys", String(n))) }
            let reply = try perform(key: nil, method: "GET", query: query, headers: [], body: .none)
            guard (200..<300).contains(reply.status) else { throw error(reply, key: prefix) }
            let xml = String(decoding: reply.body, as: UTF8.self)
            for block in XMLText.blocks("Contents", in: xml) {
                guard let key = XMLText.value("Key", in: block) else { continue }
                let keyBytes = Array(key.utf8)
                guard keyBytes.count >= fullBytes.count, keyBytes[..<fullBytes.count].elementsEqual(fullBytes) else {
                    throw ObjectStoreError.server(
                        status: reply.status, code: "",
                        message: "the listing of \(full) returned the key \(S3Store.oneLine(key)) outside that prefix")
                }
                result.append(ObjectInfo(
                    key: String(decoding: keyBytes[strip...], as: UTF8.self),
                    size: XMLText.value("Size", in: block).flatMap(Int64.init) ?? 0,
                    etag: S3Store.normalizedETag(XMLText.value("ETag", in: block)) ?? "",
                    lastModified: XMLText.value("LastModified", in: block).flatMap(parseISODate)))
            }
            let truncated = XMLText.value("IsTruncated", in: xml) == "true"
            token = truncated ? XMLText.value("NextContinuationToken", in: xml) : nil
            if truncated && token == nil {
                throw ObjectStoreError.server(status: reply.status, code: "", message: "a truncated listing without a continuation token")
            }
            if let token, !seenTokens.insert(token).inserted {
                // Asking again would loop forever.
                throw ObjectStoreError.server(status: reply.status, code: "", message: "the listing repeated a continuation token")
            }
        } while token != nil
        return result
    }

    // MARK: - Uploads

    private struct Digests {
        var md5: Data
        var sha256: String
    }

    private func conditionHeaders(_ condition: WriteCondition) throws -> [(String, String)] {
        switch condition {
        case .always: return []
        case .ifAbsent: return [("If-None-Match", "*")]
        case let .ifMatch(etag):
            guard let tag = S3Store.normalizedETag(etag) else {
                throw ObjectStoreError.invalidRequest("a write conditioned on an empty entity tag")
            }
            return [("If-Match", tag)]
        }
    }

    /// User metadata as headers. Names and values must be printable ASCII: libcurl signs the raw
    /// bytes while S3 checks another form of non-ASCII values, so they would end in 403
    /// SignatureDoesNotMatch; refused here with a clear error instead.
    private func metadataHeaders(_ metadata: [String: String]) throws -> [(String, String)] {
        for (name, value) in metadata {
            guard !name.isEmpty, name.utf8.allSatisfy({ b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
            }) else {
                throw ObjectStoreError.invalidRequest("the metadata name \(S3Store.oneLine(name)) is not made of A-Z, a-z, 0-9, '-', '_'")
            }
            guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw ObjectStoreError.invalidRequest("the value of metadata '\(name)' is not printable ASCII: \(S3Store.oneLine(value))")
            }
        }
        return metadata.sorted { $0.key < $1.key }.map { ("x-amz-meta-\($0.key.lowercased())", $0.value) }
    }

    private func putObject(key: String, body: HTTPRequestBody, size: Int64, digest: Digests, condition: WriteCondition,
                           metadata: [String: String], progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        let headers = [("Content-Type", "application/octet-stream"), ("Content-MD5", digest.md5.base64EncodedString())]
            + (try conditionHeaders(condition)) + (try metadataHeaders(metadata))
        let (reply, attempts) = try performCounting(key: key, method: "PUT", query: [], headers: headers, body: body,
                                                    payloadHash: digest.sha256, progress: progress)
        guard (200..<300).contains(reply.status) else {
            // After a retry, a lost condition may be our own earlier attempt that went through
            // (its answer lost with the connection): the object then holds exactly our bytes.
            if attempts > 1, condition != .always, reply.status == 412 || reply.status == 409,
               let now = try head(key), S3Store.bareETag(now.etag) == hex(digest.md5) {
                return ObjectInfo(key: key, size: size, etag: now.etag, lastModified: now.lastModified, metadata: now.metadata)
            }
            throw error(reply, key: key)
        }
        guard let etag = S3Store.normalizedETag(reply.headers["ETag"]) else {
            throw ObjectStoreError.server(status: reply.status, code: "", message: "PUT \(s3Location.objectKey(key)) answered without an ETag")
        }
        let bare = S3Store.bareETag(etag)
        if etagIsMD5(reply.headers), bare.count == 32, bare.allSatisfy(\.isHexDigit), bare != hex(digest.md5) {
            throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "the store's ETag \(etag) is not the MD5 of what was sent (\(hex(digest.md5)))")
        }
        return ObjectInfo(key: key, size: size, etag: etag, lastModified: nil, metadata: lowered(metadata))
    }

    private func multipartUpload(fd: Int32, path: String, size: Int64, key: String, condition: WriteCondition,
                                 metadata: [String: String], progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        let completionConditions = try conditionHeaders(condition)
        let create = try perform(key: key, method: "POST", query: [("uploads", "")],
                                 headers: [("Content-Type", "application/octet-stream")] + (try metadataHeaders(metadata)), body: .data(Data()))
        guard (200..<300).contains(create.status) else { throw error(create, key: key) }
        guard let uploadId = XMLText.value("UploadId", in: String(decoding: create.body, as: UTF8.self)) else {
            throw ObjectStoreError.server(status: create.status, code: "", message: "CreateMultipartUpload answered without an UploadId")
        }
        do {
            let partSize = configuration.partSize
            var parts: [(number: Int, etag: String, md5: Data)] = []
            var offset: Int64 = 0
            var number = 1
            while offset < size {
                let length = min(partSize, size - offset)
                let digest = try digests(fd: fd, offset: offset, length: length, path: path)
                let sent = offset
                let reply = try perform(
                    key: key, method: "PUT", query: [("partNumber", String(number)), ("uploadId", uploadId)],
                    headers: [("Content-MD5", digest.md5.base64EncodedString())],
                    body: .file(fd: fd, offset: offset, length: length), payloadHash: digest.sha256,
                    progress: progress.map { p in { @Sendable n in p(sent + n) } })
                guard (200..<300).contains(reply.status) else { throw error(reply, key: key) }
                guard let etag = S3Store.normalizedETag(reply.headers["ETag"]) else {
                    throw ObjectStoreError.server(status: reply.status, code: "", message: "part \(number) of \(s3Location.objectKey(key)) answered without an ETag")
                }
                let bare = S3Store.bareETag(etag)
                if etagIsMD5(reply.headers), bare.count == 32, bare.allSatisfy(\.isHexDigit), bare != hex(digest.md5) {
                    throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "part \(number): the store's ETag \(etag) is not the MD5 of what was sent")
                }
                parts.append((number, etag, digest.md5))
                offset += length
                number += 1
            }
            var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            for part in parts {
                xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(XMLText.escape(part.etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let body = Data(xml.utf8)
            let expected = hex(Data(Insecure.MD5.hash(data: parts.reduce(into: Data()) { $0.append($1.md5) }))) + "-\(parts.count)"
            var attempts = 0
            var complete: HTTPReply
            var text: String
            while true {
                let (reply, n) = try performCounting(
                    key: key, method: "POST", query: [("uploadId", uploadId)],
                    headers: [("Content-Type", "application/xml")] + completionConditions, body: .data(body),
                    payloadHash: hex(SHA256.hash(data: body)))
                attempts += n
                complete = reply
                text = String(decoding: reply.body, as: UTF8.self)
                // S3 may answer 200 and put the error in the body (the answer starts before the
                // work ends); AWS says to retry the completion then.
                if (200..<300).contains(reply.status), text.contains("<Error>"), attempts < configuration.maxAttempts {
                    wait(retryPolicy.backoff(retry: attempts - 1))
                    continue
                }
                break
            }
            // After a retry, a refusal (412, or 404 NoSuchUpload) may follow our own earlier
            // completion whose answer was lost: the object then has our multipart ETag.
            if attempts > 1, !(200..<300).contains(complete.status) || text.contains("<Error>"),
               let now = try head(key), S3Store.bareETag(now.etag) == expected {
                return ObjectInfo(key: key, size: size, etag: now.etag, lastModified: now.lastModified, metadata: now.metadata)
            }
            guard (200..<300).contains(complete.status), !text.contains("<Error>") else {
                throw error(complete, key: key, errorStatus: complete.status == 200 ? 500 : nil)
            }
            guard let etag = S3Store.normalizedETag(XMLText.value("ETag", in: text) ?? complete.headers["ETag"]) else {
                throw ObjectStoreError.server(status: complete.status, code: "", message: "CompleteMultipartUpload of \(s3Location.objectKey(key)) answered without an ETag")
            }
            let bare = S3Store.bareETag(etag)
            if etagIsMD5(complete.headers), bare.contains("-"), bare != expected {
                throw ObjectStoreError.integrity(key: s3Location.objectKey(key), reason: "the store's ETag \(etag) is not the multipart MD5 of what was sent (\(expected))")
            }
            return ObjectInfo(key: key, size: size, etag: etag, metadata: lowered(metadata))
        } catch {
            // Best effort: the parts would otherwise stay (and be billed) until a lifecycle rule removes them.
            _ = try? perform(key: key, method: "DELETE", query: [("uploadId", uploadId)], headers: [], body: .none)
            throw error
        }
    }

    /// MD5 (binary) and SHA-256 (hex) of a range of the file, read in 1 MiB blocks.
    private func digests(fd: Int32, offset: Int64, length: Int64, path: String) throws -> Digests {
        var md5 = Insecure.MD5()
        var sha = SHA256()
        let block = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: block, alignment: 16)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while done < length {
            let n = pread(fd, buffer.baseAddress!, Int(min(Int64(block), length - done)), off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ObjectStoreError.file("cannot read \(path): \(n == 0 ? "it ended early" : String(cString: strerror(errno)))") }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            md5.update(bufferPointer: chunk)
            sha.update(bufferPointer: chunk)
            done += Int64(n)
        }
        return Digests(md5: Data(md5.finalize()), sha256: hex(sha.finalize()))
    }

    // MARK: - Requests

    private static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    private static let retryStatuses: Set<Int> = [429, 500, 502, 503, 504]

    /// The URL of `key` (nil: the bucket itself) with a canonical query (see AWSSigV4).
    private func url(key: String?, query: [(String, String)]) throws -> URL {
        var text = base
        if let key {
            try S3Store.validate(key: key, isPrefix: false)
            text += "/" + AWSSigV4.uriEncode(s3Location.objectKey(key), keepSlash: true)
        } else if !pathStyle {
            text += "/"
        }
        if !query.isEmpty { text += "?" + AWSSigV4.canonicalQuery(query.map { (name: $0.0, value: $0.1) }) }
        guard let url = URL(string: text) else { throw ObjectStoreError.invalidLocation("cannot form a URL for \(key ?? "the bucket")") }
        return url
    }

    /// One S3 call with retries: 5xx, 429 and transport failures are retried with backoff (the
    /// body re-sent from its start, `sink` asked again); anything else comes back as the reply.
    private func perform(
        key: String?, method: String, query: [(String, String)], headers: [(String, String)], body: HTTPRequestBody,
        payloadHash: String? = nil, sink: () -> HTTPResponseSink = { .memory(limit: 16 << 20) },
        progress: (@Sendable (Int64) -> Void)? = nil
    ) throws -> HTTPReply {
        try performCounting(key: key, method: method, query: query, headers: headers, body: body, payloadHash: payloadHash,
                            sink: sink, progress: progress).reply
    }

    /// `perform`, also saying how many attempts it took: a conditional write that lost on a
    /// later attempt may have won on an earlier one whose answer was lost.
    private func performCounting(
        key: String?, method: String, query: [(String, String)], headers: [(String, String)], body: HTTPRequestBody,
        payloadHash: String? = nil, sink: () -> HTTPResponseSink = { .memory(limit: 16 << 20) },
        progress: (@Sendable (Int64) -> Void)? = nil
    ) throws -> (reply: HTTPReply, attempts: Int) {
        let url = try url(key: key, query: query)
        var all = headers.map { (name: $0.0, value: $0.1) }
        all.append((name: "x-amz-content-sha256", value: payloadHash ?? S3Store.emptySHA256))
        if let token = configuration.sessionToken { all.append((name: "x-amz-security-token", value: token)) }
        // Keys may hold any character; error lines must stay one line.
        let what = S3Store.oneLine(key.map { s3Location.objectKey($0) } ?? "s3://\(s3Location.bucket)")
        var attempt = 1
        while true {
            let request = HTTPRequest(method: method, url: url, headers: all, body: body, sink: sink(), sigV4: signer, progress: progress,
                                      pathAsIs: true)
            do {
                let reply = try client.send(request)
                if S3Store.retryStatuses.contains(reply.status) && attempt < configuration.maxAttempts {
                    let asked = reply.headers["Retry-After"].flatMap { RetryPolicy.retryAfter($0) }
                    wait(asked.map { min($0, retryPolicy.retryAfterCap) } ?? retryPolicy.backoff(retry: attempt - 1))
                    attempt += 1
                    continue
                }
                if S3Store.retryStatuses.contains(reply.status) {
                    let code = XMLText.value("Code", in: String(decoding: reply.body, as: UTF8.self)) ?? ""
                    if reply.status == 429 || reply.status == 503 && (code == "SlowDown" || code.isEmpty) {
                        throw ObjectStoreError.throttled(key: what, attempts: attempt)
                    }
                }
                return (reply, attempt)
            } catch let e as HTTPError {
                switch e {
                case .couldNotConnect, .interrupted, .stalled, .timedOut, .transport:
                    // Network failures only: local mistakes (.file, .invalidRequest) and refused
                    // certificates are deterministic and thrown at once below.
                    if attempt < configuration.maxAttempts {
                        wait(retryPolicy.backoff(retry: attempt - 1))
                        attempt += 1
                        continue
                    }
                    throw ObjectStoreError.transport("\(method) \(what) failed after \(attempt) attempts: \(e)")
                case let .bodyTooLarge(limit, _):
                    throw ObjectStoreError.integrity(key: what, reason: "the answer to \(method) is larger than the \(limit) bytes allowed")
                case let .file(message):
                    throw ObjectStoreError.file(message)
                case .invalidRequest:
                    throw ObjectStoreError.invalidRequest("\(method) \(what): \(e)")
                case .status, .tlsCertificate:
                    // Not retried: the same request meets the same refusal.
                    throw ObjectStoreError.transport("\(method) \(what): \(e)")
                }
            }
        }
    }

    private func wait(_ seconds: Double) {
        retryPolicy.sleep(seconds, { false })
    }

    /// The error an S3 answer describes (its XML Code and Message, when it has a body).
    private func error(_ reply: HTTPReply, key: String, errorStatus: Int? = nil) -> ObjectStoreError {
        let text = String(decoding: reply.body, as: UTF8.self)
        let code = S3Store.oneLine(XMLText.value("Code", in: text) ?? "", limit: 64)
        let message = S3Store.oneLine(XMLText.value("Message", in: text) ?? "")
        let status = errorStatus ?? reply.status
        let full = s3Location.objectKey(key)
        switch (status, code) {
        case (_, "NoSuchBucket"): return .noSuchBucket(bucket: s3Location.bucket)
        case (_, "NoSuchKey"), (404, ""): return .notFound(key: full)
        case (412, _), (_, "PreconditionFailed"), (409, "ConditionalRequestConflict"): return .preconditionFailed(key: full)
        case (403, _), (_, "AccessDenied"), (_, "InvalidAccessKeyId"), (_, "SignatureDoesNotMatch"), (_, "InvalidToken"):
            return .accessDenied(code: code.isEmpty ? "AccessDenied" : code,
                                 message: message.isEmpty && reply.body.isEmpty ? "403 without a body (\(reply.status))" : message)
        case (_, "SlowDown"): return .throttled(key: full, attempts: configuration.maxAttempts)
        default: return .server(status: status, code: code, message: message)
        }
    }

    private func info(key: String, headers: HTTPHeaders, size: Int64?) -> ObjectInfo {
        var metadata: [String: String] = [:]
        for field in headers.fields where field.name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(field.name.lowercased().dropFirst("x-amz-meta-".count))] = field.value
        }
        return ObjectInfo(
            key: key, size: size ?? headers["Content-Length"].flatMap(Int64.init) ?? 0, etag: S3Store.normalizedETag(headers["ETag"]) ?? "",
            lastModified: headers["Last-Modified"].flatMap(parseHTTPDate), metadata: metadata)
    }

    /// Whether the store's ETag is the MD5 of the bytes (the multipart form: of the parts' MD5s).
    /// Not under SSE-KMS or SSE-C, where S3's ETag is something else; S3 has then still checked
    /// the Content-MD5 we sent.
    private func etagIsMD5(_ headers: HTTPHeaders) -> Bool {
        let sse = headers["x-amz-server-side-encryption"]?.lowercased() ?? ""
        return !sse.hasPrefix("aws:kms") && headers["x-amz-server-side-encryption-customer-algorithm"] == nil
    }

    /// An entity tag as S3 sends it and `If-Match` takes it: in double quotes (added when a store
    /// left them out); nil when there is none or it is empty. Every ETag the store reports goes
    /// through here (head, get, download, put, parts, completion, list).
    static func normalizedETag(_ raw: String?) -> String? {
        guard let raw else { return nil }
        var tag = raw.trimmingCharacters(in: .whitespaces)
        var weak = ""
        if tag.hasPrefix("W/") { weak = "W/"; tag.removeFirst(2) }
        if tag.hasPrefix("&quot;") || tag.hasPrefix("&#34;") { tag = XMLText.unescape(tag) }
        var bare = Substring(tag)
        if bare.hasPrefix("\"") { bare = bare.dropFirst() }
        if bare.hasSuffix("\"") { bare = bare.dropLast() }
        guard !bare.isEmpty, !bare.contains("\"") else { return nil }
        return "\(weak)\"\(bare)\""
    }

    /// The tag without quotes, lower-cased, for comparing with an MD5 in hex.
    static func bareETag(_ tag: String) -> String {
        tag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
    }

    /// Keys (and list prefixes) with an empty, "." or ".." segment are refused: URL handling
    /// (ours, libcurl's, a proxy's, the store's) may resolve or merge them, so another key than
    /// the one named would be read or written. A prefix may end in "/" (or be empty).
    static func validate(key: String, isPrefix: Bool) throws {
        if isPrefix && key.isEmpty { return }
        var segments = key.split(separator: "/", omittingEmptySubsequences: false)
        if isPrefix, segments.count > 1, segments.last == "" { segments.removeLast() }
        if key.isEmpty || segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw ObjectStoreError.invalidRequest("the key \(oneLine(key)) has an empty, '.' or '..' path segment")
        }
    }

    /// Text from the store or the caller made fit for a one-line error: control characters
    /// escaped, at most `limit` characters.
    static func oneLine(_ text: String, limit: Int = 300) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit { out += "…"; break }
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}" {
                out += String(format: "\\x%02X", scalar.value & 0xFF)
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }

    private func lowered(_ metadata: [String: String]) -> [String: String] {
        Dictionary(metadata.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
    }
}

private func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    bytes.map { String(format: "%02x", $0) }.joined()
}

private func parseHTTPDate(_ text: String) -> Date? {
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "GMT")
    f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return f.date(from: text)
}

private func parseISODate(_ text: String) -> Date? {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let d = f.date(from: text) { return d }
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: text)
}

/// Reading S3's small XML answers: leaf values and repeated blocks by element name. S3's
/// answers have no attributes on these elements, no CDATA and no nesting of an element in
/// itself, which is all this relies on.
enum XMLText {
    /// The inner text of every `<name>…</name>`, in order.
    static func blocks(_ name: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        let open = "<\(name)>", close = "</\(name)>"
        while let start = rest.range(of: open), let end = rest.range(of: close, range: start.upperBound..<rest.endIndex) {
            out.append(String(rest[start.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return out
    }

    /// The unescaped text of the first `<name>…</name>`; "" for `<name/>`.
    static func value(_ name: String, in xml: String) -> String? {
        if let inner = blocks(name, in: xml).first { return unescape(inner) }
        return xml.contains("<\(name)/>") ? "" : nil
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";"), s.distance(from: i, to: semi) <= 10 {
                let entity = s[s.index(after: i)..<semi]
                var scalar: Unicode.Scalar? = nil
                switch entity {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        scalar = UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init)
                    } else if entity.hasPrefix("#") {
                        scalar = UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init)
                    }
                }
                if let scalar {
                    out.unicodeScalars.append(scalar)
                    i = s.index(after: semi)
                    continue
                }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
