import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

final class SegmentRoundTripTests: TempDirTestCase {
    func check(_ s: RandomSegment, textBlockSize: Int = SegmentFormat.textBlockSize, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = path("seg-\(UUID().uuidString).kbseg")
        let written = try s.writer(textBlockSize: textBlockSize).write(to: p)
        let r = try SegmentReader(path: p)
        try r.verify()
        XCTAssertEqual(r.fileSize, written, file: file, line: line)
        XCTAssertEqual(r.model, s.model, file: file, line: line)
        XCTAssertEqual(r.dimensions, s.model.dimensions, file: file, line: line)
        XCTAssertEqual(r.rowStride % 64, 0, file: file, line: line)
        XCTAssertGreaterThanOrEqual(r.rowStride, r.dimensions, file: file, line: line)
        XCTAssertEqual(r.documentCount, s.documents.count, file: file, line: line)
        XCTAssertEqual(r.chunkCount, s.chunks.count, file: file, line: line)
        // Strings are compared as UTF-8 bytes too: String == is canonical equivalence.
        for (i, d) in s.documents.enumerated() {
            let got = r.document(i)
            XCTAssertEqual(got, d, file: file, line: line)
            XCTAssertEqual(Array(got.path.utf8), Array(d.path.utf8), file: file, line: line)
            XCTAssertEqual(Array(got.title.utf8), Array(d.title.utf8), file: file, line: line)
        }
        for (i, c) in s.chunks.enumerated() {
            let got = r.chunk(i)
            XCTAssertEqual(got, c.record, file: file, line: line)
            XCTAssertEqual(got.headingPath.map { Array($0.utf8) }, c.record.headingPath.map { Array($0.utf8) }, file: file, line: line)
            XCTAssertEqual(Array(try r.text(ofChunk: i).utf8), Array(c.text.utf8), file: file, line: line)
            let scale = r.scale(ofChunk: i)
            let deq = r.dequantized(i)
            XCTAssertEqual(deq.count, c.vector.count)
            for (a, b) in zip(deq, c.vector) where abs(a - b) > scale / 2 * (1 + 1e-5) + 1e-12 {
                XCTFail("chunk \(i): \(a) vs \(b), scale \(scale)", file: file, line: line)
                break
            }
            let row = r.vectorBase + i * r.rowStride
            var sum: Int32 = 0
            for j in 0..<r.dimensions { sum += Int32(row[j]) }
            XCTAssertEqual(r.sum(ofChunk: i), sum, file: file, line: line)
            for j in r.dimensions..<r.rowStride where row[j] != 0 { XCTFail("padding not zero", file: file, line: line); break }
        }
    }

    func testRandomSegmentsRoundTrip() throws {
        for seed in 0..<40 as Range<UInt64> {
            try check(RandomSegment(seed: seed))
        }
    }

    func testSmallBlocksManyBlocksAndLongTextsRoundTrip() throws {
        for seed in 100..<110 as Range<UInt64> {
            let s = RandomSegment(seed: seed, chunks: 80, maxText: 2000)
            try check(s, textBlockSize: 1024)
            let r = try SegmentReader(path: { let p = path("b.kbseg"); _ = try! s.writer(textBlockSize: 1024).write(to: p); return p }())
            XCTAssertGreaterThan(r.textBlockCount, 5)
        }
    }

    /// A chunk's unit (lines, pages, paragraphs) comes back as written; segments written before
    /// the field held 0 there, which reads as lines; an unknown unit is refused at open.
    func testLocationUnitsRoundTripAndAnUnknownUnitIsRefused() throws {
        var s = RandomSegment(seed: 21, dims: 8, documents: 2, chunks: 0)
        for (i, unit) in [LocationUnit.lines, .pages, .paragraphs, .pages].enumerated() {
            let rec = ChunkRecord(document: UInt32(i % 2), ordinal: UInt32(i), lineStart: 3, lineEnd: 4, byteStart: 0, byteEnd: 9,
                                  headingPath: ["H"], unit: unit)
            s.chunks.append((rec, "text \(i)", [Float](repeating: 0.5, count: 8)))
        }
        try check(s)
        let p = path("units.kbseg")
        _ = try s.writer().write(to: p)
        let r = try SegmentReader(path: p)
        XCTAssertEqual((0..<4).map { r.chunk($0).unit }, [.lines, .pages, .paragraphs, .pages])
        // Byte 52 of chunk 1's record: find CHUNKS in the directory.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        func le(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let chunksAt = (0..<le(16, 4)).map { 64 + 32 * $0 }.first { le($0, 4) == Int(SectionKind.chunks.rawValue) }.map { le($0 + 8, 8) }!
        XCTAssertEqual(bytes[chunksAt + 56 + 52], 1)
        for (value, at) in [(UInt8(3), 52), (UInt8(1), 53)] {
            var damaged = bytes
            damaged[chunksAt + 56 + at] = value
            try Data(damaged).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try SegmentReader(path: p), "byte \(at) = \(value)") { e in
                guard case SegmentError.corrupt(_, let reason)? = e as? SegmentError else { return XCTFail("\(e)") }
                XCTAssertTrue(reason.contains("chunk 1"), reason)
            }
        }
        bytes[chunksAt + 56 + 52] = 0  // what writers before the field wrote: lines
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        XCTAssertEqual(try SegmentReader(path: p).chunk(1).unit, .lines)
    }

    func testEmptySegmentAndNoDocuments() throws {
        try check(RandomSegment(seed: 7, documents: 0, chunks: 0))
        try check(RandomSegment(seed: 8, documents: 3, chunks: 0))
    }

    func testOneTextLongerThanABlock() throws {
        var s = RandomSegment(seed: 9, dims: 384, documents: 1, chunks: 0)
        let long = String(repeating: "Ünïcödé 🙂 text that goes on. ", count: 20_000)  // ~700 KB, over 20 blocks' worth
        XCTAssertGreaterThan(long.utf8.count, 20 * SegmentFormat.textBlockSize)
        let rec = ChunkRecord(document: 0, ordinal: 0, lineStart: 1, lineEnd: 2, byteStart: 0, byteEnd: 5, headingPath: ["A", "B"])
        s.chunks = [(rec, "before", [Float](repeating: 0.5, count: 384)), (rec, long, [Float](repeating: -0.25, count: 384)), (rec, "after", [Float](repeating: 0, count: 384))]
        try check(s)
    }

    /// "é" (U+00E9) and "e\u{301}" are equal Strings (canonical equivalence) but different
    /// bytes; each must come back exactly as written. The string pool once deduplicated by
    /// String and stored whichever came first for both.
    func testCanonicallyEquivalentStringsKeepTheirBytes() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        XCTAssertEqual(composed, decomposed)
        XCTAssertNotEqual(Array(composed.utf8), Array(decomposed.utf8))
        var s = RandomSegment(seed: 12, dims: 4, documents: 0, chunks: 0)
        let sha = [UInt8](repeating: 7, count: 32)
        s.documents = [
            DocumentRecord(path: composed, size: 1, mtimeNanoseconds: 2, contentSHA256: sha, title: decomposed),
            DocumentRecord(path: decomposed, size: 1, mtimeNanoseconds: 2, contentSHA256: sha, title: composed),
        ]
        let rec = ChunkRecord(document: 1, ordinal: 0, lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 1, headingPath: [composed, decomposed, "\u{2126}", "\u{3A9}"])  // OHM SIGN ≡ OMEGA
        s.chunks = [(rec, decomposed + composed, [1, 0, 0, 0])]
        try check(s)
        let p = path("c.kbseg")
        _ = try s.writer().write(to: p)
        let r = try SegmentReader(path: p)
        XCTAssertEqual(Array(r.document(0).path.utf8), Array(composed.utf8))
        XCTAssertEqual(Array(r.document(1).path.utf8), Array(decomposed.utf8))
        XCTAssertEqual(r.chunk(0).headingPath.map { Array($0.utf8) }, [Array(composed.utf8), Array(decomposed.utf8), [0xE2, 0x84, 0xA6], [0xCE, 0xA9]])
    }

    func testLargeSegment() throws {
        try check(RandomSegment(seed: 11, dims: 384, documents: 20, chunks: 2000, maxText: 1500))
    }

    func testWriteReplacesAtomicallyAndLeavesNoTemporaryFile() throws {
        let p = path("a.kbseg")
        _ = try RandomSegment(seed: 1).writer().write(to: p)
        let s2 = RandomSegment(seed: 2)
        _ = try s2.writer().write(to: p)
        XCTAssertEqual(try SegmentReader(path: p).chunkCount, s2.chunks.count)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["a.kbseg"])
    }

    func testSectionsAreAlignedAndTheFileEndsWithTheMagic() throws {
        let p = path("a.kbseg")
        _ = try RandomSegment(seed: 3).writer().write(to: p)
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        XCTAssertEqual(Array(b[0..<8]), SegmentFormat.magic)
        XCTAssertEqual(Array(b[(b.count - 8)...]), SegmentFormat.magic)
        let n = Int(b[16])
        for i in 0..<n {
            let e = 64 + 32 * i
            let off = b[e + 8..<e + 16].reversed().reduce(0) { $0 << 8 | Int($1) }
            XCTAssertEqual(off % 64, 0)
        }
    }

    func testCRC32CStandardVector() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)  // RFC 3720 B.4
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        var rng = SeededRNG(seed: 5)
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = CRC32C.checksum(data)
        for cut in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let a = data[..<cut].withUnsafeBytes { CRC32C.update(0, $0) }
            XCTAssertEqual(data[cut...].withUnsafeBytes { CRC32C.update(a, $0) }, whole)
        }
    }
}

final class QuantizationTests: XCTestCase {
    func quantize(_ x: [Float]) -> (q: [Int8], scale: Float, sum: Int32) {
        var q = [Int8](repeating: 99, count: x.count)
        let r = x.withUnsafeBufferPointer { xp in q.withUnsafeMutableBufferPointer { Quantization.quantize(xp, into: $0) } }
        return (q, r.scale, r.sum)
    }

    func testErrorIsAtMostHalfAStep() {
        var rng = SeededRNG(seed: 42)
        for _ in 0..<500 {
            let n = Int.random(in: 1...400, using: &rng)
            let mag = Float.random(in: 1e-6...1e3, using: &rng)
            let x = (0..<n).map { _ in Float.random(in: -mag...mag, using: &rng) }
            let (q, scale, sum) = quantize(x)
            XCTAssertEqual(scale, x.map { abs($0) }.max()! / 127)
            XCTAssertEqual(sum, q.reduce(0) { $0 + Int32($1) })
            XCTAssertTrue(q.allSatisfy { $0 >= -127 && $0 <= 127 })
            XCTAssertTrue(q.contains { abs(Int($0)) == 127 })
            for (v, c) in zip(x, q) { XCTAssertLessThanOrEqual(abs(v - scale * Float(c)), scale / 2 * (1 + 1e-5)) }
        }
    }

    func testAllZeroVector() {
        let (q, scale, sum) = quantize([Float](repeating: 0, count: 17))
        XCTAssertEqual(scale, 0)
        XCTAssertEqual(sum, 0)
        XCTAssertEqual(q, [Int8](repeating: 0, count: 17))
    }

    func testKnownValues() {
        let (q, scale, sum) = quantize([1, -1, 0.5, -0.25, 0])
        XCTAssertEqual(scale, 1 / 127)
        XCTAssertEqual(q, [127, -127, 64, -32, 0])  // 63.5 rounds away from zero
        XCTAssertEqual(sum, 32)
    }
}
