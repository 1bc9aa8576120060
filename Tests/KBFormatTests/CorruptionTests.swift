import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

/// Damaged segments must give a SegmentError naming the file, never a crash.
final class CorruptionTests: TempDirTestCase {
    var original: [UInt8] = []
    var p: String = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        p = path("seg.kbseg")
        _ = try RandomSegment(seed: 21, dims: 100, documents: 4, chunks: 40).writer(textBlockSize: 512).write(to: p)
        original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
    }

    func put(_ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: p)) }

    /// Opens, reads everything and verifies; returns the error if any (must be a SegmentError naming the file).
    func readAll() -> SegmentError? {
        do {
            let r = try SegmentReader(path: p)
            for i in 0..<r.documentCount { _ = r.document(i) }
            for i in 0..<r.chunkCount { _ = r.chunk(i); _ = try r.text(ofChunk: i); _ = r.dequantized(i) }
            try r.verify()
            return nil
        } catch let e as SegmentError {
            XCTAssertTrue(e.description.contains(p), "\(e)")
            return e
        } catch {
            XCTFail("not a SegmentError: \(error)")
            return nil
        }
    }

    func le(_ at: Int, _ size: Int) -> Int { original[at..<at + size].reversed().reduce(0) { $0 << 8 | Int($1) } }
    func setLE(_ b: inout [UInt8], _ at: Int, _ size: Int, _ v: UInt64) { for k in 0..<size { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) } }

    func testTruncatedAtManyOffsetsIsDetectedAtOpen() throws {
        var cuts = Array(stride(from: 0, to: original.count, by: max(1, original.count / 300)))
        cuts += [1, 7, 8, 63, 64, 79, 80, original.count - 16, original.count - 8, original.count - 1]
        for cut in cuts {
            try put(Array(original[..<cut]))
            XCTAssertThrowsError(try SegmentReader(path: p), "cut at \(cut)") { e in
                guard let e = e as? SegmentError else { return XCTFail("\(e)") }
                switch e {
                case .truncated, .badMagic: break
                default: XCTFail("cut at \(cut): \(e)")
                }
            }
        }
    }

    func testAFlippedByteInEachSectionIsNamedByVerify() throws {
        let n = le(16, 4)
        var seen = Set<String>()
        for i in 0..<n {
            let e = 64 + 32 * i
            let kind = SectionKind(rawValue: UInt32(le(e, 4)))!
            let off = le(e + 8, 8), len = le(e + 16, 8)
            guard len > 0 else { continue }
            for at in [off, off + len / 2, off + len - 1] {
                var b = original
                b[at] ^= 0x5A
                try put(b)
                let err = readAll()
                XCTAssertNotNil(err, "\(kind.name) byte \(at)")
                // Open may already reject it (a reference out of bounds); verify always names the section.
                if let r = try? SegmentReader(path: p) {
                    XCTAssertThrowsError(try r.verify()) { e in
                        XCTAssertEqual(e as? SegmentError, .checksumMismatch(file: p, section: kind.name))
                    }
                }
            }
            seen.insert(kind.name)
        }
        XCTAssertEqual(seen.count, 10, "\(seen)")
    }

    func testDamagedHeaderDirectoryOrFooterIsDetectedAtOpen() throws {
        let n = le(16, 4)
        for at in Array(8..<(64 + 32 * n)) + Array(original.count - 16..<original.count) {
            var b = original
            b[at] ^= 0x01
            try put(b)
            XCTAssertThrowsError(try SegmentReader(path: p), "byte \(at)") { e in XCTAssertTrue(e is SegmentError, "\(e)") }
        }
    }

    func testWrongMagic() throws {
        var b = original
        b[0] = UInt8(ascii: "X")
        try put(b)
        XCTAssertThrowsError(try SegmentReader(path: p)) { XCTAssertEqual($0 as? SegmentError, .badMagic(file: p)) }
        try put(Array("{\"not\": \"a segment\"}".utf8))
        XCTAssertThrowsError(try SegmentReader(path: p)) { XCTAssertEqual($0 as? SegmentError, .badMagic(file: p)) }
    }

    func testFutureVersion() throws {
        var b = original
        setLE(&b, 8, 4, 3)
        try put(b)
        XCTAssertThrowsError(try SegmentReader(path: p)) { e in
            XCTAssertEqual(e as? SegmentError, .unsupportedVersion(file: p, version: 3))
            XCTAssertTrue("\(e)".contains("version 3"), "\(e)")
        }
    }

    /// Rewrites header fields and re-seals the header CRC, as a buggy or hostile writer would.
    func resealed(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var b = original
        edit(&b)
        let dirEnd = 64 + 32 * le(16, 4)
        setLE(&b, b.count - 16, 4, UInt64(CRC32C.checksum(Array(b[0..<dirEnd]))))
        return b
    }

    func testCountsAndOffsetsPointingPastTheEndAreErrorsNotCrashes() throws {
        let n = le(16, 4)
        var edits: [(String, (inout [UInt8]) -> Void)] = [
            ("chunks", { self.setLE(&$0, 32, 8, UInt64.max) }),
            ("chunks+1", { self.setLE(&$0, 32, 8, UInt64(self.le(32, 8) + 1)) }),
            ("documents", { self.setLE(&$0, 24, 8, 1 << 40) }),
            ("dims", { self.setLE(&$0, 20, 4, UInt64(UInt32.max)) }),
            ("blocks", { self.setLE(&$0, 48, 4, 1_000_000) }),
            ("sections", { self.setLE(&$0, 16, 4, UInt64(UInt32.max)) }),
            ("fileSize", { self.setLE(&$0, 56, 8, UInt64.max) }),
            ("flags", { self.setLE(&$0, 12, 4, 1) }),
        ]
        for i in 0..<n {
            let e = 64 + 32 * i
            edits.append(("offset \(i)", { self.setLE(&$0, e + 8, 8, UInt64.max - 63) }))
            edits.append(("length \(i)", { self.setLE(&$0, e + 16, 8, UInt64.max) }))
            edits.append(("length+64 \(i)", { self.setLE(&$0, e + 16, 8, UInt64(self.le(e + 16, 8) + 64)) }))
            edits.append(("kind \(i)", { self.setLE(&$0, e, 4, self.le(e, 4) == 3 ? 4 : 3) }))
        }
        for (name, edit) in edits {
            try put(resealed(edit))
            XCTAssertNotNil(readAll(), name)
        }
    }

    func testReferencesInsideSectionsAreBoundsChecked() throws {
        // Find CHUNKS and DOCUMENTS, point their references far away, fix the section CRCs too.
        let n = le(16, 4)
        var at: [UInt32: (Int, Int)] = [:]
        for i in 0..<n { let e = 64 + 32 * i; at[UInt32(le(e, 4))] = (le(e + 8, 8), e) }
        let chunks = at[SectionKind.chunks.rawValue]!.0, docs = at[SectionKind.documents.rawValue]!.0
        let index = at[SectionKind.textIndex.rawValue]!.0
        let fields: [(String, Int, Int)] = [
            ("chunk document", chunks, 4), ("heading start", chunks + 32, 4), ("heading count", chunks + 36, 4),
            ("text block", chunks + 40, 4), ("text offset", chunks + 44, 4), ("text length", chunks + 48, 4),
            ("path offset", docs, 4), ("path length", docs + 4, 4), ("title length", docs + 12, 4),
            ("block offset", index, 8), ("block clen", index + 8, 4), ("block ulen", index + 12, 4),
        ]
        for (name, off, size) in fields {
            var b = original
            setLE(&b, off, size, size == 8 ? UInt64.max : UInt64(UInt32.max))
            try put(b)
            XCTAssertNotNil(readAll(), name)
        }
    }

    /// A compressed length over LZ4's worst case (n + n/255 + 16) cannot be a valid block, and
    /// past 2 GiB it would not fit LZ4's Int32 length: rejected at open (format-spec.md §10 #21),
    /// even when it stays inside TEXT and the block header agrees.
    func testCompressedLengthOverTheLZ4BoundIsRejectedAtOpen() throws {
        let n = le(16, 4)
        var at: [UInt32: (Int, Int)] = [:]
        for i in 0..<n { let e = 64 + 32 * i; at[UInt32(le(e, 4))] = (le(e + 8, 8), le(e + 16, 8)) }
        let (index, _) = at[SectionKind.textIndex.rawValue]!, (text, textLen) = at[SectionKind.text.rawValue]!
        let blockOffset = le(index, 8), ulen = le(index + 12, 4)
        let over = ulen + ulen / 255 + 17
        XCTAssertLessThanOrEqual(blockOffset + 8 + over, textLen, "the test needs a TEXT section longer than block 0's bound")
        var b = original
        setLE(&b, index + 8, 4, UInt64(over))
        setLE(&b, text + blockOffset, 4, UInt64(over))
        try put(b)
        XCTAssertThrowsError(try SegmentReader(path: p)) { e in
            XCTAssertEqual(e as? SegmentError, .outOfBounds(file: p, what: "text block 0"))
        }
    }

    func testDamagedCompressedTextIsAnErrorFromText() throws {
        let n = le(16, 4)
        for i in 0..<n where le(64 + 32 * i, 4) == Int(SectionKind.text.rawValue) {
            let off = le(64 + 32 * i + 8, 8)
            var b = original
            for k in 8..<40 { b[off + k] = 0xFF }  // garbage inside block 0's LZ4 data
            try put(b)
            let r = try SegmentReader(path: p)
            var threw = false
            for c in 0..<r.chunkCount {
                do { _ = try r.text(ofChunk: c) } catch { threw = true; XCTAssertTrue(error is SegmentError) }
            }
            XCTAssertTrue(threw)
        }
    }

    func testMissingFileIsAFileError() {
        XCTAssertThrowsError(try SegmentReader(path: path("nope.kbseg"))) { e in XCTAssertTrue("\(e)".contains("nope.kbseg"), "\(e)") }
    }
}
