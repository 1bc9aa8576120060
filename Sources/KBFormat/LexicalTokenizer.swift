import Foundation

/// The terms of a text for the LEXICAL section and for lexical queries (format-spec.md §8.11).
///
/// 1. A *word* is a maximal run of Unicode scalars that are letters, marks or numbers
///    (general categories L*, M*, N*), or `_`, or a `.` that has such a scalar (not `_`) on
///    both sides (so `os.path.join` and `3.14` are one word, "end." is not).
/// 2. Each word gives the term `NFC(lowercased(word))` (Unicode lowercase mapping, then
///    canonical composition, so "é" typed either way is one term), with `_` and `.` at its
///    ends trimmed.
/// 3. A word that is an identifier with parts also gives each part: it is split at `_` and
///    `.`, and inside a part before an upper-case letter that follows a lower-case letter or
///    digit (`camelCase` → camel, case) or that starts a capitalized run after capitals
///    (`HTTPServer` → http, server). Parts are lowercased; when a word has only one part,
///    nothing more is emitted.
/// 4. Terms longer than 64 bytes of UTF-8 are dropped; so are terms that are only `_`.
///
/// A chunk's length is the number of terms it gave (parts included).
public enum LexicalTokenizer {
    public static let maxTermBytes = 64

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

    /// Every term of `text`, in order (with repeats). O(text length).
    public static func terms(_ text: String) -> [String] {
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
            emit(scalars[i..<j], into: &out)
            i = j
        }
        return out
    }

    /// Term counts of `text`, each term's UTF-8 bytes with its frequency, in first-seen order.
    public static func counts(_ text: String) -> [(term: [UInt8], tf: UInt32)] {
        var index: [String: Int] = [:]
        var out: [(term: [UInt8], tf: UInt32)] = []
        for t in terms(text) {
            if let k = index[t] { out[k].tf += 1 } else { index[t] = out.count; out.append((Array(t.utf8), 1)) }
        }
        return out
    }

    private static func add(_ s: Substring.UnicodeScalarView, _ out: inout [String]) {
        var t = String(String.UnicodeScalarView(s)).lowercased()
        if t.utf8.contains(where: { $0 >= 0x80 }) { t = t.precomposedStringWithCanonicalMapping }
        while t.hasPrefix("_") || t.hasPrefix(".") { t.removeFirst() }
        while t.hasSuffix("_") || t.hasSuffix(".") { t.removeLast() }
        if !t.isEmpty, t.utf8.count <= maxTermBytes { out.append(t) }
    }

    private static func emit(_ word: ArraySlice<Unicode.Scalar>, into out: inout [String]) {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: word)
        add(Substring(String(view)).unicodeScalars, &out)
        // Parts: split at _ and ., then at case changes.
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
        for p in split {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: p)
            add(Substring(String(v)).unicodeScalars, &out)
        }
    }
}
