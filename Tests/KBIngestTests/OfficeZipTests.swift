import Foundation
import KBTestSupport
import XCTest
@testable import KBIngest

/// The zip reader under hostile archives: bombs stop early (counted while inflating), damage
/// is a clear error, never a crash.
final class OfficeZipTests: XCTestCase {
    typealias F = OfficeFiles

    /// A document.xml of 16 MiB, nearly all one repeated byte: deflate makes it ~16 KiB (a
    /// ratio near 1000).
    static func bombDocument() throws -> Data {
        let filler = String(repeating: "a", count: 16 << 20)
        return try F.zip([("word/document.xml", Data(F.documentXML(F.p(filler)).utf8))])
    }

    func testZipBombStopsAtTheRatioWhileInflating() throws {
        let data = try Self.bombDocument()
        XCTAssertLessThan(data.count, 100 << 10)
        let e = extractionError(data, "bomb.docx")
        guard case .zipBomb(let detail)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(detail.hasPrefix("word/document.xml inflates to more than 200 times its compressed size"), detail)
        // The work was bounded by the limit, not by the 16 MiB the entry holds.
        let zip = try ZipReader(data, limits: ExtractionLimits())
        XCTAssertThrowsError(try zip.read("word/document.xml"))
        let compressed = try XCTUnwrap(zip.entry("word/document.xml")).compressedSize
        XCTAssertLessThanOrEqual(zip.inflatedBytes, max(ZipReader.ratioFloor, 200 * compressed) + ZipReader.bufferSize)
        XCTAssertLessThan(zip.inflatedBytes, 8 << 20)
    }

    func testTotalInflatedLimitCountsAllParts() throws {
        // Three ordinary parts of 400 KB each (ratio under the limit: random words).
        var rng = SeededRNG(seed: 7)
        let words = (0..<60_000).map { _ in String(UInt32.random(in: 0...UInt32.max, using: &rng), radix: 36) }.joined(separator: " ")
        let part = Data(F.documentXML(F.p(String(words.prefix(400_000)))).utf8)
        let data = try F.zip([("word/document.xml", part), ("word/styles.xml", part), ("docProps/core.xml", part)])
        var limits = ExtractionLimits()
        limits.maxUncompressedBytes = 1 << 20
        let e = extractionError(data, "big.docx", limits: limits)
        guard case .zipBomb(let detail)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(detail.hasPrefix("more than 1 MiB inflated in total (at "), detail)
        // Under a larger limit the same file reads.
        limits.maxUncompressedBytes = 4 << 20
        guard case .success = extract(data, "big.docx", limits: limits) else { return XCTFail("not read under 4 MiB") }
    }

    func testStoredEntriesAndCaseInsensitiveNames() throws {
        let data = try F.zip([("Word/Document.xml", Data(F.documentXML(F.p("Stored text")).utf8))], stored: true)
        let r = extracted(data, "stored.docx")
        XCTAssertEqual(r.document.sections.map(\.text), ["Stored text"])
    }

    func testDamagedBytesNeverCrash() throws {
        let good = try F.docx(body: F.p("Heading", style: "Heading1") + F.p("Some text to read."), styles: OfficeDOCXTests.styles, title: "T")
        var rng = SeededRNG(seed: 15)
        var failures = 0, successes = 0
        for round in 0..<400 {
            var bad = good
            // Flip one to four bytes (some rounds aim at the central directory, the last part).
            for _ in 0..<(1 + round % 4) {
                let at = round % 2 == 0 ? Int.random(in: 0..<bad.count, using: &rng) : bad.count - 1 - Int.random(in: 0..<min(200, bad.count), using: &rng)
                bad[at] = UInt8.random(in: 0...255, using: &rng)
            }
            if round % 7 == 0 { bad = bad.prefix(Int.random(in: 0..<bad.count, using: &rng)) }
            switch extract(bad, "fuzz.docx") {
            case .success: successes += 1
            case .failure: failures += 1
            }
        }
        // Both happen: damage that matters is refused, damage that does not (a date, an
        // attribute byte) is read through.
        XCTAssertGreaterThan(failures, 0)
        XCTAssertGreaterThan(successes, 0)
    }

    func testChecksumMismatchIsDamage() throws {
        var data = try F.zip([("word/document.xml", Data(F.documentXML(F.p("Checked text")).utf8))], stored: true)
        let at = try XCTUnwrap(data.range(of: Data("Checked".utf8))).lowerBound
        data[at] = UInt8(ascii: "X")
        XCTAssertEqual(extractionError(data, "crc.docx"), .malformed("word/document.xml: checksum mismatch (damaged)"))
    }

    func testTooManyEntries() throws {
        // A directory of 50,001 (minimal) entries is refused before reading any.
        let n = 50_001
        var data = Data()
        for _ in 0..<n { data.append(contentsOf: [0x50, 0x4B, 1, 2] + [UInt8](repeating: 0, count: 42)) }
        func le(_ v: Int, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8((v >> (8 * $0)) & 0xFF) } }
        data.append(contentsOf: [0x50, 0x4B, 5, 6, 0, 0, 0, 0] + le(n, 2) + le(n, 2) + le(n * 46, 4) + le(0, 4) + [0, 0])
        XCTAssertEqual(extractionError(data, "n.docx"), .zipBomb("50001 entries (at most 50000)"))
    }

    /// A damaged entry count is damage, not a bomb: the count must fit in the directory's
    /// size (46 bytes an entry at least), and 0xFFFF means zip64, whose locator must be there.
    func testDamagedEntryCountIsDamageNotABomb() throws {
        var data = try F.zip([("word/document.xml", Data(F.documentXML(F.p("x")).utf8))])
        let eocd = data.count - 22
        XCTAssertEqual(Array(data[eocd..<(eocd + 4)]), [0x50, 0x4B, 5, 6])
        data[eocd + 10] = 0x70; data[eocd + 11] = 0x11   // 0x1170 = 4464 entries in a directory of one
        XCTAssertEqual(extractionError(data, "n.docx"), .malformed("damaged zip directory (4464 entries cannot fit in its 63 bytes)"))
        data[eocd + 10] = 0x04; data[eocd + 11] = 0xF4   // 62468
        XCTAssertEqual(extractionError(data, "n.docx"), .malformed("damaged zip directory (62468 entries cannot fit in its 63 bytes)"))
        data[eocd + 10] = 0xFF; data[eocd + 11] = 0xFF   // the zip64 marker, without a zip64 record
        XCTAssertEqual(extractionError(data, "n.docx"), .malformed("damaged zip directory (its size fields say zip64, but there is no zip64 record)"))
    }

    /// A deflate stream cut short is damage, never a bomb, whatever the bytes after its end
    /// would decode to (zeros, in the middle of a block of long repeats, decode as more
    /// repeats: they must never be inflated).
    func testTruncatedDeflateIsDamageNotABomb() throws {
        // 150 KB of varied words, then 16 MiB of one letter: the last blocks are all
        // <length 258, distance 1> codes.
        var rng = SeededRNG(seed: 3)
        let words = (0..<30_000).map { _ in String(UInt32.random(in: 0...UInt32.max, using: &rng), radix: 36) }.joined(separator: " ")
        var good = try F.zip([("word/document.xml", Data(F.documentXML(F.p(String(words.prefix(150_000)) + String(repeating: "a", count: 16 << 20))).utf8))])
        let directory = try XCTUnwrap(good.range(of: Data([0x50, 0x4B, 1, 2]))).lowerBound
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(good[at + $1]) << (8 * $1) } }
        let compressed = u32(directory + 20)
        XCTAssertLessThan(compressed, 200_000)
        // Cut: the directory says the data ends 8 KB before it does (inside the repeats).
        let cut = compressed - 8_000
        for k in 0..<4 { good[directory + 20 + k] = UInt8((cut >> (8 * k)) & 0xFF) }
        XCTAssertEqual(extractionError(good, "cut.docx"), .malformed("word/document.xml: compressed data ends too early (truncated or damaged)"))
        let zip = try ZipReader(good, limits: ExtractionLimits())
        XCTAssertThrowsError(try zip.read("word/document.xml"))
        XCTAssertLessThan(zip.inflatedBytes, 17 << 20)
    }
}
