import Foundation
import KBCore
import KBFormat

/// An opened index: the manifest of an index folder, a reader for each of its segments and
/// each segment's deletion set.
///
/// Opening reads the manifest, maps every segment (header, directory and footer are checked;
/// vectors are not copied) and reads the deletion files. The segments stay mapped while the
/// value lives, so a compaction that removes them afterwards does not disturb it. Readers
/// take no lock: a build or compaction replaces the manifest atomically and removes the
/// files it no longer names only after that; a reader that read the old manifest just before
/// and finds one of its files gone reads the manifest again (once).
public final class IndexDirectory: @unchecked Sendable {
    /// The index folder (e.g. `docs/.kbindex`).
    public let url: URL
    public let manifest: Manifest
    public let segments: [SegmentReader]
    /// Per segment: its deleted documents (nil when it has no deletion file).
    public let deletions: [DeletionSet?]

    /// The default index folder name inside an indexed folder.
    public static let defaultName = ".kbindex"

    /// Opens the index in `url`. Throws the manifest's, a segment's or a deletion file's
    /// one-line error (`ManifestError`, `SegmentError`, `DeletionFileError`, `FileError`); a
    /// segment whose model is not the manifest's (other dimensions or weights) is
    /// `SegmentError.corrupt`.
    public init(url: URL) throws {
        self.url = url
        var attempt = 0
        while true {
            attempt += 1
            let m = try Manifest.read(from: url.path)
            do {
                (segments, deletions) = try Self.open(m, in: url)
                manifest = m
                return
            } catch let e as FileError where e.isMissingFile && attempt == 1 {
                continue  // a concurrent build or compaction replaced the manifest: read it again
            }
        }
    }

    /// Opens the segments `manifest` lists in `url` as an index, without reading
    /// `manifest.json` (a build opens the segments its checkpoint lists this way, §13.6).
    /// Throws as `init(url:)` does, and `FileError` (missing) when a file is gone.
    public init(url: URL, manifest: Manifest) throws {
        self.url = url
        (segments, deletions) = try Self.open(manifest, in: url)
        self.manifest = manifest
    }

    private static func open(_ m: Manifest, in url: URL) throws -> ([SegmentReader], [DeletionSet?]) {
        let segs = try m.segments.map { try SegmentReader(path: url.appendingPathComponent($0.file).path) }
        // Every question vector is made for the manifest's model: a segment of another
        // model (a hand-copied file) would be scanned with vectors of the wrong length.
        for seg in segs {
            if m.model.incompatibility(with: seg.model) != nil {
                let how = m.model.dimensions != seg.model.dimensions ? "" : m.model.isRemote || seg.model.isRemote ? ", another model" : ", other weights, pooling, normalization or document prompt"
                throw SegmentError.corrupt(file: seg.path, reason: "its vectors come from \(seg.model.name) (\(seg.model.dimensions) dims), the manifest names \(m.model.name) (\(m.model.dimensions) dims\(how))")
            }
        }
        var dels: [DeletionSet?] = []
        for (s, entry) in zip(segs, m.segments) {
            guard let name = entry.deletions else { dels.append(nil); continue }
            let path = url.appendingPathComponent(name).path
            let set = try DeletionSet.read(path: path)
            guard set.documentCount == s.documentCount else {
                throw DeletionFileError(file: path, reason: "it covers \(set.documentCount) documents, its segment has \(s.documentCount)")
            }
            dels.append(set)
        }
        return (segs, dels)
    }

    /// The index folder `url` names: `url` itself, or `url/.kbindex` when that holds an index
    /// (a user may name the indexed folder). One `stat`.
    public static func resolve(_ url: URL) -> URL {
        let inside = url.appendingPathComponent(defaultName)
        return FileManager.default.fileExists(atPath: inside.appendingPathComponent(Manifest.fileName).path) ? inside : url
    }

    /// Chunks in all segments, deleted ones included.
    public var chunkCount: Int { segments.reduce(0) { $0 + $1.chunkCount } }
    /// Documents in all segments, deleted ones included.
    public var documentCount: Int { segments.reduce(0) { $0 + $1.documentCount } }
    /// Chunks a search may return (not deleted).
    public var liveChunkCount: Int { manifest.segments.reduce(0) { $0 + $1.liveChunks } }
    /// Documents not deleted.
    public var liveDocumentCount: Int { zip(segments, deletions).reduce(0) { $0 + $1.0.documentCount - ($1.1?.count ?? 0) } }

    /// Whether document `d` of segment `s` is deleted. O(1).
    public func isDeleted(segment s: Int, document d: Int) -> Bool { deletions[s]?.contains(d) ?? false }

    /// The segments whose sections do not all match their checksums (a flipped bit on disk,
    /// which opening does not see: it checks only headers, directories and record bounds),
    /// with the damaged sections' names, in segment order. Reads every byte of every
    /// segment: O(index size), about as fast as the disk delivers the files (CRC32C runs at
    /// well over 1 GB/s once they are in memory).
    public func damagedSegments() -> [(segment: Int, sections: [String])] {
        segments.enumerated().compactMap { s, seg in
            let bad = seg.damagedSections()
            return bad.isEmpty ? nil : (s, bad)
        }
    }

    /// The paths of the live documents of segment `s`, in document order. For a damaged
    /// segment they may be wrong, never out of bounds (opening checked every reference).
    /// Precondition: 0 ≤ s < segments.count. O(documents of the segment).
    public func liveDocuments(inSegment s: Int) -> [String] {
        (0..<segments[s].documentCount).compactMap { isDeleted(segment: s, document: $0) ? nil : segments[s].document($0).path }
    }

    /// Bytes on disk: the segments, the deletion files and the manifest.
    public var bytesOnDisk: Int {
        func size(_ name: String) -> Int {
            (try? FileStatus.of(url.appendingPathComponent(name).path).size) ?? 0
        }
        return segments.reduce(size(Manifest.fileName)) { $0 + $1.fileSize }
            + manifest.segments.compactMap(\.deletions).reduce(0) { $0 + size($1) }
    }

    /// The index folder to use when none is given: the first `.kbindex` found in `start` or
    /// one of its parents (like git finds `.git`), else `start/.kbindex`.
    public static func locate(from start: URL) -> URL {
        var dir = start.standardizedFileURL
        while true {
            let candidate = dir.appendingPathComponent(defaultName)
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(Manifest.fileName).path) { return candidate }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { return start.standardizedFileURL.appendingPathComponent(defaultName) }
            dir = parent
        }
    }
}
