import Foundation
import KBFormat
import KBTestSupport
import XCTest

final class LexicalTokenizerTests: XCTestCase {
    /// Version 0 is what segments written before tokenizer versions hold: it must not change.
    func testVersion0WordsLowercaseAndIdentifierParts() {
        func v0(_ s: String) -> [String] { LexicalTokenizer.terms(s, version: 0) }
        XCTAssertEqual(v0("Hello, World! It's 3.14 end."), ["hello", "world", "it", "s", "3.14", "3", "14", "end"])
        XCTAssertEqual(v0("os.path.join(a)"), ["os.path.join", "os", "path", "join", "a"])
        XCTAssertEqual(v0("snake_case_name"), ["snake_case_name", "snake", "case", "name"])
        XCTAssertEqual(v0("camelCase HTTPServer getURL2Path"),
                       ["camelcase", "camel", "case", "httpserver", "http", "server", "geturl2path", "get", "url2", "path"])
        XCTAssertEqual(v0("__init__ _private token_"), ["init", "private", "token"])
        XCTAssertEqual(v0("Straße ÉCOLE naïve 東京 x²"), ["straße", "école", "naïve", "東京", "x²"])
        XCTAssertEqual(v0("a..b .x y."), ["a", "b", "x", "y"])
        XCTAssertEqual(v0(String(repeating: "z", count: 65) + " ok"), ["ok"])
        XCTAssertEqual(v0(""), [])
        // A run of CJK is one term; lowercase mapping, not folding (ς stays, ﬁ stays).
        XCTAssertEqual(v0("東京の天気 ΟΔΟΣ ς ﬁle İ"), ["東京の天気", "οδοσ", "ς", "ﬁle", "i\u{307}"])
        // Canonically equivalent spellings are one term (NFC), byte for byte.
        XCTAssertEqual(v0("cafe\u{301} CAFÉ").map { Array($0.utf8) }, [Array("café".utf8), Array("café".utf8)])
        let counts = LexicalTokenizer.counts("the cat and the hat", version: 0)
        XCTAssertEqual(counts.map { String(decoding: $0.term, as: UTF8.self) }, ["the", "cat", "and", "hat"])
        XCTAssertEqual(counts.map(\.tf), [2, 1, 1, 1])
    }

    /// Version 1 keeps what version 0 does for code and ASCII text.
    func testVersion1KeepsWordsAndIdentifierParts() {
        XCTAssertEqual(LexicalTokenizer.currentVersion, 1)
        for text in ["Hello, World! It's 3.14 end.", "os.path.join(a)", "snake_case_name", "camelCase HTTPServer getURL2Path",
                     "__init__ _private token_", "a..b .x y.", String(repeating: "z", count: 65) + " ok", "",
                     "def back_up(src, dst): self.__dict__['x'] = XMLHttpRequest2"] {
            XCTAssertEqual(LexicalTokenizer.terms(text), LexicalTokenizer.terms(text, version: 0), text)
        }
        XCTAssertEqual(LexicalTokenizer.terms("__init__ token_"), ["init", "token"])
        XCTAssertEqual(LexicalTokenizer.terms("getURL2Path"), ["geturl2path", "get", "url2", "path"])
    }

    /// Han, kana and Hangul runs give overlapping bigrams (one character alone gives itself),
    /// and a CJK run inside a word is cut from the letters and digits around it.
    func testVersion1CJKBigrams() {
        func v1(_ s: String) -> [String] { LexicalTokenizer.terms(s, version: 1) }
        XCTAssertEqual(v1("東京の天気"), ["東京", "京の", "の天", "天気"])
        XCTAssertEqual(v1("東京 天気。晴れ"), ["東京", "天気", "晴れ"])
        XCTAssertEqual(v1("北京今天天气很好"), ["北京", "京今", "今天", "天天", "天气", "气很", "很好"])
        XCTAssertEqual(v1("서울의 날씨"), ["서울", "울의", "날씨"])
        XCTAssertEqual(v1("東 a 京"), ["東", "a", "京"])
        // Mixed words: each CJK run is cut alone; the rest is a word of its own.
        XCTAssertEqual(v1("東京2024"), ["東京", "2024"])
        XCTAssertEqual(v1("Tokyoタワー"), ["tokyo", "タワ", "ワー"])
        XCTAssertEqual(v1("getユーザー名"), ["get", "ユー", "ーザ", "ザー", "ー名"])
        XCTAssertEqual(v1("snake_case_東京.txt"), ["snake_case", "snake", "case", "東京", "txt"])
        XCTAssertEqual(v1("fooBar東京barBaz"), ["foobar", "foo", "bar", "東京", "barbaz", "bar", "baz"])
        // Halfwidth katakana are kana (not widened); fullwidth Latin is not CJK (folded only).
        XCTAssertEqual(v1("ﾃｽﾄ ＡＢＣ"), ["ﾃｽ", "ｽﾄ", "ａｂｃ"])
        // Canonically equivalent spellings give the same bigrams: conjoining jamo, a combining
        // voiced sound mark.
        XCTAssertEqual(v1("\u{1109}\u{1165}\u{110B}\u{116E}\u{11AF}"), ["서울"])
        XCTAssertEqual(v1("か\u{3099}っこう"), v1("がっこう"))
        XCTAssertEqual(v1("がっこう"), ["がっ", "っこ", "こう"])
        XCTAssertEqual(LexicalTokenizer.counts("東京東京").map(\.tf), [2, 1])
        XCTAssertTrue(LexicalTokenizer.isCJK("ー"))
        XCTAssertTrue(LexicalTokenizer.isCJK("\u{2EBF0}"))
        XCTAssertFalse(LexicalTokenizer.isCJK("a"))
        XCTAssertFalse(LexicalTokenizer.isCJK("。"))
        XCTAssertFalse(LexicalTokenizer.isCJK("Ａ"))
    }

    /// Full case folding (CaseFolding.txt C + F), then NFC.
    func testVersion1CaseFolding() {
        func v1(_ s: String) -> [String] { LexicalTokenizer.terms(s, version: 1) }
        XCTAssertEqual(v1("Straße STRASSE strasse ẞ"), ["strasse", "strasse", "strasse", "ss"])
        XCTAssertEqual(v1("ﬁle FILE"), ["file", "file"])
        XCTAssertEqual(v1("ΟΔΟΣ οδος οδοσ ς σ Σ"), ["οδοσ", "οδοσ", "οδοσ", "σ", "σ", "σ"])
        // Default (not Turkic) folding: dotless ı stays, İ is i + combining dot above.
        XCTAssertEqual(v1("ıstanbul ISTANBUL İstanbul istanbul"), ["ıstanbul", "istanbul", "i\u{307}stanbul", "istanbul"])
        // NFC after folding: precomposed, whatever the input.
        XCTAssertEqual(v1("cafe\u{301} CAFÉ Cafe\u{301}").map { Array($0.utf8) }, Array(repeating: Array("café".utf8), count: 3))
        XCTAssertEqual(v1("\u{390} \u{3B9}\u{308}\u{301} \u{399}\u{308}\u{301}"), ["\u{390}", "\u{390}", "\u{390}"])
        // Cherokee folds to its capitals; parts are folded too.
        XCTAssertEqual(v1("ꭰ Ꭰ"), ["Ꭰ", "Ꭰ"])
        XCTAssertEqual(v1("StraßeName"), ["strassename", "strasse", "name"])
        XCTAssertEqual(LexicalTokenizer.caseFolded("MASSE Maße"), "masse masse")
    }

    /// `caseFolded` equals NFC(CaseFolding.txt C+F (NFD(x))) for every scalar Unicode 15.0
    /// assigns, checked against the Unicode Character Database when it is installed (Debian:
    /// unicode-data, CaseFolding-15.0.0.txt).
    func testCaseFoldingEqualsCaseFoldingTxt() throws {
        let file = "/usr/share/unicode/CaseFolding.txt"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw XCTSkip("\(file) is not installed (apt-get install unicode-data)") }
        XCTAssertTrue(text.hasPrefix("# CaseFolding-15.0.0.txt") || text.hasPrefix("# CaseFolding-1"), String(text.prefix(40)))
        var table: [UInt32: [UInt32]] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "#", omittingEmptySubsequences: false)[0].split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count >= 3, fields[1] == "C" || fields[1] == "F", let from = UInt32(fields[0], radix: 16) else { continue }
            table[from] = fields[2].split(separator: " ").compactMap { UInt32($0, radix: 16) }
        }
        XCTAssertGreaterThan(table.count, 1400)
        var checked = 0, wrong: [String] = []
        for v in UInt32(0)...0x10FFFF {
            guard let x = Unicode.Scalar(v), let age = x.properties.age, (age.major, age.minor) <= (15, 0) else { continue }
            var folded = String.UnicodeScalarView()
            for s in String(x).decomposedStringWithCanonicalMapping.unicodeScalars {
                for f in table[s.value] ?? [s.value] { folded.append(Unicode.Scalar(f)!) }
            }
            let want = String(folded).precomposedStringWithCanonicalMapping
            if Array(LexicalTokenizer.caseFolded(String(x)).unicodeScalars) != Array(want.unicodeScalars) { wrong.append(String(v, radix: 16)) }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 140_000)
        XCTAssertEqual(wrong, [], "scalars folded otherwise than CaseFolding.txt")
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

    /// The LEXICAL section's file offset and length in segment bytes `b`.
    func lexicalSection(_ b: [UInt8]) -> (at: Int, length: Int) {
        for i in 0..<Int(b[16]) where b[64 + 32 * i] == 10 {
            let e = 64 + 32 * i
            return ((0..<8).reduce(0) { $0 | Int(b[e + 8 + $1]) << (8 * $1) }, (0..<8).reduce(0) { $0 | Int(b[e + 16 + $1]) << (8 * $1) })
        }
        return (0, 0)
    }

    /// The tokenizer version is the u16 at offset 6 (the block size the u16 at 4): a section
    /// written as before versions existed (u32 block size 16) reads as version 0, with the
    /// version-0 terms; new sections say 1; an unknown version is refused at open.
    func testTokenizerVersionRoundTrip() throws {
        let input = RandomSegment(seed: 7, dims: 8, documents: 3, chunks: 40)
        for version in [0, 1] {
            let p = path("v\(version).kbseg")
            let w = SegmentWriter(model: input.model)
            w.lexicalTokenizer = version
            for d in input.documents { w.addDocument(d) }
            for c in input.chunks { w.addChunk(c.record, text: c.text, vector: c.vector) }
            _ = try w.write(to: p)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
            let (at, length) = lexicalSection(bytes)
            XCTAssertGreaterThan(length, 40)
            XCTAssertEqual(Array(bytes[at + 4..<at + 8]), [16, 0, UInt8(version), 0])
            let reader = try SegmentReader(path: p)
            let lex = try XCTUnwrap(reader.lexical)
            XCTAssertEqual(lex.tokenizerVersion, version)
            var fromPostings = [[[UInt8]: Int]](repeating: [:], count: input.chunks.count)
            for (term, postings) in try lex.allTerms() {
                for (c, f) in zip(postings.chunks, postings.frequencies) { fromPostings[c][term] = f }
            }
            for (c, chunk) in input.chunks.enumerated() {
                let want = Dictionary(LexicalTokenizer.counts(chunk.text, version: version).map { ($0.term, Int($0.tf)) }, uniquingKeysWith: +)
                XCTAssertEqual(fromPostings[c], want, "version \(version), chunk \(c)")
            }
            withExtendedLifetime(reader) {}
        }
        // The random texts hold ß and CJK: the versions' terms differ.
        // (The readers are kept: a LexicalIndex reads the reader's mapping.)
        let r0 = try SegmentReader(path: path("v0.kbseg")), r1 = try SegmentReader(path: path("v1.kbseg"))
        XCTAssertNotEqual(try r0.lexical?.allTerms().map(\.term), try r1.lexical?.allTerms().map(\.term))
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("v1.kbseg"))))
        b[lexicalSection(b).at + 6] = 7
        try Data(b).write(to: URL(fileURLWithPath: path("v7.kbseg")))
        XCTAssertThrowsError(try SegmentReader(path: path("v7.kbseg"))) { e in
            XCTAssertEqual("\(e)", "segment \(self.path("v7.kbseg")) is damaged: LEXICAL: tokenizer version 7 is not one this kbindex knows (0–1); a newer kbindex wrote it")
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
