import Foundation
import ZIPFoundation
#if canImport(CZlib)
import CZlib
#else
import zlib
#endif

/// A read-only zip archive over bytes in memory, made for untrusted files: every offset and
/// size in its headers is checked against the bytes before use, entries are inflated into
/// memory only (no entry name ever becomes a path: nothing touches the disk), and inflating
/// is bounded by what is actually produced, not by the sizes the headers claim:
///   - the bytes inflated from all entries read, together, may not pass
///     `ExtractionLimits.maxUncompressedBytes`;
///   - an entry may not inflate past `ratioFloor` bytes AND past
///     `ExtractionLimits.maxCompressionRatio` times its compressed size (small entries of
///     blank space compress far better than 200:1 and are harmless; a bomb has to be large);
/// either stops the inflating as soon as it is passed, with `ExtractionError.zipBomb`.
/// Stored (0) and deflated (8) entries are read; zip64 sizes and offsets are understood.
/// Not thread-safe (it counts what it inflated); one per file.
final class ZipReader {
    struct Entry {
        var name: String
        var method: UInt16
        var flags: UInt16
        var crc: UInt32
        var compressedSize: Int
        var uncompressedSize: Int
        var localHeaderOffset: Int
        var isEncrypted: Bool { flags & 1 != 0 }
    }

    /// More entries than this and the archive is refused (an office file has tens to a few
    /// thousand; a central directory of millions of tiny entries is a denial of service).
    static let maxEntries = 50_000
    /// An entry is judged by its ratio only once it has produced this many bytes.
    static let ratioFloor = 1 << 20
    /// Inflate in pieces of this size (the bound on how far past a limit one step can go).
    static let bufferSize = 64 << 10

    let data: Data
    let limits: ExtractionLimits
    /// Entries by name, in central-directory order (the first of duplicate names wins).
    private(set) var entries: [Entry] = []
    private var byName: [String: Int] = [:]
    private var byLowercasedName: [String: Int] = [:]
    /// Bytes inflated (or copied, for stored entries) so far, over all reads.
    private(set) var inflatedBytes = 0

    /// Reads the central directory. O(entries). Throws `.malformed` when `data` is not a
    /// zip archive or its directory is damaged (outside the bytes, zip64 markers without a
    /// zip64 record, more entries than its size can hold), and `.zipBomb` for more than
    /// `maxEntries` entries in a directory that does hold them.
    init(_ data: Data, limits: ExtractionLimits) throws(ExtractionError) {
        self.data = data.startIndex == 0 ? data : Data(data)
        self.limits = limits
        try readDirectory()
    }

    var names: [String] { entries.map(\.name) }

    /// The entry named `name` (exactly, else ignoring case, as some writers vary it).
    func entry(_ name: String) -> Entry? {
        if let i = byName[name] { return entries[i] }
        if let i = byLowercasedName[name.lowercased()] { return entries[i] }
        return nil
    }

    func contains(_ name: String) -> Bool { entry(name) != nil }

    /// The inflated bytes of `name`; nil when there is no such entry. O(its inflated size).
    /// Throws `.zipBomb` when a limit is passed (see the type), `.encrypted` for an encrypted
    /// entry, `.malformed` for damaged data, an unknown method or a CRC mismatch.
    func read(_ name: String) throws(ExtractionError) -> Data? {
        guard let e = entry(name) else { return nil }
        return try read(e)
    }

    func read(_ e: Entry) throws(ExtractionError) -> Data {
        if e.isEncrypted { throw .encrypted }
        let start = try dataStart(of: e)
        guard e.compressedSize <= data.count - start else {
            throw .malformed("\(e.name): its data runs past the end of the file (truncated?)")
        }
        let compressed = data[start..<(start + e.compressedSize)]
        var out = Data()
        switch e.method {
        case 0:
            try count(e.compressedSize, entry: e, compressedSize: e.compressedSize, stored: true)
            out = Data(compressed)
        case 8:
            out = try inflate(e, from: start)
        default:
            throw .malformed("\(e.name): unsupported compression method \(e.method)")
        }
        if out.crc32(checksum: 0) != e.crc { throw .malformed("\(e.name): checksum mismatch (damaged)") }
        return out
    }

    /// Inflates the raw deflate data of `e` (at `start`), counting each piece against the
    /// limits as it is produced. zlib is given exactly the entry's bytes, nothing after them:
    /// a stream that has not ended when they run out is `.malformed` (truncated or damaged),
    /// never decoded on into padding (zeros in the middle of a block of repeats decode as
    /// more repeats, which would look like a bomb). O(inflated bytes, at most the limits).
    private func inflate(_ e: Entry, from start: Int) throws(ExtractionError) -> Data {
        var out = Data()
        let total = e.compressedSize
        guard total > 0 else { return out }
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .malformed("\(e.name): cannot inflate (zlib failed to start)")
        }
        defer { inflateEnd(&stream) }
        var failure: ExtractionError?
        var input = [UInt8](data[start..<(start + total)])
        var buffer = [UInt8](repeating: 0, count: Self.bufferSize)
        input.withUnsafeMutableBufferPointer { inputBytes in
            buffer.withUnsafeMutableBufferPointer { outputBytes in
                var fed = 0
                while true {
                    if stream.avail_in == 0 && fed < total {
                        let n = min(total - fed, 1 << 30)
                        stream.next_in = inputBytes.baseAddress! + fed
                        stream.avail_in = uInt(n)
                        fed += n
                    }
                    stream.next_out = outputBytes.baseAddress!
                    stream.avail_out = uInt(Self.bufferSize)
                    let result = CZlibInflate(&stream)
                    let produced = Self.bufferSize - Int(stream.avail_out)
                    if produced > 0 {
                        do throws(ExtractionError) {
                            try count(produced, entry: e, compressedSize: total, stored: false, soFar: out.count)
                        } catch {
                            failure = error
                            return
                        }
                        out.append(outputBytes.baseAddress!, count: produced)
                    }
                    switch result {
                    case Z_STREAM_END: return
                    case Z_OK: continue
                    case Z_BUF_ERROR where stream.avail_in == 0 && fed == total:
                        failure = .malformed("\(e.name): compressed data ends too early (truncated or damaged)")
                        return
                    default:
                        failure = .malformed("\(e.name): damaged compressed data")
                        return
                    }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Adds `n` produced bytes to the totals, throwing `.zipBomb` when a limit is passed.
    private func count(_ n: Int, entry e: Entry, compressedSize: Int, stored: Bool, soFar: Int = 0) throws(ExtractionError) {
        inflatedBytes += n
        if inflatedBytes > limits.maxUncompressedBytes {
            throw .zipBomb("more than \(byteSize(limits.maxUncompressedBytes)) inflated in total (at \(e.name))")
        }
        let produced = soFar + n
        if !stored, produced > Self.ratioFloor, produced / max(compressedSize, 1) > limits.maxCompressionRatio {
            throw .zipBomb("\(e.name) inflates to more than \(limits.maxCompressionRatio) times its compressed size (\(byteSize(compressedSize)))")
        }
    }

    // MARK: - Headers

    private func u16(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
    private func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
    /// Little-endian u64, nil when it does not fit an Int.
    private func u64(_ at: Int) -> Int? {
        let low = UInt64(u32(at)), high = UInt64(u32(at + 4))
        let v = low | high << 32
        return v > UInt64(Int.max) ? nil : Int(v)
    }
    /// Whether `count` bytes from `at` are inside the data.
    private func has(_ at: Int, _ count: Int) -> Bool { at >= 0 && count >= 0 && at <= data.count && count <= data.count - at }

    private func dataStart(of e: Entry) throws(ExtractionError) -> Int {
        let h = e.localHeaderOffset
        guard has(h, 30), u32(h) == 0x0403_4B50 else { throw .malformed("\(e.name): local header missing (damaged zip)") }
        let start = h + 30 + u16(h + 26) + u16(h + 28)
        guard start <= data.count else { throw .malformed("\(e.name): local header runs past the end of the file") }
        return start
    }

    private func readDirectory() throws(ExtractionError) {
        let notZip = ExtractionError.malformed("not a zip archive")
        guard data.count >= 22 else { throw notZip }
        // The end-of-central-directory record: within the last 22 + 65535 (comment) bytes.
        var eocd = -1
        var k = data.count - 22
        let lowest = max(0, data.count - 22 - 0xFFFF)
        while k >= lowest {
            if data[k] == 0x50 && data[k + 1] == 0x4B && data[k + 2] == 5 && data[k + 3] == 6 { eocd = k; break }
            k -= 1
        }
        guard eocd >= 0 else {
            if data.starts(with: [0x50, 0x4B, 3, 4]) { throw .malformed("zip archive without its central directory (truncated?)") }
            throw notZip
        }
        var count = u16(eocd + 10)
        var size = u32(eocd + 12)
        var offset = u32(eocd + 16)
        if count == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            // Zip64: a locator just before the record gives the zip64 record's offset.
            let loc = eocd - 20
            guard has(loc, 20), u32(loc) == 0x0706_4B50, let rec = u64(loc + 8), has(rec, 56), u32(rec) == 0x0606_4B50,
                  let c = u64(rec + 32), let s = u64(rec + 40), let o = u64(rec + 48) else {
                throw .malformed("damaged zip directory (its size fields say zip64, but there is no zip64 record)")
            }
            count = c; size = s; offset = o
        }
        // Damage before size: a count that cannot fit in the directory (46 bytes an entry at
        // least) or a directory outside the file is not a bomb.
        guard count <= size / 46 else {
            throw .malformed("damaged zip directory (\(count) entries cannot fit in its \(size) bytes)")
        }
        guard has(offset, size) else { throw .malformed("the zip directory points outside the file (truncated?)") }
        guard count <= Self.maxEntries else {
            throw .zipBomb("\(count) entries (at most \(Self.maxEntries))")
        }
        var p = offset
        let end = offset + size
        entries.reserveCapacity(count)
        while entries.count < count {
            guard p + 46 <= end, u32(p) == 0x0201_4B50 else {
                throw .malformed("damaged zip directory (entry \(entries.count + 1) of \(count))")
            }
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            let next = p + 46 + nameLength + extraLength + commentLength
            guard next <= end else { throw .malformed("damaged zip directory (entry \(entries.count + 1) runs past it)") }
            let name = String(decoding: data[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            var e = Entry(name: name, method: UInt16(u16(p + 10)), flags: UInt16(u16(p + 8)), crc: UInt32(u32(p + 16)),
                          compressedSize: u32(p + 20), uncompressedSize: u32(p + 24), localHeaderOffset: u32(p + 42))
            if e.compressedSize == 0xFFFF_FFFF || e.uncompressedSize == 0xFFFF_FFFF || e.localHeaderOffset == 0xFFFF_FFFF {
                readZip64Extra(&e, from: p + 46 + nameLength, length: extraLength)
            }
            if byName[name] == nil {
                byName[name] = entries.count
                if byLowercasedName[name.lowercased()] == nil { byLowercasedName[name.lowercased()] = entries.count }
            }
            entries.append(e)
            p = next
        }
    }

    /// The zip64 extended-information extra field (0x0001): the 8-byte values present are, in
    /// order, those whose 4-byte field is 0xFFFFFFFF. A value too large keeps the marker
    /// (which then fails the bounds checks as damage).
    private func readZip64Extra(_ e: inout Entry, from: Int, length: Int) {
        var q = from
        let end = from + length
        while q + 4 <= end {
            let id = u16(q), n = u16(q + 2)
            let body = q + 4
            guard body + n <= end else { return }
            if id == 1 {
                var r = body
                func next() -> Int? {
                    guard r + 8 <= body + n else { return nil }
                    defer { r += 8 }
                    return u64(r)
                }
                if e.uncompressedSize == 0xFFFF_FFFF, let v = next() { e.uncompressedSize = v }
                if e.compressedSize == 0xFFFF_FFFF, let v = next() { e.compressedSize = v }
                if e.localHeaderOffset == 0xFFFF_FFFF, let v = next() { e.localHeaderOffset = v }
                return
            }
            q = body + n
        }
    }
}

/// zlib's inflate, named apart from `ZipReader.inflate`.
private func CZlibInflate(_ stream: inout z_stream) -> Int32 { inflate(&stream, Z_NO_FLUSH) }
