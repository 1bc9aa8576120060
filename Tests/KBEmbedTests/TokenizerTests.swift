import Foundation
import XCTest
import KBTestSupport
@testable import KBEmbed

final class TokenizerTests: XCTestCase {
    static let configDirectory = Fixtures.root.appendingPathComponent("minilm-config")

    /// One shared MiniLM tokenizer (max length 256, as sentence-transformers uses it).
    static let minilm: WordPieceTokenizer = {
        do {
            return try WordPieceTokenizer(modelDirectory: configDirectory, maxLength: 256)
        } catch {
            fatalError("cannot load the MiniLM tokenizer fixture: \(error)")
        }
    }()

    private func names(_ ids: [Int32], _ tok: WordPieceTokenizer) -> String {
        ids.map { tok.token(for: $0) ?? "<\($0)>" }.joined(separator: " ")
    }

    private func scalarsDescription(_ text: String) -> String {
        text.unicodeScalars.map { $0.value < 0x20 || ($0.value >= 0x7F && $0.value < 0xA0) || $0.value > 0x7E
            ? String(format: "\\u{%X}", $0.value) : String($0) }.joined()
    }

    // MARK: - Golden fixture

    func testAllFixtureTextsMatchReferenceIDs() throws {
        let tok = Self.minilm
        let texts = try Fixtures.minilmTexts()
        let expected = Dictionary(uniqueKeysWithValues: try Fixtures.minilmTokens().map { ($0.id, $0) })
        XCTAssertEqual(texts.count, 302)
        XCTAssertEqual(expected.count, 302)

        var mismatches: [String] = []
        for text in texts {
            guard let want = expected[text.id] else {
                mismatches.append("id \(text.id): no reference tokens")
                continue
            }
            let got = tok.encode(text.text)
            if got.ids != want.input_ids || got.fullLength != want.full_length {
                mismatches.append("""
                    id \(text.id) [\(text.tag)] text: \(scalarsDescription(String(text.text.prefix(300))))
                      want (\(want.full_length)): \(names(want.input_ids, tok))
                      got  (\(got.fullLength)): \(names(got.ids, tok))
                    """)
            }
        }
        XCTAssertTrue(mismatches.isEmpty,
                      "\(mismatches.count) of \(texts.count) texts differ:\n" + mismatches.joined(separator: "\n"))
    }

    // MARK: - Unit tests on the MiniLM vocabulary

    func testSpecialIDs() {
        let tok = Self.minilm
        XCTAssertEqual(tok.vocabularySize, 30522)
        XCTAssertEqual([tok.padID, tok.unkID, tok.clsID, tok.sepID], [0, 100, 101, 102])
        XCTAssertEqual(tok.token(for: 101), "[CLS]")
        XCTAssertNil(tok.token(for: 30522))
        XCTAssertNil(tok.token(for: -1))
    }

    func testSpecialTokensInsideText() {
        let tok = Self.minilm
        let x = tok.tokenIDs("x"), y = tok.tokenIDs("y")
        XCTAssertEqual(tok.tokenIDs("x[PAD]y"), x + [0] + y)
        XCTAssertEqual(tok.tokenIDs("[CLS][SEP][UNK][MASK]"), [101, 102, 100, 103])
        // Only the exact case is special; lower case is ordinary text: "[", "mask", "]".
        let lower = tok.tokenIDs("[mask]")
        XCTAssertEqual(lower.count, 3)
        XCTAssertFalse(lower.contains(103))
        // Special tokens bypass the normalizer, but the text around them is normalized.
        XCTAssertEqual(tok.tokenIDs("Café[SEP]CAFÉ"), tok.tokenIDs("cafe") + [102] + tok.tokenIDs("cafe"))
    }

    func testWordLengthLimit() {
        let tok = Self.minilm
        let a100 = String(repeating: "a", count: 100)
        let a101 = String(repeating: "a", count: 101)
        let ids100 = tok.tokenIDs(a100)
        XCTAssertFalse(ids100.contains(tok.unkID))
        XCTAssertGreaterThan(ids100.count, 1)
        XCTAssertEqual(tok.tokenIDs(a101), [tok.unkID])
        // The limit counts scalars after normalization: 60 decomposed é are 120 scalars before
        // but 60 after accent stripping.
        XCTAssertFalse(tok.tokenIDs(String(repeating: "e\u{301}", count: 60)).contains(tok.unkID))
        // A word with an unmatched part is a single [UNK].
        XCTAssertEqual(tok.tokenIDs("abc☃def"), [tok.unkID])
    }

    func testTruncationInsideAWord() throws {
        let full = try WordPieceTokenizer(modelDirectory: Self.configDirectory, maxLength: 512)
        let small = try WordPieceTokenizer(modelDirectory: Self.configDirectory, maxLength: 4)
        let text = "electroencephalography is long"
        let content = full.tokenIDs(text)
        XCTAssertGreaterThan(content.count, 3)
        let encoded = small.encode(text)
        XCTAssertEqual(encoded.ids, [small.clsID, content[0], content[1], small.sepID])
        XCTAssertEqual(encoded.fullLength, content.count + 2)
        XCTAssertTrue(small.token(for: content[1])!.hasPrefix("##"), "the cut falls inside the first word")

        let minimal = try WordPieceTokenizer(modelDirectory: Self.configDirectory, maxLength: 2)
        XCTAssertEqual(minimal.encode(text).ids, [minimal.clsID, minimal.sepID])
        XCTAssertThrowsError(try WordPieceTokenizer(modelDirectory: Self.configDirectory, maxLength: 1))
    }

    func testTokenIDsVersusEncode() {
        let tok = Self.minilm
        for text in ["", "Hello, world!", "naïve café — 東京", String(repeating: "word ", count: 400)] {
            let content = tok.tokenIDs(text)
            let encoded = tok.encode(text)
            XCTAssertEqual(encoded.fullLength, content.count + 2)
            XCTAssertEqual(encoded.ids.first, tok.clsID)
            XCTAssertEqual(encoded.ids.last, tok.sepID)
            XCTAssertEqual(Array(encoded.ids.dropFirst().dropLast()), Array(content.prefix(tok.maxLength - 2)))
        }
    }

    func testCanonicallyEquivalentSpellingsAreDistinctVocabularyKeys() throws {
        // Swift String == would merge these; the tokenizer must not.
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "\u{E9}", "e"]
        let keep = try WordPieceTokenizer(vocabulary: vocab, options: TokenizerOptions(lowercase: false),
                                          maxLength: 16)
        XCTAssertEqual(keep.tokenIDs("\u{E9}"), [4])
        XCTAssertEqual(keep.tokenIDs("e\u{301}"), [1]) // "e" then "##\u{301}" is not in the vocabulary
    }

    /// `tokenizers` classifies characters with Unicode 8.0 tables (`unicode_categories` 0.1.1)
    /// and decomposes with Unicode 9.0 (`unicode-normalization-alignments` 0.1.12). Expected ids
    /// come from `tokenizers` 0.23.3 `BertWordPieceTokenizer` on the fixture vocab.txt.
    func testReferenceUnicodeTableVersions() {
        let tok = Self.minilm
        let unk = tok.unkID
        // Younger characters are unknown to the old tables: not punctuation, not marks, not controls.
        XCTAssertEqual(tok.tokenIDs("a\u{2E59}b"), [unk])        // Ps since Unicode 14: not split
        XCTAssertEqual(tok.tokenIDs("s\u{0AFB}"), [unk])         // Mn since Unicode 10: not stripped
        XCTAssertEqual(tok.tokenIDs("x\u{08E2}y"), [unk])        // Cf since Unicode 9: not deleted
        XCTAssertEqual(tok.tokenIDs("a\u{11B03}b"), [unk])       // Po since Unicode 15: not split
        // Characters whose category changed after Unicode 8.0 keep their old category.
        XCTAssertEqual(tok.tokenIDs("\u{1734}able"), [2583])     // Mn in 8.0, stripped
        XCTAssertEqual(tok.tokenIDs("a\u{1171E}b"), [11113])     // Mn in 8.0, stripped: "ab"
        XCTAssertEqual(tok.tokenIDs("a\u{166D}b"), [1037, unk, 1038]) // Po in 8.0, split off
        XCTAssertEqual(tok.tokenIDs("a\u{111C9}b"), [1037, unk, 1038]) // Po in 8.0, split off
        XCTAssertEqual(tok.tokenIDs("vs\u{1885}"), [unk])        // Lo in 8.0, kept
        XCTAssertEqual(tok.tokenIDs("a\u{A9BD}b"), [unk])        // Mc in 8.0, kept
        // Old format characters are deleted and old marks stripped.
        XCTAssertEqual(tok.tokenIDs("x\u{200D}y"), [1060, 2100])
        XCTAssertEqual(tok.tokenIDs("\u{0430}\u{0308}"), [1180])
    }

    func testVerticalTabSplitsWordsWithoutCleanText() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "##b"]
        let raw = try WordPieceTokenizer(vocabulary: vocab, options: TokenizerOptions(cleanText: false), maxLength: 16)
        XCTAssertEqual(raw.tokenIDs("a\u{0B}b\u{0C}a"), [4, 5, 4]) // White_Space: a word boundary
        let clean = try WordPieceTokenizer(vocabulary: vocab, options: TokenizerOptions(), maxLength: 16)
        XCTAssertEqual(clean.tokenIDs("a\u{0B}b"), [4, 6])            // Cc: deleted, joins "ab"
    }

    // MARK: - Loading

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("kbindex-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    private let smallVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ncafe\ncafé\n##s\n"

    func testMissingVocabularyIsAnErrorNamingTheFile() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)) { error in
            let e = error as? TokenizerError
            XCTAssertEqual(e?.kind, .missingVocabulary)
            XCTAssertTrue("\(error)".contains("vocab.txt"), "\(error)")
        }
    }

    func testEmptyVocabularyAndMissingSpecialTokens() throws {
        let dir = try temporaryDirectory()
        try Data().write(to: dir.appendingPathComponent("vocab.txt"))
        XCTAssertThrowsError(try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .emptyVocabulary)
            XCTAssertTrue("\(error)".contains("vocab.txt"), "\(error)")
        }
        try Data("[PAD]\n[UNK]\n[CLS]\nhello\n".utf8).write(to: dir.appendingPathComponent("vocab.txt"))
        XCTAssertThrowsError(try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .missingSpecialToken("[SEP]"))
            XCTAssertTrue("\(error)".contains("[SEP]") && "\(error)".contains("vocab.txt"), "\(error)")
        }
    }

    func testInvalidConfigIsAnErrorNamingTheFile() throws {
        let dir = try temporaryDirectory()
        try Data(smallVocab.utf8).write(to: dir.appendingPathComponent("vocab.txt"))
        try Data("{\"do_lower_case\": tru".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        XCTAssertThrowsError(try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .invalidConfig)
            XCTAssertTrue("\(error)".contains("tokenizer_config.json"), "\(error)")
        }
    }

    func testOptionsFromConfig() throws {
        let dir = try temporaryDirectory()
        try Data(smallVocab.utf8).write(to: dir.appendingPathComponent("vocab.txt"))
        let configURL = dir.appendingPathComponent("tokenizer_config.json")

        // No config: BERT defaults.
        let defaults = try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)
        XCTAssertEqual(defaults.options, TokenizerOptions())
        XCTAssertTrue(defaults.options.stripAccents)
        XCTAssertEqual(defaults.tokenIDs("Cafés"), [5, 7])

        // strip_accents null follows do_lower_case.
        try Data(#"{"do_lower_case": false, "strip_accents": null}"#.utf8).write(to: configURL)
        let cased = try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)
        XCTAssertFalse(cased.options.lowercase)
        XCTAssertFalse(cased.options.stripAccents)
        XCTAssertEqual(cased.tokenIDs("café"), [6])

        // Explicit false keeps accents while lower-casing.
        try Data(#"{"do_lower_case": true, "strip_accents": false, "tokenize_chinese_chars": false}"#.utf8)
            .write(to: configURL)
        let accents = try WordPieceTokenizer(modelDirectory: dir, maxLength: 8)
        XCTAssertEqual(accents.options, TokenizerOptions(lowercase: true, stripAccents: false, handleChineseChars: false))
        XCTAssertEqual(accents.tokenIDs("CAFÉ"), [6])
        XCTAssertEqual(accents.tokenIDs("CAFE\u{301}"), [1]) // not composed: "e" + U+0301 is no vocabulary key

        // Missing keys take defaults; the fixture's own config.
        try Data("{}".utf8).write(to: configURL)
        XCTAssertEqual(try WordPieceTokenizer(modelDirectory: dir, maxLength: 8).options, TokenizerOptions())
        XCTAssertEqual(Self.minilm.options, TokenizerOptions(lowercase: true, stripAccents: true))
    }
}
