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
        XCTAssertEqual(warnings[0], "invalid UTF-8 on 1 line(s) (first: line 2), replaced with U+FFFD", "the caller names the file")
        XCTAssertTrue(doc.sections[0].text.contains("bad \u{FFFD}"))
        XCTAssertTrue(doc.sections[0].text.hasSuffix(" line\nlast"))
        // Byte ranges stay those of the source even though the text has other bytes.
        XCTAssertEqual(doc.sections[0].byteEnd, bytes.count - 1)
    }

    func testUTF16AndUTF32AreDecodedWithTheirByteOrderMark() {
        let text = "Première ligne\r\n\r\nDeux 😀 fin\n"
        let le = Data([0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        let be32 = Data([0, 0, 0xFE, 0xFF] + text.unicodeScalars.flatMap { s in [24, 16, 8, 0].map { UInt8((s.value >> $0) & 0xFF) } })
        for data in [le, be32] {
            let (doc, warnings) = DocumentParser.parse(data, kind: .text, language: nil, path: "u.txt")
            XCTAssertEqual(warnings, [])
            XCTAssertEqual(doc.sections.map(\.text), ["Première ligne", "Deux 😀 fin"])
            XCTAssertEqual(doc.sections.map(\.lineStart), [1, 3])
        }
        // An unpaired surrogate and an odd final byte: replaced, with a warning.
        let bad = Data([0xFF, 0xFE, 0x41, 0, 0x00, 0xD8, 0x42, 0, 0x43])
        let (doc, warnings) = DocumentParser.parse(bad, kind: .text, language: nil, path: "bad.txt")
        XCTAssertEqual(warnings, ["2 invalid UTF-16LE sequence(s) replaced with U+FFFD"])
        XCTAssertEqual(doc.sections.map(\.text), ["A\u{FFFD}B\u{FFFD}"])
    }

    func testTextEncodingSniffsMarksAndHandlesCutText() {
        XCTAssertEqual(TextEncoding.sniff([0xFF, 0xFE, 0, 0, 0x41, 0, 0, 0]).encoding, .utf32LittleEndian)
        XCTAssertEqual(TextEncoding.sniff([0xFF, 0xFE, 0x41, 0]).encoding, .utf16LittleEndian)
        XCTAssertEqual(TextEncoding.sniff([0xFE, 0xFF]).encoding, .utf16BigEndian)
        XCTAssertEqual(TextEncoding.sniff([0, 0, 0xFE, 0xFF]).encoding, .utf32BigEndian)
        XCTAssertEqual(TextEncoding.sniff([0xEF, 0xBB, 0xBF, 0x41]).encoding, .utf8)
        XCTAssertEqual(TextEncoding.sniff([]).encoding, .utf8)
        // UTF-8 passes through untouched, invalid bytes and all (the parser warns about them).
        XCTAssertEqual(TextEncoding.utf8([0x41, 0xFF]).utf8, [0x41, 0xFF])
        // A prefix cut inside a surrogate pair, or inside a code unit, loses only that.
        let cut: [UInt8] = [0xFF, 0xFE, 0x41, 0, 0x3D, 0xD8]
        XCTAssertEqual(TextEncoding.utf8(cut, truncated: true).utf8, [0x41])
        XCTAssertEqual(TextEncoding.utf8(cut, truncated: true).replaced, 0)
        XCTAssertEqual(TextEncoding.utf8(cut + [0x00], truncated: true).utf8, [0x41])
        XCTAssertEqual(TextEncoding.utf8(cut).replaced, 1)
        // Past U+10FFFF in UTF-32.
        XCTAssertEqual(TextEncoding.utf8([0xFF, 0xFE, 0, 0, 0, 0, 0x11, 0]).replaced, 1)
    }

    func testByteOrderMarkIsNotText() {
        let (doc, warnings) = DocumentParser.parse(Data([0xEF, 0xBB, 0xBF] + Array("hello\n".utf8)), kind: .text, language: nil, path: "b.txt")
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(doc.sections.map(\.text), ["hello"])
        XCTAssertEqual(doc.sections[0].byteStart, 3)
        XCTAssertEqual(doc.title, "hello")
    }
}
