import Foundation
import KBFormat
import KBTestSupport
import XCTest

@testable import KBSearch

final class SearchTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbsearch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let model = ModelDescriptor(name: "test", dimensions: 40, pooling: "mean", normalized: true,
                                       maxTokens: 256, weightsSHA256: String(repeating: "ab", count: 32))

    static func unit(_ rng: inout SeededRNG, dims: Int) -> [Float] {
        let v = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) }
        let n = v.map { $0 * $0 }.reduce(0, +).squareRoot()
        return v.map { $0 / n }
    }

    /// Writes `segments` segments of random unit vectors (one document per 10 chunks) and a manifest.
    func makeIndex(segments: Int, chunksPerSegment: Int, dims: Int = 40, seed: UInt64 = 1,
                   vectors: ((Int, Int) -> [Float])? = nil) throws -> IndexDirectory {
        var rng = SeededRNG(seed: seed)
        var entries: [Manifest.Segment] = []
        for s in 0..<segments {
            let w = SegmentWriter(model: Self.model)
            for c in 0..<chunksPerSegment {
                if c % 10 == 0 {
                    w.addDocument(DocumentRecord(path: "dir\(s)/doc\(c / 10).md", size: 1, mtimeNanoseconds: 0,
                                                 contentSHA256: [UInt8](repeating: 0, count: 32), title: "t"))
                }
                let v = vectors?(s, c) ?? Self.unit(&rng, dims: dims)
                w.addChunk(ChunkRecord(document: UInt32(c / 10), ordinal: UInt32(c % 10), lineStart: 1, lineEnd: 1,
                                       byteStart: 0, byteEnd: 1, headingPath: []), text: "s\(s) c\(c)", vector: v)
            }
            let name = "seg\(s).kbseg"
            let bytes = try w.write(to: dir.appendingPathComponent(name).path)
            entries.append(Manifest.Segment(file: name, chunks: chunksPerSegment, documents: (chunksPerSegment + 9) / 10, bytes: bytes))
        }
        try Manifest(formatVersion: 1, model: Self.model, segments: entries, createdAt: "2026-11-25T00:00:00Z").write(to: dir.path)
        return try IndexDirectory(url: dir)
    }

    /// The reference: float dot products of the query with every dequantized row, sorted.
    func bruteForce(_ q: [Float], _ idx: IndexDirectory, k: Int, filter: ((SegmentReader, Int) -> Bool)? = nil) -> [(Int, Int, Double)] {
        var all: [(Int, Int, Double)] = []
        for (s, seg) in idx.segments.enumerated() {
            for c in 0..<seg.chunkCount where filter?(seg, Int(seg.chunk(c).document)) ?? true {
                let d = seg.dequantized(c)
                all.append((s, c, zip(q, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }))
            }
        }
        return Array(all.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }.prefix(k))
    }

    func testTopKMatchesBruteForceOverDequantizedVectors() throws {
        let idx = try makeIndex(segments: 3, chunksPerSegment: 257)
        var rng = SeededRNG(seed: 99)
        for _ in 0..<20 {
            let q = Self.unit(&rng, dims: 40)
            let hits = Search.topK(q, k: 10, in: idx)
            let want = bruteForce(q, idx, k: 10)
            XCTAssertEqual(hits.count, 10)
            // Same scores (int8 query quantization moves them by < 1e-2) and the same set of best rows.
            for (h, w) in zip(hits, want) { XCTAssertEqual(Double(h.score), w.2, accuracy: 2e-2) }
            let overlap = Set(hits.map { "\($0.segment)/\($0.chunk)" }).intersection(want.map { "\($0.0)/\($0.1)" })
            XCTAssertGreaterThanOrEqual(overlap.count, 9)
            // Best first, strictly ordered by (score desc, position asc).
            for (a, b) in zip(hits, hits.dropFirst()) { XCTAssertTrue(TopK.worse(b, a)) }
        }
    }

    func testExactScoresWhenTheQueryIsARow() throws {
        let idx = try makeIndex(segments: 2, chunksPerSegment: 50)
        let q = idx.segments[1].dequantized(7)
        let hits = Search.topK(q, k: 1, in: idx)
        XCTAssertEqual(hits.first?.segment, 1)
        XCTAssertEqual(hits.first?.chunk, 7)
        XCTAssertEqual(Double(hits[0].score), 1, accuracy: 1e-2)
    }

    func testTiesBreakByPosition() throws {
        // Every row the same vector: all scores tie, so the order is segment, then chunk.
        let same = (0..<40).map { Float($0 % 5) - 2 }
        let idx = try makeIndex(segments: 2, chunksPerSegment: 30, vectors: { _, _ in same })
        let hits = Search.topK(same, k: 35, in: idx)
        XCTAssertEqual(hits.map { $0.segment * 100 + $0.chunk }, (0..<30).map { $0 } + (0..<5).map { 100 + $0 })
    }

    func testFilterReturnsKHitsWhenKMatchingChunksExist() throws {
        let idx = try makeIndex(segments: 2, chunksPerSegment: 100)
        var rng = SeededRNG(seed: 3)
        let q = Self.unit(&rng, dims: 40)
        let onlyDoc3: (SegmentReader, Int) -> Bool = { seg, d in seg.document(d).path.hasSuffix("/doc3.md") }
        let hits = Search.topK(q, k: 15, in: idx, documentFilter: onlyDoc3)
        XCTAssertEqual(hits.count, 15)  // 10 chunks of doc3 in each of the 2 segments
        for h in hits { XCTAssertTrue(idx.segments[h.segment].document(Int(idx.segments[h.segment].chunk(h.chunk).document)).path.hasSuffix("/doc3.md")) }
        let want = bruteForce(q, idx, k: 15, filter: onlyDoc3)
        XCTAssertEqual(Set(hits.map { "\($0.segment)/\($0.chunk)" }).count, 15)
        XCTAssertGreaterThanOrEqual(Set(hits.map { "\($0.segment)/\($0.chunk)" }).intersection(want.map { "\($0.0)/\($0.1)" }).count, 13)
    }

    func testKLargerThanTheIndexAndZero() throws {
        let idx = try makeIndex(segments: 1, chunksPerSegment: 7)
        var rng = SeededRNG(seed: 4)
        let q = Self.unit(&rng, dims: 40)
        XCTAssertEqual(Search.topK(q, k: 100, in: idx).count, 7)
        XCTAssertEqual(Search.topK(q, k: 0, in: idx).count, 0)
    }

    func testDotIsExactInIntegers() {
        var rng = SeededRNG(seed: 8)
        for n in [0, 1, 15, 64, 384, 1000] {
            let a = (0..<n).map { _ in Int8.random(in: -127...127, using: &rng) }
            let b = (0..<n).map { _ in Int8.random(in: -127...127, using: &rng) }
            let want = zip(a, b).reduce(Int64(0)) { $0 + Int64($1.0) * Int64($1.1) }
            let got = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                Scoring.dot(pa.baseAddress ?? UnsafePointer(bitPattern: 1)!, pb.baseAddress ?? UnsafePointer(bitPattern: 1)!, count: n) } }
            XCTAssertEqual(Int64(got), want, "n \(n)")
        }
    }

    func testLocateFindsTheNearestIndexUpwards() throws {
        _ = try makeIndex(segments: 1, chunksPerSegment: 3)
        // dir itself is the index folder here; make a tree where it sits as .kbindex.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kbloc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let deep = root.appendingPathComponent("a/b/c")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: dir, to: root.appendingPathComponent(".kbindex"))
        XCTAssertEqual(IndexDirectory.locate(from: deep).path, root.appendingPathComponent(".kbindex").standardizedFileURL.path)
    }
}
