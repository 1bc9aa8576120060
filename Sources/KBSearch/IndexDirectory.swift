import Foundation
import KBFormat

/// An opened index: the manifest of an index folder and a reader for each of its segments.
///
/// Opening reads the manifest and maps every segment (header, directory and footer are
/// checked; vectors are not copied). The segments stay mapped while the value lives.
public final class IndexDirectory: @unchecked Sendable {
    /// The index folder (e.g. `docs/.kbindex`).
    public let url: URL
    public let manifest: Manifest
    public let segments: [SegmentReader]

    /// The default index folder name inside an indexed folder.
    public static let defaultName = ".kbindex"

    /// Opens the index in `url`. Throws the manifest's or a segment's one-line error.
    public init(url: URL) throws {
        self.url = url
        manifest = try Manifest.read(from: url.path)
        segments = try manifest.segments.map { try SegmentReader(path: url.appendingPathComponent($0.file).path) }
    }

    /// Chunks in all segments.
    public var chunkCount: Int { segments.reduce(0) { $0 + $1.chunkCount } }
    /// Documents in all segments.
    public var documentCount: Int { segments.reduce(0) { $0 + $1.documentCount } }
    /// Bytes on disk: the segments plus the manifest.
    public var bytesOnDisk: Int {
        let manifestBytes = (try? FileManager.default.attributesOfItem(atPath: url.appendingPathComponent(Manifest.fileName).path)[.size] as? Int) ?? 0
        return segments.reduce(manifestBytes) { $0 + $1.fileSize }
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
