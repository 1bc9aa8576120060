import Foundation

/// Settings of the BERT normalizer and WordPiece model, as in a Hugging Face
/// `tokenizer_config.json`.
public struct TokenizerOptions: Sendable, Equatable {
    /// `do_lower_case`: lower-case every character (full mapping, no final-sigma rule).
    public var lowercase: Bool
    /// `strip_accents`: NFD, then drop every nonspacing mark (Mn).
    public var stripAccents: Bool
    /// `tokenize_chinese_chars`: put spaces around every CJK ideograph.
    public var handleChineseChars: Bool
    /// Delete control/format/private-use characters and map White_Space to a space. Always
    /// true for BERT.
    public var cleanText: Bool
    /// A word longer than this many unicode scalars (after normalization) becomes `[UNK]`.
    public var maxInputCharsPerWord: Int

    /// - Parameter stripAccents: nil (JSON `null` or absent) means "follow `lowercase`".
    public init(lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseChars: Bool = true,
                cleanText: Bool = true, maxInputCharsPerWord: Int = 100) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.handleChineseChars = handleChineseChars
        self.cleanText = cleanText
        self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// The keys of `tokenizer_config.json` that matter here; absent or `null` keys take the
    /// `BertTokenizer` defaults.
    private struct ConfigFile: Decodable {
        var do_lower_case: Bool?
        var strip_accents: Bool?
        var tokenize_chinese_chars: Bool?
        var clean_text: Bool?
        var max_input_chars_per_word: Int?
    }

    /// Reads options from a `tokenizer_config.json`.
    ///
    /// - Throws: `TokenizerError` naming the file if it cannot be read or is not a JSON object
    ///   with the expected value types.
    public init(configFile url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TokenizerError(.unreadableConfig, file: url,
                                 "cannot read tokenizer config \(url.path): \(error.localizedDescription)")
        }
        let config: ConfigFile
        do {
            config = try JSONDecoder().decode(ConfigFile.self, from: data)
        } catch {
            throw TokenizerError(.invalidConfig, file: url,
                                 "invalid tokenizer config \(url.path): \(error)")
        }
        self.init(lowercase: config.do_lower_case ?? true,
                  stripAccents: config.strip_accents,
                  handleChineseChars: config.tokenize_chinese_chars ?? true,
                  cleanText: config.clean_text ?? true,
                  maxInputCharsPerWord: config.max_input_chars_per_word ?? 100)
    }
}

/// Token ids of one text as the model gets them.
public struct TokenizedText: Sendable, Equatable {
    /// `[CLS]`, content ids, `[SEP]`, truncated to the tokenizer's `maxLength`.
    public var ids: [Int32]
    /// The id count before truncation, `[CLS]` and `[SEP]` included.
    public var fullLength: Int

    public init(ids: [Int32], fullLength: Int) {
        self.ids = ids
        self.fullLength = fullLength
    }
}

/// A tokenizer that could not be built; `description` names the file involved.
public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case missingVocabulary
        case unreadableVocabulary
        case emptyVocabulary
        case missingSpecialToken(String)
        case unreadableConfig
        case invalidConfig
        case invalidArgument
        /// A vocab.txt far larger than any vocabulary (see `WordPieceTokenizer.maxVocabularyFileSize`).
        case vocabularyTooLarge
    }

    public let kind: Kind
    /// The file that caused the error, when there is one.
    public let file: URL?
    public let description: String

    public init(_ kind: Kind, file: URL? = nil, _ description: String) {
        self.kind = kind
        self.file = file
        self.description = description
    }
}
