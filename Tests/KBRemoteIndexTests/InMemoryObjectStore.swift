import Foundation
import KBObjectStore

/// A test-only object store in memory: thread-safe, with S3's conditional-write semantics
/// (If-None-Match: *, If-Match on the ETag; a new ETag per write), user metadata, request
/// counts and hooks to inject faults or interleave another writer at a chosen moment.
final class InMemoryObjectStore: ObjectStore, @unchecked Sendable {
    struct Object {
        var data: Data
        var etag: String
        var lastModified: Date
        var metadata: [String: String]
    }

    let location: String
    private let lock = NSLock()
    private var objects: [String: Object] = [:]
    private var writes = 0
    private(set) var requests: [String] = []

    /// Called (outside the lock) before each call with the method and key; may throw to fail it.
    var beforeCall: (@Sendable (_ method: String, _ key: String) throws -> Void)?

    init(location: String = "s3://test-bucket/idx") { self.location = location }

    // MARK: Test access

    func object(_ key: String) -> Object? { lock.withLock { objects[key] } }
    var keys: [String] { lock.withLock { objects.keys.sorted() } }
    func setObject(_ key: String, _ o: Object) { lock.withLock { objects[key] = o } }
    func age(_ key: String, by seconds: TimeInterval) { lock.withLock { objects[key]?.lastModified.addTimeInterval(-seconds) } }
    func ageAll(by seconds: TimeInterval) { lock.withLock { for k in objects.keys { objects[k]!.lastModified.addTimeInterval(-seconds) } } }
    func resetRequests() { lock.withLock { requests = [] } }

    // MARK: ObjectStore

    private func call(_ method: String, _ key: String) throws {
        lock.withLock { requests.append("\(method) \(key)") }
        try beforeCall?(method, key)
    }

    private func info(_ key: String, _ o: Object) -> ObjectInfo {
        ObjectInfo(key: key, size: Int64(o.data.count), etag: o.etag, lastModified: o.lastModified, metadata: o.metadata)
    }

    func head(_ key: String) throws -> ObjectInfo? {
        try call("HEAD", key)
        return lock.withLock { objects[key].map { info(key, $0) } }
    }

    func get(_ key: String, limit: Int, ifNoneMatch: String?) throws -> (info: ObjectInfo, data: Data)? {
        try call("GET", key)
        return try lock.withLock {
            guard let o = objects[key] else { throw ObjectStoreError.notFound(key: key) }
            if let ifNoneMatch, ifNoneMatch == o.etag { return nil }
            guard o.data.count <= limit else { throw ObjectStoreError.integrity(key: key, reason: "too large") }
            return (info(key, o), o.data)
        }
    }

    func download(_ key: String, to path: String, progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        try call("DOWNLOAD", key)
        let o: Object = try lock.withLock {
            guard let o = objects[key] else { throw ObjectStoreError.notFound(key: key) }
            return o
        }
        guard FileManager.default.createFile(atPath: path, contents: o.data) else { throw ObjectStoreError.file("cannot create \(path)") }
        progress?(Int64(o.data.count))
        return info(key, o)
    }

    func upload(file path: String, to key: String, condition: WriteCondition, metadata: [String: String],
                progress: (@Sendable (Int64) -> Void)?) throws -> ObjectInfo {
        try call("UPLOAD", key)
        guard let data = FileManager.default.contents(atPath: path) else { throw ObjectStoreError.file("cannot read \(path)") }
        let i = try write(data, key, condition, metadata)
        progress?(Int64(data.count))
        return i
    }

    func put(_ data: Data, to key: String, condition: WriteCondition, metadata: [String: String]) throws -> ObjectInfo {
        try call("PUT", key)
        return try write(data, key, condition, metadata)
    }

    private func write(_ data: Data, _ key: String, _ condition: WriteCondition, _ metadata: [String: String]) throws -> ObjectInfo {
        try lock.withLock {
            switch condition {
            case .always: break
            case .ifAbsent: if objects[key] != nil { throw ObjectStoreError.preconditionFailed(key: key) }
            case .ifMatch(let etag): if objects[key]?.etag != etag { throw ObjectStoreError.preconditionFailed(key: key) }
            }
            writes += 1
            let o = Object(data: data, etag: "\"etag-\(writes)\"", lastModified: Date(), metadata: metadata)
            objects[key] = o
            return info(key, o)
        }
    }

    func delete(_ key: String) throws {
        try call("DELETE", key)
        _ = lock.withLock { objects.removeValue(forKey: key) }
    }

    func list(prefix: String) throws -> [ObjectInfo] {
        try call("LIST", prefix)
        return lock.withLock { objects.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map { info($0.key, $0.value) } }
    }
}
