import Foundation
import KBFormat
import KBKernels
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
                   vectors: ((Int, Int) -> [Float]?)? = nil) throws -> IndexDirectory {
        try makeIndexOfSizes(Array(repeating: chunksPerSegment, count: segments), dims: dims, seed: seed, vectors: vectors)
    }

    /// Segments of the given chunk counts; `vectors(segment, chunk)` may supply a row (nil: random).
    func makeIndexOfSizes(_ sizes: [Int], dims: Int = 40, seed: UInt64 = 1,
                          vectors: ((Int, Int) -> [Float]?)? = nil) throws -> IndexDirectory {
        var rng = SeededRNG(seed: seed)
        var entries: [Manifest.Segment] = []
        let model = ModelDescriptor(name: "test", dimensions: dims, pooling: "mean", normalized: true,
                                    maxTokens: 256, weightsSHA256: String(repeating: "ab", count: 32))
        for (s, chunksPerSegment) in sizes.enumerated() {
            let w = SegmentWriter(model: model)
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
        try Manifest(formatVersion: 1, model: model, segments: entries, createdAt: "2026-11-25T00:00:00Z").write(to: dir.path)
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

    /// The whole pipeline's exact reference: the query quantized as the format specifies, each
    /// row's dot product in Int64, score = qScale · (scale · Float(dot)) in Float, sorted by
    /// (score desc, position asc). Any kernel, thread count or batch must give exactly this.
    func exactReference(_ query: [Float], _ idx: IndexDirectory, k: Int, filter: DocumentFilter? = nil) -> [Hit] {
        var q = [Int8](repeating: 0, count: query.count)
        let qs = query.withUnsafeBufferPointer { x in q.withUnsafeMutableBufferPointer { Quantization.quantize(x, into: $0).scale } }
        var all: [Hit] = []
        for (s, seg) in idx.segments.enumerated() {
            for c in 0..<seg.chunkCount where filter?(seg, seg.documentIndex(ofChunk: c)) ?? true {
                let row = seg.vectorBase + c * seg.rowStride
                var dot: Int64 = 0
                for i in 0..<query.count { dot += Int64(q[i]) * Int64(row[i]) }
                all.append(Hit(segment: s, chunk: c, score: seg.scale(ofChunk: c) * Float(dot)))
            }
        }
        all.sort { TopK.worse($1, $0) }
        return all.prefix(k).map { Hit(segment: $0.segment, chunk: $0.chunk, score: $0.score * qs) }
    }

    func testEveryKernelThreadCountAndBatchSizeGivesTheExactReference() throws {
        // Uneven segments, dims with a tail past every vector width, and a few duplicated rows
        // so that some scores tie exactly.
        var rng = SeededRNG(seed: 5)
        let dims = 103
        let dup = Self.unit(&rng, dims: dims)
        let sizes = [700, 13, 1290, 0, 401]
        let idx = try makeIndexOfSizes(sizes, dims: dims, seed: 11, vectors: { s, c in c % 97 == 5 ? dup : nil })
        var queries = (0..<19).map { _ in Self.unit(&rng, dims: dims) }
        queries.append(dup)
        let filter: DocumentFilter = { seg, d in d % 3 != 1 }
        for k in [1, 10, 64] {
            for f in [nil, filter] {
                let want = queries.map { exactReference($0, idx, k: k, filter: f) }
                for kernel in DotKernel.supported {
                    for threads in [1, 2, 3, 8] {
                        var opts = Search.Options(threads: threads, kernel: kernel)
                        opts.minRowsPerThread = 100
                        let batch = Search.topK(batch: queries, k: k, in: idx, documentFilter: f, options: opts)
                        XCTAssertEqual(batch, want, "batch of \(queries.count), \(kernel), \(threads) threads, k \(k), filter \(f != nil)")
                        // Single queries (and batches too small for the packed kernel) too.
                        for j in [0, 7, queries.count - 1] {
                            XCTAssertEqual(Search.topK(queries[j], k: k, in: idx, documentFilter: f, options: opts), want[j],
                                           "query \(j), \(kernel), \(threads) threads, k \(k)")
                        }
                        XCTAssertEqual(Search.topK(batch: Array(queries[0..<5]), k: k, in: idx, documentFilter: f, options: opts),
                                       Array(want[0..<5]), "batch of 5, \(kernel), \(threads) threads")
                    }
                }
            }
        }
    }

    func testScoresOfChosenChunksEqualTheScanOnEveryKernel() throws {
        var rng = SeededRNG(seed: 21)
        let dims = 103
        let idx = try makeIndexOfSizes([300, 7, 250], dims: dims, seed: 4)
        let all = idx.segments.enumerated().flatMap { s, seg in (0..<seg.chunkCount).map { (segment: s, chunk: $0) } }
        for _ in 0..<5 {
            let q = Self.unit(&rng, dims: dims)
            let want = Dictionary(uniqueKeysWithValues: exactReference(q, idx, k: all.count).map { ([$0.segment, $0.chunk], $0.score) })
            let asked = (0..<40).map { _ in all[Int.random(in: 0..<all.count, using: &rng)] } + [all[0], all[all.count - 1]]
            for kernel in DotKernel.supported {
                let got = Search.scores(q, of: asked, in: idx, kernel: kernel)
                XCTAssertEqual(got, asked.map { want[[$0.segment, $0.chunk]]! }, "\(kernel)")
            }
        }
        XCTAssertEqual(Search.scores(Self.unit(&rng, dims: dims), of: [], in: idx), [])
    }

    func testBatchTiesBreakByPositionOnEveryKernel() throws {
        let same = (0..<64).map { Float($0 % 7) - 3 }
        let idx = try makeIndexOfSizes([300, 300], dims: 64, seed: 2, vectors: { _, _ in same })
        for kernel in DotKernel.supported {
            var opts = Search.Options(threads: 2, kernel: kernel)
            opts.minRowsPerThread = 50
            let hits = Search.topK(batch: Array(repeating: same, count: 9), k: 310, in: idx, options: opts)
            for h in hits { XCTAssertEqual(h.map { $0.segment * 1000 + $0.chunk }, Array(0..<300) + Array(1000..<1010), "\(kernel)") }
        }
    }

    func testFilterKeepsKHitsWhenFewRowsPass() throws {
        // One document in 40 passes; its rows are not the best ones, so a post-filter on the
        // unfiltered top-k would come back (nearly) empty.
        let idx = try makeIndex(segments: 2, chunksPerSegment: 400)
        var rng = SeededRNG(seed: 12)
        let qs = (0..<10).map { _ in Self.unit(&rng, dims: 40) }
        let only: DocumentFilter = { seg, d in d == 17 }
        var opts = Search.Options(threads: 2)
        opts.minRowsPerThread = 64
        for hits in Search.topK(batch: qs, k: 20, in: idx, documentFilter: only, options: opts) {
            XCTAssertEqual(hits.count, 20)
            for h in hits { XCTAssertEqual(idx.segments[h.segment].documentIndex(ofChunk: h.chunk), 17) }
        }
    }

    func testScanPlanCoversEveryRowOnceInBalancedRuns() {
        for sizes in [[0], [5], [1000, 0, 3, 2000], [100, 100, 100], [0, 0, 7]] {
            for threads in [1, 2, 3, 16] {
                let plan = ScanPlan(segments: sizes, threads: threads, minRowsPerThread: 10)
                let total = sizes.reduce(0, +)
                XCTAssertEqual(plan.parts.count, max(1, min(threads, total / 10)), "\(sizes) \(threads)")
                let flat = plan.parts.flatMap { $0 }
                var seen = sizes.map { [Bool](repeating: false, count: $0) }
                for r in flat { for i in r.rows { XCTAssertFalse(seen[r.segment][i]); seen[r.segment][i] = true } }
                XCTAssertTrue(seen.allSatisfy { $0.allSatisfy { $0 } }, "\(sizes) \(threads)")
                let counts = plan.parts.map { $0.reduce(0) { $0 + $1.rows.count } }
                XCTAssertLessThanOrEqual((counts.max() ?? 0) - (counts.min() ?? 0), 1)
            }
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
