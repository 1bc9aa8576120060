import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

@testable import KBSearch

/// Deletions, known documents, compaction and commits, below the CLI.
final class IndexMaintenanceTests: XCTestCase {
    var dir: URL!
    let model = ModelDescriptor(name: "test", dimensions: 24, pooling: "mean", normalized: true,
                                maxTokens: 256, weightsSHA256: String(repeating: "cd", count: 32))

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbmaint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Three segments of 6 documents with 1…4 chunks each; deletes `deleted` (segment,
    /// document) pairs through deletion files, as a build does.
    func makeIndex(deleted: [(Int, Int)] = [], seed: UInt64 = 3) throws -> IndexDirectory {
        var rng = SeededRNG(seed: seed)
        var entries: [Manifest.Segment] = []
        for s in 0..<3 {
            let w = SegmentWriter(model: model, textBlockSize: 200)
            var chunks = 0
            var perDoc: [Int] = []
            for d in 0..<6 {
                w.addDocument(DocumentRecord(path: "s\(s)/d\(d).md", size: UInt64(d), mtimeNanoseconds: Int64(s), contentSHA256: [UInt8](repeating: UInt8(d), count: 32), title: "T\(d)"))
                let n = Int.random(in: 1...4, using: &rng)
                perDoc.append(n)
                for c in 0..<n {
                    let v = (0..<24).map { _ in Float.random(in: -1...1, using: &rng) }
                    w.addChunk(ChunkRecord(document: UInt32(d), ordinal: UInt32(c), lineStart: 1, lineEnd: 2, byteStart: 0, byteEnd: 9, headingPath: ["H\(d)", "c\(c)"]),
                               text: "segment \(s) document \(d) chunk \(c) " + String(repeating: "x", count: c * 40), vector: v)
                    chunks += 1
                }
            }
            let name = "seg-\(s).kbseg"
            var entry = Manifest.Segment(file: name, chunks: chunks, documents: 6, bytes: try w.write(to: dir.appendingPathComponent(name).path))
            let mine = deleted.filter { $0.0 == s }.map(\.1)
            if !mine.isEmpty {
                var set = DeletionSet(documentCount: 6)
                for d in mine { set.insert(d) }
                entry.deletions = "seg-\(s)-del.kbdel"
                entry.deletedDocuments = set.count
                entry.deletedChunks = Set(mine).reduce(0) { $0 + perDoc[$1] }
                try set.write(to: dir.appendingPathComponent(entry.deletions!).path)
            }
            entries.append(entry)
        }
        try IndexFiles.commit(Manifest(model: model, segments: entries), in: dir)
        return try IndexDirectory(url: dir)
    }

    func query(_ seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<24).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    /// (path, ordinal, text, score) of each hit: what a user sees, independent of segment layout.
    func seen(_ hits: [Hit], _ idx: IndexDirectory) throws -> [String] {
        try hits.map { h in
            let seg = idx.segments[h.segment], c = seg.chunk(h.chunk)
            return "\(seg.document(Int(c.document)).path)#\(c.ordinal) \(try seg.text(ofChunk: h.chunk)) \(h.score)"
        }
    }

    func testDeletedDocumentsAreNeverReturnedAndKStillFills() throws {
        let all = try makeIndex()
        let idx = try makeIndex(deleted: [(0, 1), (0, 2), (1, 5), (2, 0)])
        XCTAssertEqual(idx.liveChunkCount, idx.chunkCount - idx.manifest.segments.reduce(0) { $0 + ($1.deletedChunks ?? 0) })
        XCTAssertEqual(idx.liveDocumentCount, 14)
        for qs in 0..<20 as Range<UInt64> {
            let q = query(qs)
            let hits = Search.topK(q, k: 10, in: idx)
            XCTAssertEqual(hits.count, 10)
            for h in hits { XCTAssertFalse(idx.isDeleted(segment: h.segment, document: idx.segments[h.segment].documentIndex(ofChunk: h.chunk))) }
            // Equal to the full index's ranking with the deleted documents taken out.
            let reference = Search.topK(q, k: all.chunkCount, in: all).filter { !idx.isDeleted(segment: $0.segment, document: all.segments[$0.segment].documentIndex(ofChunk: $0.chunk)) }
            XCTAssertEqual(hits, Array(reference.prefix(10)))
            // A filter and the deletions together.
            let filtered = Search.topK(q, k: 3, in: idx) { seg, d in seg.document(d).path.hasPrefix("s0/") }
            XCTAssertEqual(filtered.count, 3)
            XCTAssertTrue(filtered.allSatisfy { $0.segment == 0 && ![1, 2].contains(idx.segments[0].documentIndex(ofChunk: $0.chunk)) })
        }
    }

    func testKnownDocumentsListLiveDocumentsWithTheirChunkCounts() throws {
        let idx = try makeIndex(deleted: [(1, 3)])
        let known = KnownDocuments(idx)
        XCTAssertEqual(known.byPath.count, 17)
        XCTAssertNil(known["s1/d3.md"])
        let k = try XCTUnwrap(known["s2/d4.md"])
        XCTAssertEqual(k.segment, 2)
        XCTAssertEqual(k.document, 4)
        XCTAssertEqual(k.sha256, [UInt8](repeating: 4, count: 32))
        XCTAssertEqual(k.chunks, (0..<idx.segments[2].chunkCount).filter { idx.segments[2].documentIndex(ofChunk: $0) == 4 }.count)
        XCTAssertEqual(known.byPath.values.reduce(0) { $0 + $1[0].chunks }, idx.liveChunkCount)
    }

    func testCompactionKeepsEveryAnswerAndDropsDeletedChunks() throws {
        let idx = try makeIndex(deleted: [(0, 0), (1, 2), (1, 3), (2, 5)])
        let before = try (0..<15 as Range<UInt64>).map { try seen(Search.topK(query($0), k: 8, in: idx), idx) }
        let m = try Compaction.compact(idx, stamp: "t", segmentChunks: 20)
        XCTAssertGreaterThan(m.segments.count, 1, "segmentChunks 20 splits the output")
        XCTAssertTrue(m.segments.allSatisfy { $0.deletions == nil && $0.chunks <= 20 + 3 })
        XCTAssertEqual(m.segments.reduce(0) { $0 + $1.chunks }, idx.liveChunkCount)
        try IndexFiles.commit(m, in: dir)
        // The old reader still answers from its mapping after its files were removed.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("seg-0.kbseg").path))
        XCTAssertEqual(try seen(Search.topK(query(0), k: 8, in: idx), idx), before[0])
        let compacted = try IndexDirectory(url: dir)
        XCTAssertEqual(compacted.chunkCount, compacted.liveChunkCount)
        XCTAssertEqual(compacted.liveDocumentCount, 14)
        for q in 0..<15 { XCTAssertEqual(try seen(Search.topK(query(UInt64(q)), k: 8, in: compacted), compacted), before[q]) }
        // BM25 too: the terms are carried over, and deleted chunks were never counted.
        for q in ["segment 1 document", "chunk 2 xxxx", "document 4"] {
            XCTAssertEqual(try seen(LexicalSearch.topK(q, k: 8, in: compacted), compacted), try seen(LexicalSearch.topK(q, k: 8, in: idx), idx), q)
        }
        XCTAssertEqual(Set(try DirectoryListing.names(in: dir.path)), IndexFiles.referenced(by: m).union([Manifest.fileName]))
    }

    func testCompactionThresholds() {
        func m(_ segs: [(chunks: Int, deleted: Int)]) -> Manifest {
            Manifest(model: model, segments: segs.enumerated().map { i, s in
                .init(file: "\(i).kbseg", chunks: s.chunks, documents: 1, bytes: 1, deletions: s.deleted > 0 ? "\(i).kbdel" : nil,
                      deletedDocuments: s.deleted > 0 ? 1 : nil, deletedChunks: s.deleted > 0 ? s.deleted : nil)
            })
        }
        XCTAssertFalse(Compaction.isWorthwhile(m([(100, 25)])))
        XCTAssertTrue(Compaction.isWorthwhile(m([(100, 26)])))
        XCTAssertFalse(Compaction.isWorthwhile(m(Array(repeating: (10, 0), count: 16))))
        XCTAssertTrue(Compaction.isWorthwhile(m(Array(repeating: (10, 0), count: 17))))
        XCTAssertFalse(Compaction.isWorthwhile(m([])))
    }

    func testCleanupRemovesOnlyUnreferencedIndexFilesAndTemporaries() throws {
        _ = try makeIndex(deleted: [(0, 1)])
        for stray in ["seg-old.kbseg", "seg-old-del.kbdel", "manifest.json.tmp-999", "seg-9.kbseg.tmp-12"] {
            try Data([1]).write(to: dir.appendingPathComponent(stray))
        }
        try Data([1]).write(to: dir.appendingPathComponent("notes.txt"))
        let m = try Manifest.read(from: dir.path)
        IndexFiles.removeUnreferenced(in: dir, keeping: IndexFiles.referenced(by: m))
        XCTAssertEqual(try DirectoryListing.names(in: dir.path), ["manifest.json", "notes.txt", "seg-0-del.kbdel", "seg-0.kbseg", "seg-1.kbseg", "seg-2.kbseg"])
    }

    func testDamagedSegmentsAreFoundAndTheirDocumentsLeftOutOfKnownDocuments() throws {
        var idx = try makeIndex(deleted: [(1, 3)])
        XCTAssertTrue(idx.damagedSegments().isEmpty)
        // One flipped bit in segment 1's TEXT section, which opening cannot see: the last byte
        // from the end whose flip leaves the file readable with only TEXT damaged.
        let url = dir.appendingPathComponent("seg-1.kbseg")
        let original = try Data(contentsOf: url)
        var flipped = false
        for at in stride(from: original.count - 17, to: 0, by: -1) {
            var bytes = original
            bytes[at] ^= 0x01
            try bytes.write(to: url)
            if let seg = try? SegmentReader(path: url.path), seg.damagedSections() == ["TEXT"] { flipped = true; break }
        }
        XCTAssertTrue(flipped)
        idx = try IndexDirectory(url: dir)
        let damaged = idx.damagedSegments()
        XCTAssertEqual(damaged.map(\.segment), [1])
        XCTAssertEqual(damaged.first?.sections, ["TEXT"])
        XCTAssertEqual(idx.liveDocuments(inSegment: 1), ["s1/d0.md", "s1/d1.md", "s1/d2.md", "s1/d4.md", "s1/d5.md"])
        let known = KnownDocuments(idx, skipping: [1])
        XCTAssertEqual(known.byPath.count, 12)
        XCTAssertTrue(known.byPath.keys.allSatisfy { !$0.hasPrefix("s1/") })
    }

    func testCompactionRefusesADamagedSegmentInsteadOfCopyingItUnderFreshChecksums() throws {
        _ = try makeIndex(deleted: [(0, 1)])
        let url = dir.appendingPathComponent("seg-2.kbseg")
        var bytes = try Data(contentsOf: url)
        let before = try DirectoryListing.names(in: dir.path)
        // A flipped bit inside a section (opening still succeeds, the checksum does not match).
        bytes[bytes.count / 4] ^= 0x08
        try bytes.write(to: url)
        let reopened = try IndexDirectory(url: dir)
        XCTAssertEqual(reopened.damagedSegments().map(\.segment), [2])
        XCTAssertThrowsError(try Compaction.compact(reopened, stamp: "t")) { error in
            guard case SegmentError.checksumMismatch(let file, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(file, url.path)
        }
        XCTAssertEqual(try DirectoryListing.names(in: dir.path), before, "nothing written")
    }

    func testStrayFilesAreThoseOfWritersNoLongerRunning() throws {
        _ = try makeIndex()
        XCTAssertEqual(IndexFiles.writerProcess(of: "seg-20260101T000000-4242-3.kbseg"), 4242)
        XCTAssertEqual(IndexFiles.writerProcess(of: "seg-20260101T000000-4242-c-0.kbseg"), 4242)
        XCTAssertEqual(IndexFiles.writerProcess(of: "seg-20260101T000000-4242-0-del-20260102T010203-77.kbdel"), 77)
        XCTAssertEqual(IndexFiles.writerProcess(of: "manifest.json.tmp-99"), 99)
        XCTAssertNil(IndexFiles.writerProcess(of: "seg-old.kbseg"))
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let dead = ended.processIdentifier
        let stray = ["seg-old.kbseg", "seg-20260101T000000-\(dead)-c-0.kbseg", "manifest.json.tmp-\(dead)"]
        let running = ["seg-20260101T000000-\(getpid())-0.kbseg", "manifest.json.tmp-\(getpid())"]
        for name in stray + running { try Data([1]).write(to: dir.appendingPathComponent(name)) }
        XCTAssertEqual(IndexFiles.stray(in: dir, manifest: try Manifest.read(from: dir.path)), stray.sorted())
        // Nothing is removed.
        for name in stray + running { XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path)) }
    }

    func testADeletionFileForAnotherSegmentShapeIsAnErrorAtOpen() throws {
        _ = try makeIndex(deleted: [(2, 1)])
        try DeletionSet(documentCount: 5).write(to: dir.appendingPathComponent("seg-2-del.kbdel").path)
        XCTAssertThrowsError(try IndexDirectory(url: dir)) { e in
            XCTAssertTrue("\(e)".contains("seg-2-del.kbdel is damaged (it covers 5 documents, its segment has 6)"), "\(e)")
        }
    }
}
