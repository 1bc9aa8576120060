import Foundation
import KBEmbed
import KBHTTP

/// How to reach a remote embedding service, and how hard to try.
public struct RemoteConfiguration: Sendable, Equatable {
    /// `.openai` or `.ollama` (`.local` is refused by `RemoteEmbedder.init`).
    public var provider: EmbeddingProvider
    /// The base URL as the user gave it (`http://127.0.0.1:8080/v1`, `http://127.0.0.1:11434`);
    /// `RemoteEmbedder.endpoint` derives the request URL from it.
    public var url: URL
    /// The model name sent with every request.
    public var model: String
    /// The API key, from the environment only (`RemoteEmbedder.apiKey(for:environment:)`);
    /// sent as `Authorization: Bearer`, never recorded, logged or shown.
    public var apiKey: String?
    /// The prompts prepended to queries and documents (none by default).
    public var prompts: Prompts
    /// Texts per request.
    public var batchSize: Int
    /// Requests in flight at once.
    public var concurrency: Int
    /// Seconds one request may take, connection included.
    public var timeout: Double
    /// Retries of one request after a 429, a 5xx, a timeout or a dropped connection.
    public var retries: Int
    /// The chunker's limit for this model, in estimated tokens (`RemoteEmbedder.countTokens`).
    public var maxTextTokens: Int

    public init(provider: EmbeddingProvider, url: URL, model: String, apiKey: String? = nil, prompts: Prompts = .none,
                batchSize: Int = 64, concurrency: Int = 4, timeout: Double = 60, retries: Int = 6, maxTextTokens: Int = 254) {
        self.provider = provider
        self.url = url
        self.model = model
        self.apiKey = apiKey
        self.prompts = prompts
        self.batchSize = batchSize
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.maxTextTokens = maxTextTokens
    }

    public static func == (a: RemoteConfiguration, b: RemoteConfiguration) -> Bool {
        a.provider == b.provider && a.url == b.url && a.model == b.model && a.apiKey == b.apiKey && a.prompts == b.prompts
            && a.batchSize == b.batchSize && a.concurrency == b.concurrency && a.timeout == b.timeout && a.retries == b.retries
            && a.maxTextTokens == b.maxTextTokens
    }
}

/// Why a remote embedding request failed. Descriptions are one line a person can act on,
/// and never contain the API key.
public enum RemoteEmbedError: Error, CustomStringConvertible, Equatable, Sendable {
    case notImplemented

    public var description: String {
        switch self {
        case .notImplemented: return "remote embedding is not implemented yet"
        }
    }
}

/// An embedding model behind an HTTP API: OpenAI-compatible `/v1/embeddings` or Ollama's
/// `/api/embed`.
public final class RemoteEmbedder: TextEmbedder {
    public let configuration: RemoteConfiguration
    public let dimensions: Int

    /// Connects: sends one short request to learn the dimensions and to fail early (a wrong
    /// URL, key or model name) before a build reads any file.
    public init(_ configuration: RemoteConfiguration, client: HTTPClient = HTTPClient()) throws {
        self.configuration = configuration
        self.dimensions = 0
        throw RemoteEmbedError.notImplemented
    }

    /// The API key for `provider` from `environment`: `KBINDEX_EMBED_API_KEY`, else the
    /// provider's usual variable (`OPENAI_API_KEY` for `.openai`, `OLLAMA_API_KEY` for `.ollama`).
    public static func apiKey(for provider: EmbeddingProvider, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        nil
    }

    /// The URL as index files record it: the user's base URL without user name, password or
    /// fragment. Throws for a URL that carries credentials (`RemoteEmbedError`).
    public static func recordedURL(_ url: URL) throws -> String { url.absoluteString }

    public var name: String { configuration.model }
    public var provider: EmbeddingProvider { configuration.provider }
    /// Vectors are L2-normalized by kbindex after they arrive.
    public var normalizes: Bool { true }
    public var prompts: Prompts { configuration.prompts }
    public var threads: Int { ProcessInfo.processInfo.activeProcessorCount }
    public func maxTextTokens(for role: TextRole) -> Int { configuration.maxTextTokens }
    public func countTokens(_ text: String) -> Int { 0 }

    public func embed(_ texts: [String], as role: TextRole, progress: (@Sendable (Int) -> Void)?,
                      isCancelled: (@Sendable () -> Bool)?) throws -> [[Float]] {
        throw RemoteEmbedError.notImplemented
    }
}
