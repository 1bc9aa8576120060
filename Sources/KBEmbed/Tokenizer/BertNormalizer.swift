import Foundation

/// The BERT normalizer of Hugging Face `tokenizers`, on arrays of scalar values.
///
/// Order: clean text, spaces around CJK ideographs, then (if `stripAccents`) NFD and removal of
/// every Mn character, then (if `lowercase`) per-character full lower-casing.
struct BertNormalizer: Sendable {
    let options: TokenizerOptions

    /// Normalizes `input[start..<end]` and appends the result to `out`.
    ///
    /// - Complexity: O(n). Text made only of scalars below U+00C0 never leaves the fast path;
    ///   other text goes once through Foundation's canonical decomposition.
    func normalize(_ input: [UInt32], _ start: Int, _ end: Int, into out: inout [UInt32]) {
        // 1 + 2: clean text and CJK spacing.
        var stage: [UInt32] = []
        stage.reserveCapacity(end - start)
        var needsDecomposition = false
        for i in start..<end {
            let v = input[i]
            if options.cleanText {
                if BertUnicode.isDeletedByCleanText(v) { continue }
                if BertUnicode.isWhitespace(v) { stage.append(0x20); continue }
            }
            if options.handleChineseChars && BertUnicode.isChineseChar(v) {
                stage.append(0x20); stage.append(v); stage.append(0x20)
                needsDecomposition = true
                continue
            }
            if v >= 0xC0 { needsDecomposition = true }
            stage.append(v)
        }

        // 3: NFD, drop nonspacing marks.
        if options.stripAccents && needsDecomposition {
            stage = BertNormalizer.decomposeDroppingMarks(stage)
        }

        // 4: lower-case.
        out.reserveCapacity(out.count + stage.count)
        if options.lowercase {
            for v in stage { BertUnicode.appendLowercase(v, to: &out) }
        } else {
            out.append(contentsOf: stage)
        }
    }

    /// NFD (Unicode 9.0) of `scalars` with every Mn (Unicode 8.0) character removed.
    ///
    /// A character assigned after Unicode 9.0 has no decomposition and combining class 0 in the
    /// reference's tables, so it is a starter that canonical reordering never crosses: the text
    /// is cut at such characters, each run goes through Foundation's (newer, but stable for old
    /// characters) canonical decomposition, and the young characters pass through unchanged.
    static func decomposeDroppingMarks(_ scalars: [UInt32]) -> [UInt32] {
        var result: [UInt32] = []
        result.reserveCapacity(scalars.count + 8)
        var run = String.UnicodeScalarView()
        func flush() {
            guard !run.isEmpty else { return }
            for s in String(run).decomposedStringWithCanonicalMapping.unicodeScalars
            where !BertUnicode.isNonspacingMark(s.value) {
                result.append(s.value)
            }
            run = String.UnicodeScalarView()
        }
        for v in scalars {
            guard let s = Unicode.Scalar(v) else { continue }
            if v < 0xC0 {
                run.append(s) // fast: ASCII and Latin-1 up to U+00BF never decompose
            } else if BertUnicode.isAssigned(s, in: BertUnicode.decompositionVersion) {
                run.append(s)
            } else {
                flush()
                if !BertUnicode.isNonspacingMark(v) { result.append(v) }
            }
        }
        flush()
        return result
    }
}
