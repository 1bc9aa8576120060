import Foundation
import KBCore
import KBFormat

/// Why an index folder's `checkpoint.json` cannot be used. `description` is one line.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let reason: String
    /// True when the file is damaged (checksum, JSON, impossible values): it can only be
    /// discarded. False when it could not be read (permissions, an I/O error) or was written
    /// by a newer kbindex: discarding it would throw away work that another try could keep.
    public var isDamage = true
    public var description: String { isDamage ? "the checkpoint \(path) is damaged (\(reason))" : "the checkpoint \(path) cannot be used (\(reason))" }
}

/// The progress a build saved aside (format-spec.md §13.6): `<index>/checkpoint.json` lists
/// segments a running build has finished but not committed, so that a build that is
/// interrupted (Ctrl-C, a kill, a power cut) loses at most the work since its last
/// checkpoint, and the next build continues it.
///
/// Readers never see these segments: only `manifest.json` makes segments part of the index,
/// and a build commits its aside segments together with the rest at its end. Until then the
/// checkpoint protects them from cleanup (`IndexFiles.unreferenced` keeps them).
///
/// A checkpoint is written like the manifest: checksummed JSON (§13.2), atomically replaced.
public struct BuildCheckpoint: Codable, Equatable, Sendable {
    public static let fileName = "checkpoint.json"
    /// The version this code writes and reads.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// The model that embedded the aside segments (precision included). A build continues
    /// the checkpoint only when its own descriptor is equal.
    public var model: ModelDescriptor
    /// Whether the interrupted build was a rebuild: the commit that ends it drops the
    /// segments of the index it replaces.
    public var rebuild: Bool
    /// The segments saved aside, as manifest entries (a deletion file when some of their
    /// documents were replaced).
    public var segments: [Manifest.Segment]
    /// Live documents and chunks in `segments`, for messages.
    public var documents: Int
    public var chunks: Int
    /// ISO 8601, UTC.
    public var createdAt: String

    public init(model: ModelDescriptor, rebuild: Bool, segments: [Manifest.Segment], documents: Int, chunks: Int) {
        formatVersion = Self.currentFormatVersion
        self.model = model
        self.rebuild = rebuild
        self.segments = segments
        self.documents = documents
        self.chunks = chunks
        createdAt = ISO8601DateFormatter().string(from: Date())
    }

    /// The segment and deletion files the checkpoint names.
    public var fileNames: Set<String> { Set(segments.map(\.file) + segments.compactMap(\.deletions)) }

    /// Whether `manifest` names a segment of the checkpoint: the build that wrote it
    /// committed (its aside segments are committed all at once, and only by that build)
    /// and was killed before it removed the checkpoint, which is then obsolete.
    public func isCommitted(by manifest: Manifest) -> Bool {
        let named = Set(manifest.segments.map(\.file))
        return segments.contains { named.contains($0.file) }
    }

    /// Writes `dir/checkpoint.json` atomically (temporary file, fsync, rename, fsync the
    /// folder). Precondition: the caller holds the index's write lock and every file the
    /// checkpoint names is written and synced. Throws `FileError`. O(checkpoint size).
    public func write(to dir: URL) throws {
        try AtomicFile.write(try ChecksummedJSON.encode(self), to: dir.appendingPathComponent(Self.fileName).path)
    }

    /// The checkpoint in `dir`, or nil when there is none. Throws `CheckpointError` when it
    /// is damaged (checksum, JSON, version, a file name that is not a plain name, impossible
    /// counts) or cannot be read. O(checkpoint size).
    public static func read(from dir: URL) throws -> BuildCheckpoint? {
        let path = dir.appendingPathComponent(fileName).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        func damaged(_ r: String) -> CheckpointError { CheckpointError(path: path, reason: r) }
        let bytes: [UInt8]
        do {
            let file = try MappedFile(path: path)
            bytes = withExtendedLifetime(file) { Array(file.bytes) }
        } catch { throw CheckpointError(path: path, reason: "\((error as? FileError)?.reason ?? "\(error)")", isDamage: false) }
        if let reason = ChecksummedJSON.damage(bytes) { throw damaged(reason) }
        let cp: BuildCheckpoint
        do { cp = try JSONDecoder().decode(BuildCheckpoint.self, from: Data(bytes)) } catch let e as ModelDescriptorError {
            // A later kbindex's model descriptor: keep its work for that kbindex.
            if case .unsupportedVersion = e { throw CheckpointError(path: path, reason: "\(e)", isDamage: false) }
            throw damaged("\(e)")
        } catch { throw damaged("\(error)") }
        guard cp.formatVersion == currentFormatVersion else {
            throw CheckpointError(path: path, reason: "format version \(cp.formatVersion), written by a newer kbindex; this one reads \(currentFormatVersion)",
                                  isDamage: cp.formatVersion < currentFormatVersion)
        }
        for s in cp.segments { if let reason = s.damage { throw damaged(reason) } }
        guard cp.documents >= 0, cp.chunks >= 0 else { throw damaged("impossible counts") }
        return cp
    }

    /// Removes `dir/checkpoint.json` (best effort; the folder is synced). The files it named
    /// become unreferenced, and the next cleanup removes them. Only the holder of the write
    /// lock may call it.
    public static func remove(in dir: URL) {
        let path = dir.appendingPathComponent(fileName).path
        guard FileManager.default.fileExists(atPath: path) else { return }
        try? FileManager.default.removeItem(atPath: path)
        AtomicFile.syncDirectory(containing: path)
    }

    /// The files of `dir` that cleanup must keep for a checkpoint: those a readable
    /// checkpoint names (none when there is none, or it is damaged: then its files are
    /// strays). O(checkpoint size).
    public static func protectedFiles(in dir: URL) -> Set<String> {
        ((try? read(from: dir)) ?? nil)?.fileNames ?? []
    }

    /// The checkpoint of an interrupted build that a later build would continue, for
    /// read-only commands (`info`, `verify`): nil when there is none, when it is damaged, or
    /// when `manifest` already names its segments.
    public static func pending(in dir: URL, manifest: Manifest?) -> BuildCheckpoint? {
        guard let cp = (try? read(from: dir)) ?? nil else { return nil }
        if let manifest, cp.isCommitted(by: manifest) { return nil }
        return cp
    }

    /// The aside segments, opened and checked for a build that continues the checkpoint.
    public struct Opened {
        /// The segments that passed every check, as an index (its manifest is made of the
        /// checkpoint's model and those segments); nil when none did.
        public var index: IndexDirectory?
        /// The segments that did not, each with why (missing, damaged section, counts that
        /// do not match the checkpoint).
        public var dropped: [(file: String, reason: String)]
    }

    /// Opens every aside segment in `dir` and checks all its checksums (`SegmentReader
    /// .damagedSections`), its counts against the checkpoint and its deletion file. A segment
    /// that fails is dropped (its documents are simply read and embedded again); the rest
    /// are returned as one index. O(bytes of the aside segments).
    public func open(in dir: URL) -> Opened {
        var good: [Manifest.Segment] = []
        var dropped: [(file: String, reason: String)] = []
        for entry in segments {
            let path = dir.appendingPathComponent(entry.file).path
            do {
                let seg = try SegmentReader(path: path)
                if let reason = model.incompatibility(with: seg.model) { dropped.append((entry.file, reason)); continue }
                let bad = seg.damagedSections()
                if !bad.isEmpty { dropped.append((entry.file, "\(bad.joined(separator: ", ")) \(bad.count == 1 ? "section does" : "sections do") not match \(bad.count == 1 ? "its checksum" : "their checksums")")); continue }
                if seg.chunkCount != entry.chunks || seg.documentCount != entry.documents {
                    dropped.append((entry.file, "it has \(seg.documentCount) documents and \(seg.chunkCount) chunks, the checkpoint says \(entry.documents) and \(entry.chunks)"))
                    continue
                }
                if let name = entry.deletions {
                    let set = try DeletionSet.read(path: dir.appendingPathComponent(name).path)
                    guard set.documentCount == seg.documentCount else { dropped.append((entry.file, "its deletion file does not match it")); continue }
                }
                good.append(entry)
            } catch let e as FileError where e.isMissingFile {
                dropped.append((entry.file, "missing"))
            } catch {
                dropped.append((entry.file, "\(error)"))
            }
        }
        guard !good.isEmpty else { return Opened(index: nil, dropped: dropped) }
        do {
            return Opened(index: try IndexDirectory(url: dir, manifest: Manifest(model: model, segments: good)), dropped: dropped)
        } catch {
            // Checked one by one above; a file removed in between (only by hand) drops them all.
            return Opened(index: nil, dropped: dropped + good.map { ($0.file, "\(error)") })
        }
    }
}
