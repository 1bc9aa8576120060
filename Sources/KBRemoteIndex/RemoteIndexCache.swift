import Foundation
import KBCore

/// Where local copies of remote indexes live, and how large they may grow.
///
/// The root is `KBINDEX_CACHE_DIR`, else `$XDG_CACHE_HOME/kbindex/s3`, else
/// `~/.cache/kbindex/s3`. Each location (endpoint + bucket + prefix) has one folder named
/// readably after the bucket and prefix plus a hash of all three (two endpoints may have a
/// bucket of the same name), holding `index/` (the readers' mirror: query, serve) and
/// `build/` (the writer's staging folder, kept so an interrupted build resumes from its
/// checkpoint).
public struct RemoteIndexCache: Sendable, Equatable {
    /// The location's folder.
    public let folder: URL

    /// The cache folder for `location` ("s3://bucket/prefix") at `endpoint` (the store's URL,
    /// empty for AWS's default), under `root`.
    public init(location: String, endpoint: String, root: URL) {
        let key = endpoint + "\n" + location
        let hash = String(Hashing.sha256Hex(Data(key.utf8)).prefix(12))
        var readable = location.hasPrefix("s3://") ? String(location.dropFirst(5)) : location
        readable = String(readable.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "-" })
        while readable.hasSuffix("-") { readable.removeLast() }
        folder = root.appendingPathComponent((readable.isEmpty ? "" : String(readable.prefix(80)) + "-") + hash)
    }

    /// The readers' mirror (`pull`ed by query and serve).
    public var index: URL { folder.appendingPathComponent("index") }
    /// The writer's staging folder (`pull`ed, built into and `push`ed from by build).
    public var build: URL { folder.appendingPathComponent("build") }

    /// The cache root the environment names (see the type's description).
    public static func root(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let d = environment["KBINDEX_CACHE_DIR"], !d.isEmpty { return URL(fileURLWithPath: d).standardizedFileURL }
        if let x = environment["XDG_CACHE_HOME"], !x.isEmpty {
            return URL(fileURLWithPath: x).appendingPathComponent("kbindex/s3").standardizedFileURL
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/kbindex/s3").standardizedFileURL
    }

    /// The default size bound of one mirror folder: 20 GiB.
    public static let defaultSizeBound: Int64 = 20 << 30

    /// The size bound `KBINDEX_CACHE_SIZE` names ("20G", "512M", "1.5T", "20GiB", "1000000"
    /// bytes; K, M, G, T are powers of 1024), else `defaultSizeBound`. Throws a one-line
    /// description when the value cannot be read.
    public static func sizeBound(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int64 {
        guard let raw = environment["KBINDEX_CACHE_SIZE"]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return defaultSizeBound }
        guard let v = parseSize(raw) else {
            throw RemoteIndexError.file("KBINDEX_CACHE_SIZE=\(raw) is not a size (e.g. 20G, 512M)")
        }
        return v
    }

    /// "20G" → 20 GiB; nil when not a size.
    static func parseSize(_ s: String) -> Int64? {
        var t = s.uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        var mult: Double = 1
        if let last = t.last, let shift = ["K": 10, "M": 20, "G": 30, "T": 40][String(last)] {
            mult = Double(Int64(1) << shift)
            t.removeLast()
        }
        guard let n = Double(t.trimmingCharacters(in: .whitespaces)), n >= 0, n * mult < 9e18 else { return nil }
        return Int64(n * mult)
    }
}
