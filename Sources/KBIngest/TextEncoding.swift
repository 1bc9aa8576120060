import Foundation

/// The encodings a text file may announce with a byte-order mark. Files without one are read
/// as UTF-8 (invalid bytes become U+FFFD with a warning), as rg and git do.
public enum TextEncoding: String, Sendable, CaseIterable {
    case utf8 = "UTF-8"
    case utf16LittleEndian = "UTF-16LE"
    case utf16BigEndian = "UTF-16BE"
    case utf32LittleEndian = "UTF-32LE"
    case utf32BigEndian = "UTF-32BE"

    /// The encoding a byte-order mark at the start of `data` announces, and the mark's
    /// length; `.utf8` with length 0 when there is none (a UTF-8 mark is left to the parser,
    /// which skips it). UTF-32LE's mark (FF FE 00 00) starts with UTF-16LE's (FF FE) and is
    /// checked first. O(1).
    public static func sniff<D: Collection<UInt8>>(_ data: D) -> (encoding: TextEncoding, markLength: Int) {
        let head = Array(data.prefix(4))
        if head.starts(with: [0xFF, 0xFE, 0x00, 0x00]) { return (.utf32LittleEndian, 4) }
        if head.starts(with: [0x00, 0x00, 0xFE, 0xFF]) { return (.utf32BigEndian, 4) }
        if head.starts(with: [0xFF, 0xFE]) { return (.utf16LittleEndian, 2) }
        if head.starts(with: [0xFE, 0xFF]) { return (.utf16BigEndian, 2) }
        return (.utf8, 0)
    }

    /// `data` as UTF-8: unchanged when it has no UTF-16 or UTF-32 byte-order mark; otherwise
    /// decoded from the encoding its mark announces (the mark dropped) and re-encoded as
    /// UTF-8. Unpaired surrogates, code points past U+10FFFF and a final incomplete code unit
    /// become U+FFFD, and `replaced` counts them. With `truncated` (a prefix of the file, as
    /// the walker sniffs), an incomplete last unit or surrogate pair is dropped instead.
    ///
    /// Line numbers survive the conversion; byte offsets are then those of the UTF-8 text,
    /// not of the file. O(data).
    public static func utf8<D: Collection<UInt8>>(_ data: D, truncated: Bool = false)
        -> (utf8: [UInt8], encoding: TextEncoding, replaced: Int) {
        let (encoding, mark) = sniff(data)
        let bytes = Array(data.dropFirst(mark))
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var replaced = 0
        func append(_ scalar: Unicode.Scalar) { out.append(contentsOf: UTF8.encode(scalar).map(Array.init) ?? []) }
        switch encoding {
        case .utf8:
            return (bytes, .utf8, 0)
        case .utf16LittleEndian, .utf16BigEndian:
            let little = encoding == .utf16LittleEndian
            var units: [UInt16] = []
            units.reserveCapacity(bytes.count / 2)
            var i = 0
            while i + 1 < bytes.count {
                let a = UInt16(bytes[i]), b = UInt16(bytes[i + 1])
                units.append(little ? a | b << 8 : a << 8 | b)
                i += 2
            }
            let oddByte = bytes.count % 2 == 1
            // A prefix may end inside a surrogate pair: drop its first half.
            if truncated, let last = units.last, UTF16.isLeadSurrogate(last) { units.removeLast() }
            var it = units.makeIterator()
            var decoder = UTF16()
            loop: while true {
                switch decoder.decode(&it) {
                case .scalarValue(let s): append(s)
                case .error: append("\u{FFFD}"); replaced += 1
                case .emptyInput: break loop
                }
            }
            if oddByte && !truncated { append("\u{FFFD}"); replaced += 1 }
        case .utf32LittleEndian, .utf32BigEndian:
            let little = encoding == .utf32LittleEndian
            var i = 0
            while i + 3 < bytes.count {
                let b = (0..<4).map { UInt32(bytes[i + $0]) }
                let value = little ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
                if let s = Unicode.Scalar(value) { append(s) } else { append("\u{FFFD}"); replaced += 1 }
                i += 4
            }
            if bytes.count % 4 != 0 && !truncated { append("\u{FFFD}"); replaced += 1 }
        }
        return (out, encoding, replaced)
    }
}
