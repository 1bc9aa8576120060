/// Constants of the segment format; format-spec.md documents every byte.
public enum SegmentFormat {
    /// The newest format version this code writes. Version 2 has version 1's layout and a
    /// MODEL section that may be a version-2 model descriptor (format-spec.md §16).
    public static let version: UInt32 = 2
    /// The format versions this code reads.
    public static let readableVersions: ClosedRange<UInt32> = 1...2

    /// The header `version` of a segment whose MODEL section is `model`: 2 for a version-2
    /// descriptor, else 1 (so such a segment is byte for byte what kbindex wrote before
    /// version 2 existed). O(1).
    public static func version(for model: ModelDescriptor) -> UInt32 { model.version == 2 ? 2 : 1 }
    /// The 8 bytes a segment starts and ends with: "KBSEG", 0, 0, 1.
    public static let magic: [UInt8] = [0x4B, 0x42, 0x53, 0x45, 0x47, 0x00, 0x00, 0x01]
    /// Uncompressed text per LZ4 block (format-spec.md, "Why this block size").
    public static let textBlockSize = 32 * 1024
    /// Every section starts at a multiple of this.
    public static let alignment = 64

    static let headerSize = 64
    static let directoryEntrySize = 32
    static let footerSize = 16
    static let documentRecordSize = 64
    static let chunkRecordSize = 56
    static let quantRecordSize = 8
    static let stringRefSize = 8
    static let textIndexEntrySize = 16
    static let textBlockHeaderSize = 8
    /// LZ4_MAX_INPUT_SIZE: the largest block LZ4's block format takes.
    static let maxBlockSize = 0x7E00_0000

    /// LZ4_COMPRESSBOUND: the most bytes LZ4 compresses `n` ≤ maxBlockSize bytes into. A block
    /// whose compressed length exceeds it is damaged (and its length would not fit LZ4's Int32).
    static func compressBound(_ n: Int) -> Int { n + n / 255 + 16 }
    /// The most bytes one byte of an LZ4 block decompresses to: a length byte adds at most
    /// 255 (format-spec.md §12); a token yields at most 19, a literal 1, an offset byte 0.
    static let maxExpansion = 255

    /// Row stride for `dims`: dims rounded up to a multiple of 64.
    public static func rowStride(dimensions dims: Int) -> Int { align(dims) }

    static func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// The sections of a v1 segment (directory `kind` values).
public enum SectionKind: UInt32, CaseIterable, Sendable {
    case vectors = 1, quant = 2, model = 3, documents = 4, chunks = 5, headings = 6, strings = 7, textIndex = 8, text = 9
    /// Optional (segments written before it existed lack it): terms for BM25 (§8.11).
    case lexical = 10

    /// The kinds every segment has.
    public static let required: [SectionKind] = [.vectors, .quant, .model, .documents, .chunks, .headings, .strings, .textIndex, .text]

    public var name: String {
        switch self {
        case .vectors: "VECTORS"
        case .quant: "QUANT"
        case .model: "MODEL"
        case .documents: "DOCUMENTS"
        case .chunks: "CHUNKS"
        case .headings: "HEADINGS"
        case .strings: "STRINGS"
        case .textIndex: "TEXT_INDEX"
        case .lexical: "LEXICAL"
        case .text: "TEXT"
        }
    }
}

/// Little-endian appends to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func pad(to multiple: Int) {
        let r = bytes.count % multiple
        if r != 0 { bytes.append(contentsOf: repeatElement(0, count: multiple - r)) }
    }
}

/// Little-endian loads from a mapping; callers bounds-check first.
extension UnsafeRawBufferPointer {
    @inline(__always) func u32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
    @inline(__always) func i32(_ at: Int) -> Int32 { Int32(bitPattern: u32(at)) }
    @inline(__always) func i64(_ at: Int) -> Int64 { Int64(bitPattern: u64(at)) }
    @inline(__always) func f32(_ at: Int) -> Float { Float(bitPattern: u32(at)) }
}
