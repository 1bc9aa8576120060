import Foundation
import KBCore
import KBFormat

/// The files of an index folder and how a change to the index is committed.
///
/// A change (build, compaction) writes its new segment and deletion files under names no
/// manifest lists yet, each atomically; then replaces `manifest.json` atomically (the commit
/// point: a reader sees the old index or the new one); then removes the files the new
/// manifest no longer names. A crash at any point leaves either the old or the new index,
/// plus at worst some unreferenced files that the next change removes.
public enum IndexFiles {
    /// Segment file suffix.
    public static let segmentSuffix = ".kbseg"
    /// Deletion file suffix.
    public static let deletionSuffix = ".kbdel"

    /// The file names `manifest` refers to: segments and deletion files.
    public static func referenced(by manifest: Manifest) -> Set<String> {
        Set(manifest.segments.map(\.file) + manifest.segments.compactMap(\.deletions))
    }

    /// Commits `manifest` to `dir` (atomic replacement) and then removes what it no longer
    /// names. Precondition: the caller holds the index's write lock, and every file the
    /// manifest names is written and synced. Throws `FileError` when the manifest cannot be
    /// written; the old index is then untouched.
    public static func commit(_ manifest: Manifest, in dir: URL) throws {
        try manifest.write(to: dir.path)
        FaultInjection.point("after-commit")
        removeUnreferenced(in: dir, keeping: referenced(by: manifest))
    }

    /// The files in `dir` that no change needs: segment and deletion files not in `keeping`,
    /// and temporary files a killed writer left (`*.tmp-<pid>`). Empty when the folder cannot
    /// be listed.
    public static func unreferenced(in dir: URL, keeping: Set<String>) -> [String] {
        ((try? DirectoryListing.names(in: dir.path)) ?? []).filter { name in
            let ours = name.hasSuffix(segmentSuffix) || name.hasSuffix(deletionSuffix)
            return (ours && !keeping.contains(name)) || name.contains(".tmp-")
        }
    }

    /// Removes `unreferenced(in:keeping:)`. Only the holder of the index's write lock may
    /// call it (another writer's temporary files would go). Best effort: a file that cannot be
    /// removed stays until the next change.
    public static func removeUnreferenced(in dir: URL, keeping: Set<String>) {
        for (i, name) in unreferenced(in: dir, keeping: keeping).enumerated() {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
            if i == 0 { FaultInjection.point("mid-cleanup") }
        }
    }
}
