import CLZ4
import Foundation
import KBCore

/// Builds one segment in memory and writes it in one go (format-spec.md).
///
/// Usage: `addDocument` for each document, `addChunk` for each of its chunks, then
/// `write(to:)`. Chunk text is packed into LZ4 blocks of about `textBlockSize` bytes as chunks
/// arrive, so memory holds the vectors, the records and the compressed text. Not thread-safe.
public final class SegmentWriter {
    public let model: ModelDescriptor
    /// Uncompressed bytes per text block (a chunk never straddles two blocks; a chunk longer
    /// than this gets a block of its own).
    public let textBlockSize: Int
    private let stride: Int
    private var documents: [DocumentRecord] = []
    private var chunks: [(record: ChunkRecord, block: UInt32, offset: UInt32, length: UInt32)] = []
    private var vectors: [Int8] = []
    private var quant: [(scale: Float, sum: Int32)] = []
    private var blocks: [(compressed: [UInt8], uncompressed: Int)] = []
    private var current: [UInt8] = []
    private var terms: [[(term: [UInt8], tf: UInt32)]] = []
    /// The `LexicalTokenizer` version the chunks' terms are made with, recorded in LEXICAL
    /// (the current one; tests set 0 to write segments as older kbindex versions did).
    public var lexicalTokenizer = LexicalTokenizer.currentVersion

    /// Precondition: `model.dimensions` ≥ 1 and < 2^24; `textBlockSize` ≥ 1.
    public init(model: ModelDescriptor, textBlockSize: Int = SegmentFormat.textBlockSize) {
        precondition(model.dimensions >= 1 && model.dimensions < 1 << 24, "model dimensions \(model.dimensions)")
        precondition(textBlockSize >= 1 && textBlockSize <= SegmentFormat.maxBlockSize)
        self.model = model
        self.textBlockSize = textBlockSize
        self.stride = SegmentFormat.rowStride(dimensions: model.dimensions)
    }

    /// Adds a document and returns its index (0, 1, 2…), which chunks refer to.
    /// Precondition: `contentSHA256.count == 32`. O(1) amortized.
    @discardableResult public func addDocument(_ d: DocumentRecord) -> UInt32 {
        precondition(d.contentSHA256.count == 32, "contentSHA256 must be 32 bytes, got \(d.contentSHA256.count)")
        precondition(documents.count < Int(UInt32.max))
        documents.append(d)
        return UInt32(documents.count - 1)
    }

    /// Adds a chunk: its record, its text and its float vector (quantized here).
    ///
    /// Preconditions: `vector.count == model.dimensions`, every value finite,
    /// `chunk.document < ` documents added, text shorter than LZ4's 2,113,929,216-byte limit.
    /// O(dimensions + text length), plus compressing a block when one fills.
    /// `terms`: the chunk's term counts for the LEXICAL section, made by tokenizer
    /// `lexicalTokenizer` (nil: `LexicalTokenizer`'s counts of `text`).
    public func addChunk(_ c: ChunkRecord, text: String, vector: [Float], terms: [(term: [UInt8], tf: UInt32)]? = nil) {
        precondition(vector.count == model.dimensions, "vector has \(vector.count) values, the model \(model.dimensions)")
        let row = appendRecordAndText(c, text, terms: terms)
        let q = vector.withUnsafeBufferPointer { x in
            vectors.withUnsafeMutableBufferPointer { v in
                Quantization.quantize(x, into: UnsafeMutableBufferPointer(rebasing: v[row..<row + x.count]))
            }
        }
        quant.append(q)
    }

    /// Adds a chunk whose vector is already quantized (compaction copies rows from another
    /// segment this way, without re-embedding): `row` holds `model.dimensions` int8 values,
    /// `scale` and `sum` are its QUANT record. Same preconditions as `addChunk`, and
    /// `sum` = Σ row. O(dimensions + text length).
    public func addQuantizedChunk(_ c: ChunkRecord, text: String, row: UnsafeBufferPointer<Int8>, scale: Float, sum: Int32,
                                  terms: [(term: [UInt8], tf: UInt32)]? = nil) {
        precondition(row.count == model.dimensions, "row has \(row.count) values, the model \(model.dimensions)")
        let at = appendRecordAndText(c, text, terms: terms)
        vectors.withUnsafeMutableBufferPointer { v in
            _ = UnsafeMutableBufferPointer(rebasing: v[at..<at + row.count]).initialize(from: row)
        }
        quant.append((scale, sum))
    }

    /// Checks a chunk's record and text, packs the text into the current block, appends the
    /// record and a zeroed vector row; returns the row's offset in `vectors`.
    private func appendRecordAndText(_ c: ChunkRecord, _ text: String, terms t: [(term: [UInt8], tf: UInt32)]?) -> Int {
        precondition(Int(c.document) < documents.count, "chunk refers to document \(c.document) of \(documents.count)")
        precondition(chunks.count < Int(UInt32.max))
        let utf8 = Array(text.utf8)
        precondition(utf8.count <= SegmentFormat.maxBlockSize, "chunk text too long for one LZ4 block")

        var location: (UInt32, UInt32, UInt32) = (0, 0, 0)
        if !utf8.isEmpty {
            if !current.isEmpty && current.count + utf8.count > textBlockSize { flushBlock() }
            location = (UInt32(blocks.count), UInt32(current.count), UInt32(utf8.count))
            current.append(contentsOf: utf8)
        }
        chunks.append((c, location.0, location.1, location.2))
        terms.append(t ?? LexicalTokenizer.counts(text, version: lexicalTokenizer))
        let row = vectors.count
        vectors.append(contentsOf: repeatElement(0, count: stride))
        return row
    }

    /// Chunks added so far.
    public var chunkCount: Int { chunks.count }

    private func flushBlock() {
        blocks.append((Self.compress(current), current.count))
        current.removeAll(keepingCapacity: true)
    }

    static func compress(_ src: [UInt8]) -> [UInt8] {
        let bound = Int(LZ4_compressBound(Int32(src.count)))
        var out = [UInt8](repeating: 0, count: bound)
        let n = src.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                s.withMemoryRebound(to: CChar.self) { s8 in
                    d.withMemoryRebound(to: CChar.self) { d8 in
                        LZ4_compress_default(s8.baseAddress, d8.baseAddress, Int32(src.count), Int32(bound))
                    }
                }
            }
        }
        precondition(n > 0, "LZ4_compress_default failed on \(src.count) bytes")
        out.removeSubrange(Int(n)...)
        return out
    }

    /// The whole segment as bytes (what `write(to:)` writes). O(segment size).
    public func encoded() -> [UInt8] {
        var allBlocks = blocks
        if !current.isEmpty { allBlocks.append((Self.compress(current), current.count)) }

        // STRINGS (deduplicated) and HEADINGS. Deduplicated by UTF-8 bytes, not by String:
        // String equality is canonical equivalence, so "é" (U+00E9) and "e\u{301}" are equal
        // Strings, and keying by String would store one in place of the other.
        var pool = ByteWriter()
        var seen: [[UInt8]: (UInt32, UInt32)] = [:]
        func ref(_ s: String) -> (UInt32, UInt32) {
            let u = Array(s.utf8)
            if let r = seen[u] { return r }
            precondition(pool.bytes.count + u.count <= Int(UInt32.max), "string pool over 4 GiB")
            let r = (UInt32(pool.bytes.count), UInt32(u.count))
            pool.bytes.append(contentsOf: u)
            seen[u] = r
            return r
        }
        var docs = ByteWriter()
        for d in documents {
            let p = ref(d.path), t = ref(d.title)
            docs.u32(p.0); docs.u32(p.1); docs.u32(t.0); docs.u32(t.1)
            docs.u64(d.size); docs.i64(d.mtimeNanoseconds)
            docs.bytes.append(contentsOf: d.contentSHA256)
        }
        var headings = ByteWriter()
        var recs = ByteWriter()
        var headingCount = 0
        for c in chunks {
            let start = headingCount
            for h in c.record.headingPath {
                let r = ref(h)
                headings.u32(r.0); headings.u32(r.1)
                headingCount += 1
            }
            let r = c.record
            recs.u32(r.document); recs.u32(r.ordinal); recs.u32(r.lineStart); recs.u32(r.lineEnd)
            recs.u64(r.byteStart); recs.u64(r.byteEnd)
            recs.u32(UInt32(start)); recs.u32(UInt32(r.headingPath.count))
            recs.u32(c.block); recs.u32(c.offset); recs.u32(c.length); recs.u32(UInt32(r.unit.rawValue))  // unit, 3 bytes 0
        }
        var q = ByteWriter()
        for (s, sum) in quant { q.f32(s); q.i32(sum) }
        var text = ByteWriter(), index = ByteWriter()
        for b in allBlocks {
            index.u64(UInt64(text.bytes.count)); index.u32(UInt32(b.compressed.count)); index.u32(UInt32(b.uncompressed))
            text.u32(UInt32(b.compressed.count)); text.u32(UInt32(b.uncompressed))
            text.bytes.append(contentsOf: b.compressed)
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let modelJSON = Array(try! enc.encode(model))

        let sections: [(SectionKind, [UInt8])] = [
            (.vectors, vectors.withUnsafeBytes { Array($0) }), (.quant, q.bytes), (.chunks, recs.bytes),
            (.documents, docs.bytes), (.headings, headings.bytes), (.strings, pool.bytes),
            (.textIndex, index.bytes), (.text, text.bytes), (.lexical, encodeLexical(terms, tokenizer: lexicalTokenizer)), (.model, modelJSON),
        ]

        // Layout: header, directory, sections (each 64-aligned), footer.
        let dirEnd = SegmentFormat.headerSize + sections.count * SegmentFormat.directoryEntrySize
        var offsets: [Int] = []
        var at = SegmentFormat.align(dirEnd)
        for (_, body) in sections {
            offsets.append(at)
            at = SegmentFormat.align(at + body.count)
        }
        let fileSize = at + SegmentFormat.footerSize

        var out = ByteWriter()
        out.bytes.reserveCapacity(fileSize)
        out.bytes.append(contentsOf: SegmentFormat.magic)
        out.u32(SegmentFormat.version(for: model))
        out.u32(0)  // flags
        out.u32(UInt32(sections.count))
        out.u32(UInt32(model.dimensions))
        out.u64(UInt64(documents.count))
        out.u64(UInt64(chunks.count))
        out.u32(UInt32(stride))
        out.u32(UInt32(textBlockSize))
        out.u32(UInt32(allBlocks.count))
        out.u32(0)  // reserved
        out.u64(UInt64(fileSize))
        for (i, (kind, body)) in sections.enumerated() {
            out.u32(kind.rawValue)
            out.u32(CRC32C.checksum(body))
            out.u64(UInt64(offsets[i]))
            out.u64(UInt64(body.count))
            out.u64(0)
        }
        let headerCRC = CRC32C.checksum(out.bytes)
        for (i, (_, body)) in sections.enumerated() {
            out.pad(to: SegmentFormat.alignment)
            precondition(out.bytes.count == offsets[i])
            out.bytes.append(contentsOf: body)
        }
        out.pad(to: SegmentFormat.alignment)
        out.u32(headerCRC)
        out.u32(0)
        out.bytes.append(contentsOf: SegmentFormat.magic)
        precondition(out.bytes.count == fileSize)
        return out.bytes
    }

    /// Writes the whole segment to `path` atomically (temporary file, fsync, rename, fsync the
    /// folder) and returns the bytes written. Throws `FileError`. The writer stays usable (more
    /// chunks may be added and written again). O(segment size); holds the encoded segment in
    /// memory once.
    public func write(to path: String) throws -> Int {
        let bytes = encoded()
        try AtomicFile.write(Data(bytes), to: path)
        return bytes.count
    }
}
