/// Token counts for models whose tokenizer kbindex does not have.
///
/// The estimate splits text as BERT's pre-tokenizer does, on white space and around every
/// punctuation mark, then counts:
/// - a run of letters, digits and combining marks (a word) of up to 8 UTF-8 bytes as one
///   token, and one more for every further 4 bytes or part of them (subword tokenizers cut
///   long and rare words into pieces: "internationalization" counts 4);
/// - each ASCII punctuation mark or symbol as one token;
/// - each CJK ideograph, kana or hangul syllable as one token;
/// - any other character (emoji, other symbols) as one token per 2 UTF-8 bytes.
///
/// It errs on the high side for English prose with WordPiece and BPE vocabularies alike, so
/// that a chunk cut to the model's limit by this count rarely reaches the real limit.
///
/// - Complexity: O(n) in the text's length, no allocation.
func estimatedTokenCount(_ text: String) -> Int {
    var count = 0
    var wordBytes = 0
    @inline(__always) func endWord() {
        if wordBytes > 0 {
            count += wordBytes <= 8 ? 1 : 1 + (wordBytes - 8 + 3) / 4
            wordBytes = 0
        }
    }
    for scalar in text.unicodeScalars {
        let v = scalar.value
        if v < 0x80 {
            let b = UInt8(v)
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) {
                wordBytes += 1
            } else if b == 0x20 || (b >= 0x09 && b <= 0x0D) {
                endWord()
            } else if b < 0x20 || b == 0x7F {
                endWord()  // other control characters: dropped by tokenizers
            } else {
                endWord()
                count += 1
            }
            continue
        }
        let p = scalar.properties
        if isCJK(v) {
            endWord()
            count += 1
        } else if p.isWhitespace {
            endWord()
        } else if p.isAlphabetic || p.numericType != nil || p.generalCategory == .nonspacingMark
                    || p.generalCategory == .spacingMark || p.generalCategory == .enclosingMark {
            wordBytes += scalar.utf8.count
        } else if p.generalCategory == .format || p.generalCategory == .control {
            endWord()
        } else {
            endWord()
            count += (scalar.utf8.count + 1) / 2
        }
    }
    endWord()
    return count
}

/// CJK ideographs (with extensions and compatibility blocks), kana and hangul syllables,
/// which BERT's pre-tokenizer and most BPE vocabularies treat one character at a time.
private func isCJK(_ v: UInt32) -> Bool {
    switch v {
    case 0x3040...0x30FF,  // hiragana, katakana
         0x3400...0x4DBF, 0x4E00...0x9FFF, 0xF900...0xFAFF,  // ideographs
         0xAC00...0xD7AF,  // hangul syllables
         0x20000...0x2FA1F:
        return true
    default:
        return false
    }
}
