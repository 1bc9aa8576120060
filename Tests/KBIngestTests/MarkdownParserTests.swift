import Foundation
import XCTest
@testable import KBIngest

final class MarkdownParserTests: XCTestCase {
    static let guide = """
        ---
        title: "The Guide"
        tags: [a, b]
        ---
        Preface before any heading.

        # Guide

        Intro text.

        ## Install

        ### Linux

        Run the [installer](https://example.com/install "Installer").

        ```sh
        # not a heading
        make install
        ```

        ### macOS
        Use brew.

        ~~~
        ## still code
        ~~~

        ## Usage ##

        Call it.

        #### Deep skip
        Level four under Usage.

        Setext Heading
        --------------
        Under setext.

        """

    func testHeadingPathsNestAndPop() {
        let doc = parse(Self.guide, .markdown, path: "guide.md")
        XCTAssertEqual(doc.sections.map(\.headingPath), [
            [],
            ["Guide"],
            ["Guide", "Install", "Linux"],
            ["Guide", "Install", "macOS"],
            ["Guide", "Usage"],
            ["Guide", "Usage", "Deep skip"],
            ["Guide", "Setext Heading"],
        ])
        // "## Install" has no text of its own: no section, but it names its children.
        XCTAssertFalse(doc.sections.contains { $0.headingPath == ["Guide", "Install"] })
    }

    func testFrontMatterTitleAndItsTextDropped() {
        let doc = parse(Self.guide, .markdown, path: "guide.md")
        XCTAssertEqual(doc.title, "The Guide")
        XCTAssertFalse(doc.sections.contains { $0.text.contains("tags:") || $0.text.contains("---") })
        XCTAssertEqual(doc.sections[0].text, "Preface before any heading.")
        XCTAssertEqual(doc.sections[0].lineStart, 5)
    }

    func testTitleFallsBackToFirstH1ThenFileName() {
        XCTAssertEqual(parse("text\n\n# First\n\n# Second\n", .markdown, path: "x/a.md").title, "First")
        XCTAssertEqual(parse("no headings here\n", .markdown, path: "x/a.md").title, "a.md")
        XCTAssertEqual(parse("## Only level two\n", .markdown, path: "b.md").title, "b.md")
    }

    func testCodeFencesKeptVerbatimAndHashesInsideAreNotHeadings() {
        let doc = parse(Self.guide, .markdown)
        let linux = doc.sections[2]
        XCTAssertEqual(linux.text, """
            Run the installer.

            ```sh
            # not a heading
            make install
            ```
            """)
        XCTAssertTrue(doc.sections[3].text.contains("~~~\n## still code\n~~~"))
    }

    func testLinksKeepTheirText() {
        let doc = parse("See [the docs](http://x.y/z) and ![a diagram](d.png).\n", .markdown)
        XCTAssertEqual(doc.sections[0].text, "See the docs and a diagram.")
    }

    func testLineAndByteRangesAreExact() {
        let source = Self.guide
        let doc = parse(source, .markdown)
        let linux = doc.sections[2]
        // The section spans its heading line through the closing fence.
        XCTAssertEqual(linux.lineStart, 13)
        XCTAssertEqual(linux.lineEnd, 20)
        XCTAssertEqual(sourceLines(source, 13, 13), "### Linux")
        XCTAssertEqual(sourceLines(source, 20, 20), "```")
        XCTAssertTrue(sourceBytes(source, linux.byteStart, linux.byteEnd).hasPrefix("### Linux\n\nRun the [installer]"))
        XCTAssertTrue(sourceBytes(source, linux.byteStart, linux.byteEnd).hasSuffix("make install\n```"))
        for section in doc.sections {
            XCTAssertEqual(sourceLines(source, section.lineStart, section.lineStart).utf8.count > 0, true)
            let range = sourceBytes(source, section.byteStart, section.byteEnd)
            // Every line of text is in the section's byte range (links cleaned away aside).
            for word in alphanumericWords(section.text) { XCTAssertTrue(range.contains(word), "\(word) not in \(range)") }
        }
        let setext = doc.sections[6]
        XCTAssertEqual(sourceLines(source, setext.lineStart, setext.lineEnd), "Setext Heading\n--------------\nUnder setext.")
    }

    func testCRLFLineEndingsKeepExactBytes() {
        let source = "# A\r\n\r\nalpha line\r\n\r\n## B\r\nbeta\r\n"
        let doc = parse(source, .markdown)
        XCTAssertEqual(doc.sections.map(\.headingPath), [["A"], ["A", "B"]])
        XCTAssertEqual(doc.sections.map(\.text), ["alpha line", "beta"])
        XCTAssertEqual(sourceBytes(source, doc.sections[0].byteStart, doc.sections[0].byteEnd), "# A\r\n\r\nalpha line")
        XCTAssertEqual(sourceBytes(source, doc.sections[1].byteStart, doc.sections[1].byteEnd), "## B\r\nbeta")
    }

    func testEmptyHeadingNamesNothing() {
        let doc = parse("# A\n\n##\n\ntext under an empty heading\n", .markdown)
        XCTAssertEqual(doc.sections.map(\.headingPath), [["A"]])
        XCTAssertEqual(doc.sections[0].text, "text under an empty heading")
    }

    func testHostileMarkdownDoesNotCrash() {
        for text in ["```\nnever closed\n# not heading", "---\nfront matter never closed", "#######  seven", "\u{FEFF}# BOM\nx",
                     String(repeating: "#", count: 10_000), String(repeating: "> ", count: 5_000), "", "\n\n\n"] {
            let doc = parse(text, .markdown)
            for s in doc.sections { XCTAssertFalse(s.text.isEmpty) }
        }
        XCTAssertEqual(parse("```\nnever closed\n# not heading", .markdown).sections.map(\.headingPath), [[]])
        XCTAssertEqual(parse("\u{FEFF}# BOM\nx", .markdown).sections.map(\.headingPath), [["BOM"]])
        XCTAssertEqual(parse("\u{FEFF}# BOM\nx", .markdown).sections[0].byteStart, 3)
    }
}
