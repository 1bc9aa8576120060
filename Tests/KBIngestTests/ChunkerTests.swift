import Foundation
import XCTest
import KBTestSupport
@testable import KBIngest

final class ChunkerTests: XCTestCase {
    private func chunker(_ maxTokens: Int = 254, overlap: Int = 32) -> Chunker {
        Chunker(maxTokens: maxTokens, overlapTokens: overlap, countTokens: MiniLM.count)
    }

    // MARK: - Invariants shared by every test

    /// Limits, ordinals and embedding text; and that the chunks tile their sections' text:
    /// within each run of sections with one heading path (joined by "\n\n"), each chunk's text
    /// is exactly the stretch of the run its span names, the first starts at the run's first
    /// non-blank character, the last ends at its last, each starts after the one before and no
    /// later than where it ended (only blanks between them when `overlapAllowed` is false), and
    /// a chunk overlaps the one before only inside one section.
    private func assertInvariants(_ doc: ParsedDocument, _ chunker: Chunker, overlapAllowed: Bool = true,
                                  count: (String) -> Int = MiniLM.count, file: StaticString = #filePath, line: UInt = #line) {
        let spans = chunker.chunksWithSpans(of: doc)
        let chunks = spans.map(\.chunk)
        XCTAssertEqual(chunker.chunks(of: doc), chunks, "chunks(of:) is chunksWithSpans(of:) without the spans", file: file, line: line)
        XCTAssertEqual(chunks.map(\.ordinal), Array(0..<chunks.count), "ordinals", file: file, line: line)
        for c in chunks {
            let tokens = count(c.embeddingText)
            XCTAssertLessThanOrEqual(tokens, chunker.maxTokens, "chunk \(c.ordinal) has \(tokens) tokens", file: file, line: line)
            XCTAssertLessThanOrEqual(c.text.utf8.count, chunker.maxTextBytes, file: file, line: line)
            XCTAssertFalse(c.text.allSatisfy(\.isWhitespace), "chunk \(c.ordinal) is blank", file: file, line: line)
            XCTAssertTrue(c.embeddingText.hasSuffix(c.text), file: file, line: line)
            if c.headingPath.isEmpty { XCTAssertEqual(c.embeddingText, c.text, file: file, line: line) }
            XCTAssertLessThanOrEqual(c.lineStart, c.lineEnd, file: file, line: line)
            XCTAssertLessThan(c.byteStart, c.byteEnd, file: file, line: line)
        }
        func blank(_ b: ArraySlice<UInt8>) -> Bool { b.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D || $0 == 0x0B || $0 == 0x0C } }
        var k = 0
        var s = 0
        while s < doc.sections.count {
            var e = s + 1
            while e < doc.sections.count && doc.sections[e].headingPath == doc.sections[s].headingPath { e += 1 }
            let texts = doc.sections[s..<e].map { Array($0.text.utf8) }
            let run = Array(texts.joined(separator: Array("\n\n".utf8)))
            // Where each section's text ends in the run.
            var sectionEnds: [Int] = []
            var offset = 0
            for t in texts { offset += t.count; sectionEnds.append(offset); offset += 2 }
            func section(_ at: Int) -> Int { sectionEnds.firstIndex { at < $0 } ?? sectionEnds.count - 1 }
            let first = run.firstIndex { !blank([$0]) }
            let last = run.lastIndex { !blank([$0]) }
            var previous: Range<Int>?
            while k < spans.count && spans[k].span.firstSection == s {
                let (c, span) = spans[k]
                let r = span.range
                guard r.lowerBound >= 0, r.upperBound <= run.count, r.lowerBound < r.upperBound else {
                    XCTFail("chunk \(c.ordinal): span \(r) outside the run (0..<\(run.count))", file: file, line: line); return
                }
                XCTAssertEqual(String(decoding: run[r], as: UTF8.self), c.text, "chunk \(c.ordinal) is not its span", file: file, line: line)
                XCTAssertEqual(c.headingPath, doc.sections[s].headingPath, file: file, line: line)
                if let p = previous {
                    XCTAssertGreaterThan(r.lowerBound, p.lowerBound, "chunk \(c.ordinal) does not move on", file: file, line: line)
                    if r.lowerBound >= p.upperBound {
                        XCTAssertTrue(blank(run[p.upperBound..<r.lowerBound]), "gap before chunk \(c.ordinal)", file: file, line: line)
                    } else {
                        XCTAssertTrue(overlapAllowed, "chunk \(c.ordinal) overlaps", file: file, line: line)
                        XCTAssertEqual(section(r.lowerBound), section(p.upperBound - 1), "chunk \(c.ordinal) overlaps across sections",
                                       file: file, line: line)
                    }
                } else {
                    XCTAssertEqual(r.lowerBound, first, "the first chunk of the run does not start at its text", file: file, line: line)
                }
                previous = r
                k += 1
            }
            if let p = previous {
                XCTAssertEqual(p.upperBound, last.map { $0 + 1 }, "the last chunk of the run does not reach its end", file: file, line: line)
            } else {
                XCTAssertNil(first, "a run with text has no chunks", file: file, line: line)
            }
            s = e
        }
        XCTAssertEqual(k, chunks.count, "chunks left over, or out of section order", file: file, line: line)
    }

    private func nonWhitespace(_ s: String) -> [Unicode.Scalar] { s.unicodeScalars.filter { !$0.properties.isWhitespace } }

    /// Every word of each chunk is in its source lines and in its source bytes.
    private func assertRangesHoldTheText(_ source: String, _ chunks: [Chunk], file: StaticString = #filePath, line: UInt = #line) {
        let index = SourceIndex(source)
        for c in chunks {
            let lines = index.lines(c.lineStart, c.lineEnd)
            let bytes = index.bytes(c.byteStart, c.byteEnd)
            for word in alphanumericWords(c.text) {
                if !lines.contains(word) || !bytes.contains(word) {
                    XCTFail("chunk \(c.ordinal): \(word) not in lines \(c.lineStart)-\(c.lineEnd) / bytes \(c.byteStart)..<\(c.byteEnd)",
                            file: file, line: line)
                    break
                }
            }
        }
    }

    // MARK: - Structure

    func testMarkdownChunksFollowSectionsWithExactLines() {
        let source = MarkdownParserTests.guide
        let doc = parse(source, .markdown, path: "guide.md")
        let chunker = chunker()
        let chunks = chunker.chunks(of: doc)
        assertInvariants(doc, chunker)
        assertRangesHoldTheText(source, chunks)
        XCTAssertEqual(chunks.map(\.headingPath), doc.sections.map(\.headingPath), "one chunk per small section, none merged")
        let linux = chunks[2]
        XCTAssertEqual(linux.embeddingText, "Guide › Install › Linux\n" + linux.text)
        XCTAssertTrue(linux.text.hasPrefix("Run the installer.") && linux.text.hasSuffix("make install\n```"))
        // The text's own lines: from "Run the …" (line 15) to the closing fence (line 20); the
        // heading line is in the path, not the range.
        XCTAssertEqual(linux.lineStart, 15)
        XCTAssertEqual(linux.lineEnd, 20)
        XCTAssertTrue(sourceBytes(source, linux.byteStart, linux.byteEnd).hasPrefix("Run the [installer](https://"))
        XCTAssertTrue(sourceBytes(source, linux.byteStart, linux.byteEnd).hasSuffix("make install\n```"))
        XCTAssertEqual(chunks[0].embeddingText, "Preface before any heading.", "no heading: the text alone")
        XCTAssertEqual(sourceLines(source, chunks[0].lineStart, chunks[0].lineEnd), "Preface before any heading.")
    }

    func testPlainTextParagraphsMergeUpToTheLimitWithExactBytes() {
        let paragraphs = (1...12).map { "Paragraph number \($0) says a few words about topic \($0)." }
        let source = paragraphs.joined(separator: "\n\n") + "\n"
        let doc = parse(source, .text)
        let big = chunker().chunks(of: doc)
        XCTAssertEqual(big.count, 1)
        XCTAssertEqual(big[0].text, paragraphs.joined(separator: "\n\n"))
        XCTAssertEqual(big[0].lineStart, 1)
        XCTAssertEqual(big[0].lineEnd, 23)
        XCTAssertEqual(sourceBytes(source, big[0].byteStart, big[0].byteEnd), big[0].text)
        // With room for about three paragraphs: whole paragraphs per chunk, no overlap between them.
        let small = chunker(48, overlap: 16)
        let chunks = small.chunks(of: doc)
        XCTAssertGreaterThanOrEqual(chunks.count, 3)
        assertInvariants(doc, small, overlapAllowed: false)
        for c in chunks {
            XCTAssertTrue(c.text.hasPrefix("Paragraph number") && c.text.hasSuffix("."), c.text)
            XCTAssertEqual(sourceBytes(source, c.byteStart, c.byteEnd), c.text)
            XCTAssertEqual(sourceLines(source, c.lineStart, c.lineEnd), c.text)
        }
    }

    func testCodeChunksByDeclaration() {
        let source = """
            import Foundation

            func alpha() -> Int {
                return 1
            }

            struct Beta {
                var x = 2
            }
            """
        let doc = parse(source, .code, language: "swift", path: "Sources/M/File.swift")
        let chunks = chunker().chunks(of: doc)
        XCTAssertEqual(chunks.map(\.headingPath), [["File.swift"], ["File.swift", "alpha"], ["File.swift", "Beta"]])
        XCTAssertEqual(chunks[1].embeddingText, "File.swift › alpha\nfunc alpha() -> Int {\n    return 1\n}")
        XCTAssertEqual(chunks.map(\.lineStart), [1, 3, 7])
        XCTAssertEqual(chunks.map(\.lineEnd), [1, 5, 9])
        for c in chunks { XCTAssertEqual(sourceBytes(source, c.byteStart, c.byteEnd), c.text) }
    }

    // MARK: - Splitting and overlap

    private func sentences(_ n: Int, seed: UInt64) -> [String] {
        var rng = SeededRNG(seed: seed)
        let words = ["index", "chunk", "token", "vector", "search", "model", "query", "heading", "paragraph", "section",
                     "embedding", "retrieval", "document", "folder", "limit", "overlap", "sentence", "line", "word"]
        return (0..<n).map { i in
            let body = (0..<Int.random(in: 5...14, using: &rng)).map { _ in words.randomElement(using: &rng)! }
            return "S\(i) " + body.joined(separator: " ") + "."
        }
    }

    func testLongSectionSplitsAtSentencesWithOverlap() {
        // One paragraph of 80 sentences, hard-wrapped at about 70 columns.
        let text = sentences(80, seed: 1).joined(separator: " ")
        var wrapped: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if current.count + word.count > 70 { wrapped.append(current); current = "" }
            current += current.isEmpty ? String(word) : " " + word
        }
        wrapped.append(current)
        let source = "# Long\n\n" + wrapped.joined(separator: "\n") + "\n"
        let doc = parse(source, .markdown)
        let chunker = chunker(64, overlap: 16)
        let chunks = chunker.chunks(of: doc)
        XCTAssertGreaterThan(chunks.count, 5)
        assertInvariants(doc, chunker)
        assertRangesHoldTheText(source, chunks)
        for (a, b) in zip(chunks, chunks.dropFirst()) {
            // Each chunk after the first begins with the last sentence(s) of the one before.
            let shared = longestSuffixPrefix(a.text, b.text)
            XCTAssertFalse(shared.isEmpty, "no overlap between \(a.ordinal) and \(b.ordinal)")
            // Whole sentences; or, where the last sentence alone is over the overlap, its last
            // line(s) or words: then the overlap holds no sentence start.
            XCTAssertTrue(shared.hasSuffix("."), "overlap ends at the sentence end: \(shared)")
            XCTAssertTrue(shared.hasPrefix("S") || !shared.contains(". S"), "overlap is whole sentences or part of one: \(shared)")
            XCTAssertLessThanOrEqual(MiniLM.count(shared), 16)
            XCTAssertTrue(a.text.hasSuffix("."), "chunks end at sentence ends")
            XCTAssertLessThanOrEqual(b.lineStart, a.lineEnd, "overlapping chunks share a line")
        }
        // Without overlap, the chunks partition the text.
        let plain = self.chunker(64, overlap: 0)
        assertInvariants(doc, plain, overlapAllowed: false)
    }

    private func longestSuffixPrefix(_ a: String, _ b: String) -> String {
        let a = Array(a), b = Array(b)
        var n = min(a.count, b.count)
        while n > 0 {
            if Array(a[(a.count - n)...]) == Array(b[0..<n]) { return String(b[0..<n]) }
            n -= 1
        }
        return ""
    }

    func testOverlapNeverCrossesSections() {
        let first = sentences(30, seed: 2).joined(separator: " ")
        let second = sentences(30, seed: 3).map { "T" + $0.dropFirst() }.joined(separator: " ")
        let doc = parse("# A\n\n\(first)\n\n# B\n\n\(second)\n", .markdown)
        let chunker = chunker(64, overlap: 24)
        let chunks = chunker.chunks(of: doc)
        assertInvariants(doc, chunker)
        let firstOfB = chunks.first { $0.headingPath == ["B"] }!
        XCTAssertTrue(firstOfB.text.hasPrefix("T0 "), firstOfB.text)
        XCTAssertFalse(chunks.filter { $0.headingPath == ["B"] }.contains { $0.text.contains("S") })
    }

    func testLongLinesOfCodeSplitAtLineEndsWithExactRanges() {
        var lines = ["func big() {"]
        for i in 0..<300 { lines.append("    let value\(i) = compute(\(i), factor: \(i * 7)) + offset") }
        lines.append("}")
        let source = "import X\n\n" + lines.joined(separator: "\n") + "\n"
        let doc = parse(source, .code, language: "swift", path: "big.swift")
        let chunker = chunker(128, overlap: 20)
        let chunks = chunker.chunks(of: doc)
        XCTAssertGreaterThan(chunks.count, 10)
        assertInvariants(doc, chunker)
        for c in chunks {
            // Whole lines, indentation kept: the text is exactly its source lines and bytes.
            XCTAssertEqual(sourceLines(source, c.lineStart, c.lineEnd), c.text)
            XCTAssertEqual(sourceBytes(source, c.byteStart, c.byteEnd), c.text)
        }
        let body = chunks.filter { $0.headingPath == ["big.swift", "big"] }
        for (a, b) in zip(body, body.dropFirst()) {
            XCTAssertLessThanOrEqual(b.lineStart, a.lineEnd, "a line or two of overlap")
            XCTAssertGreaterThan(b.lineStart, a.lineStart)
        }
    }

    func testHugeWordIsSplitNotDropped() {
        // Base64: '+' and '/' are punctuation to BERT, so this one "word" is many tokens.
        var rng = SeededRNG(seed: 4)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let blob = String((0..<6000).map { _ in alphabet.randomElement(using: &rng)! })
        XCTAssertGreaterThan(MiniLM.count(blob), 1000)
        let source = "before the blob\n\(blob)\nafter the blob\n"
        let doc = parse(source, .text)
        for overlap in [0, 16] {
            let chunker = chunker(64, overlap: overlap)
            let chunks = chunker.chunks(of: doc)
            XCTAssertGreaterThan(chunks.count, 15)
            assertInvariants(doc, chunker, overlapAllowed: overlap > 0)
            assertRangesHoldTheText(source, chunks)
            if overlap == 0 {
                XCTAssertEqual(nonWhitespace(chunks.map(\.text).joined()), nonWhitespace(source))
                for c in chunks { XCTAssertEqual(sourceBytes(source, c.byteStart, c.byteEnd), c.text) }
            }
        }
    }

    func testRunTheTokenizerCountsAsOneUnknownIsCappedByBytes() {
        // Over 100 characters without punctuation is a single [UNK] to WordPiece: the byte cap splits it.
        let run = String(repeating: "a", count: 20_000)
        XCTAssertEqual(MiniLM.count(run), 1)
        let doc = parse(run, .text)
        let chunker = chunker(254, overlap: 32)
        let chunks = chunker.chunks(of: doc)
        XCTAssertEqual(chunks.count, Int((20_000 + chunker.maxTextBytes - 1) / chunker.maxTextBytes))
        XCTAssertEqual(chunks.map(\.text).joined(), run)
        assertInvariants(doc, chunker, overlapAllowed: false)
    }

    func testMultibyteCharactersAreNeverCut() {
        let text = String(repeating: "東京タワー🙂é", count: 2_000)
        let doc = parse(text + "\n", .text)
        let chunker = chunker(32, overlap: 8)
        let chunks = chunker.chunks(of: doc)
        assertInvariants(doc, chunker)
        for c in chunks { XCTAssertFalse(c.text.unicodeScalars.contains("\u{FFFD}")) }
        XCTAssertEqual(chunks.map(\.text).joined(), text)
    }

    // MARK: - Ranges of other kinds

    func testHTMLChunkRangesSpanTheLinesTheirTextCameFrom() {
        let source = """
            <html><body>
            <h1>Top</h1>
            <p>First paragraph
            continues here
            and ends.</p>

            <h2>Sub</h2>
            <p>Second &amp; last.</p>
            </body></html>
            """
        let doc = parse(source, .html)
        let chunks = chunker().chunks(of: doc)
        XCTAssertEqual(chunks.map(\.headingPath), [["Top"], ["Top", "Sub"]])
        XCTAssertEqual(chunks[0].text, "First paragraph continues here and ends.")
        XCTAssertEqual([chunks[0].lineStart, chunks[0].lineEnd], [3, 5])
        XCTAssertEqual(sourceBytes(source, chunks[0].byteStart, chunks[0].byteEnd), "First paragraph\ncontinues here\nand ends.")
        XCTAssertEqual(chunks[1].text, "Second & last.")
        XCTAssertEqual([chunks[1].lineStart, chunks[1].lineEnd], [8, 8])
        XCTAssertEqual(sourceBytes(source, chunks[1].byteStart, chunks[1].byteEnd), "Second &amp; last.")
    }

    func testInvalidUTF8LineMapsToItsWholeSourceLine() {
        let bytes = Array("ok line\n".utf8) + Array("bad ".utf8) + [0xFF] + Array(" line\n".utf8)
        let (doc, _) = DocumentParser.parse(Data(bytes), kind: .text, language: nil, path: "b.txt")
        let chunks = chunker().chunks(of: doc)
        XCTAssertEqual(chunks.count, 1)
        XCTAssertEqual(chunks[0].text, "ok line\nbad \u{FFFD} line")
        XCTAssertEqual([chunks[0].lineStart, chunks[0].lineEnd, chunks[0].byteStart, chunks[0].byteEnd], [1, 2, 0, bytes.count - 1])
    }

    func testSectionsMadeWithThePublicInitializer() {
        // A verbatim section: lines and bytes are derived from lineStart/byteStart.
        let text = (0..<40).map { "line \($0) of a verbatim section." }.joined(separator: "\n")
        let doc = ParsedDocument(title: "t", sections: [Section(headingPath: ["H"], text: text, lineStart: 10, lineEnd: 49,
                                                                byteStart: 1000, byteEnd: 1000 + text.utf8.count)])
        let chunker = chunker(40, overlap: 0)
        let chunks = chunker.chunks(of: doc)
        assertInvariants(doc, chunker, overlapAllowed: false)
        for c in chunks {
            let first = Int(c.text.split(separator: " ")[1])!
            XCTAssertEqual(c.lineStart, 10 + first)
            XCTAssertEqual(c.byteStart - 1000, text.utf8.count - text[text.range(of: c.text)!.lowerBound...].utf8.count)
            XCTAssertEqual(c.byteEnd - c.byteStart, c.text.utf8.count)
        }
    }

    // MARK: - Budget edge cases

    func testLongHeadingPathIsShortenedNotTheText() {
        let long = (0..<200).map { "word\($0)" }.joined(separator: " ")
        let doc = parse("# \(long)\n\n## Inner\n\nThe body text.\n", .markdown)
        let chunker = chunker(64, overlap: 8)
        let chunks = chunker.chunks(of: doc)
        XCTAssertEqual(chunks.count, 1)
        XCTAssertEqual(chunks[0].text, "The body text.")
        XCTAssertEqual(chunks[0].headingPath, [long, "Inner"], "the path itself is kept whole")
        XCTAssertTrue(chunks[0].embeddingText.hasPrefix("… › Inner\n"), chunks[0].embeddingText)
        assertInvariants(doc, chunker)

        let inner = parse("## \(long)\n\nBody.\n", .markdown)
        let c = chunker.chunks(of: inner)
        XCTAssertEqual(c[0].text, "Body.")
        XCTAssertTrue(c[0].embeddingText.hasPrefix("… › word0 word1"))
        XCTAssertLessThanOrEqual(MiniLM.count(c[0].embeddingText), 64)

        // The smallest limit: no room for any heading word, so the text is embedded alone.
        let tiny = Chunker(maxTokens: 8, overlapTokens: 2, countTokens: MiniLM.count)
        let t = tiny.chunks(of: parse("# Installation instructions for everyone\n\nOne two three four five six seven eight nine ten.\n", .markdown))
        XCTAssertEqual(t.first?.embeddingText, t.first?.text)
        assertInvariants(parse("# Installation instructions for everyone\n\nOne two three four five six seven eight nine ten.\n", .markdown), tiny)
    }

    func testACounterThatIsNotAdditiveStillFitsEveryChunk() {
        // Counts more for a whole than for its parts, so sums underestimate: the final count
        // of each chunk has to catch it.
        let count: @Sendable (String) -> Int = { s in let n = s.unicodeScalars.count; return n / 4 + n * n / 4000 }
        let doc = parse(sentences(200, seed: 5).joined(separator: " ") + "\n", .text)
        let chunker = Chunker(maxTokens: 40, overlapTokens: 10, countTokens: count)
        let chunks = chunker.chunks(of: doc)
        XCTAssertGreaterThan(chunks.count, 10)
        assertInvariants(doc, chunker, count: count)
    }

    func testEmptyDocumentHasNoChunks() {
        XCTAssertEqual(chunker().chunks(of: ParsedDocument(title: "t", sections: [])), [])
        XCTAssertEqual(chunker().chunks(of: parse("\n\n", .text)), [])
        let blank = ParsedDocument(title: "t", sections: [Section(headingPath: [], text: " \n ", lineStart: 1, lineEnd: 2, byteStart: 0, byteEnd: 3)])
        XCTAssertEqual(chunker().chunks(of: blank), [])
    }

    // MARK: - Cost

    /// Counts calls and characters given to the tokenizer.
    final class CountingCounter: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var calls = 0
        private(set) var characters = 0
        func count(_ s: String) -> Int {
            lock.lock(); calls += 1; characters += s.utf8.count; lock.unlock()
            return MiniLM.count(s)
        }
    }

    func testTokenizerWorkIsLinearInTheText() {
        // 150 sections, several with paragraphs and sentences far over the limit.
        var parts: [String] = []
        for i in 0..<150 {
            parts.append("## Section \(i)\n")
            let n = i % 10 == 0 ? 400 : 20
            parts.append(sentences(n, seed: UInt64(i)).joined(separator: i % 3 == 0 ? "\n" : " "))
            parts.append("")
        }
        let source = parts.joined(separator: "\n")
        let doc = parse(source, .markdown)
        let counter = CountingCounter()
        let chunker = Chunker(maxTokens: 254, overlapTokens: 32, countTokens: { counter.count($0) })
        let chunks = chunker.chunks(of: doc)
        let textBytes = doc.sections.reduce(0) { $0 + $1.text.utf8.count }
        XCTAssertGreaterThan(chunks.count, 150)
        // Each byte is counted a handful of times (piece, split levels, the chunk check, overlap).
        XCTAssertLessThan(counter.characters, 6 * textBytes, "\(counter.characters) characters counted for \(textBytes)")
    }

    func testAWordCutByCharactersCostsAFewCountsOfEachPiece() {
        // A 200 kB base64 blob on one line (as in a fenced block of data): no whitespace, so it
        // is cut by characters. Each piece is looked for from the last piece's length, with a
        // few counts of about its size: about 13 times the text counted in all (the paragraph
        // and the line once each, each chunk once more, the pieces about 10 times), where a
        // binary search over the whole byte budget for each piece counted 30 times the text.
        var rng = SeededRNG(seed: 8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let blob = String((0..<200_000).map { _ in alphabet.randomElement(using: &rng)! })
        let source = "```\n\(blob)\n```\n"
        let doc = parse(source, .markdown)
        let counter = CountingCounter()
        let chunker = Chunker(maxTokens: 254, overlapTokens: 0, countTokens: { counter.count($0) })
        let chunks = chunker.chunks(of: doc)
        XCTAssertGreaterThan(chunks.count, 200)
        XCTAssertEqual(nonWhitespace(chunks.map(\.text).joined()), nonWhitespace(source))
        for c in chunks { XCTAssertLessThanOrEqual(MiniLM.count(c.embeddingText), 254) }
        XCTAssertLessThan(counter.characters, 16 * blob.utf8.count, "\(counter.characters) characters counted for \(blob.utf8.count)")
    }

    // MARK: - Determinism and random documents

    func testDeterministic() {
        let doc = parse(RandomDocument.markdown(seed: 11).source, .markdown)
        let a = chunker(64, overlap: 16).chunks(of: doc)
        let b = chunker(64, overlap: 16).chunks(of: doc)
        XCTAssertEqual(a, b)
        XCTAssertFalse(a.isEmpty)
    }

    func testRandomMarkdownDocuments() {
        for seed in 0..<40 as Range<UInt64> {
            let generated = RandomDocument.markdown(seed: seed)
            let doc = parse(generated.source, .markdown)
            var rng = SeededRNG(seed: seed &* 31)
            let maxTokens = [16, 24, 48, 100, 254].randomElement(using: &rng)!
            let overlap = [0, 4, 16, 48].randomElement(using: &rng)!
            let chunker = chunker(maxTokens, overlap: overlap)
            let chunks = chunker.chunks(of: doc)
            assertInvariants(doc, chunker, overlapAllowed: overlap > 0)
            assertRangesHoldTheText(generated.source, chunks)
            if chunks != chunker.chunks(of: doc) { XCTFail("seed \(seed): not deterministic") }
        }
    }

    func testRandomPlainTextDocumentsHaveExactByteRanges() {
        for seed in 100..<130 as Range<UInt64> {
            let generated = RandomDocument.plainText(seed: seed)
            let doc = parse(generated, .text)
            var rng = SeededRNG(seed: seed)
            let chunker = chunker([16, 32, 80, 254].randomElement(using: &rng)!, overlap: [0, 8, 24].randomElement(using: &rng)!)
            let chunks = chunker.chunks(of: doc)
            assertInvariants(doc, chunker, overlapAllowed: chunker.overlapTokens > 0)
            let index = SourceIndex(generated)
            for c in chunks {
                // Paragraphs are separated by exactly one blank line here, so the text is the source.
                XCTAssertEqual(index.bytes(c.byteStart, c.byteEnd), c.text, "seed \(seed) chunk \(c.ordinal)")
                XCTAssertTrue(index.lines(c.lineStart, c.lineEnd).contains(c.text), "seed \(seed) chunk \(c.ordinal)")
            }
        }
    }

    func testRandomHTMLDocuments() {
        for seed in 200..<220 as Range<UInt64> {
            let generated = RandomDocument.html(seed: seed)
            let doc = parse(generated, .html)
            let chunker = chunker(48, overlap: 12)
            let chunks = chunker.chunks(of: doc)
            assertInvariants(doc, chunker)
            assertRangesHoldTheText(generated, chunks)
        }
    }
}

/// Seeded random documents: headings at random levels (names sometimes repeated), paragraphs of
/// sentences hard-wrapped at random widths, code fences, lists, and now and then a huge word,
/// a run of one letter, CJK or emoji.
enum RandomDocument {
    static let words = ["the", "index", "walks", "a", "folder", "and", "chunks", "each", "file", "by", "structure", "tokens",
                        "e.g.", "x86_64", "foo()", "a/b", "3.14", "café", "naïve", "東京", "🙂", "don't", "(see", "below)",
                        "HTTP/2", "--flag", "#tag", "snake_case", "CamelCase", "2024-01-01", "über", "straße", "&", "<tag>"]

    static func sentence(_ rng: inout SeededRNG) -> String {
        var s = (0..<Int.random(in: 1...25, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ")
        s += [".", "!", "?", "", ".\"", ";"].randomElement(using: &rng)!
        return s
    }

    static func paragraph(_ rng: inout SeededRNG) -> String {
        let roll = Int.random(in: 0..<100, using: &rng)
        if roll < 3 {
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
            return String((0..<Int.random(in: 200...3000, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        if roll < 5 { return String(repeating: "z", count: Int.random(in: 150...6000, using: &rng)) }
        if roll < 7 { return String(repeating: "日本語の文章です。", count: Int.random(in: 5...80, using: &rng)) }
        let text = (0..<Int.random(in: 1...(roll < 20 ? 60 : 6), using: &rng)).map { _ in sentence(&rng) }.joined(separator: " ")
        let width = Int.random(in: 30...200, using: &rng)
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty && current.count + word.count + 1 > width { lines.append(current); current = "" }
            current += current.isEmpty ? String(word) : " " + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines.joined(separator: "\n")
    }

    static func markdown(seed: UInt64) -> (source: String, sections: Int) {
        var rng = SeededRNG(seed: seed)
        var out: [String] = []
        var headings = 0
        for _ in 0..<Int.random(in: 1...30, using: &rng) {
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < 25 {
                let level = Int.random(in: 1...4, using: &rng)
                let name = ["Intro", "Setup", "Usage", "Notes", "Details"].randomElement(using: &rng)!
                out.append(String(repeating: "#", count: level) + " " + name)
                headings += 1
            } else if roll < 32 {
                let code = (0..<Int.random(in: 1...40, using: &rng)).map { i in "    let v\(i) = f(\(i)) // step \(i)" }
                out.append("```swift\n" + code.joined(separator: "\n") + "\n```")
            } else if roll < 38 {
                out.append((0..<Int.random(in: 1...8, using: &rng)).map { _ in "- " + sentence(&rng) }.joined(separator: "\n"))
            } else {
                out.append(paragraph(&rng))
            }
            out.append(String(repeating: "\n", count: Int.random(in: 0...2, using: &rng)))
        }
        return (out.joined(separator: "\n"), headings)
    }

    /// Paragraphs separated by exactly one blank line, LF endings.
    static func plainText(seed: UInt64) -> String {
        var rng = SeededRNG(seed: seed)
        return (0..<Int.random(in: 1...25, using: &rng)).map { _ in paragraph(&rng) }.joined(separator: "\n\n") + "\n"
    }

    static func html(seed: UInt64) -> String {
        var rng = SeededRNG(seed: seed)
        var out = ["<html><head><title>Random \(seed)</title></head><body>"]
        for _ in 0..<Int.random(in: 1...20, using: &rng) {
            if Int.random(in: 0..<4, using: &rng) == 0 {
                let level = Int.random(in: 1...6, using: &rng)
                out.append("<h\(level)>Heading \(Int.random(in: 0..<5, using: &rng))</h\(level)>")
            } else {
                let p = paragraph(&rng).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                out.append(Bool.random(using: &rng) ? "<p>\(p)</p>" : "<div><span>\(p)</span></div>")
            }
        }
        out.append("</body></html>")
        return out.joined(separator: "\n")
    }
}
