import CLZ4
import Foundation
import KBCore

/// A segment file, memory-mapped (format-spec.md).
///
/// `init` checks the header, directory and footer (magic, version 1 or 2, CRC32C of
/// header+directory), that every section lies inside the file, that section lengths agree
/// with the counts, and that every reference in the DOCUMENTS, HEADINGS, CHUNKS and
/// TEXT_INDEX records stays inside its target: O(documents + chunks + blocks), without
/// touching the vectors or the text. After that no accessor can read outside the mapping.
/// Section checksums are checked only by `verify()`. Immutable, so safe to share across
/// threads.
public final class SegmentReader: @unchecked Sendable {
    public let path: String
    public let model: ModelDescriptor
    private let file: MappedFile
    private let bytes: UnsafeRawBufferPointer
    private let sections: [SectionKind: (offset: Int, length: Int, crc: UInt32)]
    private let docCount: Int, chunkCountValue: Int, dims: Int, stride: Int, blockCount: Int
    /// The LEXICAL section, when the segment has one (written since BM25 search exists).
    public let lexical: LexicalIndex?
    private let vectorsAt: Int, quantAt: Int, docsAt: Int, chunksAt: Int, headingsAt: Int, stringsAt: Int, indexAt: Int, textAt: Int

    /// Opens and maps `path`. Throws `FileError` when it cannot be opened or mapped and
    /// `SegmentError` (naming the file) when it is not a readable version-1 or version-2
    /// segment (`.unsupportedModelVersion` when its MODEL section is a later kbindex's).
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        bytes = file.bytes
        let b = bytes, size = b.count
        func corrupt(_ r: String) -> SegmentError { .corrupt(file: path, reason: r) }
        func oob(_ w: String) -> SegmentError { .outOfBounds(file: path, what: w) }

        let minSize = SegmentFormat.headerSize + SegmentFormat.footerSize
        if size >= 8 && !SegmentFormat.magic.elementsEqual(b[0..<8]) { throw SegmentError.badMagic(file: path) }
        guard size >= minSize else { throw SegmentError.truncated(file: path, size: size) }
        let version = b.u32(8)
        guard SegmentFormat.readableVersions.contains(version) else { throw SegmentError.unsupportedVersion(file: path, version: version) }
        let declaredSize = b.u64(56)
        let footer = size - SegmentFormat.footerSize
        guard SegmentFormat.magic.elementsEqual(b[footer + 8..<footer + 16]) else {
            if declaredSize > UInt64(size) { throw SegmentError.truncated(file: path, size: size) }
            throw corrupt("the footer's magic bytes are missing")
        }
        guard b.u32(footer + 4) == 0 else { throw corrupt("the footer's reserved field is not zero") }
        let n = Int(b.u32(16))
        guard n <= 4096, SegmentFormat.headerSize + n * SegmentFormat.directoryEntrySize <= footer else {
            throw oob("the section count (\(n))")
        }
        let dirEnd = SegmentFormat.headerSize + n * SegmentFormat.directoryEntrySize
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<dirEnd])) == b.u32(footer) else {
            throw SegmentError.checksumMismatch(file: path, section: "header/directory")
        }
        guard declaredSize == UInt64(size) else {
            throw declaredSize > UInt64(size)
                ? SegmentError.truncated(file: path, size: size)
                : corrupt("the file has \(size) bytes, its header says \(declaredSize)")
        }
        let flags = b.u32(12)
        guard flags == 0 else { throw corrupt(String(format: "unknown flags 0x%08x", flags)) }

        var secs: [SectionKind: (offset: Int, length: Int, crc: UInt32)] = [:]
        for i in 0..<n {
            let e = SegmentFormat.headerSize + i * SegmentFormat.directoryEntrySize
            let off = b.u64(e + 8), len = b.u64(e + 16)
            guard let kind = SectionKind(rawValue: b.u32(e)) else { continue }  // unknown kinds are skipped
            guard off % UInt64(SegmentFormat.alignment) == 0, off >= UInt64(dirEnd), off <= UInt64(footer),
                len <= UInt64(footer) - off
            else { throw oob("section \(kind.name) (offset \(off), length \(len))") }
            guard secs[kind] == nil else { throw corrupt("section \(kind.name) appears twice") }
            secs[kind] = (Int(off), Int(len), b.u32(e + 4))
        }
        for k in SectionKind.required where secs[k] == nil { throw corrupt("section \(k.name) is missing") }
        let sorted = secs.values.sorted { ($0.offset, $0.length) < ($1.offset, $1.length) }
        for (a, z) in zip(sorted, sorted.dropFirst()) where a.offset + a.length > z.offset {
            throw corrupt("sections overlap at offset \(z.offset)")
        }
        sections = secs

        // Counts against section lengths (overflow-safe: every product is checked).
        dims = Int(b.u32(20))
        stride = Int(b.u32(40))
        guard dims >= 1, stride == SegmentFormat.rowStride(dimensions: dims) else {
            throw corrupt("dimensions \(dims) with row stride \(stride)")
        }
        let docs64 = b.u64(24), chunks64 = b.u64(32)
        blockCount = Int(b.u32(48))
        func expect(_ kind: SectionKind, _ count: UInt64, _ recordSize: Int, _ what: String) throws -> Int {
            let (need, over) = count.multipliedReportingOverflow(by: UInt64(recordSize))
            guard !over, need == UInt64(secs[kind]!.length) else {
                throw oob("\(what) (\(count)) for section \(kind.name) of \(secs[kind]!.length) bytes")
            }
            return secs[kind]!.offset
        }
        vectorsAt = try expect(.vectors, chunks64, stride, "the chunk count")
        quantAt = try expect(.quant, chunks64, SegmentFormat.quantRecordSize, "the chunk count")
        chunksAt = try expect(.chunks, chunks64, SegmentFormat.chunkRecordSize, "the chunk count")
        docsAt = try expect(.documents, docs64, SegmentFormat.documentRecordSize, "the document count")
        indexAt = try expect(.textIndex, UInt64(blockCount), SegmentFormat.textIndexEntrySize, "the text block count")
        guard secs[.headings]!.length % SegmentFormat.stringRefSize == 0 else { throw corrupt("HEADINGS is not a whole number of entries") }
        headingsAt = secs[.headings]!.offset
        stringsAt = secs[.strings]!.offset
        textAt = secs[.text]!.offset
        docCount = Int(docs64)
        chunkCountValue = Int(chunks64)

        let m = secs[.model]!
        do {
            model = try JSONDecoder().decode(ModelDescriptor.self, from: Data(b[m.offset..<m.offset + m.length]))
        } catch ModelDescriptorError.unsupportedVersion(let v) {
            throw SegmentError.unsupportedModelVersion(file: path, version: v)
        } catch ModelDescriptorError.invalid(let why) {
            throw corrupt("the MODEL section is not a valid model descriptor: \(why)")
        } catch {
            throw corrupt("the MODEL section is not a model descriptor (\(error))")
        }
        // A version-1 segment is read by kbindex versions that know only version-1 descriptors.
        guard version >= SegmentFormat.version(for: model) else {
            throw corrupt("a version-1 segment has a version-2 MODEL section")
        }
        guard model.dimensions == dims else { throw corrupt("the model has \(model.dimensions) dimensions, the header \(dims)") }

        // Every reference, so accessors never need to check (or fail).
        let stringsLen = UInt64(secs[.strings]!.length)
        func checkRef(_ at: Int, _ what: @autoclosure () -> String) throws {
            guard UInt64(b.u32(at)) + UInt64(b.u32(at + 4)) <= stringsLen else { throw oob(what()) }
        }
        for i in 0..<docCount {
            let r = docsAt + i * SegmentFormat.documentRecordSize
            try checkRef(r, "the path of document \(i)")
            try checkRef(r + 8, "the title of document \(i)")
        }
        let headingCount = secs[.headings]!.length / SegmentFormat.stringRefSize
        for i in 0..<headingCount { try checkRef(headingsAt + i * SegmentFormat.stringRefSize, "heading string \(i)") }
        let textLen = UInt64(secs[.text]!.length)
        var blockSizes = [UInt32](repeating: 0, count: blockCount)
        for k in 0..<blockCount {
            let e = indexAt + k * SegmentFormat.textIndexEntrySize
            let off = b.u64(e), clen = UInt64(b.u32(e + 8)), ulen = b.u32(e + 12)
            guard off <= textLen, clen + UInt64(SegmentFormat.textBlockHeaderSize) <= textLen - off, ulen <= SegmentFormat.maxBlockSize,
                clen <= UInt64(SegmentFormat.compressBound(Int(ulen)))
            else {
                throw oob("text block \(k)")
            }
            blockSizes[k] = ulen
        }
        if let l = secs[.lexical] {
            lexical = try LexicalIndex(section: UnsafeRawBufferPointer(rebasing: b[l.offset..<l.offset + l.length]), chunkCount: chunkCountValue, file: path)
        } else {
            lexical = nil
        }
        for i in 0..<chunkCountValue {
            let r = chunksAt + i * SegmentFormat.chunkRecordSize
            guard UInt64(b.u32(r)) < docs64 else { throw oob("the document of chunk \(i)") }
            guard UInt64(b.u32(r + 32)) + UInt64(b.u32(r + 36)) <= UInt64(headingCount) else { throw oob("the headings of chunk \(i)") }
            let block = Int(b.u32(r + 40)), off = UInt64(b.u32(r + 44)), len = UInt64(b.u32(r + 48))
            if len > 0 {
                guard block < blockCount, off + len <= UInt64(blockSizes[block]) else { throw oob("the text of chunk \(i)") }
            }
            let unit = b.u32(r + 52)
            guard unit & 0xFF <= 2, unit >> 8 == 0 else { throw corrupt("chunk \(i) has an unknown location unit or a nonzero reserved byte (\(unit))") }
        }
    }

    /// Number of documents. O(1).
    public var documentCount: Int { docCount }
    /// Number of chunks (= vector rows). O(1).
    public var chunkCount: Int { chunkCountValue }
    /// Values per vector. O(1).
    public var dimensions: Int { dims }
    /// The file's size in bytes. O(1).
    public var fileSize: Int { bytes.count }
    /// Bytes in the section of `kind` (0 when absent), for size reports. O(1).
    public func sectionLength(_ kind: SectionKind) -> Int { sections[kind]?.length ?? 0 }
    /// Uncompressed-text blocks in the TEXT section. O(1).
    public var textBlockCount: Int { blockCount }

    private func string(_ at: Int) -> String {
        let off = Int(bytes.u32(at)), len = Int(bytes.u32(at + 4))
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[stringsAt + off..<stringsAt + off + len]), as: UTF8.self)
    }

    /// Document `i`. Precondition: 0 ≤ i < documentCount. O(path + title length).
    public func document(_ i: Int) -> DocumentRecord {
        precondition(i >= 0 && i < docCount, "document \(i) of \(docCount)")
        let r = docsAt + i * SegmentFormat.documentRecordSize
        return DocumentRecord(
            path: string(r), size: bytes.u64(r + 16), mtimeNanoseconds: bytes.i64(r + 24),
            contentSHA256: Array(bytes[r + 32..<r + 64]), title: string(r + 8))
    }

    /// Chunk `i`'s record. Precondition: 0 ≤ i < chunkCount. O(heading path length).
    public func chunk(_ i: Int) -> ChunkRecord {
        precondition(i >= 0 && i < chunkCountValue, "chunk \(i) of \(chunkCountValue)")
        let r = chunksAt + i * SegmentFormat.chunkRecordSize
        let hs = Int(bytes.u32(r + 32)), hc = Int(bytes.u32(r + 36))
        return ChunkRecord(
            document: bytes.u32(r), ordinal: bytes.u32(r + 4), lineStart: bytes.u32(r + 8), lineEnd: bytes.u32(r + 12),
            byteStart: bytes.u64(r + 16), byteEnd: bytes.u64(r + 24),
            headingPath: (hs..<hs + hc).map { string(headingsAt + $0 * SegmentFormat.stringRefSize) },
            unit: LocationUnit(rawValue: UInt8(truncatingIfNeeded: bytes.u32(r + 52))) ?? .lines)  // checked at open
    }

    /// The document chunk `i` belongs to (its record's first field), without decoding the
    /// rest of the record. Precondition: 0 ≤ i < chunkCount. O(1).
    public func documentIndex(ofChunk i: Int) -> Int {
        precondition(i >= 0 && i < chunkCountValue, "chunk \(i) of \(chunkCountValue)")
        return Int(bytes.u32(chunksAt + i * SegmentFormat.chunkRecordSize))
    }

    /// Chunk `i`'s text. Decompresses only the LZ4 block holding it (≤ about 32 KiB unless the
    /// chunk alone is longer). Invalid UTF-8 is replaced with U+FFFD. Throws `SegmentError`
    /// when the block is damaged. Precondition: 0 ≤ i < chunkCount. O(block size).
    public func text(ofChunk i: Int) throws -> String {
        precondition(i >= 0 && i < chunkCountValue, "chunk \(i) of \(chunkCountValue)")
        let r = chunksAt + i * SegmentFormat.chunkRecordSize
        let block = Int(bytes.u32(r + 40)), off = Int(bytes.u32(r + 44)), len = Int(bytes.u32(r + 48))
        if len == 0 { return "" }
        let out = try textBlock(block)
        return String(decoding: out[off..<off + len], as: UTF8.self)
    }

    /// Text block `block`, decompressed (every chunk's extent in it was checked at open).
    /// Throws `SegmentError.corrupt` when its header disagrees with TEXT_INDEX or its LZ4 data
    /// does not decompress to the stated size. Precondition: 0 ≤ block < textBlockCount.
    /// O(block size).
    public func textBlock(_ block: Int) throws -> [UInt8] {
        precondition(block >= 0 && block < blockCount, "text block \(block) of \(blockCount)")
        let e = indexAt + block * SegmentFormat.textIndexEntrySize
        let at = textAt + Int(bytes.u64(e)), clen = Int(bytes.u32(e + 8)), ulen = Int(bytes.u32(e + 12))
        guard bytes.u32(at) == UInt32(clen), bytes.u32(at + 4) == UInt32(ulen) else {
            throw SegmentError.corrupt(file: path, reason: "text block \(block)'s header disagrees with TEXT_INDEX")
        }
        // Each LZ4 input byte yields at most 255 output bytes. Without this, a few hostile bytes
        // claiming a 2 GiB block make every call allocate and zero 2 GiB before LZ4 fails.
        guard ulen <= SegmentFormat.maxExpansion * clen else {
            throw SegmentError.corrupt(file: path, reason: "text block \(block) cannot decompress to \(ulen) bytes")
        }
        let src = UnsafeRawBufferPointer(rebasing: bytes[at + 8..<at + 8 + clen])
        var out = [UInt8](repeating: 0, count: ulen)
        let got = out.withUnsafeMutableBytes { d in
            LZ4_decompress_safe(
                src.baseAddress?.assumingMemoryBound(to: CChar.self), d.baseAddress?.assumingMemoryBound(to: CChar.self),
                Int32(clen), Int32(ulen))
        }
        guard got == Int32(ulen) else {
            throw SegmentError.corrupt(file: path, reason: "text block \(block) does not decompress to \(ulen) bytes")
        }
        return out
    }

    /// Row-major int8 vectors straight from the mapping (no copy); row i starts at
    /// `vectorBase + i * rowStride`, its first `dimensions` values are the vector and the rest
    /// are zero padding. Valid while the reader lives.
    public var vectorBase: UnsafePointer<Int8> {
        (bytes.baseAddress! + vectorsAt).assumingMemoryBound(to: Int8.self)
    }
    /// Bytes per vector row: dimensions rounded up to a multiple of 64.
    public var rowStride: Int { stride }

    /// The QUANT records straight from the mapping: record i (8 bytes: f32 scale, i32 sum)
    /// starts at `quantBase + i * quantRecordStride`, so row i's scale is the Float there.
    /// Valid while the reader lives.
    public var quantBase: UnsafeRawPointer { UnsafeRawPointer(bytes.baseAddress! + quantAt) }
    /// Bytes per QUANT record.
    public var quantRecordStride: Int { SegmentFormat.quantRecordSize }

    /// The quantization scale of row `i` (x ≈ scale · q). Precondition: 0 ≤ i < chunkCount. O(1).
    public func scale(ofChunk i: Int) -> Float {
        precondition(i >= 0 && i < chunkCountValue, "chunk \(i) of \(chunkCountValue)")
        return bytes.f32(quantAt + i * SegmentFormat.quantRecordSize)
    }
    /// Σ q of row `i`. Precondition: 0 ≤ i < chunkCount. O(1).
    public func sum(ofChunk i: Int) -> Int32 {
        precondition(i >= 0 && i < chunkCountValue, "chunk \(i) of \(chunkCountValue)")
        return bytes.i32(quantAt + i * SegmentFormat.quantRecordSize + 4)
    }

    /// Row `i` as floats: scale · q[j]. Precondition: 0 ≤ i < chunkCount. O(dimensions).
    public func dequantized(_ i: Int) -> [Float] {
        let s = scale(ofChunk: i)
        let row = vectorBase + i * stride
        return (0..<dims).map { Float(row[$0]) * s }
    }

    /// Every section whose CRC32C does not match, by name, in file order (empty when the
    /// segment is intact). O(file size).
    public func damagedSections() -> [String] {
        sections.sorted(by: { $0.value.offset < $1.value.offset }).compactMap { kind, s in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[s.offset..<s.offset + s.length])) == s.crc ? nil : kind.name
        }
    }

    /// Re-reads every section and checks its CRC32C (open checks header/directory/footer
    /// only), in file order; throws `SegmentError.checksumMismatch` naming the first damaged
    /// section. O(file size).
    public func verify() throws {
        for (kind, s) in sections.sorted(by: { $0.value.offset < $1.value.offset }) {
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[s.offset..<s.offset + s.length]))
            guard crc == s.crc else { throw SegmentError.checksumMismatch(file: path, section: kind.name) }
        }
    }
}
