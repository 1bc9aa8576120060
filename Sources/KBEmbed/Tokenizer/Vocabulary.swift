/// A WordPiece vocabulary keyed by unicode-scalar values.
///
/// Swift `String` equality and hashing use canonical equivalence (`"e\u{301}" == "é"`), but the
/// reference tokenizer compares raw code points, so the vocabulary must never be keyed by
/// `String`. Entries are stored as flat arrays of scalar values in an open-addressing hash
/// table; lookups take a slice of a scalar buffer and allocate nothing.
///
/// Every entry is inserted as a *word-initial* key (its scalars as written). An entry that
/// starts with `##` (and has something after it) is also inserted as a *continuation* key made
/// of the scalars after `##`, so looking up a continuation piece `x` is exactly looking up the
/// string `"##" + x`, without building it.
struct Vocabulary: Sendable {
    /// Id to vocabulary string, for debugging and `token(for:)`.
    let tokens: [String]

    private let keyScalars: [UInt32]      // all keys, concatenated
    private let keyStart: [Int32]         // entry -> start in keyScalars
    private let keyLength: [Int32]        // entry -> scalar count
    private let keyIsContinuation: [Bool] // entry -> which key space it belongs to
    private let keyID: [Int32]            // entry -> token id
    private let slots: [Int32]            // hash table of entry indices, -1 = empty
    private let mask: Int
    /// The longest key in scalars: no piece longer than this can match.
    let maxKeyLength: Int

    /// Builds the table.
    ///
    /// - Parameter tokens: vocabulary strings; the id of a token is its index. When a string
    ///   appears more than once (by scalars), the last id wins, as in Hugging Face `tokenizers`.
    /// - Complexity: O(total scalars).
    init(tokens: [String]) {
        self.tokens = tokens
        var scalars: [UInt32] = []
        var starts: [Int32] = [], lengths: [Int32] = [], conts: [Bool] = [], ids: [Int32] = []
        scalars.reserveCapacity(tokens.count * 8)
        for (id, token) in tokens.enumerated() {
            let start = scalars.count
            for s in token.unicodeScalars { scalars.append(s.value) }
            let length = scalars.count - start
            starts.append(Int32(start)); lengths.append(Int32(length)); conts.append(false); ids.append(Int32(id))
            if length > 2 && scalars[start] == 0x23 && scalars[start + 1] == 0x23 {
                starts.append(Int32(start + 2)); lengths.append(Int32(length - 2)); conts.append(true); ids.append(Int32(id))
            }
        }
        var capacity = 16
        while capacity < starts.count * 2 { capacity <<= 1 }
        var table = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        for entry in starts.indices {
            let s = Int(starts[entry]), n = Int(lengths[entry])
            var slot = Vocabulary.hash(scalars, s, s + n, conts[entry]) & mask
            while true {
                let existing = table[slot]
                if existing < 0 { table[slot] = Int32(entry); break }
                let e = Int(existing)
                if conts[e] == conts[entry] && Int(lengths[e]) == n
                    && Vocabulary.equal(scalars, Int(starts[e]), scalars, s, n) {
                    table[slot] = Int32(entry) // duplicate string: last id wins
                    break
                }
                slot = (slot + 1) & mask
            }
        }
        self.keyScalars = scalars
        self.keyStart = starts
        self.keyLength = lengths
        self.keyIsContinuation = conts
        self.keyID = ids
        self.slots = table
        self.mask = mask
        self.maxKeyLength = Int(lengths.max() ?? 0)
    }

    @inline(__always)
    private static func hash(_ buffer: [UInt32], _ start: Int, _ end: Int, _ continuation: Bool) -> Int {
        // FNV-1a over the scalar values, seeded differently for the two key spaces.
        var h: UInt64 = continuation ? 0x84222325_CBF29CE4 : 0xCBF2_9CE4_8422_2325
        var i = start
        while i < end {
            h = (h ^ UInt64(buffer[i])) &* 0x0000_0100_0000_01B3
            i += 1
        }
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    @inline(__always)
    private static func equal(_ a: [UInt32], _ aStart: Int, _ b: [UInt32], _ bStart: Int, _ count: Int) -> Bool {
        var i = 0
        while i < count {
            if a[aStart + i] != b[bStart + i] { return false }
            i += 1
        }
        return true
    }

    /// The id of `buffer[start..<end]` as a word-initial piece (`continuation == false`) or as
    /// the piece `"##" + buffer[start..<end]` (`continuation == true`), or nil.
    ///
    /// - Complexity: O(end - start) expected.
    @inline(__always)
    func lookup(_ buffer: [UInt32], _ start: Int, _ end: Int, continuation: Bool) -> Int32? {
        let n = end - start
        var slot = Vocabulary.hash(buffer, start, end, continuation) & mask
        while true {
            let entry = Int(slots[slot])
            if entry < 0 { return nil }
            if keyIsContinuation[entry] == continuation && Int(keyLength[entry]) == n
                && Vocabulary.equal(keyScalars, Int(keyStart[entry]), buffer, start, n) {
                return keyID[entry]
            }
            slot = (slot + 1) & mask
        }
    }

    /// The id of a whole token string compared by scalars (not by canonical equivalence).
    func id(of token: String) -> Int32? {
        let scalars = token.unicodeScalars.map(\.value)
        return lookup(scalars, 0, scalars.count, continuation: false)
    }
}
