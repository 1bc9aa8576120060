import Foundation
import KBCore

/// Why a shard specification ("I/N") cannot be used. `description` is one line.
public struct ShardSpecError: Error, CustomStringConvertible, Equatable, Sendable {
    public let text: String
    public let reason: String
    public var description: String { "shard \"\(text)\" \(reason)" }
}

/// One shard of a sharded build: the files whose path hashes to `index` out of `count`
/// (format-spec.md §13.7). Every file belongs to exactly one shard of a given count, and the
/// rule depends on nothing but the relative path, so a shard built again (a retried pod, a
/// later incremental build) selects the same files.
public struct ShardSpec: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The most shards a build may be cut into (`Sharding.maxCount`, the one constant).
    public static var maxCount: Int { Sharding.maxCount }

    /// Throws `ShardSpecError` unless 0 ≤ index < count ≤ `maxCount`.
    public init(index: Int, count: Int) throws {
        let text = "\(index)/\(count)"
        guard (1...Self.maxCount).contains(count) else {
            throw ShardSpecError(text: text, reason: "has a shard count out of range: it must be between 1 and \(Self.maxCount)")
        }
        guard (0..<count).contains(index) else {
            throw ShardSpecError(text: text, reason: "is out of range: the index must be between 0 and \(count - 1) (shards count from 0)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "I/N" (decimal, no signs or spaces), e.g. "0/4". Throws `ShardSpecError`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        func number(_ s: Substring) -> Int? {
            guard !s.isEmpty, s.count <= 9, s.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(s)
        }
        guard parts.count == 2, let i = number(parts[0]), let n = number(parts[1]) else {
            throw ShardSpecError(text: text, reason: "is not of the form I/N (e.g. 0/4: the first of four shards)")
        }
        do { try self.init(index: i, count: n) } catch let e as ShardSpecError {
            throw ShardSpecError(text: text, reason: e.reason)
        }
    }

    public var description: String { "\(index)/\(count)" }

    /// The shard of `relativePath` out of `count`: the first 8 bytes of the SHA-256 of the
    /// path's UTF-8 bytes ('/'-separated, as the index stores it), read as a big-endian
    /// unsigned 64-bit integer, modulo `count`. Reproducible with
    /// `printf %s PATH | sha256sum` (first 16 hex digits, as a number, mod N). O(path length).
    public static func shard(of relativePath: String, count: Int) -> Int {
        guard count > 1 else { return 0 }  // one shard (or a count no ShardSpec allows): all in 0
        let digest = Hashing.sha256Bytes(Data(relativePath.utf8))
        var v: UInt64 = 0
        for b in digest.prefix(8) { v = v << 8 | UInt64(b) }
        return Int(v % UInt64(count))
    }

    /// Whether the file at `relativePath` belongs to this shard.
    public func contains(_ relativePath: String) -> Bool { Self.shard(of: relativePath, count: count) == index }

    /// A fingerprint of the settings that decide which files a build selects (the walker's
    /// rules version `walkerRules`, include and exclude globs sorted and without repeats
    /// (the walker takes a file any of them matches, so their order is no setting), both
    /// size limits, minified files, links followed): 16 hex digits of a SHA-256. Shards
    /// built with different settings, or by kbindex versions whose walks select differently,
    /// would not partition the same set of files, so `merge` refuses them; the fingerprint is
    /// only compared, never interpreted (format-spec.md §13.7). O(globs · log globs).
    public static func selectionFingerprint(of options: IngestOptions, walkerRules: Int = Walker.rulesVersion) -> String {
        // Length-prefixed fields, so no glob can imitate another field.
        var text = ""
        func field(_ name: String, _ value: String) { text += "\(name):\(value.utf8.count):\(value)\n" }
        field("walker-rules", String(walkerRules))
        for g in Set(options.include).sorted() { field("include", g) }
        for g in Set(options.exclude).sorted() { field("exclude", g) }
        field("max-file-size", String(options.maxFileSize))
        field("max-document-size", String(options.maxDocumentSize))
        field("skip-minified", options.skipMinified ? "1" : "0")
        let links: String
        switch options.symlinks {
        case .never: links = "never"
        case .insideRoot: links = "inside"
        case .everywhere: links = "everywhere"
        }
        field("symlinks", links)
        return String(Hashing.sha256Hex(Data(text.utf8)).prefix(16))
    }
}
