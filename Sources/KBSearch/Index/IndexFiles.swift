import Foundation
#if canImport(Glibc)
import Glibc
#endif
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
    ///
    /// A build checkpoint (§13.6) keeps its files through the cleanup, unless the new
    /// manifest names its segments (then it is removed before the cleanup). With
    /// `endingCheckpoint` (the build that wrote it commits it now) it is removed *before* the
    /// manifest is written: a kill between the two then costs the saved work (its segments
    /// become unreferenced), never a later build resuming a checkpoint whose build already
    /// committed (which a compaction or a commit that drops its segments would hide).
    public static func commit(_ manifest: Manifest, in dir: URL, endingCheckpoint: Bool = false) throws {
        if endingCheckpoint {
            BuildCheckpoint.remove(in: dir)
            FaultInjection.point("checkpoint-removed")
        }
        try manifest.write(to: dir.path)
        FaultInjection.point("after-commit")
        if !endingCheckpoint, ((try? BuildCheckpoint.read(from: dir)) ?? nil)?.isCommitted(by: manifest) == true {
            BuildCheckpoint.remove(in: dir)
        }
        removeUnreferenced(in: dir, keeping: referenced(by: manifest))
    }

    /// The files in `dir` that no change needs: segment and deletion files not in `keeping`
    /// nor named by a readable build checkpoint (`BuildCheckpoint.protectedFiles`), and
    /// temporary files a killed writer left (`*.tmp-<pid>`). Empty when the folder cannot be
    /// listed.
    public static func unreferenced(in dir: URL, keeping: Set<String>) -> [String] {
        let keeping = keeping.union(BuildCheckpoint.protectedFiles(in: dir))
        return ((try? DirectoryListing.names(in: dir.path)) ?? []).filter { name in
            let ours = name.hasSuffix(segmentSuffix) || name.hasSuffix(deletionSuffix)
            return (ours && !keeping.contains(name)) || name.contains(".tmp-")
        }
    }

    /// The files in `dir` that a killed build or compaction left behind: those of
    /// `unreferenced(in:keeping:)` for `manifest`, less any a writer still running is writing
    /// now (their names carry its process id: `seg-<time>-<pid>-….kbseg`,
    /// `…-del-<time>-<pid>.kbdel`, `….tmp-<pid>`), so a read-only command can report them
    /// without taking a running build for a crashed one. Deletes nothing: the next change
    /// does. Sorted. O(files in the folder).
    public static func stray(in dir: URL, manifest: Manifest) -> [String] {
        unreferenced(in: dir, keeping: referenced(by: manifest)).filter { name in
            // pid 0 and negative ones name process groups to kill(2), never a writer.
            guard let pid = writerProcess(of: name), pid > 0 else { return true }
            return !(kill(pid, 0) == 0 || errno == EPERM)  // alive: a writer at work
        }.sorted()
    }

    /// The process id in a name written by a build or compaction (see `stray`), if any.
    static func writerProcess(of name: String) -> Int32? {
        if let r = name.range(of: ".tmp-", options: .backwards) { return Int32(name[r.upperBound...]) }
        // "<yyyyMMdd>T<HHmmss>-<pid>", the stamp every writer puts in its file names; the last
        // one is the writer's (a deletion file's name starts with its segment's).
        let parts = name.split(separator: "-")
        for (i, p) in parts.enumerated().reversed() where i + 1 < parts.count && p.count == 15 && p.dropFirst(8).first == "T"
            && p.allSatisfy({ $0 == "T" || $0.isASCII && $0.isNumber }) {
            let pid = parts[i + 1].prefix { $0.isASCII && $0.isNumber }
            return Int32(pid)
        }
        return nil
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
