import Foundation

/// AWS Signature Version 4, computed by libcurl (`CURLOPT_AWS_SIGV4`, "aws:amz:REGION:SERVICE").
///
/// What libcurl 7.88.1 (Debian 12) does, found against moto's signature check (botocore's
/// signer), which is what callers must arrange themselves:
/// - It signs every request header the caller sets, so `x-amz-security-token` (session
///   credentials) and `x-amz-content-sha256` are simply added as headers. An empty header
///   (which tells libcurl not to send one, like "Expect:") is signed all the same although not
///   sent, which breaks the signature: `send` adds none with SigV4, so uploads over 1 MiB go
///   with libcurl's unsigned `Expect: 100-continue`.
/// - It takes the payload hash from the `x-amz-content-sha256` header; without that header the
///   signature does not match S3's. Send the body's SHA-256 hex (or `UNSIGNED-PAYLOAD`).
/// - It puts the query string into the canonical request as given: neither sorted nor
///   re-encoded, and a parameter without "=" (`?uploads`) is not canonical. So the URL's query
///   must already be canonical: parameters sorted by name, names and values percent-encoded
///   except `A-Z a-z 0-9 - _ . ~`, and every parameter written with "=" (`?uploads=`).
///   `AWSSigV4.canonicalQuery` builds such a query.
///
/// The secret never appears in errors; verbose output is never enabled.
public struct AWSSigV4: Sendable {
    public var accessKey: String
    public var secretKey: String
    public var region: String
    /// "s3" for object storage.
    public var service: String

    public init(accessKey: String, secretKey: String, region: String, service: String = "s3") {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.region = region
        self.service = service
    }

    /// A query string in SigV4's canonical form (see the type's note): sorted by name, then
    /// value; every byte outside `A-Z a-z 0-9 - _ . ~` percent-encoded (upper-case hex); each
    /// parameter with "=", even when its value is empty. No leading "?".
    public static func canonicalQuery(_ parameters: [(name: String, value: String)]) -> String {
        var encoded: [(name: String, value: String)] = parameters.map { (uriEncode($0.name), uriEncode($0.value)) }
        encoded.sort { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return encoded.map { p in p.name + "=" + p.value }.joined(separator: "&")
    }

    /// Percent-encodes every byte of `s`'s UTF-8 except `A-Z a-z 0-9 - _ . ~` (and "/" when
    /// `keepSlash`, for object keys in a path).
    public static func uriEncode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

/// What a general request sends.
public enum HTTPRequestBody: Sendable {
    case none
    /// Bytes in memory.
    case data(Data)
    /// `length` bytes of the open file `fd` from `offset`, read with pread (the descriptor's
    /// position is untouched, so one descriptor can serve several requests, and a retry
    /// re-sends from `offset`). The caller keeps `fd` open during the call.
    case file(fd: Int32, offset: Int64, length: Int64)
}

/// Where a general request's answer body goes.
public enum HTTPResponseSink: Sendable {
    /// Collected in memory, at most `limit` bytes (more is `.bodyTooLarge`).
    case memory(limit: Int)
    /// A 2xx body is written to `fd` (at its position; `path` is for messages). The body of
    /// any other status is collected in memory instead (up to 64 KiB), so it can say why.
    case file(fd: Int32, path: String)
}

/// One HTTP request of any method: what `HTTPClient.send` takes.
public struct HTTPRequest: Sendable {
    /// "GET", "HEAD", "PUT", "POST", "DELETE", ...
    public var method: String
    public var url: URL
    /// Sent as given (no line breaks allowed). `Expect: 100-continue` is never sent.
    public var headers: [(name: String, value: String)]
    public var body: HTTPRequestBody
    public var sink: HTTPResponseSink
    /// Signs the request (see `AWSSigV4` for what the caller must add).
    public var sigV4: AWSSigV4?
    /// False by default: a 3xx comes back as the answer, so a body and signed headers never
    /// travel to a host the caller did not name.
    public var followRedirects: Bool
    /// Seconds the whole request may take (nil: only the connect timeout and the low-speed abort).
    public var timeout: Double?
    /// Called with the bytes of body sent so far (uploads) or received so far (downloads).
    public var progress: (@Sendable (Int64) -> Void)?
    /// Sends the URL's path exactly as given (CURLOPT_PATH_AS_IS): libcurl otherwise removes
    /// "." and ".." segments, so `pre/x/./y` would reach `pre/x/y`. S3 keys need it.
    public var pathAsIs: Bool

    public init(
        method: String, url: URL, headers: [(name: String, value: String)] = [], body: HTTPRequestBody = .none,
        sink: HTTPResponseSink = .memory(limit: 16 << 20), sigV4: AWSSigV4? = nil, followRedirects: Bool = false,
        timeout: Double? = nil, progress: (@Sendable (Int64) -> Void)? = nil, pathAsIs: Bool = false
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.sink = sink
        self.sigV4 = sigV4
        self.followRedirects = followRedirects
        self.timeout = timeout
        self.progress = progress
        self.pathAsIs = pathAsIs
    }
}

/// The answer to `HTTPClient.send`.
public struct HTTPReply: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    /// The body for `.memory`; for `.file`, the body of a non-2xx answer (else empty).
    public var body: Data
    /// Bytes of body received (for `.file` with a 2xx status: written to the file).
    public var bodyBytes: Int64
}
