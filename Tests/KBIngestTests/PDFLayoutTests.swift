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
            PDFLayout.Block(lines: [line("Contents"), line("6"), line("Data Containers . . . . . 2"), line("6.1"),
                                    line("Structures . . . . . . 2"), line("6.1.1 Basic Usage . . . . . 2"), line("6.1.2 More . . . . . 2"),
                                    line("6.1.3 Arrays . . . . . 2"), line("6.1.4 Fields . . . . . 2"), line("6.1.5 Cells . . . . . 2"),
                                    line("6.2 Lists . . . . . 2")])])
        let body = PDFLayout.Page(number: 2, height: 800, blocks: [
            PDFLayout.Block(lines: [line("Structures hold named fields."), line("See also . . . . . 1")])])
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

    // MARK: Review fixes

    func line(_ text: String, y: Double = 300, size: Double = 10) -> PDFLayout.Line {
        PDFLayout.Line(words: text.split(separator: " ").map(String.init), yMin: y, yMax: y + size, size: size)
    }

    func page(_ number: Int, _ blocks: [[String]]) -> PDFLayout.Page {
        var y = 100.0
        return PDFLayout.Page(number: number, height: 800, blocks: blocks.map { b in
            PDFLayout.Block(lines: b.map { t in y += 12; return line(t, y: y) })
        })
    }

    func testALongParagraphIsEndedAndCountsTowardsTheTextCut() {
        // 200 pages of one paragraph (no sentence end, non-ASCII text): chunks of a few KB,
        // and the text cut sees it grow.
        let text = "les données évoluées du système décrit ici et"
        let pages = (1...200).map { n in page(n, [Array(repeating: text, count: 40)]) }
        let r = PDFStructure.build(layout: PDFLayout(title: "T", pages: pages, complete: true), outline: nil, fileName: "f.pdf", maxTextBytes: 100_000)
        let paragraphs = r.document.sections.flatMap { $0.text.components(separatedBy: "\n") }.filter { !$0.isEmpty }
        XCTAssertGreaterThan(paragraphs.count, 5)
        XCTAssertLessThanOrEqual(paragraphs.map(\.utf8.count).max() ?? 0, PDFStructure.maxParagraphBytes + text.utf8.count + 1)
        XCTAssertLessThanOrEqual(paragraphs.map(\.utf8.count).reduce(0, +), 100_000 + PDFStructure.maxParagraphBytes + 100)
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue(r.warnings.first?.hasPrefix("text cut at page ") ?? false, "\(r.warnings)")
    }

    func testLeaderLinesAreContentsOnlyWithPagesOfTheDocumentInOrder() {
        // A one-page price list: its numbers are not pages of the document.
        let menu = page(1, [["Espresso . . . . 2", "Latte . . . . 3", "Mocha . . . . 4", "Tea . . . . 2", "Juice . . . . 5"]])
        XCTAssertEqual(PDFStructure.flatten([menu], dropping: [[]]).count, 5)
        let r = PDFStructure.build(layout: PDFLayout(title: "", pages: [menu], complete: true), outline: nil, fileName: "menu.pdf", maxTextBytes: 1 << 20)
        XCTAssertTrue(r.document.sections.contains { $0.text.contains("Espresso") })
        // A body page with 3 entries among 7 lines keeps its other lines; numbers going down
        // are not entries.
        var pages = (1...10).map { page($0, [["Body text of page \($0)."]]) }
        pages[4] = page(5, [["The options are:", "first . . . . 6", "second . . . . 7", "third . . . . 9", "Each is described later.", "See the notes.", "End."],
                            ["Step one . . . . 9", "Step two . . . . 3"]])
        let kept = PDFStructure.flatten(pages, dropping: Array(repeating: [], count: 10)).filter { $0.page == 5 }.map(\.text)
        XCTAssertEqual(kept, ["The options are:", "Each is described later.", "See the notes.", "End.", "Step two . . . . 3"])
    }

    func testADocumentOfContentsOnlyIsKeptWithAWarning() {
        let entries = (1...9).map { "Chapter \($0) . . . . \($0)" }
        let pages = (1...9).map { page($0, [entries]) }
        let r = PDFStructure.build(layout: PDFLayout(title: "T", pages: pages, complete: true), outline: nil, fileName: "f.pdf", maxTextBytes: 1 << 20)
        XCTAssertFalse(r.document.sections.allSatisfy { $0.text.isEmpty })
        XCTAssertEqual(r.warnings, ["every page looks like a table of contents; its text is kept"])
    }

    func testContentsWithEntriesAndNumbersInSeparateBlocksAreDropped() {
        // gnuplot.pdf: "Canvas size" and "32" are separate blocks; sub-entries' leaders end
        // without a number.
        var contents: [[String]] = [["Contents"]]
        for k in 0..<6 { contents += [["Topic \(k) name"], ["\(30 + k)"], ["Sub topic \(k) . . . . . . ."], ["\(30 + k)"]] }
        var pages = [page(1, contents)]
        pages += (2...40).map { n in page(n, [["Topic \(n - 30) name"], ["The body of page \(n) explains it."]]) }
        let dropping = Array(repeating: Set<[Int]>(), count: 40)
        // Without an outline.
        let plain = PDFStructure.flatten(pages, dropping: dropping)
        XCTAssertFalse(plain.contains { $0.page == 1 })
        XCTAssertTrue(plain.contains { $0.text == "The body of page 32 explains it." })
        // With one: lines that are bookmark titles pointing to other pages.
        let outline = PDFOutline(items: (0..<6).map { .init(level: 1, title: "Topic \($0) name", page: 30 + $0) })
        var outlined = pages
        outlined[0] = page(1, (0..<9).flatMap { [["Topic \($0 % 6) name"], ["\(30 + $0 % 6)"]] } + [["Intro text."]])
        let kept = PDFStructure.flatten(outlined, dropping: dropping, outline: outline)
        XCTAssertFalse(kept.contains { $0.page == 1 })
        XCTAssertTrue(kept.contains { $0.text == "Topic 2 name" && $0.page == 32 })
        // A body page listing ten names that are bookmarks elsewhere, without page numbers, stays
        // (gnuplot.pdf p. 125 lists its plot styles).
        outlined[36] = page(37, [["The styles are"]] + (0..<10).map { ["Topic \($0 % 6) name"] })
        XCTAssertEqual(PDFStructure.flatten(outlined, dropping: dropping, outline: outline).filter { $0.page == 37 }.count, 11)
        // A body page (after the first bookmark's target) naming a few other sections stays.
        outlined[35] = page(36, [["Intro text."], ["Topic 1 name"], ["Topic 2 name"], ["Topic 3 name"]])
        XCTAssertEqual(PDFStructure.flatten(outlined, dropping: dropping, outline: outline).filter { $0.page == 36 }.count, 4)
    }

    func testABookmarkOutOfPageOrderDoesNotHideTheHeadingsAfterIt() {
        let pages = (1...4).map { n in page(n, [["Heading \(n)"], ["Text of page \(n)."]]) }
        let lines = PDFStructure.flatten(pages, dropping: Array(repeating: [], count: 4))
        let outline = PDFOutline(items: [.init(level: 1, title: "Heading 1", page: 1), .init(level: 1, title: "Heading 4", page: 4),
                                         .init(level: 1, title: "Heading 2", page: 2), .init(level: 2, title: "Heading 3", page: 3)])
        let (anchors, consumed) = PDFStructure.outlineAnchors(outline, lines: lines)
        XCTAssertEqual(anchors.map(\.title), ["Heading 1", "Heading 2", "Heading 3", "Heading 4"])
        XCTAssertEqual(anchors.map(\.page), [1, 2, 3, 4])
        XCTAssertEqual(anchors.map(\.level), [1, 1, 2, 1])
        XCTAssertEqual(consumed.count, 4)
    }

    func testTableRowsAndWordsOfRomanLettersAreNotPageNumbers() {
        for text in ["6.72 1.24 6.95", "12 14", "civil", "ill", "lxvix"] {
            XCTAssertFalse(PDFStructure.isPageNumber(PDFStructure.key(text)), text)
        }
        for text in ["xiv", "iv", "cx", "- 7 -", "3 / 10"] { XCTAssertTrue(PDFStructure.isPageNumber(PDFStructure.key(text)), text) }
        // Only the number nearest the edge goes: a one-number line above it is data.
        var pages: [PDFLayout.Page] = []
        for n in 1...3 {
            pages.append(PDFLayout.Page(number: n, height: 800, blocks: [
                PDFLayout.Block(lines: [line("Body \(n) text.", y: 400)]),
                PDFLayout.Block(lines: [line("6.72 1.24 6.95", y: 720), line("\(40 + n)", y: 735)]),
                PDFLayout.Block(lines: [line("\(n)", y: 770)]),
            ]))
        }
        let dropped = PDFStructure.runningLines(pages)
        XCTAssertEqual(dropped[0], [[2, 0]])
        XCTAssertEqual(PDFStructure.flatten(pages, dropping: dropped).filter { $0.page == 1 }.map(\.text), ["Body 1 text.", "6.72 1.24 6.95", "41"])
    }

    func testTitleIsTheLargestShortLineOfPageOneElseTheFileName() {
        let first = PDFLayout.Page(number: 1, height: 800, blocks: [
            PDFLayout.Block(lines: [line("GNU Octave Manual", y: 100, size: 24)]),
            PDFLayout.Block(lines: [line("Some body text on the first page of the manual.", y: 300), line("More body text here.", y: 312)]),
        ])
        let outline = PDFOutline(items: [.init(level: 1, title: "Preface", page: 1)])
        XCTAssertEqual(PDFStructure.build(layout: PDFLayout(title: "", pages: [first], complete: true), outline: outline, fileName: "o.pdf", maxTextBytes: 1 << 20).document.title, "GNU Octave Manual")
        let flat = PDFLayout.Page(number: 1, height: 800, blocks: [PDFLayout.Block(lines: [line("Only body text.")])])
        XCTAssertEqual(PDFStructure.build(layout: PDFLayout(title: "", pages: [flat], complete: true), outline: outline, fileName: "o.pdf", maxTextBytes: 1 << 20).document.title, "o.pdf")
    }

    func testHugeNumbersFromAToolAreNoTrap() {
        let xml = #"<pdf2xml><outline><item page="100000000000000000000000">Far</item><item page="nan">N</item><item page="2">Near</item></outline></pdf2xml>"#
        XCTAssertEqual(PDFOutline.parse(Array(xml.utf8)).items, [.init(level: 1, title: "Far", page: nil), .init(level: 1, title: "N", page: nil),
                                                                 .init(level: 1, title: "Near", page: 2)])
        XCTAssertEqual([byteSize(1 << 30), byteSize(256 << 20), byteSize(1536 << 10), byteSize(150)], ["1 GiB", "256 MiB", "1536 KiB", "150 bytes"])
    }
}
