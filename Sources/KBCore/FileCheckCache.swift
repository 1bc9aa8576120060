import Foundation

/// The results of expensive checks on files (a 90 MB file's SHA-256, "this vocabulary
/// agrees with that tokenizer"), remembered while the files stay as they were, so that
/// only the first use pays for them.
///
/// A file "stays as it was" while its size, modification time (nanoseconds), device and
/// inode are unchanged: editing or replacing it changes at least one of them. (A change
/// that keeps all four, such as bit rot on the disk, goes unnoticed by design: that is the
/// price of not reading the file again.)
///
/// The cache is one small JSON file (`.kbindex-checks` in the folder whose files it
/// describes), rewritten atomically. It is best effort: a cache that cannot be read is
/// empty, one that cannot be written (a read-only folder) just means the work is done
/// again next time, and two processes recording at once may lose one entry (recomputed
/// later). Only successes should be recorded.
///
/// ```swift
/// let cache = FileCheckCache(folder: modelFolder)
/// let sha = try cache.sha256(ofFile: modelFolder.appendingPathComponent("model.safetensors").path)
/// ```
public struct FileCheckCache: Sendable {
    /// The cache file.
    public let path: String

    /// The name of the cache file in a folder.
    public static let fileName = ".kbindex-checks"

    /// The cache kept in `folder` (`folder/.kbindex-checks`).
    public init(folder: URL) {
        self.path = folder.appendingPathComponent(Self.fileName).path
    }

    /// A cache kept in the file at `path`.
    public init(path: String) {
        self.path = path
    }

    /// What identifies one version of the files: size, mtime, device and inode of each, in
    /// order; nil when one of them cannot be stat'ed. O(files.count) `stat` calls.
    public static func fingerprint(_ files: [String]) -> String? {
        var parts: [String] = []
        for f in files {
            guard let s = try? FileStatus.of(f), s.kind == .regular else { return nil }
            parts.append("\(s.size):\(s.mtimeNanoseconds):\(s.device):\(s.inode)")
        }
        return parts.joined(separator: " ")
    }

    /// The value recorded for `key`, if `files` are still the versions it was recorded for
    /// (in the cache file, or earlier in this process when the file cannot be written).
    public func value(_ key: String, files: [String]) -> String? {
        guard let fp = Self.fingerprint(files) else { return nil }
        if let v = Self.memo.value(path + "\u{0}" + key, fingerprint: fp) { return v }
        guard let entry = entries()[key], entry["files"] == fp else { return nil }
        return entry["value"]
    }

    /// Records `value` for `key` and the current versions of `files` (best effort).
    public func record(_ key: String, value: String, files: [String]) {
        guard let fp = Self.fingerprint(files) else { return }
        record(key, value: value, fingerprint: fp)
    }

    /// The value for `key`: the recorded one while `files` are unchanged, else `compute()`,
    /// recorded when the files did not change while it ran. `compute` throwing records nothing.
    public func value(_ key: String, files: [String], compute: () throws -> String) rethrows -> String {
        if let v = value(key, files: files) { return v }
        let before = Self.fingerprint(files)
        let v = try compute()
        if let before, Self.fingerprint(files) == before { record(key, value: v, fingerprint: before) }
        return v
    }

    /// The SHA-256 of the file at `path` (64 lower-case hex digits), hashed only when the file
    /// changed since it was last recorded. O(file size) the first time, O(1) after.
    /// - Throws: `FileError` when the file cannot be read.
    public func sha256(ofFile path: String) throws -> String {
        try value("sha256 " + Self.relative(path, to: (self.path as NSString).deletingLastPathComponent), files: [path]) {
            try Hashing.sha256Hex(ofFile: path)
        }
    }

    // MARK: - Storage

    private func entries() -> [String: [String: String]] {
        guard let data = FileManager.default.contents(atPath: path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        var out: [String: [String: String]] = [:]
        for (k, v) in obj {
            if let e = v as? [String: String] { out[k] = e }
        }
        return out
    }

    private func record(_ key: String, value: String, fingerprint: String) {
        Self.memo.record(path + "\u{0}" + key, value: value, fingerprint: fingerprint)
        var all = entries()
        all[key] = ["files": fingerprint, "value": value]
        guard let data = try? JSONSerialization.data(withJSONObject: all, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]) else { return }
        try? AtomicFile.write(data, to: path)
    }

    /// What this process recorded, so that a folder the cache file cannot be written to
    /// (read-only) costs each check once per process, not once per use.
    private static let memo = Memo()

    private final class Memo: @unchecked Sendable {
        private let lock = NSLock()
        private var entries: [String: (fingerprint: String, value: String)] = [:]

        func value(_ key: String, fingerprint: String) -> String? {
            lock.withLock { entries[key].flatMap { $0.fingerprint == fingerprint ? $0.value : nil } }
        }

        func record(_ key: String, value: String, fingerprint: String) {
            lock.withLock { entries[key] = (fingerprint, value) }
        }
    }

    /// `path` relative to `folder` when it lies inside it, else `path` itself.
    private static func relative(_ path: String, to folder: String) -> String {
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }
}
