import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

@testable import KBSearch

/// `IndexMerge`: the checks on shard indexes and the placement of their files.
final class IndexMergeTests: XCTestCase {
    var root: URL!
    let model = ModelDescriptor(name: "test", dimensions: 8, pooling: "mean", normalized: true,
                                maxTokens: 256, weightsSHA256: String(repeating: "cd", count: 32))

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kbmerge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    /// A shard index in `root/name`: one segment per entry of `segments` (its file name and
    /// its documents' paths, two chunks each), `deleted` documents of segment 0 marked.
    func shard(_ name: String, _ index: Int?, of count: Int = 2, selection: String = "sel",
               segments: [(file: String, paths: [String])], deleted: [Int] = [], model: ModelDescriptor? = nil) throws -> IndexDirectory {
        let dir = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var entries: [Manifest.Segment] = []
        for (s, seg) in segments.enumerated() {
            let w = SegmentWriter(model: model ?? self.model)
            for (d, path) in seg.paths.enumerated() {
                w.addDocument(DocumentRecord(path: path, size: 1, mtimeNanoseconds: 0, contentSHA256: [UInt8](repeating: UInt8(d), count: 32), title: path))
                for c in 0..<2 {
                    w.addChunk(ChunkRecord(document: UInt32(d), ordinal: UInt32(c), lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 1, headingPath: []),
                               text: "\(path) chunk \(c)", vector: (0..<8).map { Float(($0 + d + c + s) % 5) - 2 })
                }
            }
            var entry = Manifest.Segment(file: seg.file, chunks: seg.paths.count * 2, documents: seg.paths.count,
                                         bytes: try w.write(to: dir.appendingPathComponent(seg.file).path))
            if s == 0, !deleted.isEmpty {
                var set = DeletionSet(documentCount: seg.paths.count)
                for d in deleted { set.insert(d) }
                entry.deletions = "\(seg.file).del.kbdel"
                entry.deletedDocuments = set.count
                entry.deletedChunks = set.count * 2
                try set.write(to: dir.appendingPathComponent("\(seg.file).del.kbdel").path)
            }
            entries.append(entry)
        }
        let sh = index.map { Manifest.Shard(index: $0, count: count, selection: selection) }
        try IndexFiles.commit(Manifest(model: model ?? self.model, segments: entries, shard: sh), in: dir)
        return try IndexDirectory(url: dir)
    }

    func assertRefused(_ shards: [IndexDirectory], _ expected: MergeError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try IndexMerge.merge(shards, into: root.appendingPathComponent("out"), replace: false), file: file, line: line) { error in
            XCTAssertEqual(error as? MergeError, expected, file: file, line: line)
        }
        if case .outputExists = expected { return }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("out/manifest.json").path), file: file, line: line)
        // Nor the folder the refused merge created, with its lock file.
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("out").path), file: file, line: line)
    }

    func testNamesKbindexWrites() {
        for name in ["seg-20240101T000000-12-0.kbseg", "seg-20240101T000000-12-0-del-20240102T000000-13.kbdel",
                     "shard1-seg-x.kbseg", "shard12-2-seg-x.kbseg", "shard1-seg-x-del-y.kbdel"] {
            XCTAssertTrue(IndexFiles.isSegmentOrDeletionName(name), name)
        }
        for name in ["backup.kbseg", "a.kbdel", "seg-.kbseg", "shard-seg-x.kbseg", "shard1-notes.kbseg", "seg-x.kbseg.md", "shardx-seg-a.kbseg"] {
            XCTAssertFalse(IndexFiles.isSegmentOrDeletionName(name), name)
        }
        for name in ["manifest.json.tmp-123", "seg-x.kbseg.tmp-9"] { XCTAssertTrue(IndexFiles.isTemporaryName(name), name) }
        for name in ["draft.tmp-2024.md", ".tmp-12", "a.tmp-", "a.tmp-12x"] { XCTAssertFalse(IndexFiles.isTemporaryName(name), name) }
    }

    /// A folder that holds no index and a user's files is never written as an index: its
    /// files named like kbindex's (`backup.kbseg`, `draft.tmp-2024.md`) would go in the cleanup.
    func testAFolderThatIsNotAnIndexIsRefusedAndKeepsItsFiles() throws {
        let s0 = try shard("s0", 0, segments: [("seg-a.kbseg", ["a.md"])])
        let s1 = try shard("s1", 1, segments: [("seg-b.kbseg", ["b.md"])])
        let user = root.appendingPathComponent("user")
        try FileManager.default.createDirectory(at: user, withIntermediateDirectories: true)
        let files = ["draft.tmp-2024.md", "backup.kbseg", "notes.txt"]
        for f in files { try Data("mine".utf8).write(to: user.appendingPathComponent(f)) }
        XCTAssertThrowsError(try IndexMerge.merge([s0, s1], into: user, replace: true)) { error in
            XCTAssertEqual((error as? NotAnIndexFolderError)?.entries, files.sorted())
            XCTAssertTrue("\(error)".contains("choose an empty or new folder"), "\(error)")
        }
        XCTAssertEqual(try DirectoryListing.names(in: user.path).sorted(), files.sorted())
        // Only kbindex's own files (a killed merge's lock, a temporary file): an index folder.
        let own = root.appendingPathComponent("own")
        try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
        for f in [".lock", "manifest.json.tmp-77", ".kbindex-remote.json"] { try Data().write(to: own.appendingPathComponent(f)) }
        XCTAssertNoThrow(try IndexFiles.checkIndexFolder(own))
        XCTAssertNoThrow(try IndexFiles.checkIndexFolder(root.appendingPathComponent("missing")))
    }

    /// The cleanup after a commit removes only names kbindex writes.
    func testTheCleanupRemovesOnlyKbindexsFiles() throws {
        let s0 = try shard("s0", 0, segments: [("seg-a.kbseg", ["a.md"])])
        let mine = ["draft.tmp-2024.md", "backup.kbseg", "old.kbdel"], stale = ["seg-old.kbseg", "shard1-seg-old-del-1.kbdel", "manifest.json.tmp-123"]
        for f in mine + stale { try Data("x".utf8).write(to: s0.url.appendingPathComponent(f)) }
        try IndexFiles.commit(s0.manifest, in: s0.url)
        let left = Set(try DirectoryListing.names(in: s0.url.path))
        for f in mine { XCTAssertTrue(left.contains(f), f) }
        for f in stale { XCTAssertFalse(left.contains(f), f) }
    }

    func testMergeKeepsShardOrderLinksFilesAndCarriesDeletions() throws {
        // Both shards name a segment "seg-a.kbseg": shard 1's gets the prefix.
        let s1 = try shard("s1", 1, segments: [("seg-a.kbseg", ["x.md", "y.md"])])
        let s0 = try shard("s0", 0, segments: [("seg-a.kbseg", ["a.md", "b.md", "c.md"]), ("seg-b.kbseg", ["d.md"])], deleted: [1])
        let out = root.appendingPathComponent("out")
        let stats = try IndexMerge.merge([s1, s0], into: out, replace: false)
        XCTAssertEqual(stats.shards, 2)
        XCTAssertEqual(stats.segments, 3)
        XCTAssertEqual(stats.documents, 5)  // a, c, d, x, y
        XCTAssertEqual(stats.chunks, 10)
        XCTAssertEqual(stats.bytesCopied, 0)
        XCTAssertGreaterThan(stats.bytesLinked, 0)
        let merged = try IndexDirectory(url: out)
        XCTAssertNil(merged.manifest.shard)
        XCTAssertEqual(merged.manifest.segments.map(\.file), ["seg-a.kbseg", "seg-b.kbseg", "shard1-seg-a.kbseg"])
        XCTAssertEqual(merged.manifest.segments[0].deletions, "seg-a.kbseg.del.kbdel")
        XCTAssertEqual(merged.manifest.segments[0].deletedDocuments, 1)
        XCTAssertEqual(merged.manifest.segments[0].deletedChunks, 2)
        XCTAssertNil(merged.manifest.segments[2].deletions)
        XCTAssertEqual((0..<3).flatMap { merged.liveDocuments(inSegment: $0) }, ["a.md", "c.md", "d.md", "x.md", "y.md"])
        XCTAssertEqual(merged.liveChunkCount, 10)
        // Hard links: the very same files.
        let a = try FileStatus.of(s1.url.appendingPathComponent("seg-a.kbseg").path)
        let b = try FileStatus.of(out.appendingPathComponent("shard1-seg-a.kbseg").path)
        XCTAssertEqual(a.inode, b.inode)

        // Refused without replace; with it, the unchanged files are kept (same inode) and the
        // old ones the new manifest no longer names are removed.
        let manifest = try Data(contentsOf: out.appendingPathComponent("manifest.json"))
        assertRefused([s0, s1], .outputExists(output: out.path))
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("manifest.json")), manifest)
        let s1b = try shard("s1b", 1, segments: [("seg-c.kbseg", ["x.md", "z.md"])])
        let again = try IndexMerge.merge([s0, s1b], into: out, replace: true)
        XCTAssertEqual(again.documents, 5)
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".kbseg") || $0.hasSuffix(".kbdel") }.sorted()
        XCTAssertEqual(names, ["seg-a.kbseg", "seg-a.kbseg.del.kbdel", "seg-b.kbseg", "seg-c.kbseg"])
        XCTAssertEqual((0..<3).flatMap { try! IndexDirectory(url: out).liveDocuments(inSegment: $0) }, ["a.md", "c.md", "d.md", "x.md", "z.md"])
    }

    func testCopiedFilesAreEqualAndCounted() throws {
        // Another file system is not available in every test environment; the copy routine
        // is what merge falls back to, checked on its own here.
        let s0 = try shard("s0", 0, of: 1, segments: [("seg.kbseg", ["a.md"])])
        let src = s0.url.appendingPathComponent("seg.kbseg").path, dst = root.appendingPathComponent("copy.kbseg").path
        let n = try AtomicFile.copy(src, to: dst)
        XCTAssertEqual(n, try FileStatus.of(src).size)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dst)), try Data(contentsOf: URL(fileURLWithPath: src)))
        XCTAssertNotEqual(try FileStatus.of(src).inode, try FileStatus.of(dst).inode)
        XCTAssertThrowsError(try AtomicFile.copy(root.appendingPathComponent("missing").path, to: dst))
        XCTAssertThrowsError(try AtomicFile.link(src, to: dst))  // exists
    }

    /// Into a folder on another file system (/dev/shm, a tmpfs, where there is one): the files
    /// are copied, keep their bytes, and a clash still gets the prefix.
    func testAcrossFileSystemsFilesAreCopied() throws {
        let shm = URL(fileURLWithPath: "/dev/shm")
        guard let a = try? FileStatus.of(shm.path), let b = try? FileStatus.of(root.path), a.kind == .directory, a.device != b.device,
              FileManager.default.isWritableFile(atPath: shm.path)
        else { throw XCTSkip("no writable /dev/shm on another file system than \(root.path)") }
        let out = shm.appendingPathComponent("kbmerge-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let s0 = try shard("s0", 0, segments: [("seg-a.kbseg", ["a.md", "b.md"])], deleted: [0])
        let s1 = try shard("s1", 1, segments: [("seg-a.kbseg", ["c.md"])])
        let stats = try IndexMerge.merge([s0, s1], into: out, replace: false)
        XCTAssertEqual(stats.bytesLinked, 0)
        let files = ["seg-a.kbseg", "seg-a.kbseg.del.kbdel"].map { s0.url.appendingPathComponent($0) } + [s1.url.appendingPathComponent("seg-a.kbseg")]
        XCTAssertEqual(stats.bytesCopied, try files.reduce(0) { $0 + (try FileStatus.of($1.path).size) })
        let merged = try IndexDirectory(url: out)
        XCTAssertEqual(merged.manifest.segments.map(\.file), ["seg-a.kbseg", "shard1-seg-a.kbseg"])
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("shard1-seg-a.kbseg")), try Data(contentsOf: files[2]))
        XCTAssertEqual(merged.liveDocuments(inSegment: 0) + merged.liveDocuments(inSegment: 1), ["b.md", "c.md"])
        XCTAssertEqual(merged.damagedSegments().count, 0)
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: out.path).contains { $0.contains(".tmp-") })
    }

    func testChecks() throws {
        let s0 = try shard("s0", 0, segments: [("a.kbseg", ["a.md"])])
        let s1 = try shard("s1", 1, segments: [("b.kbseg", ["b.md"])])
        var other = model
        other.precision = "int8"
        let int8 = try shard("int8", 1, segments: [("b.kbseg", ["b.md"])], model: other)
        XCTAssertThrowsError(try IndexMerge.check([s0, int8])) { error in
            guard case .modelMismatch(_, let a, _, let b)? = error as? MergeError else { return XCTFail("\(error)") }
            XCTAssertTrue(a.contains("test (8 dims") && b.contains("int8"), "\(a) / \(b)")
        }
        let whole = try shard("whole", nil, segments: [("c.kbseg", ["c.md"])])
        assertRefused([s0, whole], .notAShard(index: whole.url.path))
        let of3 = try shard("of3", 1, of: 3, segments: [("b.kbseg", ["b.md"])])
        assertRefused([s0, of3], .countMismatch(first: s0.url.path, firstCount: 2, other: of3.url.path, otherCount: 3))
        let sel = try shard("sel", 1, selection: "other", segments: [("b.kbseg", ["b.md"])])
        assertRefused([s0, sel], .selectionMismatch(first: s0.url.path, other: sel.url.path))
        assertRefused([s0], .incomplete(count: 2, missing: [1], duplicates: []))
        assertRefused([s1, s1], .incomplete(count: 2, missing: [0], duplicates: [1]))
        assertRefused([], .noShards)
        let dup = try shard("dup", 1, segments: [("b.kbseg", ["b.md", "a.md"])])
        assertRefused([s0, dup], .duplicateDocument(path: "a.md", shards: [0, 1]))
        // A deleted version of the same path in another shard is no duplicate.
        let deletedDup = try shard("deldup", 1, segments: [("b.kbseg", ["a.md", "b.md"])], deleted: [0])
        XCTAssertEqual(try IndexMerge.check([deletedDup, s0]).map(\.url), [s0.url, deletedDup.url])
        // A pending checkpoint: the shard's build was interrupted.
        try BuildCheckpoint(model: model, rebuild: false, segments: [Manifest.Segment(file: "aside.kbseg", chunks: 0, documents: 0, bytes: 0)], documents: 0, chunks: 0).write(to: s1.url)
        assertRefused([s0, s1], .interrupted(index: s1.url.path, shard: 1))
        // The output is one of the shards.
        XCTAssertThrowsError(try IndexMerge.merge([s0, deletedDup], into: s0.url, replace: true)) { error in
            XCTAssertEqual(error as? MergeError, .outputIsShard(output: s0.url.path))
        }
        for e: MergeError in [.incomplete(count: 4, missing: [0, 2, 3], duplicates: [1])] {
            XCTAssertEqual(e.description, "shards 0, 2 and 3 of 4 are missing; shard 1 is given more than once")
        }
    }

    func testADamagedSegmentIsRefusedBeforeAnyFileIsPlaced() throws {
        let s0 = try shard("s0", 0, segments: [("a.kbseg", ["a.md"])])
        let s1 = try shard("s1", 1, segments: [("b.kbseg", ["b.md"])])
        // Flip a byte in the middle of shard 1's segment (a section's bytes, not its header).
        let path = s1.url.appendingPathComponent("b.kbseg").path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let s1Reopened: IndexDirectory
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        s1Reopened = try IndexDirectory(url: s1.url)
        XCTAssertThrowsError(try IndexMerge.merge([s0, s1Reopened], into: root.appendingPathComponent("out"), replace: false)) { error in
            XCTAssertTrue(error is SegmentError, "\(error)")
        }
        let out = root.appendingPathComponent("out")
        XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { !$0.hasPrefix(".") }, [])
    }
}
