import Foundation

/// One object as the store describes it.
public struct ObjectInfo: Sendable, Equatable {
    /// The key relative to the store's prefix (e.g. "manifest.json", "seg-….kbseg").
    public var key: String
    public var size: Int64
    /// The entity tag exactly as the store sent it, quotes included (what `If-Match` takes).
    public var etag: String
    public var lastModified: Date?
    /// User metadata (`x-amz-meta-*`), names lower-cased without the prefix.
    public var metadata: [String: String]

    public init(key: String, size: Int64, etag: String, lastModified: Date? = nil, metadata: [String: String] = [:]) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.metadata = metadata
    }
}

/// When a write may happen: how two writers are kept from both committing.
public enum WriteCondition: Sendable, Equatable {
    /// Unconditionally (replaces whatever is there).
    case always
    /// Only if no object has the key (`If-None-Match: *`).
    case ifAbsent
    /// Only if the object's entity tag is still this one (`If-Match`).
    case ifMatch(etag: String)
}

/// Why an object-store call failed. Every case is one line that names the object or bucket;
/// no case ever carries a credential.
public enum ObjectStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `s3://…` that cannot be used (no bucket, a bad endpoint URL).
    case invalidLocation(String)
    /// No credentials in the environment (names the variables to set).
    case missingCredentials(String)
    /// The key does not exist (404 NoSuchKey).
    case notFound(key: String)
    /// The bucket does not exist (404 NoSuchBucket).
    case noSuchBucket(bucket: String)
    /// A conditional write lost (412 PreconditionFailed, or 409 ConditionalRequestConflict).
    case preconditionFailed(key: String)
    /// The store refused the credentials or the signature, or the caller may not do this (403):
    /// S3's error code and message.
    case accessDenied(code: String, message: String)
    /// Still throttled (503 SlowDown, 429) after every retry.
    case throttled(key: String, attempts: Int)
    /// The connection failed (refused, reset, timed out) after every retry.
    case transport(String)
    /// What arrived or was stored is not what was sent or announced (size, MD5/ETag, SHA-256).
    case integrity(key: String, reason: String)
    /// Any other error status: S3's code and message.
    case server(status: Int, code: String, message: String)
    /// A local file could not be read or written.
    case file(String)
    /// The call cannot be made as asked (a key with an empty, "." or ".." segment, metadata
    /// that is not printable ASCII, an empty entity tag): a local mistake, never retried.
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .invalidLocation(let s): "invalid object storage location: \(s)"
        case .missingCredentials(let s): s
        case .notFound(let k): "no object \(k)"
        case .noSuchBucket(let b): "the bucket \(b) does not exist"
        case .preconditionFailed(let k): "\(k) was changed by another writer"
        case .accessDenied(let c, let m): "access denied (\(c)\(m.isEmpty ? "" : ": \(m)"))"
        case .throttled(let k, let n): "the store is still throttling requests for \(k) after \(n) attempts (503 SlowDown)"
        case .transport(let s): s
        case .integrity(let k, let r): "\(k): \(r)"
        case .server(let s, let c, let m): "the store answered \(s)\(c.isEmpty ? "" : " \(c)")\(m.isEmpty ? "" : ": \(m)")"
        case .file(let s): s
        case .invalidRequest(let s): "invalid object storage request: \(s)"
        }
    }
}

/// A bucket and key prefix in an object store: the calls every remote index needs. Keys are
/// relative to the prefix. Implementations retry throttling (503 SlowDown, 429), 5xx and
/// dropped connections with backoff, and verify every transfer (size, and MD5/ETag or
/// SHA-256), so a call either did what it says or throws `ObjectStoreError`.
///
/// Calls are blocking and may run on several threads at once.
public protocol ObjectStore: Sendable {
    /// "s3://bucket/prefix", for messages (never with credentials).
    var location: String { get }

    /// The object's description, or nil when there is no such key (404).
    func head(_ key: String) throws -> ObjectInfo?

    /// A small object's bytes (at most `limit`; more is `.integrity`). With `ifNoneMatch`
    /// (an entity tag), returns nil when the object still has that tag (304). Throws
    /// `.notFound` when there is no such key.
    func get(_ key: String, limit: Int, ifNoneMatch: String?) throws -> (info: ObjectInfo, data: Data)?

    /// Streams the object into the file at `path` (created or truncated); on any failure the
    /// file is removed. A body of another length than the store announced is `.integrity`.
    @discardableResult
    func download(_ key: String, to path: String, progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo

    /// Uploads the file at `path` to `key` under `condition` (one PUT, or a multipart upload
    /// for large files, aborted on failure), with `metadata` as user metadata; verifies what
    /// the store received (MD5 against the ETag or the store's own checksum) before returning.
    @discardableResult
    func upload(file path: String, to key: String, condition: WriteCondition, metadata: [String: String],
                progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo

    /// `upload` of bytes in memory (one PUT).
    @discardableResult
    func put(_ data: Data, to key: String, condition: WriteCondition, metadata: [String: String]) throws -> ObjectInfo

    /// Removes the object; no error when it is already gone.
    func delete(_ key: String) throws

    /// Every object whose key starts with `prefix` (relative to the store's prefix), all pages.
    func list(prefix: String) throws -> [ObjectInfo]
}
