import Foundation
import XCTest
@testable import KBIngest

/// Reading pdftotext's and pdftohtml's output, and the clean-up rules, on hand-written input
/// (no poppler needed).
final class PDFLayoutTests: XCTestCase {
    func testLayoutReadsPagesLinesSizesAndDropsInvisibleGlyphs() {
        let xhtml = """
            <html><head><title>A &amp; B &#8211; manual</title></head><body><doc>
              <page width="600.000000" height="800.000000"><flow><block xMin="1" yMin="2" xMax="3" yMax="4">
                <line xMin="72" yMin="100.5" xMax="200" yMax="112.5">
                  <word xMin="72" yMin="100.5" xMax="80" yMax="112.5">\u{88}</word>
                  <word xMin="86" yMin="100.5" xMax="120" yMax="112.5">Big&lt;1&gt;</word>
                  <word xMin="86" yMin="102" xMax="120" yMax="110">small</word>
                  <word xMin="86" yMin="102" xMax="120" yMax="110">\u{F0B7}x</word>
                </line></block></flow>
              </page>
              <page width="600.000000" height="800.000000"><flow><block><line yMin="1" yMax="2"><word yMin="1" yMax="2">cut
            """
        let layout = PDFLayout.parse(Array(xhtml.utf8))
        XCTAssertEqual(layout.title, "A & B – manual")
        XCTAssertFalse(layout.complete)
        // The second page has no end tag: dropped.
        XCTAssertEqual(layout.pages.count, 1)
        XCTAssertEqual(layout.pages[0].height, 800)
        let line = layout.pages[0].blocks[0].lines[0]
        XCTAssertEqual(line.words, ["Big<1>", "small", "x"])
        XCTAssertEqual(line.yMin, 100.5)
        XCTAssertEqual(line.size, 8)  // the median word height
    }

    func testOutlineReadsNestingPagesAndEntities() {
        let xml = """
            <pdf2xml><page number="1"></page>
            <outline>
            <item page="3">Intro &#34;quoted&#34;</item>
            <outline><item page="4">Deeper</item><outline><item>No target</item></outline></outline>
            <item page="9">Back   up</item>
            </outline></pdf2xml>
            """
        XCTAssertEqual(PDFOutline.parse(Array(xml.utf8)).items, [
            .init(level: 1, title: "Intro \"quoted\"", page: 3), .init(level: 2, title: "Deeper", page: 4),
            .init(level: 3, title: "No target", page: nil), .init(level: 1, title: "Back up", page: 9),
        ])
    }

    func testPageNumbersAndRunningLinesAreRecognised() {
        for text in ["12", "- 12 -", "Page 3 of 9", "xii", "p. 4", "[7]", "3 / 10"] {
            XCTAssertTrue(PDFStructure.isPageNumber(PDFStructure.key(text)), text)
        }
        for text in ["Chapter 3", "12 monkeys", "Introduction", "3.5 kg"] {
            XCTAssertFalse(PDFStructure.isPageNumber(PDFStructure.key(text)), text)
        }
        XCTAssertEqual(PDFStructure.key("Report 2024 — page 17"), "report # — page #")
    }

    func testParagraphsGoOnOverBlocksOnlyMidSentenceOrAfterABullet() {
        XCTAssertTrue(PDFStructure.continues("the storage room and", "then moved"))
        XCTAssertFalse(PDFStructure.continues("the old mill weir.", "then moved"))
        XCTAssertFalse(PDFStructure.continues("the storage room and", "Then moved"))
        XCTAssertTrue(PDFStructure.continues("•", "Applications must be able"))
    }

    func testTablesOfContentsAreDropped() {
        for text in ["Structures. . . . . . . . . . . 111", "6.1.2 Structure Arrays . . . . . . . 115", "Preface ........ xi", "Index \u{2026}\u{2026} 301"] {
            XCTAssertTrue(PDFStructure.isLeaderLine(text), text)
        }
        for text in ["Wait... 5", "Version 1.2.3.4", "see page 12", "The end."] {
            XCTAssertFalse(PDFStructure.isLeaderLine(text), text)
        }
        func line(_ text: String) -> PDFLayout.Line { PDFLayout.Line(words: text.split(separator: " ").map(String.init), yMin: 300, yMax: 310, size: 10) }
        let toc = PDFLayout.Page(number: 1, height: 800, blocks: [
            PDFLayout.Block(lines: [line("Contents"), line("6"), line("Data Containers . . . . . 111"), line("6.1"),
                                    line("Structures . . . . . . 111"), line("6.1.1 Basic Usage . . . . . 111")])])
        let body = PDFLayout.Page(number: 2, height: 800, blocks: [
            PDFLayout.Block(lines: [line("Structures hold named fields."), line("See also . . . . . 9")])])
        let kept = PDFStructure.flatten([toc, body], dropping: [[], []])
        XCTAssertEqual(kept.map(\.text), ["Structures hold named fields."])
        XCTAssertEqual(kept.map(\.page), [2])
    }

    func testHyphenationJoinsUnlessTheDocumentWritesTheHyphen() {
        let vocabulary: Set<String> = ["well-known", "state-of-the-art"]
        XCTAssertEqual(PDFStructure.join(["the retrie-", "val works"], vocabulary: vocabulary), "the retrieval works")
        XCTAssertEqual(PDFStructure.join(["a well-", "known tool"], vocabulary: vocabulary), "a well-known tool")
        XCTAssertEqual(PDFStructure.join(["soft\u{AD}", "ware"], vocabulary: vocabulary), "software")
        // Not a hyphenation but a compound or a range split at the line end: the hyphen stays.
        XCTAssertEqual(PDFStructure.join(["Anglo-", "Saxon"], vocabulary: vocabulary), "Anglo-Saxon")
        XCTAssertEqual(PDFStructure.join(["pages 3-", "5"], vocabulary: vocabulary), "pages 3-5")
        XCTAssertEqual(PDFStructure.join(["a dash -", "then"], vocabulary: vocabulary), "a dash - then")
        XCTAssertEqual(PDFStructure.join(["東京の", "天気"], vocabulary: vocabulary), "東京の天気")
    }
}
