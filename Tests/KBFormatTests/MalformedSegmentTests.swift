#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

/// A corpus of damaged segments made from a few valid random ones (no chunks, one block,
/// many blocks, wide vectors): every one must give a `SegmentError` naming the file at open,
/// when a record or text is read, or from `verify()`, and never crash or read outside the file.
///
/// Unlike `CorruptionTests`, which damages one segment at a few chosen places, this damages
/// systematically: truncation at every section and field boundary, a flipped bit at every bit
/// of the header, directory and footer and at random bits of every section, and oversized
/// counts, offsets and references with the checksums recomputed (`resealed`), so that the
/// bounds checks of format-spec.md §10 are what must catch them, not a CRC.
final class MalformedSegmentTests: TempDirTestCase {
    /// A valid segment and where its parts are.
    struct Sample: Sendable {
        struct Section: Sendable {
            let kind: SectionKind
            /// Offset of its directory entry.
            let entry: Int
            let offset: Int
            let length: Int
        }
        let name: String
        let bytes: [UInt8]
        let sections: [Section]  // directory order
        var size: Int { bytes.count }
        var footer: Int { bytes.count - 16 }
        var dirEnd: Int { 64 + 32 * sections.count }
        func section(_ k: SectionKind) -> Section { sections.first { $0.kind == k }! }
        func u(_ at: Int, _ size: Int) -> Int { Int(MalformedSegmentTests.le(bytes, at, size)) }

        init(_ name: String, _ segment: RandomSegment, textBlockSize: Int) {
            self.name = name
            bytes = segment.writer(textBlockSize: textBlockSize).encoded()
            let b = bytes
            sections = (0..<Int(MalformedSegmentTests.le(b, 16, 4))).map { i in
                let e = 64 + 32 * i
                return Section(
                    kind: SectionKind(rawValue: UInt32(MalformedSegmentTests.le(b, e, 4)))!, entry: e,
                    offset: Int(MalformedSegmentTests.le(b, e + 8, 8)), length: Int(MalformedSegmentTests.le(b, e + 16, 8)))
            }
        }
    }

    static let samples: [Sample] = [
        Sample("no chunks", RandomSegment(seed: 101, dims: 3, documents: 2, chunks: 0), textBlockSize: SegmentFormat.textBlockSize),
        Sample("one block", RandomSegment(seed: 102, dims: 65, documents: 3, chunks: 6, maxText: 60), textBlockSize: 1 << 20),
        Sample("many blocks", RandomSegment(seed: 103, dims: 1, documents: 4, chunks: 24, maxText: 40), textBlockSize: 64),
        Sample("384 dims", RandomSegment(seed: 104, dims: 384, documents: 1, chunks: 3, maxText: 100), textBlockSize: 128),
    ]

    var p = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        p = path("bad.kbseg")
    }

    // MARK: Bytes

    static func le(_ b: [UInt8], _ at: Int, _ size: Int) -> UInt64 {
        b[at..<at + size].reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
    static func setLE(_ b: inout [UInt8], _ at: Int, _ size: Int, _ v: UInt64) {
        for k in 0..<size { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    /// Recomputes what a writer would: the CRC32C of every known section that lies inside the
    /// file, then the footer's header/directory CRC (when the section count fits). Damage
    /// then has to be caught by the bounds and consistency checks.
    static func reseal(_ b: inout [UInt8]) {
        let n = Int(le(b, 16, 4)), footer = b.count - 16
        guard n <= 4096, 64 + 32 * n <= footer else { return }
        for i in 0..<n {
            let e = 64 + 32 * i
            let off = le(b, e + 8, 8), len = le(b, e + 16, 8)
            guard (1...9).contains(le(b, e, 4)), off <= UInt64(b.count), len <= UInt64(b.count) - off else { continue }
            setLE(&b, e + 4, 4, UInt64(CRC32C.checksum(Array(b[Int(off)..<Int(off + len)]))))
        }
        setLE(&b, footer, 4, UInt64(CRC32C.checksum(Array(b[0..<64 + 32 * n]))))
    }

    static func resealed(_ s: Sample, _ edits: [(at: Int, size: Int, value: UInt64)]) -> [UInt8] {
        var b = s.bytes
        for e in edits { setLE(&b, e.at, e.size, e.value) }
        reseal(&b)
        return b
    }

    // MARK: Reading

    /// Where a damaged file was caught.
    struct Outcome {
        var open: SegmentError?
        var read: SegmentError?
        var verify: SegmentError?
        /// The first error of `textBlock(_:)` over every block (what `kbindex verify` reads).
        var block: SegmentError?
        var any: SegmentError? { open ?? read ?? verify ?? block }
    }

    func segmentError(_ error: Error, _ label: String) -> SegmentError {
        guard let e = error as? SegmentError else {
            XCTFail("\(label): not a SegmentError: \(error)")
            return .corrupt(file: p, reason: "not a SegmentError")
        }
        XCTAssertTrue(e.description.contains(p), "\(label): the error does not name the file: \(e)")
        return e
    }

    /// Writes `bytes`, opens them and, if that works, reads every document, chunk, text, vector,
    /// scale and sum, then verifies.
    func outcome(_ bytes: [UInt8], _ label: String) throws -> Outcome {
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        var o = Outcome()
        let r: SegmentReader
        do { r = try SegmentReader(path: p) } catch {
            o.open = segmentError(error, label)
            return o
        }
        for i in 0..<r.documentCount { _ = r.document(i) }
        for i in 0..<r.chunkCount {
            _ = r.chunk(i)
            _ = r.documentIndex(ofChunk: i)
            _ = r.dequantized(i)
            _ = (r.scale(ofChunk: i), r.sum(ofChunk: i))
            do { _ = try r.text(ofChunk: i) } catch { o.read = o.read ?? segmentError(error, label) }
        }
        do { try r.verify() } catch { o.verify = segmentError(error, label) }
        for b in 0..<r.textBlockCount {
            do { _ = try r.textBlock(b) } catch { o.block = o.block ?? segmentError(error, label) }
        }
        return o
    }

    func expectOpenError(_ bytes: [UInt8], _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let o = try outcome(bytes, label)
        XCTAssertNotNil(o.open, "\(label): opened without an error", file: file, line: line)
    }

    func testTheSamplesAreValid() throws {
        for s in Self.samples {
            let o = try outcome(s.bytes, s.name)
            XCTAssertNil(o.any, s.name)
            XCTAssertEqual(s.sections.map(\.kind).sorted { $0.rawValue < $1.rawValue }, SectionKind.allCases, s.name)
        }
        XCTAssertEqual(Self.samples[0].section(.chunks).length, 0)
        XCTAssertGreaterThan(Self.samples[2].u(48, 4), 5, "'many blocks' has several text blocks")
    }

    // MARK: Truncation

    func testTruncationAtEveryBoundaryAndRandomPointsIsTruncated() throws {
        var rng = SeededRNG(seed: 7)
        for s in Self.samples {
            var marks = [0, 8, 12, 16, 20, 24, 32, 40, 44, 48, 52, 56, 64, s.dirEnd, s.footer, s.footer + 4, s.footer + 8]
            for sec in s.sections {
                marks += [sec.entry, sec.entry + 4, sec.entry + 8, sec.entry + 16, sec.entry + 24, sec.entry + 32]
                marks += [sec.offset, sec.offset + sec.length]
            }
            var cuts = Set(marks.flatMap { [$0 - 1, $0, $0 + 1] })
            for _ in 0..<200 { cuts.insert(Int.random(in: 0..<s.size, using: &rng)) }
            for cut in cuts.sorted() where cut >= 0 && cut < s.size {
                let o = try outcome(Array(s.bytes[..<cut]), "\(s.name): cut at \(cut)")
                XCTAssertEqual(o.open, .truncated(file: p, size: cut), "\(s.name): cut at \(cut)")
            }
        }
    }

    func testTrailingBytesAreAnErrorAtOpen() throws {
        for s in Self.samples {
            let footer = Array(s.bytes[s.footer...])
            for extra in [[UInt8(0)], [UInt8](repeating: 0, count: 64), Array(s.bytes[..<s.footer]) + footer,
                          [UInt8](repeating: 0, count: 48) + footer] {
                try expectOpenError(s.bytes + extra, "\(s.name): \(extra.count) bytes appended")
            }
        }
    }

    // MARK: Bit flips

    func testEveryBitOfTheHeaderDirectoryAndFooterIsCheckedAtOpen() throws {
        // About 12,000 files: each is the sample with one byte rewritten in place, which is
        // several times faster than writing the whole file each time.
        for s in Self.samples {
            try Data(s.bytes).write(to: URL(fileURLWithPath: p))
            let fd = open(p, O_WRONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            defer { close(fd) }
            for at in Array(0..<s.dirEnd) + Array(s.footer..<s.size) {
                for bit in 0..<8 {
                    var byte = s.bytes[at] ^ (1 << bit)
                    XCTAssertEqual(pwrite(fd, &byte, 1, off_t(at)), 1)
                    XCTAssertThrowsError(try SegmentReader(path: p), "\(s.name): byte \(at) bit \(bit)") { _ = segmentError($0, "\(s.name): byte \(at)") }
                }
                var byte = s.bytes[at]
                XCTAssertEqual(pwrite(fd, &byte, 1, off_t(at)), 1)
            }
        }
    }

    func testRandomBitsOfEverySectionAreCaught() throws {
        var rng = SeededRNG(seed: 8)
        var flips = 0
        for s in Self.samples {
            for sec in s.sections where sec.length > 0 {
                let picks = [0, sec.length - 1] + (0..<6).map { _ in Int.random(in: 0..<sec.length, using: &rng) }
                for at in picks {
                    var b = s.bytes
                    b[sec.offset + at] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
                    let label = "\(s.name): \(sec.kind.name) byte \(at)"
                    let o = try outcome(b, label)
                    if o.open == nil {
                        XCTAssertEqual(o.verify, .checksumMismatch(file: p, section: sec.kind.name), label)
                    }
                    flips += 1
                }
            }
        }
        XCTAssertGreaterThan(flips, 200)
    }

    // MARK: Oversized header and directory fields, checksums recomputed

    func testOversizedHeaderFieldsAreRejectedAtOpen() throws {
        for s in Self.samples {
            let size = UInt64(s.size), n = UInt64(s.sections.count)
            let chunks = UInt64(s.u(32, 8)), docs = UInt64(s.u(24, 8)), stride = UInt64(s.u(40, 4))
            let blocks = UInt64(s.u(48, 4)), dims = UInt64(s.u(20, 4))
            // chunks + wrap(r) times r is chunks·r again modulo 2⁶⁴: only an overflow check catches it.
            func wrap(_ recordSize: UInt64) -> UInt64 { 1 << (64 - UInt64(recordSize.trailingZeroBitCount)) }
            let u32max = UInt64(UInt32.max)
            let fields: [(String, Int, Int, [UInt64])] = [
                ("flags", 12, 4, [1, 0x8000_0000, u32max]),
                ("section_count", 16, 4, [0, n - 1, 4096, 4097, 0x8000_0000, u32max, size, size / 32]),
                ("dimensions", 20, 4, [0, dims + 1, dims + 64, 1 << 24, 0x8000_0000, u32max, size]),
                ("document_count", 24, 8, [docs + 1, docs + wrap(64), size, size + 1, u32max + 1, 1 << 63, UInt64(Int64.max), .max]),
                ("chunk_count", 32, 8, [chunks + 1, chunks + wrap(stride), chunks + wrap(8), chunks + wrap(56), size, size + 1,
                                        u32max + 1, 1 << 63, UInt64(Int64.max), .max]),
                ("row_stride", 40, 4, [0, stride + 64, stride - 64, stride + 1, 0x8000_0000, u32max, size]),
                ("text_block_count", 48, 4, [blocks + 1, 0x8000_0000, u32max, size, size + 1] + (blocks > 0 ? [0, blocks - 1] : [])),
                ("file_size", 56, 8, [0, size - 1, size + 1, size + 64, u32max + 1, 1 << 63, UInt64(Int64.max), .max]),
            ]
            for (name, at, width, values) in fields {
                for v in values where v & (width == 4 ? u32max : .max) == v && v != Self.le(s.bytes, at, width) {
                    try expectOpenError(Self.resealed(s, [(at, width, v)]), "\(s.name): \(name) = \(v)")
                }
            }
            for v in [0, 3, u32max] {
                let o = try outcome(Self.resealed(s, [(8, 4, v)]), "\(s.name): version \(v)")
                XCTAssertEqual(o.open, .unsupportedVersion(file: p, version: UInt32(v)))
            }
            // text_block_size is informational: readers must not use it.
            for v in [0, u32max] {
                let o = try outcome(Self.resealed(s, [(44, 4, v)]), "\(s.name): text_block_size = \(v)")
                XCTAssertNil(o.any, "\(s.name): text_block_size = \(v)")
            }
        }
    }

    func testOversizedDirectoryEntriesAreRejectedAtOpen() throws {
        for s in Self.samples {
            let size = UInt64(s.size), footer = UInt64(s.footer)
            for sec in s.sections {
                let off = UInt64(sec.offset), len = UInt64(sec.length)
                let label = "\(s.name): \(sec.kind.name)"
                let offsets: [UInt64] = [0, 64, UInt64(s.dirEnd) - 64, off + 1, off + 8, footer + 64, size, size + 48,
                                         1 << 32, 1 << 63, UInt64(Int64.max), .max - 63, .max]
                for v in offsets where v != off && !(len == 0 && v >= UInt64(s.dirEnd) && v <= footer && v % 64 == 0) {
                    try expectOpenError(Self.resealed(s, [(sec.entry + 8, 8, v)]), "\(label) offset = \(v)")
                }
                // Past the footer, and lengths whose sum with the offset wraps around 2⁶⁴.
                let lengths: [UInt64] = [footer - off + 1, size, 1 << 32, 0 &- off, 0 &- off &+ 64, 1 << 63, UInt64(Int64.max), .max]
                for v in lengths {
                    try expectOpenError(Self.resealed(s, [(sec.entry + 16, 8, v)]), "\(label) length = \(v)")
                }
                try expectOpenError(Self.resealed(s, [(sec.entry + 8, 8, .max - 63), (sec.entry + 16, 8, 64)]), "\(label) wraps")
                // Another kind's number (a duplicate), or an unknown kind (a missing section; but
                // LEXICAL is optional: without it the segment is one written before it existed).
                for k in [0, 10, UInt64(UInt32.max), UInt64(sec.kind == .model ? SectionKind.text.rawValue : SectionKind.model.rawValue)]
                where !(sec.kind == .lexical && k != UInt64(SectionKind.model.rawValue)) {
                    try expectOpenError(Self.resealed(s, [(sec.entry, 4, k)]), "\(label) kind = \(k)")
                }
            }
        }
    }

    // MARK: References inside records, section and header checksums recomputed

    /// Sets each field to each value (one edit at a time, resealed) and expects an error at
    /// open, or, for `lazy` edits (block contents), at open or from `text(ofChunk:)`.
    func expectEach(_ s: Sample, _ cases: [(String, [(at: Int, size: Int, value: UInt64)])], lazy: Bool = false) throws {
        for (name, edits) in cases {
            let label = "\(s.name): \(name)"
            let o = try outcome(Self.resealed(s, edits), label)
            if lazy {
                XCTAssertNotNil(o.open ?? o.read, "\(label): neither open nor text(ofChunk:) failed")
                if o.read != nil { XCTAssertNotNil(o.block, "\(label): text(ofChunk:) failed but reading every block did not") }
            } else {
                XCTAssertNotNil(o.open, "\(label): opened without an error")
            }
        }
    }

    func testStringReferencesOutOfRangeAreRejectedAtOpen() throws {
        for s in Self.samples {
            let strings = UInt64(s.section(.strings).length), u32max = UInt64(UInt32.max)
            var refs: [(String, Int)] = []
            let docs = s.section(.documents), headings = s.section(.headings)
            for i in 0..<docs.length / 64 { refs += [("document \(i) path", docs.offset + 64 * i), ("document \(i) title", docs.offset + 64 * i + 8)] }
            for i in 0..<headings.length / 8 { refs.append(("heading \(i)", headings.offset + 8 * i)) }
            var cases: [(String, [(at: Int, size: Int, value: UInt64)])] = []
            for (name, at) in refs {
                let off = Self.le(s.bytes, at, 4), len = Self.le(s.bytes, at + 4, 4)
                for v in [strings - len + 1, strings + 1, 0x8000_0000, u32max] { cases.append(("\(name) offset = \(v)", [(at, 4, v)])) }
                for v in [strings - off + 1, strings + 1, 0x8000_0000, u32max] { cases.append(("\(name) length = \(v)", [(at + 4, 4, v)])) }
                cases.append(("\(name) wraps in u32", [(at, 4, u32max), (at + 4, 4, 1)]))
                cases.append(("\(name) both max", [(at, 4, u32max), (at + 4, 4, u32max)]))
            }
            XCTAssertFalse(cases.isEmpty)
            try expectEach(s, cases)
        }
    }

    func testChunkReferencesOutOfRangeAreRejectedAtOpen() throws {
        for s in Self.samples {
            let chunks = s.section(.chunks), index = s.section(.textIndex)
            let docCount = UInt64(s.u(24, 8)), blockCount = UInt64(s.u(48, 4))
            let headingCount = UInt64(s.section(.headings).length / 8), u32max = UInt64(UInt32.max)
            var cases: [(String, [(at: Int, size: Int, value: UInt64)])] = []
            var emptyTexts: [Int] = []
            for i in 0..<chunks.length / 56 {
                let r = chunks.offset + 56 * i
                let hs = Self.le(s.bytes, r + 32, 4), hc = Self.le(s.bytes, r + 36, 4)
                for v in [docCount, docCount + 1, 0x8000_0000, u32max] { cases.append(("chunk \(i) document = \(v)", [(r, 4, v)])) }
                for v in [headingCount - hc + 1, headingCount + 1, u32max] { cases.append(("chunk \(i) heading_start = \(v)", [(r + 32, 4, v)])) }
                for v in [headingCount - hs + 1, headingCount + 1, u32max] { cases.append(("chunk \(i) heading_count = \(v)", [(r + 36, 4, v)])) }
                cases.append(("chunk \(i) headings wrap in u32", [(r + 32, 4, u32max), (r + 36, 4, 1)]))
                let block = Self.le(s.bytes, r + 40, 4), off = Self.le(s.bytes, r + 44, 4), len = Self.le(s.bytes, r + 48, 4)
                guard len > 0 else { emptyTexts.append(i); continue }
                let ulen = Self.le(s.bytes, index.offset + 16 * Int(block) + 12, 4)
                for v in [blockCount, blockCount + 1, u32max] { cases.append(("chunk \(i) text_block = \(v)", [(r + 40, 4, v)])) }
                for v in [ulen - len + 1, ulen, u32max] { cases.append(("chunk \(i) text_offset = \(v)", [(r + 44, 4, v)])) }
                for v in [ulen - off + 1, ulen + 1, u32max] { cases.append(("chunk \(i) text_length = \(v)", [(r + 48, 4, v)])) }
                cases.append(("chunk \(i) text wraps in u32", [(r + 44, 4, u32max), (r + 48, 4, 1)]))
            }
            try expectEach(s, cases)
            // With text_length 0 the block and offset mean nothing (format-spec.md §8.5).
            for i in emptyTexts.prefix(2) {
                let r = chunks.offset + 56 * i
                let b = Self.resealed(s, [(r + 40, 4, u32max), (r + 44, 4, u32max)])
                XCTAssertNil(try outcome(b, "\(s.name): empty chunk \(i)").any)
                XCTAssertEqual(try SegmentReader(path: p).text(ofChunk: i), "")
            }
        }
    }

    func testTextIndexOutOfRangeIsRejectedAtOpen() throws {
        for s in Self.samples {
            let index = s.section(.textIndex), text = UInt64(s.section(.text).length), u32max = UInt64(UInt32.max)
            var cases: [(String, [(at: Int, size: Int, value: UInt64)])] = []
            for k in 0..<index.length / 16 {
                let e = index.offset + 16 * k
                let off = Self.le(s.bytes, e, 8), clen = Self.le(s.bytes, e + 8, 4), ulen = Self.le(s.bytes, e + 12, 4)
                for v in [text - clen - 7, text - 7, text, text + 1, u32max + 1, 1 << 63, UInt64(Int64.max), .max] {
                    cases.append(("block \(k) block_offset = \(v)", [(e, 8, v)]))
                }
                for v in [text - off - 7, text, ulen + ulen / 255 + 17, 0x8000_0000, u32max] {
                    cases.append(("block \(k) compressed_length = \(v)", [(e + 8, 4, v)]))
                }
                // Smaller than its chunks need, or over LZ4's limit.
                for v in [0, 0x7E00_0001, 0x8000_0000, u32max] { cases.append(("block \(k) uncompressed_length = \(v)", [(e + 12, 4, v)])) }
            }
            try expectEach(s, cases)
        }
    }

    /// Block contents are checked when a chunk's text is read (format-spec.md §10 #24, #25):
    /// a block header that disagrees with TEXT_INDEX, or a TEXT_INDEX entry and block header
    /// that agree on lengths the LZ4 data does not have.
    func testLyingTextBlocksFailInTextOfChunk() throws {
        for s in Self.samples where s.u(48, 4) > 0 {
            let index = s.section(.textIndex), text = s.section(.text), u32max = UInt64(UInt32.max)
            var cases: [(String, [(at: Int, size: Int, value: UInt64)])] = []
            for k in 0..<min(index.length / 16, 4) {
                let e = index.offset + 16 * k
                let h = text.offset + s.u(e, 8), clen = UInt64(s.u(e + 8, 4)), ulen = UInt64(s.u(e + 12, 4))
                for v in [0, clen - 1, clen + 1, u32max] { cases.append(("block \(k) header clen = \(v)", [(h, 4, v)])) }
                for v in [0, ulen - 1, ulen + 1, u32max] { cases.append(("block \(k) header ulen = \(v)", [(h + 4, 4, v)])) }
                // Index and header agree, the data does not.
                cases.append(("block \(k) ulen + 1 in both", [(e + 12, 4, ulen + 1), (h + 4, 4, ulen + 1)]))
                cases.append(("block \(k) clen - 1 in both", [(e + 8, 4, clen - 1), (h, 4, clen - 1)]))
                // LZ4's largest block, claimed by a few bytes: LZ4 expands at most 255-fold.
                cases.append(("block \(k) ulen = LZ4 max in both", [(e + 12, 4, 0x7E00_0000), (h + 4, 4, 0x7E00_0000)]))
                cases.append(("block \(k) LZ4 data zeroed", (0..<Int(clen)).map { (h + 8 + $0, 1, 0) }))
                cases.append(("block \(k) LZ4 data 0xFF", (0..<Int(clen)).map { (h + 8 + $0, 1, 0xFF) }))
            }
            try expectEach(s, cases, lazy: true)
        }
    }

    // MARK: The MODEL section

    /// Replaces MODEL (the last section kbindex writes) with `json`, moving the footer and
    /// recomputing lengths and checksums.
    static func withModel(_ s: Sample, _ json: [UInt8]) -> [UInt8] {
        let m = s.section(.model)
        precondition(s.sections.allSatisfy { $0.offset <= m.offset }, "MODEL is not the last section")
        var b = Array(s.bytes[..<m.offset]) + json
        b += [UInt8](repeating: 0, count: (64 - b.count % 64) % 64)
        let size = b.count + 16
        b += [0, 0, 0, 0, 0, 0, 0, 0] + SegmentFormat.magic
        setLE(&b, m.entry + 16, 8, UInt64(json.count))
        setLE(&b, 56, 8, UInt64(size))
        reseal(&b)
        return b
    }

    func testBadModelDescriptorsAreRejectedAtOpen() throws {
        let s = Self.samples[1]
        let good = "\"maxTokens\":256,\"name\":\"m\",\"normalized\":true,\"pooling\":\"mean\",\"weightsSHA256\":\"ab\""
        XCTAssertNil(try outcome(Self.withModel(s, Array("{\"dimensions\":65,\(good)}".utf8)), "re-laid-out MODEL").any)
        // Unknown keys are ignored, however long.
        let long = "{\"dimensions\":65,\(good),\"x\":[\"\(String(repeating: "\\u00e9", count: 50_000))\"]}"
        XCTAssertNil(try outcome(Self.withModel(s, Array(long.utf8)), "MODEL with a long unknown key").any)
        var bad: [(String, [UInt8])] = [
            ("empty", []), ("null", Array("null".utf8)), ("array", Array("[]".utf8)), ("empty object", Array("{}".utf8)),
            ("not UTF-8", [0x7B, 0xFF, 0xFE, 0x7D]), ("NUL", [0]), ("truncated", Array("{\"dimensions\":65,".utf8)),
            ("deep arrays", Array(String(repeating: "[", count: 100_000).utf8)),
            ("deep objects", Array(String(repeating: "{\"a\":", count: 50_000).utf8)),
            ("deep valid nesting", Array((String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000)).utf8)),
        ]
        for dims in ["64", "66", "0", "-65", "65.5", "1e400", "9223372036854775807", "9223372036854775808", "\"65\"", "null"] {
            bad.append(("dimensions \(dims)", Array("{\"dimensions\":\(dims),\(good)}".utf8)))
        }
        for (name, json) in bad {
            try expectOpenError(Self.withModel(s, json), "MODEL \(name)")
        }
    }
}
