import Foundation
import XCTest
import KBTestSupport
@testable import KBIngest

final class HTMLParserTests: XCTestCase {
    static let page = """
        <!DOCTYPE html>
        <html><head><title>Fish &amp; Chips</title>
        <style>body { color: red } h1 { SECRETSTYLE }</style>
        <script>var s = "<h1>SCRIPTHEADING</h1>"; if (a < b) {}</script>
        </head>
        <body>
        <header>HEADERTEXT</header>
        <nav><h2>NAVHEADING</h2><a href="/">NAVLINK</a></nav>
        <h1>Menu</h1>
        <p>Fish &amp; chips &lt;3 it&#8217;s&nbsp;good &#x41;&#66; &copy; &unknown; &#xZZ;</p>
        <h2>Starters</h2>
        <p>Soup of
           the day</p>
        <h3>Cold</h3><p>Salad</p>
        <h4>Four</h4><h5>Five</h5><h6>Six</h6><p>Deepest</p>
        <h2>Mains <a class="headerlink" href="#m">¶</a></h2>
        <ul><li>Cod<li>Haddock</ul>
        <pre>line one
          indented two</pre>
        <!-- COMMENTTEXT -->
        <footer>FOOTERTEXT</footer>
        </body></html>
        """

    func testTitleHeadingPathsAndDroppedChrome() {
        let doc = parse(Self.page, .html, path: "menu.html")
        XCTAssertEqual(doc.title, "Fish & Chips")
        XCTAssertEqual(doc.sections.map(\.headingPath), [
            ["Menu"],
            ["Menu", "Starters"],
            ["Menu", "Starters", "Cold"],
            ["Menu", "Starters", "Cold", "Four", "Five", "Six"],
            ["Menu", "Mains"],
        ])
        let all = doc.sections.map(\.text).joined(separator: "\n")
        for dropped in ["SECRETSTYLE", "SCRIPTHEADING", "HEADERTEXT", "NAVHEADING", "NAVLINK", "COMMENTTEXT", "FOOTERTEXT", "¶"] {
            XCTAssertFalse(all.contains(dropped), "\(dropped) should be dropped")
        }
    }

    func testEntitiesDecoded() {
        let doc = parse(Self.page, .html)
        XCTAssertEqual(doc.sections[0].text, "Fish & chips <3 it\u{2019}s good AB © &unknown; &#xZZ;")
    }

    func testBlocksBecomeLinesAndPreKeepsWhitespace() {
        let doc = parse(Self.page, .html)
        XCTAssertEqual(doc.sections[1].text, "Soup of the day")
        XCTAssertEqual(doc.sections[4].text, "Cod\nHaddock\n\nline one\n  indented two")
    }

    func testTitleFallsBackToFirstH1ThenFileName() {
        XCTAssertEqual(parse("<h2>x</h2><h1>Top &amp; more</h1><p>t</p>", .html).title, "Top & more")
        XCTAssertEqual(parse("<p>nothing</p>", .html, path: "d/page.htm").title, "page.htm")
    }

    func testLineRangesSpanTheSourceOfTheText() {
        let source = Self.page
        let doc = parse(source, .html)
        let starters = doc.sections[1]
        XCTAssertEqual(starters.lineStart, 11)  // the <h2> line
        XCTAssertEqual(starters.lineEnd, 13)    // "the day</p>"
        XCTAssertEqual(sourceLines(source, 11, 11), "<h2>Starters</h2>")
        for section in doc.sections {
            let lines = sourceLines(source, section.lineStart, section.lineEnd)
            let bytes = sourceBytes(source, section.byteStart, section.byteEnd)
            // "AB" was written as the entities &#x41;&#66;.
            for word in alphanumericWords(section.text) where word != "AB" {
                XCTAssertTrue(lines.contains(word), "\(word) not in lines \(section.lineStart)-\(section.lineEnd)")
                XCTAssertTrue(bytes.contains(word), "\(word) not in bytes \(section.byteStart)..<\(section.byteEnd)")
            }
        }
    }

    func testMalformedMarkupDoesNotCrash() {
        let cases = [
            "<p>unclosed <b>bold <i>italic",
            "<div><div><div>deep",
            "text < not a tag and a > b",
            "<a href=\"x>y\">quoted gt</a> after",
            "<p>tag at end <div",
            "<!-- comment never closed",
            "<script>never closed",
            "<title>never closed",
            "</p></div></span>stray ends",
            "<h1><h2>nested headings</h1></h2>",
            "<<<>>>&&&;;;&#;&#x;&#99999999999;&#0;",
            "<P CLASS=X>UPPER</P>",
            "",
        ]
        for html in cases { _ = parse(html, .html) }
        XCTAssertEqual(parse("<p>unclosed <b>bold <i>italic", .html).sections.map(\.text), ["unclosed bold italic"])
        XCTAssertEqual(parse("text < not a tag and a > b", .html).sections.map(\.text), ["text < not a tag and a > b"])
        XCTAssertEqual(parse("<a href=\"x>y\">quoted gt</a> after", .html).sections.map(\.text), ["quoted gt after"])
        XCTAssertEqual(parse("</p></div></span>stray ends", .html).sections.map(\.text), ["stray ends"])
        XCTAssertEqual(parse("<P CLASS=X>UPPER</P>", .html).sections.map(\.text), ["UPPER"])
        XCTAssertEqual(parse("<h1><h2>nested headings</h1></h2>", .html).sections.map(\.headingPath), [])
    }

    func testRandomBytesAndDeepNestingDoNotCrash() {
        var rng = SeededRNG(seed: 7)
        let alphabet = Array("<>/!-=\"'&;# abcdhpre1\n".utf8) + [0xFF, 0xC3, 0x00]
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0..<400, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            _ = DocumentParser.parse(Data(bytes), kind: .html, language: nil, path: "fuzz.html")
        }
        // Many unclosed elements and many stray end tags, then end tags that close them: the
        // stack is searched O(n) times in all, not O(n) per end tag. The work is counted, not
        // timed (a scan of the stack per stray tag would examine 2.5 billion elements here).
        let n = 50_000
        let deep = String(repeating: "<div>", count: n) + "x" + String(repeating: "</span>", count: n) + String(repeating: "</div>", count: n)
        var work = HTMLParser.Work()
        let doc = HTMLParser.parse(Data(deep.utf8), source: SourceText(Data(deep.utf8)), fileName: "deep.html", work: &work)
        XCTAssertEqual(doc.sections.map(\.text), ["x"])
        XCTAssertGreaterThanOrEqual(work.elementsExamined, n, "each </div> examines the element it closes")
        XCTAssertLessThanOrEqual(work.elementsExamined, 2 * n)
    }
}
