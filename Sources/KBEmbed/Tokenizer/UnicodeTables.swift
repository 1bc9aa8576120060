/// Character classes used by the BERT normalizer and pre-tokenizer, matching Hugging Face
/// `tokenizers` (`normalizers/bert.rs`, `pre_tokenizers/bert.rs`). All functions take a raw
/// scalar value; ASCII is answered from a table, the rest from `Unicode.Scalar.Properties`.
enum BertUnicode {
    private static let whitespaceFlag: UInt8 = 1
    private static let punctuationFlag: UInt8 = 2
    private static let deleteFlag: UInt8 = 4

    /// Flags for the 128 ASCII scalars.
    private static let asciiFlags: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 128)
        for v in 0..<128 {
            var f: UInt8 = 0
            switch v {
            case 0x09, 0x0A, 0x0D, 0x20: f |= whitespaceFlag
            case 0x00..<0x20, 0x7F: f |= deleteFlag // Cc other than \t \n \r (incl. \x0b \x0c \x1c-\x1f)
            case 33...47, 58...64, 91...96, 123...126: f |= punctuationFlag
            default: break
            }
            t[v] = f
        }
        return t
    }()

    /// True for the characters clean-text deletes: U+0000, U+FFFD, and every character of
    /// category Cc, Cf or Co except `\t \n \r`. Unassigned code points (Cn) are kept.
    @inline(__always)
    static func isDeletedByCleanText(_ v: UInt32) -> Bool {
        if v < 128 { return asciiFlags[Int(v)] & deleteFlag != 0 }
        if v == 0xFFFD { return true }
        guard let s = Unicode.Scalar(v) else { return true }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// `\t \n \r`, space, and every White_Space character.
    @inline(__always)
    static func isWhitespace(_ v: UInt32) -> Bool {
        if v < 128 { return asciiFlags[Int(v)] & whitespaceFlag != 0 }
        guard let s = Unicode.Scalar(v) else { return false }
        return s.properties.isWhitespace
    }

    /// ASCII punctuation (33–47, 58–64, 91–96, 123–126) or any character of category P*.
    /// Symbols (S*) are not punctuation.
    @inline(__always)
    static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 128 { return asciiFlags[Int(v)] & punctuationFlag != 0 }
        guard let s = Unicode.Scalar(v) else { return false }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// CJK ideograph blocks that BERT splits one character per token (kana and Hangul are not
    /// included).
    @inline(__always)
    static func isChineseChar(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0xF900...0xFAFF,
             0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// General category Mn (nonspacing mark).
    @inline(__always)
    static func isNonspacingMark(_ v: UInt32) -> Bool {
        if v < 0x300 { return false }
        guard let s = Unicode.Scalar(v) else { return false }
        return s.properties.generalCategory == .nonspacingMark
    }

    /// Appends the full (unconditional SpecialCasing) lower-case mapping of `v` to `out`,
    /// with no context rules (no final sigma).
    @inline(__always)
    static func appendLowercase(_ v: UInt32, to out: inout [UInt32]) {
        if v < 128 {
            out.append(v >= 0x41 && v <= 0x5A ? v + 32 : v)
            return
        }
        guard let s = Unicode.Scalar(v) else { out.append(v); return }
        let p = s.properties
        if !p.changesWhenLowercased { out.append(v); return }
        for l in p.lowercaseMapping.unicodeScalars { out.append(l.value) }
    }
}
