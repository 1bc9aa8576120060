import Foundation
import XCTest
@testable import KBIngest

final class PlainTextParserTests: XCTestCase {
    func testParagraphsWithExactRanges() {
        let source = "  Title line\nsecond line\n\n\n\nPara two\n   \nPara three\nends here\n"
        let doc = parse(source, .text, path: "notes/README")
        XCTAssertEqual(doc.title, "Title line")
        XCTAssertEqual(doc.sections.map(\.headingPath), [[], [], []])
        XCTAssertEqual(doc.sections.map(\.text), ["  Title line\nsecond line", "Para two", "Para three\nends here"])
        XCTAssertEqual(doc.sections.map(\.lineStart), [1, 6, 8])
        XCTAssertEqual(doc.sections.map(\.lineEnd), [2, 6, 9])
        for s in doc.sections {
            XCTAssertEqual(sourceBytes(source, s.byteStart, s.byteEnd), s.text)
        }
    }

    func testTitleFallsBackToFileName() {
        XCTAssertEqual(parse("\n \n", .text, path: "a/empty.txt").title, "empty.txt")
        XCTAssertEqual(parse(String(repeating: "x", count: 200), .text).title.count, 80)
    }

    func testInvalidUTF8IsReplacedAndWarned() {
        var bytes = Array("good line\nbad ".utf8)
        bytes += [0xFF, 0xFE, 0xC3]
        bytes += Array(" line\nlast\n".utf8)
        let (doc, warnings) = DocumentParser.parse(Data(bytes), kind: .text, language: nil, path: "bad.txt")
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("bad.txt") && warnings[0].contains("line 2"), warnings[0])
        XCTAssertTrue(doc.sections[0].text.contains("bad \u{FFFD}"))
        XCTAssertTrue(doc.sections[0].text.hasSuffix(" line\nlast"))
        // Byte ranges stay those of the source even though the text has other bytes.
        XCTAssertEqual(doc.sections[0].byteEnd, bytes.count - 1)
    }

    func testByteOrderMarkIsNotText() {
        let (doc, warnings) = DocumentParser.parse(Data([0xEF, 0xBB, 0xBF] + Array("hello\n".utf8)), kind: .text, language: nil, path: "b.txt")
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(doc.sections.map(\.text), ["hello"])
        XCTAssertEqual(doc.sections[0].byteStart, 3)
        XCTAssertEqual(doc.title, "hello")
    }
}
