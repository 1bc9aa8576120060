import Foundation
import KBCore
import KBFormat

/// Why shard indexes cannot be merged. `description` is one line that says what is wrong;
/// the command line adds what to do.
public enum MergeError: Error, CustomStringConvertible, Equatable, Sendable {
    case noShards
    /// Two shards' model descriptors differ (each folder with its model, described).
    case modelMismatch(first: String, firstModel: String, other: String, otherModel: String)
    /// An index without a `shard` field.
    case notAShard(index: String)
    case countMismatch(first: String, firstCount: Int, other: String, otherCount: Int)
    case selectionMismatch(first: String, other: String)
    /// Shard numbers absent, and those given more than once (each with its folders).
    case incomplete(count: Int, missing: [Int], duplicates: [Int])
    /// A shard whose build was interrupted (a pending checkpoint).
    case interrupted(index: String, shard: Int)
    /// A document path live in two shards.
    case duplicateDocument(path: String, shards: [Int])
    /// The output folder holds an index, and `replace` was not asked.
    case outputExists(output: String)
    /// The output folder is one of the shards' folders.
    case outputIsShard(output: String)
    /// Another writer (a build, compact or merge) holds the output's write lock.
    case outputLocked(output: String)

    public var description: String {
        switch self {
        case .noShards: return "no shard indexes to merge"
        case let .modelMismatch(a, am, b, bm):
            return "the shards were built with different models: \(a) with \(am), \(b) with \(bm)"
        case .notAShard(let i): return "the index in \(i) is not a shard's index (it records no shard)"
        case let .countMismatch(a, an, b, bn):
            return "the shards come from different sharded builds: \(a) is one of \(an) shards, \(b) one of \(bn)"
        case let .selectionMismatch(a, b):
            return "the shards in \(a) and \(b) were built with different file-selection options (--include, --exclude, size limits, --include-minified, --follow)"
        case let .incomplete(n, missing, duplicates):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("\(missing.count == 1 ? "shard" : "shards") \(Self.list(missing)) of \(n) \(missing.count == 1 ? "is" : "are") missing") }
            if !duplicates.isEmpty { parts.append("\(duplicates.count == 1 ? "shard" : "shards") \(Self.list(duplicates)) \(duplicates.count == 1 ? "is" : "are") given more than once") }
            return parts.joined(separator: "; ")
        case let .interrupted(i, s): return "the build of shard \(s) in \(i) was interrupted (it has a pending checkpoint)"
        case let .duplicateDocument(p, s): return "the document \(p) is in shards \(Self.list(s))"
        case .outputExists(let o): return "\(o) already holds an index"
        case .outputIsShard(let o): return "\(o) is one of the shards being merged"
        case .outputLocked(let o): return "another kbindex build, compact or merge is writing \(o)"
        }
    }

    /// "1, 2 and 4" (at most 10 numbers, then "…").
    static func list(_ numbers: [Int]) -> String {
        var items = numbers.prefix(10).map(String.init)
        if numbers.count > 10 { items.append("… (\(numbers.count) in all)") }
        guard items.count > 1, let last = items.popLast() else { return items.first ?? "" }
        return items.joined(separator: ", ") + " and " + last
    }
}

/// Combining the indexes of the shards of a sharded build (format-spec.md §13.7) into one
/// index, without re-embedding: their segment and deletion files are placed in the output
/// folder unchanged (hard links where the file system allows, else copies) and one manifest
/// lists them, shard 0's segments first. Queries compute BM25 statistics over all segments,
/// so the merged index answers as one build of every file would.
public enum IndexMerge {
    /// What a merge did.
    public struct Stats: Equatable, Sendable {
        public var shards = 0
        public var segments = 0
        /// Live chunks and documents of the merged index.
        public var chunks = 0
        public var documents = 0
        /// Bytes placed by hard link and by copy (segments and deletion files; a file the
        /// output already held, linked by an earlier merge, counts as linked).
        public var bytesLinked = 0
        public var bytesCopied = 0
        public init() {}
    }

    /// A model descriptor in a few words, for messages: name, dimensions, precision.
    static func describe(_ m: ModelDescriptor) -> String {
        var s = "\(m.name) (\(m.dimensions) dims"
        if let p = m.precision { s += ", \(p)" }
        return s + ")"
    }

    /// Checks that `shards` can be merged (format-spec.md §13.7): equal model descriptors, a
    /// `shard` in each with one count and one selection, every shard number once, no pending
    /// build checkpoint, no live document path in two shards. Returns them in shard order.
    /// Throws `MergeError`. O(live documents).
    public static func check(_ shards: [IndexDirectory]) throws -> [IndexDirectory] {
        guard let first = shards.first else { throw MergeError.noShards }
        for s in shards.dropFirst() where s.manifest.model != first.manifest.model {
            var a = describe(first.manifest.model), b = describe(s.manifest.model)
            if a == b { a += " and other weights, prompts or settings"; b += " and its own ones" }
            throw MergeError.modelMismatch(first: first.url.path, firstModel: a, other: s.url.path, otherModel: b)
        }
        for s in shards where s.manifest.shard == nil { throw MergeError.notAShard(index: s.url.path) }
        guard let firstShard = first.manifest.shard else { throw MergeError.notAShard(index: first.url.path) }
        for s in shards.dropFirst() {
            guard let sh = s.manifest.shard else { continue }
            if sh.count != firstShard.count {
                throw MergeError.countMismatch(first: first.url.path, firstCount: firstShard.count, other: s.url.path, otherCount: sh.count)
            }
            if sh.selection != firstShard.selection { throw MergeError.selectionMismatch(first: first.url.path, other: s.url.path) }
        }
        let n = firstShard.count
        var seen = [Int](repeating: 0, count: n)
        for s in shards { if let i = s.manifest.shard?.index, i < n { seen[i] += 1 } }
        let missing = (0..<n).filter { seen[$0] == 0 }, duplicates = (0..<n).filter { seen[$0] > 1 }
        if !missing.isEmpty || !duplicates.isEmpty { throw MergeError.incomplete(count: n, missing: missing, duplicates: duplicates) }
        for s in shards where BuildCheckpoint.pending(in: s.url, manifest: s.manifest) != nil {
            throw MergeError.interrupted(index: s.url.path, shard: s.manifest.shard?.index ?? 0)
        }
        let ordered = shards.sorted { ($0.manifest.shard?.index ?? 0) < ($1.manifest.shard?.index ?? 0) }
        var owner: [String: Int] = [:]
        for s in ordered {
            let i = s.manifest.shard?.index ?? 0
            for seg in 0..<s.segments.count {
                for path in s.liveDocuments(inSegment: seg) {
                    if let o = owner[path], o != i { throw MergeError.duplicateDocument(path: path, shards: [o, i]) }
                    owner[path] = i
                }
            }
        }
        return ordered
    }

    /// Merges `shards` (any order) into the index folder `output` (created if needed), under
    /// its write lock (`lockHeld`: the caller holds it already). Checks them (`check`), then
    /// every segment's checksums (`SegmentReader.verify`, `SegmentError`) before placing any
    /// file. Files keep their names; a name another shard's file already took gets the prefix
    /// `shard<I>-`. The manifest lists shard 0's segments in its manifest order, then shard
    /// 1's, and so on, with their deletion members, and no `shard`; it is committed with
    /// `IndexFiles.commit`, which then removes the files the output no longer names. An
    /// output that holds an index is refused unless `replace` (then the old index is replaced
    /// atomically). A folder that is not an index folder is refused before anything is written
    /// (`IndexFiles.checkIndexFolder`, `NotAnIndexFolderError`). Throws `MergeError`,
    /// `SegmentError`, `FileError`, or Foundation's error when the output folder cannot be
    /// created; files placed before a failure are removed, as are the output folder or its
    /// lock file when this merge created them, and the output's old index is untouched. O(bytes copied + index
    /// size for the checksums).
    public static func merge(_ shards: [IndexDirectory], into output: URL, replace: Bool) throws -> Stats {
        let ordered = try check(shards)
        let outputPath = output.standardizedFileURL.resolvingSymlinksInPath().path
        for s in ordered where s.url.standardizedFileURL.resolvingSymlinksInPath().path == outputPath {
            throw MergeError.outputIsShard(output: output.path)
        }
        try IndexFiles.checkIndexFolder(output)
        // A merge that fails leaves no folder it created (nor its lock file) behind.
        let created = !FileManager.default.fileExists(atPath: output.path)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let lockPath = output.appendingPathComponent(IndexFiles.lockFileName).path
        let hadLock = !created && FileManager.default.fileExists(atPath: lockPath)
        var committed = false
        func removeCreated() {
            guard !committed else { return }
            if created { try? FileManager.default.removeItem(at: output) } else if !hadLock { unlink(lockPath) }
        }
        guard let lock = try FileLock.tryLock(lockPath) else {
            if created { try? FileManager.default.removeItem(at: output) }
            throw MergeError.outputLocked(output: output.path)
        }
        defer {
            removeCreated()  // under the lock: no other writer can have started there
            lock.unlock()
        }
        if !replace, FileManager.default.fileExists(atPath: output.appendingPathComponent(Manifest.fileName).path) {
            throw MergeError.outputExists(output: output.path)
        }
        for s in ordered { for seg in s.segments { try seg.verify() } }

        // Names already in the output folder: free only when the file there is the very file
        // to place (a link an earlier merge made); names this merge gave.
        let existing = Set((try? DirectoryListing.names(in: output.path)) ?? [])
        var used: Set<String> = []
        var placed: [String] = []  // files this merge created, removed on failure
        var stats = Stats()
        stats.shards = ordered.count
        func place(_ name: String, of shard: IndexDirectory, index i: Int) throws -> String {
            let src = shard.url.appendingPathComponent(name).path
            let source = try FileStatus.of(src)
            var candidate = name
            var k = 0
            while true {
                let dst = output.appendingPathComponent(candidate).path
                if !used.contains(candidate) {
                    if !existing.contains(candidate) {
                        if try AtomicFile.link(src, to: dst) {
                            stats.bytesLinked += source.size
                        } else {
                            stats.bytesCopied += try AtomicFile.copy(src, to: dst)
                        }
                        used.insert(candidate)
                        placed.append(candidate)
                        return candidate
                    }
                    if let there = try? FileStatus.ofLink(dst), there.kind == .regular, there.device == source.device, there.inode == source.inode {
                        used.insert(candidate)
                        stats.bytesLinked += source.size
                        return candidate
                    }
                }
                k += 1
                candidate = k == 1 ? "shard\(i)-\(name)" : "shard\(i)-\(k)-\(name)"
            }
        }
        var entries: [Manifest.Segment] = []
        do {
            for s in ordered {
                let i = s.manifest.shard?.index ?? 0
                for (k, entry) in s.manifest.segments.enumerated() {
                    var e = entry
                    e.file = try place(entry.file, of: s, index: i)
                    if let d = entry.deletions { e.deletions = try place(d, of: s, index: i) }
                    entries.append(e)
                    stats.segments += 1
                    stats.chunks += entry.liveChunks
                    stats.documents += s.segments[k].documentCount - (s.deletions[k]?.count ?? 0)
                }
            }
            if let first = placed.first { AtomicFile.syncDirectory(containing: output.appendingPathComponent(first).path) }
            try IndexFiles.commit(Manifest(model: ordered[0].manifest.model, segments: entries), in: output)
            committed = true
        } catch {
            for name in placed { try? FileManager.default.removeItem(at: output.appendingPathComponent(name)) }
            throw error
        }
        return stats
    }
}
