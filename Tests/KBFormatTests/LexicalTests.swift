import Foundation
import KBFormat
import KBTestSupport
import XCTest

final class LexicalTokenizerTests: XCTestCase {
    func testWordsCaseFoldingAndIdentifierParts() {
        XCTAssertEqual(LexicalTokenizer.terms("Hello, World! It's 3.14 end."), ["hello", "world", "it", "s", "3.14", "3", "14", "end"])
        XCTAssertEqual(LexicalTokenizer.terms("os.path.join(a)"), ["os.path.join", "os", "path", "join", "a"])
        XCTAssertEqual(LexicalTokenizer.terms("snake_case_name"), ["snake_case_name", "snake", "case", "name"])
        XCTAssertEqual(LexicalTokenizer.terms("camelCase HTTPServer getURL2Path"),
                       ["camelcase", "camel", "case", "httpserver", "http", "server", "geturl2path", "get", "url2", "path"])
        XCTAssertEqual(LexicalTokenizer.terms("__init__ _private"), ["init", "private"])
        XCTAssertEqual(LexicalTokenizer.terms("Straße ÉCOLE naïve 東京 x²"), ["straße", "école", "naïve", "東京", "x²"])
        XCTAssertEqual(LexicalTokenizer.terms("a..b .x y."), ["a", "b", "x", "y"])
        XCTAssertEqual(LexicalTokenizer.terms(String(repeating: "z", count: 65) + " ok"), ["ok"])
        XCTAssertEqual(LexicalTokenizer.terms(""), [])
        // Canonically equivalent spellings are one term (NFC), byte for byte.
        XCTAssertEqual(LexicalTokenizer.terms("cafe\u{301} CAFÉ").map { Array($0.utf8) }, [Array("café".utf8), Array("café".utf8)])
        let counts = LexicalTokenizer.counts("the cat and the hat")
        XCTAssertEqual(counts.map { String(decoding: $0.term, as: UTF8.self) }, ["the", "cat", "and", "hat"])
        XCTAssertEqual(counts.map(\.tf), [2, 1, 1, 1])
    }
}

final class LexicalSectionTests: TempDirTestCase {
    /// Every chunk's term counts come back from the postings exactly, and lookups of absent
    /// terms (before, between and after the dictionary's terms) find nothing.
    func testRoundTripThroughTheWriterAndReader() throws {
        for seed in [1, 2, 3] as [UInt64] {
            let input = RandomSegment(seed: seed, dims: 8, documents: 3, chunks: 50)
            let p = path("s\(seed).kbseg")
            _ = try input.writer(textBlockSize: 256).write(to: p)
            let r = try SegmentReader(path: p)
            let lex = try XCTUnwrap(r.lexical)
            var fromPostings = [[[UInt8]: Int]](repeating: [:], count: r.chunkCount)
            let all = try lex.allTerms()
            XCTAssertEqual(all.count, lex.termCount)
            XCTAssertEqual(all.map(\.term), all.map(\.term).sorted { $0.lexicographicallyPrecedes($1) })
            for (term, postings) in all {
                XCTAssertEqual(try lex.postings(term), postings)
                for (c, f) in zip(postings.chunks, postings.frequencies) { fromPostings[c][term] = f }
            }
            for (c, chunk) in input.chunks.enumerated() {
                let want = Dictionary(LexicalTokenizer.counts(chunk.text).map { ($0.term, Int($0.tf)) }, uniquingKeysWith: +)
                XCTAssertEqual(fromPostings[c], want, "chunk \(c)")
                XCTAssertEqual(lex.length(ofChunk: c), want.values.reduce(0, +))
            }
            XCTAssertEqual(lex.totalTerms, (0..<r.chunkCount).reduce(0) { $0 + lex.length(ofChunk: $1) })
            for absent in ["", "\u{1}", "zzzzzzzz", "ab\u{10FFFF}"] where !all.contains(where: { $0.term == Array(absent.utf8) }) {
                XCTAssertNil(try lex.postings(Array(absent.utf8)), absent)
            }
        }
    }

    func testDamagedLexicalBytesAreErrorsNotCrashes() throws {
        let p = path("s.kbseg")
        _ = try RandomSegment(seed: 4, dims: 8, documents: 2, chunks: 30).writer().write(to: p)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        let n = Int(good[16])
        var lexAt = 0, lexLen = 0
        for i in 0..<n {
            let e = 64 + 32 * i
            if good[e] == 10 {
                lexAt = (0..<8).reduce(0) { $0 | Int(good[e + 8 + $1]) << (8 * $1) }
                lexLen = (0..<8).reduce(0) { $0 | Int(good[e + 16 + $1]) << (8 * $1) }
            }
        }
        XCTAssertGreaterThan(lexLen, 0)
        var rng = SeededRNG(seed: 9)
        var opened = 0, refusedAtOpen = 0, errors = 0
        for trial in 0..<300 {
            var b = good
            let at = lexAt + (trial < 40 ? trial : Int.random(in: 0..<lexLen, using: &rng))
            b[at] = UInt8.random(in: 0...255, using: &rng)
            // Section bytes are covered only by their own CRC, which open does not check: the
            // reader's own checks are what is tested here.
            try Data(b).write(to: URL(fileURLWithPath: p))
            let r: SegmentReader
            do { r = try SegmentReader(path: p) } catch { refusedAtOpen += 1; continue }
            guard let lex = r.lexical else { return XCTFail("trial \(trial): the segment opened without its LEXICAL section") }
            opened += 1
            do { for (t, _) in try lex.allTerms() { _ = try lex.postings(t) } } catch let e as SegmentError {
                errors += 1
                XCTAssertTrue(e.description.contains(p), "\(e)")
            }
            for c in 0..<lex.chunkCount { _ = lex.length(ofChunk: c) }
        }
        // Every trial is accounted for, and most reach the section's decoder (open checks the
        // section's own header and bounds, which refuses some: 70 of 300 with these seeds);
        // some must be caught by the decoder, or the damage never reached its checks.
        print("LexicalTests: \(opened) damaged sections decoded (\(errors) refused by the decoder), \(refusedAtOpen) refused at open")
        XCTAssertEqual(opened + refusedAtOpen, 300)
        XCTAssertGreaterThanOrEqual(opened, 200)
        XCTAssertGreaterThan(errors, 0)
    }
}
