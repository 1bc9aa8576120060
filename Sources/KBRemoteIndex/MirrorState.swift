import Foundation
import KBCore

/// The exclusive lock of a local mirror folder (`.kbindex-remote.lock` in it): one pull or
/// push at a time per folder across processes. Held until `unlock()` or deinit; the kernel
/// drops it when the process dies.
public final class MirrorLock: @unchecked Sendable {
    public static let fileName = ".kbindex-remote.lock"
    /// The folder it locks.
    public let folder: URL
    private let lock: FileLock

    private init(folder: URL, lock: FileLock) {
        self.folder = folder
        self.lock = lock
    }

    /// Takes the lock of `folder` (created with its parents if missing), waiting while
    /// another process holds it, polling every 50 ms. Throws `RemoteIndexError.file` when
    /// the folder or the lock file cannot be created.
    public static func acquire(_ folder: URL) throws -> MirrorLock {
        while true {
            if let l = try tryAcquire(folder) { return l }
            usleep(50_000)
        }
    }

    /// Takes the lock of `folder` (created with its parents if missing) if no other process
    /// holds it; nil when one does. Throws as `acquire` does.
    public static func tryAcquire(_ folder: URL) throws -> MirrorLock? {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw RemoteIndexError.file("cannot create \(folder.path): \(error.localizedDescription)")
        }
        do {
            return try FileLock.tryLock(folder.appendingPathComponent(fileName).path).map { MirrorLock(folder: folder, lock: $0) }
        } catch { throw RemoteIndexError.file("\(error)") }
    }

    /// Releases the lock (idempotent).
    public func unlock() { lock.unlock() }
}

/// What a mirror folder remembers between runs (`.kbindex-remote.json`, rewritten
/// atomically under the folder's lock): the generation its manifest came from, and the
/// files already verified, so that immutable files are hashed once, not on every run.
struct MirrorState: Codable, Equatable {
    struct File: Codable, Equatable {
        /// Hex SHA-256 of the file (what its object's `sha256` metadata says).
        var sha256: String
        /// `FileCheckCache.fingerprint` when it was verified: size, mtime, device, inode.
        var fingerprint: String
        /// When a pulled generation last named it (seconds since 1970): eviction order.
        var used: Double
    }

    static let fileName = ".kbindex-remote.json"

    /// The store location the etag belongs to.
    var location: String?
    /// The ETag of the remote manifest that `manifest.json` in the folder is (or, in a
    /// writer's staging folder, was built from).
    var etag: String?
    var files: [String: File] = [:]

    static func read(in dir: URL) -> MirrorState {
        guard let data = try? FileReader.read(dir.appendingPathComponent(fileName).path, limit: 64 << 20),
              let s = try? JSONDecoder().decode(MirrorState.self, from: data) else { return MirrorState() }
        return s
    }

    func write(in dir: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            try AtomicFile.write(try enc.encode(self), to: dir.appendingPathComponent(Self.fileName).path)
        } catch { throw RemoteIndexError.file("\(error)") }
    }

    /// The recorded SHA-256 of `name` in `dir` while the file is unchanged since it was verified.
    func verifiedSHA256(_ name: String, in dir: URL) -> String? {
        guard let f = files[name], FileCheckCache.fingerprint([dir.appendingPathComponent(name).path]) == f.fingerprint else { return nil }
        return f.sha256
    }

    mutating func recordVerified(_ name: String, sha256: String, in dir: URL, used: Date = Date()) {
        guard let fp = FileCheckCache.fingerprint([dir.appendingPathComponent(name).path]) else { return }
        files[name] = File(sha256: sha256, fingerprint: fp, used: used.timeIntervalSince1970)
    }
}
