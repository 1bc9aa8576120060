import Foundation
import KBCore

/// Why a deletion file cannot be read. Names the file; `description` is one line that
/// describes the problem only (the command line adds what to do about it).
public struct DeletionFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }
    public var description: String {
        "deletion file \(file) is damaged (\(reason))"
    }
}

/// The deleted documents of one segment (format-spec.md §13.4): a bitmap over the segment's
/// documents. A segment is immutable; when a document changes or disappears, the next build
/// writes a new deletion file for its segment and the manifest points at it. Every chunk of a
/// deleted document is skipped by the scan.
///
/// File layout (little-endian): `"KBDL"`, u32 version (1), u64 document count, u64 deleted
/// count, the bitmap (⌈count/8⌉ bytes, document i is bit i%8 of byte i/8, bits past the count
/// are zero), u32 CRC32C of every byte before it.
public struct DeletionSet: Equatable, Sendable {
    public static let magic: [UInt8] = Array("KBDL".utf8)
    public static let version: UInt32 = 1
    /// Bytes before the bitmap.
    static let headerSize = 24

    /// Documents in the segment this set belongs to.
    public let documentCount: Int
    private var bits: [UInt8]
    /// Documents marked deleted. O(1).
    public private(set) var count: Int

    /// An empty set over `documentCount` documents. Precondition: `documentCount ≥ 0`.
    public init(documentCount: Int) {
        precondition(documentCount >= 0)
        self.documentCount = documentCount
        bits = [UInt8](repeating: 0, count: (documentCount + 7) / 8)
        count = 0
    }

    /// Whether document `i` is deleted. Precondition: 0 ≤ i < documentCount. O(1).
    public func contains(_ i: Int) -> Bool {
        precondition(i >= 0 && i < documentCount, "document \(i) of \(documentCount)")
        return bits[i >> 3] & (1 << UInt8(i & 7)) != 0
    }

    /// Marks document `i` deleted (idempotent). Precondition: 0 ≤ i < documentCount. O(1).
    public mutating func insert(_ i: Int) {
        if contains(i) { return }
        bits[i >> 3] |= 1 << UInt8(i & 7)
        count += 1
    }

    /// The file's bytes. O(documentCount).
    public func encoded() -> [UInt8] {
        var out = Self.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        put(Self.version)
        put(UInt64(documentCount))
        put(UInt64(count))
        out += bits
        put(CRC32C.checksum(out))
        return out
    }

    /// Decodes a deletion file's bytes, checking every field: magic, version, that the length
    /// matches the document count, the checksum, that no bit past the count is set and that
    /// the deleted count matches the bitmap. Throws `DeletionFileError` naming `file`.
    /// O(bytes).
    public static func decode(_ b: UnsafeRawBufferPointer, file: String) throws -> DeletionSet {
        func damaged(_ r: String) -> DeletionFileError { DeletionFileError(file: file, reason: r) }
        guard b.count >= headerSize + 4 else { throw damaged("\(b.count) bytes, shorter than a header") }
        guard magic.elementsEqual(b[0..<4]) else { throw damaged("bad magic bytes") }
        guard b.u32(4) == version else { throw damaged("version \(b.u32(4)), this kbindex reads \(version)") }
        let n = b.u64(8), deleted = b.u64(16)
        guard n <= UInt64(Int32.max) * 8, UInt64(b.count) == UInt64(headerSize) + (n + 7) / 8 + 4 else {
            throw damaged("\(b.count) bytes for \(n) documents")
        }
        let end = b.count - 4
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<end])) == b.u32(end) else { throw damaged("checksum mismatch") }
        var set = DeletionSet(documentCount: Int(n))
        set.bits = Array(b[headerSize..<end])
        set.count = set.bits.reduce(0) { $0 + $1.nonzeroBitCount }
        if n % 8 != 0, let last = set.bits.last, last >> UInt8(n % 8) != 0 { throw damaged("bits set past document \(n)") }
        guard UInt64(set.count) == deleted else { throw damaged("the header counts \(deleted) deleted documents, the bitmap \(set.count)") }
        return set
    }

    /// Reads and decodes `path`. Throws `FileError` (e.g. missing) or `DeletionFileError`.
    public static func read(path: String) throws -> DeletionSet {
        let f = try MappedFile(path: path)
        return try decode(f.bytes, file: path)
    }

    /// Writes the set to `path` atomically (temporary file, fsync, rename, fsync the folder).
    /// Throws `FileError`.
    public func write(to path: String) throws {
        try AtomicFile.write(Data(encoded()), to: path)
    }
}
