import Foundation

/// What a text is embedded as. Retrieval models embed questions and passages differently
/// (sentence-transformers' `encode_query` and `encode_document`): each role gets its own
/// prompt, prepended to the text.
public enum TextRole: String, Sendable, CaseIterable {
    /// A question asked of the index (`kbindex query`, `eval`, `serve`, `mcp`).
    case query
    /// A chunk of a document being indexed (`kbindex build`).
    case document
    /// The text as given, no prompt (`/v1/embeddings`, `kbindex embed` by default).
    case plain
}

/// The prompts prepended to queries and documents (sentence-transformers' `prompts`); nil
/// means none. An empty string is no prompt too, and is normalized to nil by `init`.
public struct Prompts: Sendable, Equatable, Hashable {
    public var query: String?
    public var document: String?

    public init(query: String? = nil, document: String? = nil) {
        self.query = query.flatMap { $0.isEmpty ? nil : $0 }
        self.document = document.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// No prompt for either role.
    public static let none = Prompts()

    /// The prompt for `role` (nil for `.plain` and for a role without one).
    public func prompt(for role: TextRole) -> String? {
        switch role {
        case .query: return query
        case .document: return document
        case .plain: return nil
        }
    }

    /// These prompts with `query` and/or `document` replaced where given (an empty string
    /// replaces a prompt with none): how `--query-prompt` and `--document-prompt` apply.
    public func overridden(query: String?, document: String?) -> Prompts {
        Prompts(query: query ?? self.query, document: document ?? self.document)
    }
}

/// Where an embedder's vectors come from.
public enum EmbeddingProvider: String, Sendable, CaseIterable, Codable {
    /// The built-in BERT encoder running a model folder in-process (`Embedder`).
    case local
    /// An OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, TEI, llama.cpp, LM Studio,
    /// `kbindex serve`, …), `KBRemoteEmbed.RemoteEmbedder`.
    case openai
    /// Ollama's `/api/embed`, `KBRemoteEmbed.RemoteEmbedder`.
    case ollama
}

/// Anything that turns texts into vectors for an index: the built-in encoder (`Embedder`) or a
/// remote service (`KBRemoteEmbed.RemoteEmbedder`). `build` embeds documents with it, `query`,
/// `eval`, `serve` and `mcp` embed questions; `KBRetrieval.ModelIdentity` describes it for
/// index files.
///
/// Implementations are thread-safe: any number of threads may call `embed` at once.
public protocol TextEmbedder: AnyObject, Sendable {
    /// A name for humans and for index files (a model folder's name, a remote model's name).
    var name: String { get }
    /// Where the vectors come from.
    var provider: EmbeddingProvider { get }
    /// Length of every vector `embed` returns (≥ 1).
    var dimensions: Int { get }
    /// Whether every vector `embed` returns is L2-normalized.
    var normalizes: Bool { get }
    /// The prompts in effect (the model's own, or as overridden).
    var prompts: Prompts { get }
    /// Workers for the CPU work around embedding (reading and chunking files).
    var threads: Int { get }
    /// The longest text, in tokens as `countTokens` counts them, that one input of `role`
    /// holds without being cut: the chunker's limit. The prompt and any special tokens are
    /// already taken off.
    func maxTextTokens(for role: TextRole) -> Int
    /// How many tokens `text` is: exact for the built-in model (its tokenizer), an estimate
    /// for remote ones (whose tokenizer kbindex does not have). Thread-safe and cheap.
    func countTokens(_ text: String) -> Int
    /// The vectors of `texts`, in order, each with `role`'s prompt prepended.
    /// - Parameters:
    ///   - progress: called as texts finish, with how many, possibly from other threads
    ///     (thread-safe and cheap).
    ///   - isCancelled: polled between batches, possibly from other threads; once it returns
    ///     true no new batch starts and the call throws `CancellationError`.
    /// - Throws: the implementation's error (`ModelError`, `RemoteEmbedError`), one line a
    ///   person can act on; `CancellationError`. Never returns a NaN or infinite value, an
    ///   empty vector or one of another length than `dimensions`.
    func embed(_ texts: [String], as role: TextRole, progress: (@Sendable (Int) -> Void)?,
               isCancelled: (@Sendable () -> Bool)?) throws -> [[Float]]
}

extension TextEmbedder {
    /// `embed(_:as:progress:isCancelled:)` without progress or cancellation.
    public func embed(_ texts: [String], as role: TextRole) throws -> [[Float]] {
        try embed(texts, as: role, progress: nil, isCancelled: nil)
    }
}
