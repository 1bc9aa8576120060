import Foundation
import KBCore

/// Why `manifest.json` cannot be read. Every case names the folder; `description` is one line.
public enum ManifestError: Error, CustomStringConvertible, Equatable, Sendable {
    case missing(dir: String)
    case damaged(dir: String, reason: String)
    case unsupportedVersion(dir: String, version: Int)

    public var description: String {
        switch self {
        case .missing(let d): "no index in \(d)"
        case .damaged(let d, let r): "the index manifest \(d)/\(Manifest.fileName) is damaged (\(r))"
        case .unsupportedVersion(let d, let v):
            "the index in \(d) has format version \(v); this kbindex reads versions \(Manifest.readableFormatVersions.sorted().map(String.init).joined(separator: ", ").replacingLastSeparator)"
        }
    }
}

/// The list of live segments of an index: `dir/manifest.json` (format-spec.md, "Manifest").
/// Replacing it atomically is how an index changes.
public struct Manifest: Codable, Equatable, Sendable {
    public struct Segment: Codable, Equatable, Sendable {
        /// File name relative to the index folder.
        public var file: String
        public var chunks: Int
        public var documents: Int
        public var bytes: Int
        /// The segment's deletion file (format-spec.md §13.4), when documents in it were
        /// deleted or replaced by a later build; nil when every document is live.
        public var deletions: String?
        /// Documents and chunks the deletion file marks deleted (nil with no deletion file).
        public var deletedDocuments: Int?
        public var deletedChunks: Int?

        public init(file: String, chunks: Int, documents: Int, bytes: Int,
                    deletions: String? = nil, deletedDocuments: Int? = nil, deletedChunks: Int? = nil) {
            self.file = file
            self.chunks = chunks
            self.documents = documents
            self.bytes = bytes
            self.deletions = deletions
            self.deletedDocuments = deletedDocuments
            self.deletedChunks = deletedChunks
        }

        /// Chunks the scan may return.
        public var liveChunks: Int { chunks - (deletedChunks ?? 0) }

        /// Why this entry cannot be trusted, or nil: its file names must stay inside the
        /// index folder (plain names, not hidden) and its counts must be possible. Any file
        /// that lists segments (the manifest, a build checkpoint) checks every entry. O(1).
        public var damage: String? {
            func plainName(_ n: String) -> Bool { !n.isEmpty && !n.contains("/") && !n.hasPrefix(".") && !n.contains("\0") }
            guard plainName(file), deletions.map(plainName) ?? true else { return "segment file name \"\(file)\" is not a plain file name" }
            // Bounded far above any real segment, so that sums over a manifest's entries
            // (totals, compaction's deleted fraction) cannot overflow.
            guard (0...(1 << 40)).contains(chunks), (0...(1 << 40)).contains(documents), (0...(1 << 52)).contains(bytes), (0...documents).contains(deletedDocuments ?? 0),
                  (0...chunks).contains(deletedChunks ?? 0)
            else { return "segment \(file) has impossible counts" }
            return nil
        }
    }

    /// Which shard of a sharded build an index holds (format-spec.md §13.7): the files whose
    /// path hashes to `index` of `count`, selected with the settings whose fingerprint is
    /// `selection`. `kbindex merge` combines the indexes of shards 0..<count into one.
    public struct Shard: Codable, Equatable, Sendable {
        public var index: Int
        public var count: Int
        /// A fingerprint of the build's file-selection settings; only compared.
        public var selection: String

        public init(index: Int, count: Int, selection: String) {
            self.index = index
            self.count = count
            self.selection = selection
        }

        /// The most shards a build may be cut into (`Sharding.maxCount`, the one constant).
        public static var maxCount: Int { Sharding.maxCount }

        /// Why this entry cannot be trusted, or nil. O(1).
        public var damage: String? {
            guard (1...Self.maxCount).contains(count), (0..<count).contains(index) else { return "shard \(index)/\(count) is impossible" }
            guard !selection.isEmpty, selection.utf8.count <= 128 else { return "shard selection \"\(selection)\" is not a fingerprint" }
            return nil
        }
    }

    public var formatVersion: Int
    public var model: ModelDescriptor
    public var segments: [Segment]
    /// ISO 8601, UTC, e.g. "2025-01-31T12:00:00Z".
    public var createdAt: String
    /// The shard this index holds; nil (and no member in the JSON, so an unsharded manifest
    /// is byte for byte what kbindex wrote before shards existed) for an ordinary index.
    public var shard: Shard?

    public static let fileName = "manifest.json"
    /// The manifest version this code writes for a version-1 model descriptor (2: segments
    /// may name a deletion file); a version-2 descriptor needs `formatVersion(for:)`, 3.
    public static let currentFormatVersion = 2
    /// The versions this code reads (1 has no deletion fields; it reads as version 2 without
    /// them; 3 is version 2 whose `model` may be a version-2 descriptor).
    public static let readableFormatVersions: Set<Int> = [1, 2, 3]

    /// The `formatVersion` kbindex writes for a manifest of `model`: 3 for a version-2 model
    /// descriptor (which readers of version 2 must not misread as a local model), else 2,
    /// byte for byte what kbindex wrote before version 3 existed. O(1).
    public static func formatVersion(for model: ModelDescriptor) -> Int { model.version == 2 ? 3 : currentFormatVersion }

    /// `formatVersion` nil: `Manifest.formatVersion(for: model)`. (Tests pass 1 to write a
    /// manifest as older kbindex versions did.)
    public init(formatVersion: Int? = nil, model: ModelDescriptor, segments: [Segment], createdAt: String? = nil, shard: Shard? = nil) {
        self.formatVersion = formatVersion ?? Self.formatVersion(for: model)
        self.model = model
        self.segments = segments
        self.createdAt = createdAt ?? ISO8601DateFormatter().string(from: Date())
        self.shard = shard
    }

    /// The exact bytes `write(to:)` writes: the manifest as pretty-printed JSON with sorted
    /// keys, its closing brace replaced by a last member `"sha256": "<hex>"` where hex is the
    /// SHA-256 of every byte before `"sha256"` (`ChecksummedJSON`). A `formatVersion` below
    /// what the model needs (`formatVersion(for:)`, e.g. after `model` was replaced) is
    /// written raised to it. O(manifest size).
    public func encoded() throws -> Data {
        var m = self
        if model.version == 2 { m.formatVersion = max(formatVersion, 3) }
        return try ChecksummedJSON.encode(m)
    }

    /// Writes `dir/manifest.json` atomically (write a temporary file, fsync, rename over the old
    /// manifest, fsync the folder): a reader sees the old manifest or the new one, never a mix.
    /// Throws `FileError`. O(manifest size).
    public func write(to dir: String) throws {
        try AtomicFile.write(try encoded(), to: (dir as NSString).appendingPathComponent(Self.fileName))
    }

    /// Reads `dir/manifest.json`, checking its trailing sha256 and its version. Throws
    /// `ManifestError`: `.missing` ("no index in DIR"), `.damaged`,
    /// `.unsupportedVersion`; or `FileError` for other I/O failures. O(manifest size).
    public static func read(from dir: String) throws -> Manifest {
        let path = (dir as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { throw ManifestError.missing(dir: dir) }
        let file = try MappedFile(path: path)
        return try decode(Array(file.bytes), dir: dir)
    }

    /// The manifest in `b`, the bytes of a `manifest.json` that came from `dir` (a folder,
    /// or a remote location such as "s3://bucket/prefix", for messages), with every check
    /// `read(from:)` makes. Throws `ManifestError` (`.damaged`, `.unsupportedVersion`).
    /// O(manifest size).
    public static func decode(_ b: [UInt8], dir: String) throws -> Manifest {
        func damaged(_ r: String) -> ManifestError { .damaged(dir: dir, reason: r) }

        // The last `"sha256"`, then `: "<64 hex>"`, then only `}` and white space.
        if let reason = ChecksummedJSON.damage(b) { throw damaged(reason) }

        struct Version: Decodable { let formatVersion: Int }
        let data = Data(b)
        let version: Version
        do { version = try JSONDecoder().decode(Version.self, from: data) } catch { throw damaged("no formatVersion") }
        guard readableFormatVersions.contains(version.formatVersion) else {
            throw ManifestError.unsupportedVersion(dir: dir, version: version.formatVersion)
        }
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch let e as ModelDescriptorError {
            throw damaged("\(e)")
        } catch { throw damaged("\(error)") }
        guard manifest.model.version != 2 || manifest.formatVersion >= 3 else {
            throw damaged("a version-2 model descriptor in a manifest of format version \(manifest.formatVersion)")
        }
        for s in manifest.segments { if let reason = s.damage { throw damaged(reason) } }
        if let reason = manifest.shard?.damage { throw damaged(reason) }
        return manifest
    }
}

private extension String {
    /// "1, 2, 3" → "1, 2 and 3".
    var replacingLastSeparator: String {
        guard let r = range(of: ", ", options: .backwards) else { return self }
        return replacingCharacters(in: r, with: " and ")
    }
}
