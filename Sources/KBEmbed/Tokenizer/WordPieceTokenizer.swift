import Foundation

/// The BERT WordPiece tokenizer as used by sentence-transformers (Hugging Face `tokenizers`:
/// added special tokens, `BertNormalizer`, `BertPreTokenizer`, `WordPiece`, `[CLS] $A [SEP]`).
///
/// Text is processed as unicode scalars, never as `Character`s, and the vocabulary is keyed by
/// scalar values, so canonically equivalent but different spellings stay different until the
/// normalizer's NFD makes them equal (as in the reference).
///
/// Immutable after init, so one instance may be shared by any number of threads.
public final class WordPieceTokenizer: Sendable {
    /// The most ids `encode` returns, `[CLS]` and `[SEP]` included (>= 2).
    public let maxLength: Int
    public let options: TokenizerOptions
    public let clsID: Int32, sepID: Int32, padID: Int32, unkID: Int32

    /// Number of vocabulary lines (ids are 0..<vocabularySize).
    public var vocabularySize: Int { vocabulary.tokens.count }

    private let vocabulary: Vocabulary
    private let normalizer: BertNormalizer
    /// Special tokens matched in the raw text before normalization: scalars and id.
    private let specials: [([UInt32], Int32)]

    /// The largest vocab.txt read, in bytes: 64 MiB, far above real vocabularies (30k–250k
    /// entries, a few MB), and far below what the vocabulary's 32-bit offsets can hold.
    public static let maxVocabularyFileSize = 64 << 20

    /// The special tokens typed in raw text that keep their ids (if present in the vocabulary).
    static let specialTokenNames = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"]

    /// Loads `vocab.txt` (id = 0-based line number) and, if present, `tokenizer_config.json`
    /// from a Hugging Face model folder. A missing config means default options; missing keys
    /// take their defaults.
    ///
    /// - Precondition: none; bad input throws.
    /// - Throws: `TokenizerError` naming the file: missing/unreadable/empty/huge `vocab.txt`,
    ///   a vocabulary without `[CLS]`, `[SEP]`, `[PAD]` or `[UNK]`, an unreadable or invalid
    ///   `tokenizer_config.json`, or `maxLength < 2`.
    /// - Complexity: O(size of vocab.txt).
    public convenience init(modelDirectory: URL, maxLength: Int) throws {
        let vocabURL = modelDirectory.appendingPathComponent("vocab.txt")
        guard FileManager.default.fileExists(atPath: vocabURL.path) else {
            throw TokenizerError(.missingVocabulary, file: vocabURL, "missing vocabulary file \(vocabURL.path)")
        }
        if let size = (try? FileManager.default.attributesOfItem(atPath: vocabURL.path))?[.size] as? Int,
           size > Self.maxVocabularyFileSize {
            throw TokenizerError(.vocabularyTooLarge, file: vocabURL,
                                 "vocabulary file \(vocabURL.path) is \(size) bytes, too large for a vocabulary (at most \(Self.maxVocabularyFileSize))")
        }
        let data: Data
        do {
            data = try Data(contentsOf: vocabURL)
        } catch {
            throw TokenizerError(.unreadableVocabulary, file: vocabURL,
                                 "cannot read vocabulary file \(vocabURL.path): \(error.localizedDescription)")
        }
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { line -> String in
            var bytes = line[...]
            if bytes.last == 0x0D { bytes = bytes.dropLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() } // the newline that ends the file
        if lines.isEmpty {
            throw TokenizerError(.emptyVocabulary, file: vocabURL, "empty vocabulary file \(vocabURL.path)")
        }

        let configURL = modelDirectory.appendingPathComponent("tokenizer_config.json")
        let options = FileManager.default.fileExists(atPath: configURL.path)
            ? try TokenizerOptions(configFile: configURL) : TokenizerOptions()
        do {
            try self.init(vocabulary: lines, options: options, maxLength: maxLength)
        } catch let error as TokenizerError {
            if case .missingSpecialToken = error.kind {
                throw TokenizerError(error.kind, file: vocabURL, "\(error.description) in \(vocabURL.path)")
            }
            throw error
        }
    }

    /// Builds a tokenizer from vocabulary strings (id = index).
    ///
    /// - Throws: `TokenizerError` for an empty vocabulary, a missing `[CLS]`, `[SEP]`, `[PAD]` or
    ///   `[UNK]`, or `maxLength < 2`.
    /// - Complexity: O(total vocabulary size).
    public init(vocabulary: [String], options: TokenizerOptions, maxLength: Int) throws {
        guard maxLength >= 2 else {
            throw TokenizerError(.invalidArgument, "maxLength must be at least 2 ([CLS] and [SEP]), got \(maxLength)")
        }
        guard !vocabulary.isEmpty else {
            throw TokenizerError(.emptyVocabulary, "empty vocabulary")
        }
        let vocab = Vocabulary(tokens: vocabulary)
        func required(_ name: String) throws -> Int32 {
            guard let id = vocab.id(of: name) else {
                throw TokenizerError(.missingSpecialToken(name), "vocabulary has no \(name) token")
            }
            return id
        }
        self.clsID = try required("[CLS]")
        self.sepID = try required("[SEP]")
        self.padID = try required("[PAD]")
        self.unkID = try required("[UNK]")
        self.specials = WordPieceTokenizer.specialTokenNames.compactMap { name in
            vocab.id(of: name).map { (name.unicodeScalars.map(\.value), $0) }
        }
        self.vocabulary = vocab
        self.options = options
        self.normalizer = BertNormalizer(options: options)
        self.maxLength = maxLength
    }

    /// `[CLS]` + content ids + `[SEP]`, truncated to `maxLength` by keeping `[CLS]`, the first
    /// `maxLength - 2` content ids and `[SEP]` (the cut may fall inside a word).
    ///
    /// - Complexity: O(n) in the text length for ordinary text (each word costs at most
    ///   O(w · L) vocabulary probes, w its length, L the longest vocabulary entry).
    public func encode(_ text: String) -> TokenizedText {
        let content = tokenIDs(text)
        let keep = min(content.count, maxLength - 2)
        var ids: [Int32] = []
        ids.reserveCapacity(keep + 2)
        ids.append(clsID)
        ids.append(contentsOf: content[0..<keep])
        ids.append(sepID)
        return TokenizedText(ids: ids, fullLength: content.count + 2)
    }

    /// Content ids only: no `[CLS]`/`[SEP]`, no truncation. `encode(text).fullLength ==
    /// tokenIDs(text).count + 2`.
    ///
    /// - Complexity: as `encode`.
    public func tokenIDs(_ text: String) -> [Int32] {
        var raw: [UInt32] = []
        raw.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars { raw.append(s.value) }

        var out: [Int32] = []
        out.reserveCapacity(raw.count / 3 + 4)
        var normalized: [UInt32] = []
        var segmentStart = 0
        var i = 0
        while i < raw.count {
            if raw[i] == 0x5B, let (length, id) = matchSpecial(raw, at: i) { // "["
                tokenizeSegment(raw, segmentStart, i, normalized: &normalized, into: &out)
                out.append(id)
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        tokenizeSegment(raw, segmentStart, raw.count, normalized: &normalized, into: &out)
        return out
    }

    /// Whether a text appended to `prefix` starts a new word, so that
    /// `tokenIDs(prefix + text) == tokenIDs(prefix) + tokenIDs(text)` for any `text`: `prefix`
    /// normalizes to nothing or ends in whitespace, punctuation (a special token ends in "]")
    /// or a CJK ideograph (which the normalizer sets apart with spaces). O(prefix length).
    public func endsWord(_ prefix: String) -> Bool {
        let raw = prefix.unicodeScalars.map(\.value)
        var normalized: [UInt32] = []
        normalizer.normalize(raw, 0, raw.count, into: &normalized)
        guard let last = normalized.last else { return true }
        return BertUnicode.isWhitespace(last) || BertUnicode.isPunctuation(last)
    }

    /// The vocabulary string of `id`, or nil when out of range.
    public func token(for id: Int32) -> String? {
        let i = Int(id)
        return i >= 0 && i < vocabulary.tokens.count ? vocabulary.tokens[i] : nil
    }

    // MARK: - Pipeline

    /// The longest special token that starts at `raw[i]`.
    private func matchSpecial(_ raw: [UInt32], at i: Int) -> (Int, Int32)? {
        var best: (Int, Int32)? = nil
        for (scalars, id) in specials where i + scalars.count <= raw.count {
            if let b = best, b.0 >= scalars.count { continue }
            var equal = true
            for k in 0..<scalars.count where raw[i + k] != scalars[k] { equal = false; break }
            if equal { best = (scalars.count, id) }
        }
        return best
    }

    /// Normalizes, pre-tokenizes and WordPiece-encodes `raw[start..<end]`.
    private func tokenizeSegment(_ raw: [UInt32], _ start: Int, _ end: Int,
                                 normalized: inout [UInt32], into out: inout [Int32]) {
        guard start < end else { return }
        normalized.removeAll(keepingCapacity: true)
        normalizer.normalize(raw, start, end, into: &normalized)

        var wordStart = -1
        var i = 0
        let n = normalized.count
        while i < n {
            let v = normalized[i]
            if BertUnicode.isWhitespace(v) {
                if wordStart >= 0 { wordPiece(normalized, wordStart, i, into: &out); wordStart = -1 }
            } else if BertUnicode.isPunctuation(v) {
                if wordStart >= 0 { wordPiece(normalized, wordStart, i, into: &out); wordStart = -1 }
                wordPiece(normalized, i, i + 1, into: &out)
            } else if wordStart < 0 {
                wordStart = i
            }
            i += 1
        }
        if wordStart >= 0 { wordPiece(normalized, wordStart, n, into: &out) }
    }

    /// Greedy longest-match-first WordPiece of `word[start..<end]`.
    private func wordPiece(_ word: [UInt32], _ start: Int, _ end: Int, into out: inout [Int32]) {
        if end - start > options.maxInputCharsPerWord {
            out.append(unkID)
            return
        }
        let mark = out.count
        let longest = vocabulary.maxKeyLength
        var pieceStart = start
        while pieceStart < end {
            var pieceEnd = min(end, pieceStart + longest)
            var found: Int32? = nil
            while pieceStart < pieceEnd {
                if let id = vocabulary.lookup(word, pieceStart, pieceEnd, continuation: pieceStart > start) {
                    found = id
                    break
                }
                pieceEnd -= 1
            }
            guard let id = found else {
                out.removeSubrange(mark...)
                out.append(unkID)
                return
            }
            out.append(id)
            pieceStart = pieceEnd
        }
    }
}
