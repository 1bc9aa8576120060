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
            (isSegmentOrDeletionName(name) && !keeping.contains(name)) || isTemporaryName(name)
        }
    }

    /// Whether `name` is a temporary file kbindex writes (`AtomicFile`, the S3 mirror's
    /// downloads): exactly `<name>.tmp-<digits>` (the writer's process id). A user's
    /// `draft.tmp-2024.md` is not one.
    public static func isTemporaryName(_ name: String) -> Bool {
        guard let r = name.range(of: ".tmp-", options: .backwards), r.lowerBound > name.startIndex else { return false }
        let pid = name[r.upperBound...]
        return !pid.isEmpty && pid.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Whether `name` is a segment or deletion file name kbindex writes: `seg-….kbseg` (build,
    /// compaction), the same with the prefixes a merge gives a name another shard took
    /// (`shard<I>-…`, `shard<I>-<k>-…`), and deletion files `<segment name less .kbseg>-del-….kbdel`
    /// of those. A user's `backup.kbseg` is not one.
    public static func isSegmentOrDeletionName(_ name: String) -> Bool {
        guard name.hasSuffix(segmentSuffix) || name.hasSuffix(deletionSuffix) else { return false }
        var rest = Substring(name)
        func number(_ s: inout Substring) -> Bool {
            let digits = s.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, s.dropFirst(digits.count).first == "-" else { return false }
            s = s.dropFirst(digits.count + 1)
            return true
        }
        while rest.hasPrefix("shard") {
            var r = rest.dropFirst(5)
            guard number(&r) else { return false }
            var k = r
            if number(&k), !r.hasPrefix("seg-") { r = k }
            rest = r
        }
        return rest.hasPrefix("seg-") && rest.count > 4 + segmentSuffix.count
    }

    /// Whether `name` is a file kbindex keeps in an index folder: the manifest, the write
    /// lock, a build checkpoint, segment and deletion files (`isSegmentOrDeletionName`), the
    /// S3 mirror's `.kbindex-remote*` files, temporary files (`isTemporaryName`).
    public static func isIndexFileName(_ name: String) -> Bool {
        [Manifest.fileName, lockFileName, BuildCheckpoint.fileName].contains(name) || name.hasPrefix(".kbindex-remote")
            || isSegmentOrDeletionName(name) || isTemporaryName(name)
    }

    /// The write lock's file name in an index folder.
    public static let lockFileName = ".lock"

    /// Checks that `dir` may be written as an index folder: it does not exist, or holds a
    /// manifest or a build checkpoint, or holds nothing but files kbindex writes
    /// (`isIndexFileName`). Anything else is a user's folder whose files a commit's cleanup
    /// must never see: throws `NotAnIndexFolderError`. O(entries in the folder).
    public static func checkIndexFolder(_ dir: URL) throws {
        guard let names = try? DirectoryListing.names(in: dir.path) else { return }  // missing (or not listable: its writer says why)
        if names.contains(Manifest.fileName) || names.contains(BuildCheckpoint.fileName) { return }
        let foreign = names.filter { !isIndexFileName($0) }.sorted()
        if !foreign.isEmpty { throw NotAnIndexFolderError(folder: dir.path, entries: foreign) }
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

/// An index folder to write that is not one (`IndexFiles.checkIndexFolder`): it holds no index
/// and files kbindex did not write. `description` says what to do.
public struct NotAnIndexFolderError: Error, CustomStringConvertible, Equatable, Sendable {
    public let folder: String
    /// The entries kbindex did not write, sorted.
    public let entries: [String]
    public var description: String {
        message { $0 }
    }

    /// The message, with each file name passed through `display` (the command line escapes
    /// control characters in it).
    public func message(display: (String) -> String) -> String {
        let shown = entries.prefix(3).map(display).joined(separator: ", ") + (entries.count > 3 ? ", …" : "")
        return "\(display(folder)) is not an index folder: it holds no index and other files (\(shown)); choose an empty or new folder for the index"
    }
}
