import Foundation
import KBFormat
import KBKernels
import KBTestSupport
import XCTest

@testable import KBSearch

/// Convex and rank fusion of the vector and BM25 searches, against references built from the
/// two single-mode searches over every chunk.
final class HybridSearchTests: XCTestCase {
    var dir: URL!
    static let dims = 24
    static let words = ["fox", "dog", "read", "file", "line", "path", "join", "list", "sort", "key",
                        "dict", "error", "import", "module", "class", "loop", "string", "format", "date", "time"]

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbhybrid-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Three segments of 150, 90 and 130 chunks (more than `Fusion.depth` in all, so the two
    /// top lists differ), random unit vectors, texts of 3–12 random words, one document per 5
    /// chunks; `deleted` lists (segment, document) pairs.
    func makeIndex(deleted: [(Int, Int)] = []) throws -> IndexDirectory {
        var rng = SeededRNG(seed: 77)
        let model = ModelDescriptor(name: "test", dimensions: Self.dims, pooling: "mean", normalized: true,
                                    maxTokens: 256, weightsSHA256: String(repeating: "cd", count: 32))
        var entries: [Manifest.Segment] = []
        for (s, n) in [150, 90, 130].enumerated() {
            let w = SegmentWriter(model: model)
            for c in 0..<n {
                if c % 5 == 0 {
                    w.addDocument(DocumentRecord(path: "s\(s)/d\(c / 5).md", size: 1, mtimeNanoseconds: 0,
                                                 contentSHA256: [UInt8](repeating: 0, count: 32), title: "t"))
                }
                let text = (0..<Int.random(in: 3...12, using: &rng)).map { _ in Self.words[Int.random(in: 0..<Self.words.count, using: &rng)] }
                    .joined(separator: " ")
                w.addChunk(ChunkRecord(document: UInt32(c / 5), ordinal: UInt32(c % 5), lineStart: 1, lineEnd: 1,
                                       byteStart: 0, byteEnd: 1, headingPath: []),
                           text: text, vector: SearchTests.unit(&rng, dims: Self.dims), terms: LexicalTokenizer.counts(text))
            }
            let name = "seg\(s).kbseg"
            var e = Manifest.Segment(file: name, chunks: n, documents: n / 5, bytes: try w.write(to: dir.appendingPathComponent(name).path))
            let mine = deleted.filter { $0.0 == s }
            if !mine.isEmpty {
                var set = DeletionSet(documentCount: n / 5)
                for (_, d) in mine { set.insert(d) }
                e.deletions = "seg\(s).kbdel"
                e.deletedDocuments = set.count
                e.deletedChunks = set.count * 5
                try set.write(to: dir.appendingPathComponent(e.deletions!).path)
            }
            entries.append(e)
        }
        try IndexFiles.commit(Manifest(model: model, segments: entries), in: dir)
        return try IndexDirectory(url: dir)
    }

    /// Convex fusion from first principles: every chunk's cosine and BM25 from searches over the
    /// whole index, candidates = the top `Fusion.depth` of each, fused and sorted.
    func convexReference(_ text: String, _ vector: [Float], _ idx: IndexDirectory, k: Int, alpha: Double,
                         filter: DocumentFilter?) throws -> [(Int, Int, Double)] {
        let everything = idx.segments.reduce(0) { $0 + $1.chunkCount }
        let vec = Search.topK(vector, k: everything, in: idx, documentFilter: filter)
        let lex = try LexicalSearch.topK(text, k: everything, in: idx, documentFilter: filter)
        let cos = Dictionary(uniqueKeysWithValues: vec.map { ([$0.segment, $0.chunk], Double($0.score)) })
        let bm = Dictionary(uniqueKeysWithValues: lex.map { ([$0.segment, $0.chunk], Double($0.score)) })
        let candidates = Set(vec.prefix(Fusion.depth).map { [$0.segment, $0.chunk] } + lex.prefix(Fusion.depth).map { [$0.segment, $0.chunk] })
        let top = candidates.map { bm[$0] ?? 0 }.max() ?? 0
        return candidates.map { c in (c[0], c[1], alpha * cos[c]! + (1 - alpha) * (top > 0 ? (bm[c] ?? 0) / top : 0)) }
            .sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }
            .prefix(k).map { $0 }
    }

    func testConvexFusionEqualsTheReferenceWithDeletionsAndFilters() throws {
        let idx = try makeIndex(deleted: [(0, 3), (2, 10), (2, 11)])
        var rng = SeededRNG(seed: 3)
        let texts = ["read file line", "dict key error", "fox", "import module class loop", "absent words", ""]
        let vectors = texts.map { _ in SearchTests.unit(&rng, dims: Self.dims) }
        let filter: DocumentFilter = { _, d in d % 4 != 2 }
        var lexicalOnly = 0
        for alpha in [0.0, 0.5, 0.85, 1.0] {
            for f in [nil, filter] {
                for kernel in DotKernel.supported {
                    let got = try HybridSearch.topK(texts: texts, vectors: vectors, k: 10, in: idx, documentFilter: f,
                                                    fusion: .init(method: .convex, alpha: alpha), search: .init(threads: 2, kernel: kernel))
                    for j in texts.indices {
                        let want = try convexReference(texts[j], vectors[j], idx, k: 10, alpha: alpha, filter: f)
                        XCTAssertEqual(got[j].map { [$0.segment, $0.chunk] }, want.map { [$0.0, $0.1] }, "\(texts[j]) α \(alpha) \(kernel)")
                        for (g, w) in zip(got[j], want) { XCTAssertEqual(g.score, w.2, accuracy: 1e-6, texts[j]) }
                        // Both scores are known for every hit, also those one list missed.
                        XCTAssertFalse(got[j].contains { $0.vectorScore == nil || $0.lexicalScore == nil })
                        lexicalOnly += got[j].filter { $0.vectorRank == nil }.count
                    }
                }
            }
        }
        XCTAssertGreaterThan(lexicalOnly, 0, "some hits came only from BM25, so their cosine was computed")
    }

    func testRankFusionEqualsFusingTheTwoSearches() throws {
        let idx = try makeIndex(deleted: [(1, 2)])
        var rng = SeededRNG(seed: 9)
        let texts = ["path join", "sort list", "string format date time"]
        let vectors = texts.map { _ in SearchTests.unit(&rng, dims: Self.dims) }
        let options = Fusion.Options(method: .rrf, constant: 20, vectorWeight: 1, lexicalWeight: 0.5)
        let got = try HybridSearch.topK(texts: texts, vectors: vectors, k: 7, in: idx, fusion: options)
        for j in texts.indices {
            let want = Fusion.reciprocalRank(vector: Search.topK(vectors[j], k: Fusion.depth, in: idx),
                                             lexical: try LexicalSearch.topK(texts[j], k: Fusion.depth, in: idx), k: 7, options: options)
            XCTAssertEqual(got[j], want)
        }
    }

    /// Worked by hand: α = 0.5; vector A 0.9, B 0.8; BM25 C 10, A 5; C's cosine 0.5, B's BM25 0.
    /// A = 0.45 + 0.25 = 0.70, B = 0.40, C = 0.25 + 0.5 = 0.75.
    func testConvexFusionByHand() {
        let a = Hit(segment: 0, chunk: 1, score: 0.9), b = Hit(segment: 0, chunk: 2, score: 0.8), c = Hit(segment: 1, chunk: 0, score: 10)
        var asked: [[Int]] = []
        let f = Fusion.convex(vector: [a, b], lexical: [c, Hit(segment: 0, chunk: 1, score: 5)], k: 10, alpha: 0.5,
                              cosine: { chunks in asked += chunks.map { [$0.segment, $0.chunk] }; return chunks.map { _ in 0.5 } },
                              bm25: { s, ch in XCTAssertEqual([s, ch], [0, 2]); return 0 })
        XCTAssertEqual(asked, [[1, 0]], "only the chunk the vector list missed is scored again")
        XCTAssertEqual(f.map { [$0.segment, $0.chunk] }, [[1, 0], [0, 1], [0, 2]])
        XCTAssertEqual(f.map(\.score), [0.75, 0.70, 0.40].map { $0 }, accuracy: 1e-6)
        XCTAssertEqual(f[0].vectorRank, nil)
        XCTAssertEqual(f[0].lexicalRank, 1)
        XCTAssertEqual(f[1].vectorRank, 1)
        XCTAssertEqual(f[1].lexicalRank, 2)
        XCTAssertEqual(f[2].lexicalScore, 0)
        // Ties break by position; k limits; no BM25 at all leaves the cosine order.
        let tie = Fusion.convex(vector: [Hit(segment: 2, chunk: 0, score: 0.5), Hit(segment: 0, chunk: 3, score: 0.5)], lexical: [], k: 1,
                                alpha: 0.85, cosine: { _ in XCTFail("nothing to look up"); return [] }, bm25: { _, _ in 0 })
        XCTAssertEqual(tie.map { [$0.segment, $0.chunk] }, [[0, 3]])
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
