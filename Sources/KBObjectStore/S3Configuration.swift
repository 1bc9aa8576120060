import Foundation

/// How to reach an S3-compatible store: credentials, region, endpoint, transfer sizes and
/// retries. `description` never shows the secret or the session token.
public struct S3Configuration: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var accessKey: String
    public var secretKey: String
    /// Sent as `x-amz-security-token` (temporary credentials from STS, SSO, instance roles).
    public var sessionToken: String?
    /// Signing region (AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1).
    public var region: String
    /// A non-AWS store (`http://127.0.0.1:9000`, MinIO, Ceph, R2, ...); nil for AWS itself.
    public var endpoint: URL?
    /// Path-style URLs (`endpoint/bucket/key`) instead of virtual-hosted ones
    /// (`bucket.endpoint/key`). True whenever `endpoint` comes from the environment.
    public var pathStyle: Bool
    /// Attempts per request, the first included, for 5xx, 429, SlowDown and dropped connections.
    public var maxAttempts: Int
    /// The first retry waits about this many seconds (doubling each time, with jitter).
    public var retryBaseDelay: Double
    /// No retry waits longer than this many seconds.
    public var retryMaxDelay: Double
    /// Bytes per part of a multipart upload. S3 needs at least 5 MiB for every part but the last.
    public var partSize: Int64
    /// Files larger than this are uploaded in parts; up to it, with one PUT.
    public var multipartThreshold: Int64
    /// `max-keys` of each ListObjectsV2 page (nil: the store's default, 1000 on S3).
    public var listPageSize: Int?
    /// Seconds allowed to connect.
    public var connectTimeout: Int
    /// A transfer slower than 1 byte/s for this many seconds is aborted (and retried).
    public var lowSpeedTime: Int

    public init(
        accessKey: String, secretKey: String, sessionToken: String? = nil, region: String = "us-east-1",
        endpoint: URL? = nil, pathStyle: Bool? = nil, maxAttempts: Int = 5, retryBaseDelay: Double = 0.25,
        retryMaxDelay: Double = 10, partSize: Int64 = 32 << 20, multipartThreshold: Int64 = 64 << 20,
        listPageSize: Int? = nil, connectTimeout: Int = 10, lowSpeedTime: Int = 60
    ) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.region = region
        self.endpoint = endpoint
        self.pathStyle = pathStyle ?? (endpoint != nil)
        self.maxAttempts = max(1, maxAttempts)
        self.retryBaseDelay = retryBaseDelay
        self.retryMaxDelay = retryMaxDelay
        self.partSize = max(1, partSize)
        self.multipartThreshold = multipartThreshold
        self.listPageSize = listPageSize
        self.connectTimeout = connectTimeout
        self.lowSpeedTime = lowSpeedTime
    }

    /// The configuration the usual AWS variables describe: AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional), AWS_REGION (else
    /// AWS_DEFAULT_REGION, else us-east-1), AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL) for a
    /// non-AWS store, which is then addressed path-style.
    /// - Throws: `.missingCredentials` naming the variables, `.invalidLocation` for an
    ///   endpoint that is not an http(s) URL or a region that is not `[a-z0-9-]+`.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Configuration {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let access = value("AWS_ACCESS_KEY_ID")
        let secret = value("AWS_SECRET_ACCESS_KEY")
        guard let access, let secret else {
            let missing = [access == nil ? "AWS_ACCESS_KEY_ID" : nil, secret == nil ? "AWS_SECRET_ACCESS_KEY" : nil].compactMap { $0 }
            throw ObjectStoreError.missingCredentials(
                "no object storage credentials: set \(missing.joined(separator: " and ")) (and AWS_SESSION_TOKEN for temporary credentials)")
        }
        var endpoint: URL? = nil
        if let text = value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL") {
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = url.host, !host.isEmpty, url.query == nil
            else {
                throw ObjectStoreError.invalidLocation("the endpoint '\(text)' is not an http(s) URL such as http://127.0.0.1:9000")
            }
            endpoint = url
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        // The region goes into host names and into libcurl's "aws:amz:REGION:s3" signing string.
        guard region.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }) else {
            let shown = region.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0) }.joined().prefix(64)
            throw ObjectStoreError.invalidLocation("the region '\(shown)' (AWS_REGION or AWS_DEFAULT_REGION) is not a region name such as us-east-1 (a-z, 0-9, '-')")
        }
        return S3Configuration(
            accessKey: access, secretKey: secret, sessionToken: value("AWS_SESSION_TOKEN"),
            region: region,
            endpoint: endpoint)
    }

    public var description: String {
        "S3Configuration(region: \(region), endpoint: \(endpoint?.absoluteString ?? "AWS"), pathStyle: \(pathStyle), "
            + "accessKey: \(accessKey.prefix(4))…, secretKey: <redacted>, sessionToken: \(sessionToken == nil ? "none" : "<redacted>"))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}
