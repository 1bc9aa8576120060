/// Character classes used by the BERT normalizer and pre-tokenizer, matching Hugging Face
/// `tokenizers` (`normalizers/bert.rs`, `pre_tokenizers/bert.rs`). All functions take a raw
/// scalar value; ASCII is answered from a table, the rest from `Unicode.Scalar.Properties`.
///
/// `tokenizers` takes its general categories (Mn, P*, Cc/Cf/Co) from the crate
/// `unicode_categories` 0.1.1, whose tables are Unicode 8.0, and its NFD from
/// `unicode-normalization-alignments` 0.1.12, which is Unicode 9.0. A character assigned later
/// is unknown to those tables: not a mark, not punctuation, not a control, no decomposition,
/// combining class 0. Swift's tables are newer, so every check here first asks the character's
/// `age` (the Unicode version that assigned it) and treats younger characters as unassigned.
/// Lower-casing and White_Space come from Rust's standard library, which is current, as Swift's is.
enum BertUnicode {
    /// Unicode version of `unicode_categories` 0.1.1.
    static let categoryVersion = (major: 8, minor: 0)
    /// Unicode version of `unicode-normalization-alignments` 0.1.12.
    static let decompositionVersion = (major: 9, minor: 0)

    /// True when `s` was assigned in Unicode `version` or earlier.
    @inline(__always)
    static func isAssigned(_ s: Unicode.Scalar, in version: (major: Int, minor: Int)) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < version.major || (age.major == version.major && age.minor <= version.minor)
    }

    /// The general category as `unicode_categories` 0.1.1 sees it; nil for characters it does
    /// not know.
    @inline(__always)
    static func legacyCategory(_ s: Unicode.Scalar) -> Unicode.GeneralCategory? {
        guard isAssigned(s, in: categoryVersion) else { return nil }
        if let changed = changedSinceUnicode8[s.value] { return changed }
        return s.properties.generalCategory
    }

    /// Characters of Unicode 8.0 whose category has changed since, in the classes that matter
    /// here (Mn, P*, Cc/Cf/Co), with their Unicode 8.0 category. Found by comparing every
    /// scalar against `tokenizers` 0.23.3 itself; everything else agrees.
    private static let changedSinceUnicode8: [UInt32: Unicode.GeneralCategory] = [
        0x166D: .otherPunctuation,  // CANADIAN SYLLABICS CHI SIGN, now So
        0x1734: .nonspacingMark,    // HANUNOO SIGN PAMUDPOD, now Mc
        0x1885: .otherLetter,       // MONGOLIAN LETTER ALI GALI BALUDA, now Mn
        0x1886: .otherLetter,       // MONGOLIAN LETTER ALI GALI THREE BALUDA, now Mn
        0xA9BD: .spacingMark,       // JAVANESE CONSONANT SIGN KERET, now Mn
        0x111C9: .otherPunctuation, // SHARADA SANDHI MARK, now Mn
        0x1171E: .nonspacingMark,   // AHOM CONSONANT SIGN MEDIAL RA, now Mc
    ]

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
            // \x0b and \x0c are White_Space but also Cc: clean text deletes them, and the
            // pre-tokenizer (which matters with cleanText off) splits on them.
            case 0x0B, 0x0C: f |= whitespaceFlag | deleteFlag
            case 0x00..<0x20, 0x7F: f |= deleteFlag // other Cc (incl. \x1c-\x1f, not White_Space)
            case 33...47, 58...64, 91...96, 123...126: f |= punctuationFlag
            default: break
            }
            t[v] = f
        }
        return t
    }()

    /// True for the characters clean-text deletes: U+0000, U+FFFD, and every character of
    /// category Cc, Cf or Co (in Unicode 8.0) except `\t \n \r`. Unassigned code points (Cn)
    /// are kept.
    @inline(__always)
    static func isDeletedByCleanText(_ v: UInt32) -> Bool {
        if v < 128 { return asciiFlags[Int(v)] & deleteFlag != 0 }
        if v == 0xFFFD { return true }
        guard let s = Unicode.Scalar(v) else { return true }
        switch legacyCategory(s) {
        case .control?, .format?, .privateUse?, .surrogate?: return true
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

    /// ASCII punctuation (33–47, 58–64, 91–96, 123–126) or any character of category P* (in
    /// Unicode 8.0).
    /// Symbols (S*) are not punctuation.
    @inline(__always)
    static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 128 { return asciiFlags[Int(v)] & punctuationFlag != 0 }
        guard let s = Unicode.Scalar(v) else { return false }
        switch legacyCategory(s) {
        case .connectorPunctuation?, .dashPunctuation?, .openPunctuation?, .closePunctuation?,
             .initialPunctuation?, .finalPunctuation?, .otherPunctuation?:
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

    /// General category Mn (nonspacing mark) in Unicode 8.0.
    @inline(__always)
    static func isNonspacingMark(_ v: UInt32) -> Bool {
        if v < 0x300 { return false }
        guard let s = Unicode.Scalar(v) else { return false }
        return legacyCategory(s) == .nonspacingMark
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
