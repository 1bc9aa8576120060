import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

@testable import KBSearch

/// BM25 against a straightforward implementation of the formula, across segments and deletions.
final class LexicalSearchTests: XCTestCase {
    var dir: URL!
    let model = ModelDescriptor(name: "test", dimensions: 4, pooling: "mean", normalized: true,
                                maxTokens: 256, weightsSHA256: String(repeating: "ef", count: 32))
    static let texts: [[String]] = [  // segment → chunks; one document per chunk
        ["the quick brown fox jumps over the lazy dog", "os.path.join joins path parts", "a fox, a fox, a fox!",
         "readFile reads the whole file", "nothing in common here"],
        ["the dog sleeps", "brown bread and brown butter", "jump jumps jumped", "the the the the the fox"],
        ["read_file and readFile are the same words", "dog dog dog", "zebra"],
    ]

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kblex-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func makeIndex(deleted: [(Int, Int)]) throws -> IndexDirectory {
        var entries: [Manifest.Segment] = []
        for (s, texts) in Self.texts.enumerated() {
            let w = SegmentWriter(model: model)
            for (c, t) in texts.enumerated() {
                w.addDocument(DocumentRecord(path: "s\(s)/\(c).md", size: 0, mtimeNanoseconds: 0, contentSHA256: [UInt8](repeating: 0, count: 32), title: ""))
                w.addChunk(ChunkRecord(document: UInt32(c), ordinal: 0, lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 0, headingPath: []),
                           text: t, vector: [1, 0, 0, 0])
            }
            let name = "seg\(s).kbseg"
            var e = Manifest.Segment(file: name, chunks: texts.count, documents: texts.count, bytes: try w.write(to: dir.appendingPathComponent(name).path))
            let mine = deleted.filter { $0.0 == s }
            if !mine.isEmpty {
                var set = DeletionSet(documentCount: texts.count)
                for (_, d) in mine { set.insert(d) }
                e.deletions = "seg\(s).kbdel"
                e.deletedDocuments = set.count
                e.deletedChunks = set.count
                try set.write(to: dir.appendingPathComponent(e.deletions!).path)
            }
            entries.append(e)
        }
        try IndexFiles.commit(Manifest(model: model, segments: entries), in: dir)
        return try IndexDirectory(url: dir)
    }

    /// Okapi BM25 exactly as format-spec.md §8.11 states it, on the live texts.
    func reference(_ query: String, deleted: Set<[Int]>) -> [(Int, Int, Double)] {
        var docs: [(Int, Int, [String])] = []
        for (s, texts) in Self.texts.enumerated() {
            for (c, t) in texts.enumerated() where !deleted.contains([s, c]) { docs.append((s, c, LexicalTokenizer.terms(t))) }
        }
        let n = Double(docs.count)
        let avg = Double(docs.reduce(0) { $0 + $1.2.count }) / n
        var out: [(Int, Int, Double)] = []
        for (s, c, terms) in docs {
            var score = 0.0
            for q in Set(LexicalTokenizer.terms(query)) {
                let df = Double(docs.filter { $0.2.contains(q) }.count)
                guard df > 0 else { continue }
                let tf = Double(terms.filter { $0 == q }.count)
                guard tf > 0 else { continue }
                let idf = log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * Double(terms.count) / avg))
            }
            if score > 0 { out.append((s, c, score)) }
        }
        return out.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }
    }

    func testScoresEqualTheReferenceAcrossSegmentsAndDeletions() throws {
        for deleted in [[], [(1, 3), (0, 2)], [(2, 1), (2, 2), (0, 0)]] as [[(Int, Int)]] {
            try? FileManager.default.removeItem(at: dir)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let idx = try makeIndex(deleted: deleted)
            let gone = Set(deleted.map { [$0.0, $0.1] })
            for q in ["fox", "the dog", "brown fox jumps", "read file", "readFile", "os.path.join", "path", "zebra THE", "absent words", ""] {
                let got = try LexicalSearch.topK(q, k: 20, in: idx)
                let want = reference(q, deleted: gone)
                XCTAssertEqual(got.map { [$0.segment, $0.chunk] }, want.map { [$0.0, $0.1] }, "\(q), deleted \(deleted)")
                for (g, w) in zip(got, want) { XCTAssertEqual(Double(g.score), w.2, accuracy: 1e-5 * max(1, w.2), q) }
                XCTAssertFalse(got.contains { gone.contains([$0.segment, $0.chunk]) })
            }
            // k and a filter: the filter limits results, not the statistics.
            let filtered = try LexicalSearch.topK("the dog", k: 2, in: idx) { seg, _ in seg.path.hasSuffix("seg1.kbseg") }
            XCTAssertEqual(filtered.map { [$0.segment, $0.chunk] }, Array(reference("the dog", deleted: gone).filter { $0.0 == 1 }.prefix(2)).map { [$0.0, $0.1] })
        }
    }

    /// Segments of both tokenizer versions (an index built before version 1, plus an
    /// incremental build): segment 0 is version 0, segment 1 version 1.
    static let mixed: [(version: Int, chunks: [(heading: [String], text: String)])] = [
        (0, [([], "東京の天気は晴れ"), ([], "Straße und Weg"), ([], "plain words here"), (["天気予報"], "tokyo weather today")]),
        (1, [([], "東京の天気は雨"), ([], "STRASSE ohne Weg"), ([], "東京 タワー"), ([], "plain text and a Weg")]),
    ]

    func makeMixedIndex() throws -> IndexDirectory {
        var entries: [Manifest.Segment] = []
        for (s, segment) in Self.mixed.enumerated() {
            let w = SegmentWriter(model: model)
            w.lexicalTokenizer = segment.version
            for (c, chunk) in segment.chunks.enumerated() {
                w.addDocument(DocumentRecord(path: "m\(s)/\(c).md", size: 0, mtimeNanoseconds: 0, contentSHA256: [UInt8](repeating: UInt8(c), count: 32), title: ""))
                w.addChunk(ChunkRecord(document: UInt32(c), ordinal: 0, lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 0, headingPath: chunk.heading),
                           text: chunk.text, vector: [1, 0, 0, 0],
                           terms: LexicalTokenizer.counts(Compaction.indexedText(heading: chunk.heading, text: chunk.text), version: segment.version))
            }
            let name = "mixed\(s).kbseg"
            entries.append(Manifest.Segment(file: name, chunks: segment.chunks.count, documents: segment.chunks.count,
                                            bytes: try w.write(to: dir.appendingPathComponent(name).path)))
        }
        try IndexFiles.commit(Manifest(model: model, segments: entries), in: dir)
        return try IndexDirectory(url: dir)
    }

    /// format-spec.md §8.11 across versions: each segment matches the query's terms under its
    /// own version (Q_v); df(t) sums over the segments whose Q_v has t; N and avglen are
    /// the whole index's.
    func mixedReference(_ query: String) -> [(Int, Int, Double)] {
        var docs: [(s: Int, c: Int, version: Int, terms: [String])] = []
        for (s, segment) in Self.mixed.enumerated() {
            for (c, chunk) in segment.chunks.enumerated() {
                docs.append((s, c, segment.version, LexicalTokenizer.terms(Compaction.indexedText(heading: chunk.heading, text: chunk.text), version: segment.version)))
            }
        }
        let q = [0: Set(LexicalTokenizer.terms(query, version: 0)), 1: Set(LexicalTokenizer.terms(query, version: 1))]
        let n = Double(docs.count), avg = Double(docs.reduce(0) { $0 + $1.terms.count }) / n
        var out: [(Int, Int, Double)] = []
        for d in docs {
            var score = 0.0
            for t in q[d.version]! {
                let tf = Double(d.terms.filter { $0 == t }.count)
                guard tf > 0 else { continue }
                let df = Double(docs.filter { q[$0.version]!.contains(t) && $0.terms.contains(t) }.count)
                score += log(1 + (n - df + 0.5) / (df + 0.5)) * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * Double(d.terms.count) / avg))
            }
            if score > 0 { out.append((d.s, d.c, score)) }
        }
        return out.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }
    }

    func testMixedTokenizerVersionsAreSearchedEachWithItsOwn() throws {
        let idx = try makeMixedIndex()
        XCTAssertEqual(idx.segments.map { $0.lexical?.tokenizerVersion }, [0, 1])
        for q in ["東京の天気", "Straße", "STRASSE", "weg", "plain", "東京", "天気予報 tokyo", "nothing"] {
            let got = try LexicalSearch.topK(q, k: 10, in: idx)
            let want = mixedReference(q)
            XCTAssertEqual(got.map { [$0.segment, $0.chunk] }, want.map { [$0.0, $0.1] }, q)
            for (g, w) in zip(got, want) { XCTAssertEqual(Double(g.score), w.2, accuracy: 1e-5 * max(1, w.2), q) }
        }
        // The old segment answers as it did: "Straße" is straße there and strasse in the new one,
        // a CJK question matches its whole run only; "weg" is one term in both (df 3).
        XCTAssertEqual(try LexicalSearch.topK("Straße", k: 10, in: idx).map { [$0.segment, $0.chunk] }.sorted { $0.lexicographicallyPrecedes($1) }, [[0, 1], [1, 1]])
        XCTAssertEqual(try LexicalSearch.topK("東京の天気", k: 10, in: idx).map { [$0.segment, $0.chunk] }, [[1, 0], [1, 2]])
        XCTAssertEqual(Set(try LexicalSearch.topK("東京の天気は晴れ", k: 10, in: idx).map { [$0.segment, $0.chunk] }), [[0, 0], [1, 0], [1, 2]])
        XCTAssertEqual(Set(try LexicalSearch.topK("weg", k: 10, in: idx).map { [$0.segment, $0.chunk] }), [[0, 1], [1, 1], [1, 3]])

        // Compaction writes one segment of the current version, re-tokenized from the heading
        // path and text: the old chunks now answer CJK questions too.
        try IndexFiles.commit(try Compaction.compact(idx, stamp: "t"), in: dir)
        let compacted = try IndexDirectory(url: dir)
        XCTAssertEqual(compacted.segments.map { $0.lexical?.tokenizerVersion }, [1])
        let seg = compacted.segments[0]
        let lex = try XCTUnwrap(seg.lexical)
        var terms = [[[UInt8]: Int]](repeating: [:], count: seg.chunkCount)
        for (term, p) in try lex.allTerms() { for (c, f) in zip(p.chunks, p.frequencies) { terms[c][term] = f } }
        for c in 0..<seg.chunkCount {
            let text = Compaction.indexedText(heading: seg.chunk(c).headingPath, text: try seg.text(ofChunk: c))
            XCTAssertEqual(terms[c], Dictionary(LexicalTokenizer.counts(text).map { ($0.term, Int($0.tf)) }, uniquingKeysWith: +), text)
        }
        let paths = { (hits: [Hit]) in hits.map { compacted.segments[$0.segment].document(Int(compacted.segments[$0.segment].chunk($0.chunk).document)).path } }
        XCTAssertEqual(Set(paths(try LexicalSearch.topK("東京の天気", k: 10, in: compacted))), ["m0/0.md", "m0/3.md", "m1/0.md", "m1/2.md"])
        XCTAssertEqual(paths(try LexicalSearch.topK("予報", k: 10, in: compacted)), ["m0/3.md"])
        XCTAssertEqual(Set(paths(try LexicalSearch.topK("strasse", k: 10, in: compacted))), ["m0/1.md", "m1/1.md"])
    }

    func testFusionIsReciprocalRankWithDeterministicTies() {
        let v = [Hit(segment: 0, chunk: 1, score: 0.9), Hit(segment: 0, chunk: 2, score: 0.8), Hit(segment: 1, chunk: 0, score: 0.7)]
        let l = [Hit(segment: 1, chunk: 0, score: 9), Hit(segment: 0, chunk: 5, score: 5)]
        let f = Fusion.reciprocalRank(vector: v, lexical: l, k: 10)
        // (1,0): 1/63 + 1/61; (0,1): 1/61; (0,5): 1/62; (0,2): 1/62 — (0,2) before (0,5) by position.
        XCTAssertEqual(f.map { [$0.segment, $0.chunk] }, [[1, 0], [0, 1], [0, 2], [0, 5]])
        XCTAssertEqual(f[0].score, 1.0 / 63 + 1.0 / 61, accuracy: 1e-15)
        XCTAssertEqual(f[0].vectorRank, 3)
        XCTAssertEqual(f[0].lexicalRank, 1)
        XCTAssertEqual(f[0].lexicalScore, 9)
        XCTAssertNil(f[1].lexicalRank)
        XCTAssertEqual(f[2].score, f[3].score)
        let weighted = Fusion.reciprocalRank(vector: v, lexical: l, k: 2, options: .init(method: .rrf, constant: 0, vectorWeight: 0, lexicalWeight: 2))
        XCTAssertEqual(weighted.map { [$0.segment, $0.chunk] }, [[1, 0], [0, 5]])
        XCTAssertEqual(weighted[0].score, 2.0)
        XCTAssertEqual(Fusion.reciprocalRank(vector: v, lexical: l, k: 10), f, "fusion is deterministic")
    }

    /// A segment written before the LEXICAL section existed: its directory entry turned into
    /// an unknown kind (header CRC resealed), as an old writer would have left it out.
    func testASegmentWithoutALexicalSectionIsAClearError() throws {
        _ = try makeIndex(deleted: [])
        let seg = dir.appendingPathComponent("seg1.kbseg")
        var b = [UInt8](try Data(contentsOf: seg))
        let n = Int(b[16])
        for i in 0..<n where b[64 + 32 * i] == 10 { b[64 + 32 * i] = 42 }
        let crc = CRC32C.checksum(Array(b[0..<(64 + 32 * n)]))
        for k in 0..<4 { b[b.count - 16 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        try Data(b).write(to: seg)
        let idx = try IndexDirectory(url: dir)
        XCTAssertNil(idx.segments[1].lexical)
        XCTAssertFalse(LexicalSearch.isAvailable(in: idx))
        XCTAssertThrowsError(try LexicalSearch.topK("fox", k: 1, in: idx)) { e in
            XCTAssertEqual("\(e)", "segment \(seg.path) has no LEXICAL section (it was built before BM25 search existed)")
            // The advice ("kbindex build --rebuild") is the command line's, not the library's.
        }
    }
}
