import Foundation

/// The terms of a text for the LEXICAL section and for lexical queries (format-spec.md §8.11).
///
/// A segment's LEXICAL section records the tokenizer version its terms were made with, and a
/// query is cut with the version of the segment it searches, so segments written before a
/// version existed keep their meaning. Both versions share steps 1, 3 and 4; they differ in
/// how a word is normalized and in CJK text.
///
/// 1. A *word* is a maximal run of Unicode scalars that are letters, marks or numbers
///    (general categories L*, M*, N*), or `_`, or a `.` that has such a scalar (not `_`) on
///    both sides (so `os.path.join` and `3.14` are one word, "end." is not).
/// 2. **Version 0**: each word gives the term `NFC(lowercase(word))` (each scalar's full
///    lowercase mapping, no context, then canonical composition), with `_` and `.` at its
///    ends trimmed.
///    **Version 1**: a word is first cut into runs of CJK scalars (Han, Hiragana, Katakana,
///    Hangul: `isCJK`; a mark belongs to the run of the scalar before it) and runs of other
///    scalars. A CJK run gives the overlapping bigrams of its characters (a character is a
///    scalar with the marks that follow it), or its one character, after normalization; any
///    other run is treated as a word of its own. Normalization is full Unicode case folding:
///    `NFC(toCasefold(NFD(run)))` (CaseFolding.txt, statuses C and F), so "Straße" and
///    "STRASSE" are one term.
/// 3. A word (version 1: a non-CJK run) that is an identifier with parts also gives each
///    part: it is split at `_` and `.` (empty parts dropped), and inside a part before an
///    upper-case letter that follows a lower-case letter or digit (`camelCase` → camel, case)
///    or that starts a capitalized run after capitals (`HTTPServer` → http, server). Parts are
///    normalized as in 2; when a word has only one part, nothing more is emitted.
///    Upper-case and lower-case are Unicode's `Uppercase` and `Lowercase` properties, a digit
///    is a scalar whose `Numeric_Type` is not None.
/// 4. Terms longer than 64 bytes of UTF-8 are dropped; so are empty terms.
///
/// A chunk's length is the number of terms it gave (parts included).
public enum LexicalTokenizer {
    public static let maxTermBytes = 64
    /// The version new segments are written with.
    public static let currentVersion = 1
    /// The versions this build can tokenize (and so search).
    public static let knownVersions = 0...1

    @inline(__always) static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII {
            let v = s.value
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    @inline(__always) static func isMark(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return false }
        switch s.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// The scalars tokenizer version 1 cuts into bigrams: the Han, Hiragana, Katakana and
    /// Hangul ranges of Scripts-15.0.0.txt, CJK Extension I (Unicode 15.1), and the Common
    /// scalars whose Script_Extensions are Hiragana and Katakana and that are letters (the
    /// prolonged sound marks U+30FC and U+FF70, the halfwidth voiced marks U+FF9E–FF9F, the
    /// vertical kana repeat marks U+3031–3035). Fixed by the format: it does not follow the
    /// Unicode version of the Swift runtime. Sorted, disjoint, not adjacent.
    static let cjkRanges: [ClosedRange<UInt32>] = [
        0x1100...0x11FF, 0x2E80...0x2E99, 0x2E9B...0x2EF3, 0x2F00...0x2FD5, 0x3005...0x3005, 0x3007...0x3007,
        0x3021...0x3029, 0x302E...0x302F, 0x3031...0x3035, 0x3038...0x303B, 0x3041...0x3096, 0x309D...0x309F,
        0x30A1...0x30FA, 0x30FC...0x30FF, 0x3131...0x318E, 0x31F0...0x321E, 0x3260...0x327E, 0x32D0...0x32FE,
        0x3300...0x3357, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA960...0xA97C, 0xAC00...0xD7A3, 0xD7B0...0xD7C6,
        0xD7CB...0xD7FB, 0xF900...0xFA6D, 0xFA70...0xFAD9, 0xFF66...0xFFBE, 0xFFC2...0xFFC7, 0xFFCA...0xFFCF,
        0xFFD2...0xFFD7, 0xFFDA...0xFFDC, 0x16FE2...0x16FE3, 0x16FF0...0x16FF1, 0x1AFF0...0x1AFF3, 0x1AFF5...0x1AFFB,
        0x1AFFD...0x1AFFE, 0x1B000...0x1B122, 0x1B132...0x1B132, 0x1B150...0x1B152, 0x1B155...0x1B155, 0x1B164...0x1B167,
        0x1F200...0x1F200, 0x20000...0x2A6DF, 0x2A700...0x2B739, 0x2B740...0x2B81D, 0x2B820...0x2CEA1, 0x2CEB0...0x2EBE0,
        0x2EBF0...0x2EE5D, 0x2F800...0x2FA1D, 0x30000...0x3134A, 0x31350...0x323AF,
    ]

    /// Whether tokenizer version 1 cuts `s` into bigrams (`cjkRanges`). O(log ranges).
    public static func isCJK(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        guard v >= 0x1100 else { return false }
        var lo = 0, hi = cjkRanges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if v < cjkRanges[mid].lowerBound { hi = mid - 1 } else if v > cjkRanges[mid].upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }

    /// Every term of `text` under tokenizer `version` (one of `knownVersions`; an unknown
    /// one is treated as the current version), in order, with repeats. O(text length).
    public static func terms(_ text: String, version: Int = currentVersion) -> [String] {
        var out: [String] = []
        let scalars = Array(text.unicodeScalars)
        var i = 0
        while i < scalars.count {
            guard isWordScalar(scalars[i]) else { i += 1; continue }
            var j = i
            while j < scalars.count {
                if isWordScalar(scalars[j]) { j += 1; continue }
                if scalars[j] == ".", j > i, j + 1 < scalars.count, scalars[j - 1] != "_", isWordScalar(scalars[j + 1]), scalars[j + 1] != "_" { j += 1; continue }
                break
            }
            if version == 0 {
                emit(scalars[i..<j], version: 0, into: &out)
            } else {
                emitVersion1(scalars[i..<j], into: &out)
            }
            i = j
        }
        return out
    }

    /// Term counts of `text` under tokenizer `version`, each term's UTF-8 bytes with its
    /// frequency, in first-seen order. O(text length).
    public static func counts(_ text: String, version: Int = currentVersion) -> [(term: [UInt8], tf: UInt32)] {
        var index: [String: Int] = [:]
        var out: [(term: [UInt8], tf: UInt32)] = []
        for t in terms(text, version: version) {
            if let k = index[t] { out[k].tf += 1 } else { index[t] = out.count; out.append((Array(t.utf8), 1)) }
        }
        return out
    }

    /// Full Unicode case folding (CaseFolding.txt statuses C and F: the default, not the
    /// Turkic, folding) of `text`, in canonical composition: `NFC(toCasefold(NFD(text)))`,
    /// which gives canonically equivalent texts the same result (Unicode's canonical caseless
    /// match, D145). O(text length).
    ///
    /// Swift has no case-folding table; each scalar's folding is derived from its properties
    /// (the runtime's Unicode version, 16.0 for Swift 6.3): unchanged when its
    /// `Changes_When_Casefolded` is No; a Cherokee letter (U+13A0–13FF, U+AB70–ABBF) folds to
    /// its uppercase, as CaseFolding.txt says; any other to lowercase(uppercase(scalar)),
    /// repeated until it no longer changes (U+1E9E ẞ → ß → ss). This equals CaseFolding.txt
    /// C+F for every scalar assigned in Unicode 15.0 (checked against CaseFolding-15.0.0.txt
    /// by `LexicalTokenizerTests`). (Foundation's `folding(options: .caseInsensitive)` on
    /// Linux is not it: it leaves ꭰ, ᲀ… unfolded and folds Ꭰ to ꭰ.)
    public static func caseFolded(_ text: String) -> String {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        var out = String.UnicodeScalarView()
        for s in text.decomposedStringWithCanonicalMapping.unicodeScalars { appendFolded(s, to: &out) }
        return String(out).precomposedStringWithCanonicalMapping
    }

    /// Appends the case folding of one scalar that has no canonical decomposition.
    static func appendFolded(_ s: Unicode.Scalar, to out: inout String.UnicodeScalarView) {
        if s.isASCII {
            out.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(s.value + 0x20)! : s)
            return
        }
        guard s.properties.changesWhenCaseFolded else { out.append(s); return }
        if (0x13A0...0x13FF).contains(s.value) || (0xAB70...0xABBF).contains(s.value) {
            out.append(contentsOf: s.properties.uppercaseMapping.unicodeScalars)
            return
        }
        var current: [Unicode.Scalar] = [s]
        for _ in 0..<4 {
            var next: [Unicode.Scalar] = []
            for c in current {
                for u in c.properties.uppercaseMapping.unicodeScalars { next.append(contentsOf: u.properties.lowercaseMapping.unicodeScalars) }
            }
            if next == current { break }
            current = next
        }
        out.append(contentsOf: current)
    }

    /// Appends the term of `scalars` (normalized for `version`, `_` and `.` trimmed at its
    /// ends) unless it is empty or too long.
    private static func add(_ scalars: ArraySlice<Unicode.Scalar>, version: Int, _ out: inout [String]) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        var t: String
        if version == 0 {
            t = String(view).lowercased()
            if t.utf8.contains(where: { $0 >= 0x80 }) { t = t.precomposedStringWithCanonicalMapping }
        } else {
            t = caseFolded(String(view))
        }
        while t.hasPrefix("_") || t.hasPrefix(".") { t.removeFirst() }
        while t.hasSuffix("_") || t.hasSuffix(".") { t.removeLast() }
        if !t.isEmpty, t.utf8.count <= maxTermBytes { out.append(t) }
    }

    /// Step 2 and 3 for one word (version 0) or one non-CJK run (version 1).
    private static func emit(_ word: ArraySlice<Unicode.Scalar>, version: Int, into out: inout [String]) {
        add(word, version: version, &out)
        // Parts: split at _ and . (empty parts dropped), then at case changes.
        var parts: [ArraySlice<Unicode.Scalar>] = []
        var start = word.startIndex
        for k in word.indices where word[k] == "_" || word[k] == "." {
            if k > start { parts.append(word[start..<k]) }
            start = k + 1
        }
        if start < word.endIndex { parts.append(word[start..<word.endIndex]) }
        var split: [ArraySlice<Unicode.Scalar>] = []
        for p in parts {
            var s = p.startIndex
            for k in p.indices where k > p.startIndex {
                let prev = p[k - 1], cur = p[k]
                let upper = cur.properties.isUppercase
                let lowerBefore = prev.properties.isLowercase || prev.properties.numericType != nil
                let capsThenLower = prev.properties.isUppercase && upper && k + 1 < p.endIndex && p[k + 1].properties.isLowercase
                if upper && (lowerBefore || capsThenLower) {
                    split.append(p[s..<k])
                    s = k
                }
            }
            split.append(p[s..<p.endIndex])
        }
        guard split.count > 1 else { return }
        for p in split { add(p, version: version, &out) }
    }

    /// Version 1: cuts a word into CJK and other runs (a mark joins the run of the scalar
    /// before it; one at the word's start is not CJK), and emits each.
    private static func emitVersion1(_ word: ArraySlice<Unicode.Scalar>, into out: inout [String]) {
        var start = word.startIndex
        var inCJK = false
        for k in word.indices {
            let s = word[k]
            let cjk = isMark(s) && k > word.startIndex ? inCJK : isCJK(s)
            if k == word.startIndex { inCJK = cjk; continue }
            if cjk != inCJK {
                emitRun(word[start..<k], cjk: inCJK, into: &out)
                start = k
                inCJK = cjk
            }
        }
        if start < word.endIndex { emitRun(word[start..<word.endIndex], cjk: inCJK, into: &out) }
    }

    private static func emitRun(_ run: ArraySlice<Unicode.Scalar>, cjk: Bool, into out: inout [String]) {
        guard cjk else { return emit(run, version: 1, into: &out) }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: run)
        let normalized = Array(caseFolded(String(view)).unicodeScalars)
        // Characters: a scalar with the marks after it.
        var starts: [Int] = []
        for (k, s) in normalized.enumerated() where k == 0 || !isMark(s) { starts.append(k) }
        starts.append(normalized.count)
        let characters = starts.count - 1
        func term(_ from: Int, _ to: Int) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: normalized[starts[from]..<starts[to]])
            let t = String(v)
            if t.utf8.count <= maxTermBytes { out.append(t) }
        }
        if characters == 1 {
            term(0, 1)
        } else {
            for c in 0..<characters - 1 { term(c, c + 2) }
        }
    }
}
