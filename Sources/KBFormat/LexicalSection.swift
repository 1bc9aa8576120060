import Foundation

/// The LEXICAL section (kind 10, format-spec.md §8.11): per-chunk term counts for BM25, as a
/// sorted, prefix-compressed term dictionary with document frequencies and delta + varint
/// postings lists of (chunk, term frequency), plus every chunk's length in terms.
///
/// Layout (little-endian):
/// ```
/// 0   u32 term_count T        4  u16 block_size B (terms per dictionary block, ≥ 1)
///                             6  u16 tokenizer (the `LexicalTokenizer` version of the terms)
/// 8   u64 chunk_count C       16 u64 total_terms (Σ chunk lengths)
/// 24  u64 dictionary_length D 32 u64 postings_length P
/// 40  u32[C] chunk lengths
///     ⌈T/B⌉ × (u64 dictionary offset, u64 postings offset) of each block's first term
///     D bytes dictionary: per term varint shared, varint suffix_length, suffix bytes,
///                         varint df, varint postings_bytes (shared = 0 at a block's start)
///     P bytes postings: per term, in dictionary order, df × (varint chunk delta, varint tf)
/// ```
/// Offsets 4–7 were one u32 block size before tokenizer versions existed: kbindex wrote 16
/// there, so those sections read as tokenizer 0.
enum LexicalLayout {
    static let headerSize = 40
    static let blockEntrySize = 16
    static let blockSize = 16
}

/// Writes unsigned LEB128 varints.
extension ByteWriter {
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }
}

/// Builds a LEXICAL section from each chunk's term counts (chunk i = `chunks[i]`), made by
/// tokenizer `tokenizer` (0…65535). Terms are sorted by their UTF-8 bytes.
/// O(postings · log terms).
func encodeLexical(_ chunks: [[(term: [UInt8], tf: UInt32)]], tokenizer: Int = LexicalTokenizer.currentVersion) -> [UInt8] {
    var postings: [[UInt8]: [(chunk: Int, tf: UInt32)]] = [:]
    var lengths = [UInt32](repeating: 0, count: chunks.count)
    var total: UInt64 = 0
    for (c, terms) in chunks.enumerated() {
        for t in terms {
            postings[t.term, default: []].append((c, t.tf))
            lengths[c] &+= t.tf
            total += UInt64(t.tf)
        }
    }
    let terms = postings.keys.sorted { $0.lexicographicallyPrecedes($1) }
    var dict = ByteWriter(), post = ByteWriter(), blocks = ByteWriter()
    var previous: [UInt8] = []
    for (i, term) in terms.enumerated() {
        if i % LexicalLayout.blockSize == 0 {
            blocks.u64(UInt64(dict.bytes.count))
            blocks.u64(UInt64(post.bytes.count))
            previous = []
        }
        var shared = 0
        while shared < min(previous.count, term.count) && previous[shared] == term[shared] { shared += 1 }
        let list = postings[term]!
        var p = ByteWriter()
        var last = 0
        for (k, e) in list.enumerated() {
            p.varint(UInt64(k == 0 ? e.chunk : e.chunk - last))
            p.varint(UInt64(e.tf))
            last = e.chunk
        }
        dict.varint(UInt64(shared))
        dict.varint(UInt64(term.count - shared))
        dict.bytes.append(contentsOf: term[shared...])
        dict.varint(UInt64(list.count))
        dict.varint(UInt64(p.bytes.count))
        post.bytes.append(contentsOf: p.bytes)
        previous = term
    }
    var out = ByteWriter()
    out.u32(UInt32(terms.count))
    out.u32(UInt32(LexicalLayout.blockSize) | UInt32(UInt16(tokenizer)) << 16)  // u16 block_size, u16 tokenizer
    out.u64(UInt64(chunks.count))
    out.u64(total)
    out.u64(UInt64(dict.bytes.count))
    out.u64(UInt64(post.bytes.count))
    for l in lengths { out.u32(l) }
    out.bytes += blocks.bytes
    out.bytes += dict.bytes
    out.bytes += post.bytes
    return out.bytes
}

/// A term's postings: the chunks it occurs in, ascending, with its frequency in each.
public struct Postings: Sendable, Equatable {
    public var chunks: [Int]
    public var frequencies: [Int]
    public var count: Int { chunks.count }
}

/// The LEXICAL section of an open segment, read straight from the mapping.
///
/// Opening checks the header, that the lengths add up to the section, the chunk count and
/// Σ lengths, and that block offsets rise inside the dictionary and postings. The dictionary
/// and postings bytes are decoded only when looked up, with every varint, offset and count
/// checked then (a damaged section throws `SegmentError`, never reads outside the section).
public struct LexicalIndex: @unchecked Sendable {
    let base: UnsafeRawBufferPointer
    let file: String
    public let termCount: Int
    public let chunkCount: Int
    /// Σ chunk lengths, in terms.
    public let totalTerms: Int
    /// The `LexicalTokenizer` version the terms were made with: queries against this
    /// section must be cut with it. One of `LexicalTokenizer.knownVersions`.
    public let tokenizerVersion: Int
    let blockSize: Int, blockCount: Int
    let lengthsAt: Int, blocksAt: Int, dictAt: Int, dictLength: Int, postAt: Int, postLength: Int

    init(section b: UnsafeRawBufferPointer, chunkCount expected: Int, file: String) throws {
        func bad(_ r: String) -> SegmentError { .corrupt(file: file, reason: "LEXICAL: \(r)") }
        base = b
        self.file = file
        guard b.count >= LexicalLayout.headerSize else { throw bad("shorter than its header") }
        let t = UInt64(b.u32(0)), bs = UInt64(b.u32(4) & 0xFFFF), tokenizer = Int(b.u32(4) >> 16)
        let c = b.u64(8), total = b.u64(16), d = b.u64(24), p = b.u64(32)
        guard bs >= 1 else { throw bad("block size 0") }
        guard LexicalTokenizer.knownVersions.contains(tokenizer) else {
            throw bad("tokenizer version \(tokenizer) is not one this kbindex knows (\(LexicalTokenizer.knownVersions.lowerBound)–\(LexicalTokenizer.knownVersions.upperBound)); a newer kbindex wrote it")
        }
        guard c == UInt64(expected) else { throw bad("\(c) chunk lengths for \(expected) chunks") }
        let blocks = (t + bs - 1) / bs
        // Every term takes at least 4 dictionary bytes and 2 postings bytes: bounds T before multiplying.
        guard t <= d / 4, t <= p / 2 || t == 0 else { throw bad("\(t) terms in \(d) + \(p) bytes") }
        let need = UInt64(LexicalLayout.headerSize) + 4 * c + UInt64(LexicalLayout.blockEntrySize) * blocks
        let (withDict, o1) = need.addingReportingOverflow(d)
        let (all, o2) = withDict.addingReportingOverflow(p)
        guard !o1, !o2, c <= UInt64(b.count), all == UInt64(b.count) else { throw bad("its lengths do not add up to the section's \(b.count) bytes") }
        termCount = Int(t)
        tokenizerVersion = tokenizer
        chunkCount = Int(c)
        blockSize = Int(bs)
        blockCount = Int(blocks)
        lengthsAt = LexicalLayout.headerSize
        blocksAt = lengthsAt + 4 * chunkCount
        dictAt = blocksAt + LexicalLayout.blockEntrySize * blockCount
        dictLength = Int(d)
        postAt = dictAt + dictLength
        postLength = Int(p)
        var sum: UInt64 = 0
        for i in 0..<chunkCount { sum += UInt64(b.u32(lengthsAt + 4 * i)) }
        guard sum == total else { throw bad("chunk lengths add up to \(sum), the header says \(total)") }
        totalTerms = Int(total)
        var prev: (UInt64, UInt64) = (0, 0)
        for k in 0..<blockCount {
            let e = (b.u64(blocksAt + 16 * k), b.u64(blocksAt + 16 * k + 8))
            guard e.0 < d, e.1 < p, k == 0 ? e == (0, 0) : (e.0 > prev.0 && e.1 > prev.1) else { throw bad("block \(k)'s offsets") }
            prev = e
        }
    }

    /// Chunk `i`'s length in terms. Precondition: 0 ≤ i < chunkCount. O(1).
    public func length(ofChunk i: Int) -> Int {
        precondition(i >= 0 && i < chunkCount)
        return Int(base.u32(lengthsAt + 4 * i))
    }

    /// A bounds-checked reader over `[start, end)` of the section.
    struct Cursor {
        let b: UnsafeRawBufferPointer
        var at: Int
        let end: Int
        mutating func varint() -> UInt64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while at < end, shift < 64 {
                let byte = b[at]
                at += 1
                v |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return v }
                shift += 7
            }
            return nil
        }
        mutating func bytes(_ n: UInt64) -> UnsafeRawBufferPointer? {
            guard n <= UInt64(end - at) else { return nil }
            defer { at += Int(n) }
            return UnsafeRawBufferPointer(rebasing: b[at..<at + Int(n)])
        }
    }

    /// The first term of block `k`.
    private func firstTerm(ofBlock k: Int) throws -> [UInt8] {
        var c = Cursor(b: base, at: dictAt + Int(base.u64(blocksAt + 16 * k)), end: dictAt + dictLength)
        guard c.varint() == 0, let n = c.varint(), let s = c.bytes(n) else { throw SegmentError.corrupt(file: file, reason: "LEXICAL: dictionary block \(k)") }
        return Array(s)
    }

    /// The postings of `term` (its UTF-8 bytes), or nil when no chunk has it.
    /// Throws `SegmentError` when the dictionary or postings are damaged.
    /// O(log(terms / B) · term length + B + postings).
    public func postings(_ term: [UInt8]) throws -> Postings? {
        guard blockCount > 0 else { return nil }
        func bad(_ r: String) -> SegmentError { .corrupt(file: file, reason: "LEXICAL: \(r)") }
        // The last block whose first term is ≤ term.
        var lo = 0, hi = blockCount - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if try !term.lexicographicallyPrecedes(firstTerm(ofBlock: mid)) { lo = mid } else { hi = mid - 1 }
        }
        var c = Cursor(b: base, at: dictAt + Int(base.u64(blocksAt + 16 * lo)), end: dictAt + dictLength)
        var postOffset = base.u64(blocksAt + 16 * lo + 8)
        var current: [UInt8] = []
        let termsInBlock = min(blockSize, termCount - lo * blockSize)
        for _ in 0..<termsInBlock {
            guard let shared = c.varint(), shared <= UInt64(current.count), let n = c.varint(), let suffix = c.bytes(n),
                  let df = c.varint(), let plen = c.varint()
            else { throw bad("dictionary entry in block \(lo)") }
            current.removeSubrange(Int(shared)...)
            current += suffix
            if current == term { return try decodePostings(offset: postOffset, length: plen, df: df) }
            if !current.lexicographicallyPrecedes(term) { return nil }  // passed where it would be
            postOffset += plen
        }
        return nil
    }

    /// The `df` (chunk, tf) pairs stored in `length` bytes at `offset` of the postings, every
    /// field checked. Throws `SegmentError` when they are out of range or do not fill exactly
    /// `length` bytes. O(df).
    private func decodePostings(offset: UInt64, length: UInt64, df: UInt64) throws -> Postings {
        func bad(_ r: String) -> SegmentError { .corrupt(file: file, reason: "LEXICAL: \(r)") }
        guard df >= 1, df <= UInt64(chunkCount), offset <= UInt64(postLength), length <= UInt64(postLength) - offset else {
            throw bad("postings of a term out of range")
        }
        var p = Cursor(b: base, at: postAt + Int(offset), end: postAt + Int(offset + length))
        var out = Postings(chunks: [], frequencies: [])
        out.chunks.reserveCapacity(Int(df))
        var chunk: UInt64 = 0
        for k in 0..<Int(df) {
            guard let delta = p.varint(), let tf = p.varint(), tf >= 1, k == 0 || delta >= 1 else { throw bad("a postings entry") }
            let (next, o) = chunk.addingReportingOverflow(delta)
            guard !o, next < UInt64(chunkCount) else { throw bad("a chunk id out of range") }
            chunk = next
            out.chunks.append(Int(chunk))
            out.frequencies.append(Int(min(tf, UInt64(UInt32.max))))
        }
        guard p.at == p.end else { throw bad("postings length") }
        return out
    }

    /// Every term with its postings, in dictionary order (compaction, tests, dumps), in one
    /// pass over the dictionary and the postings. Throws `SegmentError` when damaged: besides
    /// every entry's own checks, terms must rise strictly and each block must start where the
    /// block index says (the entries `postings(_:)` relies on). O(section size).
    public func allTerms() throws -> [(term: [UInt8], postings: Postings)] {
        func bad(_ r: String) -> SegmentError { .corrupt(file: file, reason: "LEXICAL: \(r)") }
        var out: [(term: [UInt8], postings: Postings)] = []
        out.reserveCapacity(termCount)
        var c = Cursor(b: base, at: dictAt, end: dictAt + dictLength)
        var current: [UInt8] = []
        var postOffset: UInt64 = 0
        for i in 0..<termCount {
            if i % blockSize == 0 {
                let k = i / blockSize
                guard UInt64(c.at - dictAt) == base.u64(blocksAt + 16 * k), postOffset == base.u64(blocksAt + 16 * k + 8) else {
                    throw bad("block \(k) does not start where the block index says")
                }
            }
            guard let shared = c.varint(), shared <= UInt64(current.count), i % blockSize != 0 || shared == 0,
                  let n = c.varint(), let suffix = c.bytes(n), let df = c.varint(), let plen = c.varint()
            else { throw bad("a dictionary entry") }
            let previous = current
            current.removeSubrange(Int(shared)...)
            current += suffix
            guard i == 0 || previous.lexicographicallyPrecedes(current) else { throw bad("the dictionary is not sorted") }
            out.append((current, try decodePostings(offset: postOffset, length: plen, df: df)))
            postOffset += plen
        }
        return out
    }
}
