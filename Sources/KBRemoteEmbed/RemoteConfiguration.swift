import Foundation
import KBEmbed

/// How to reach a remote embedding service, and how hard to try.
///
/// Printing a configuration (`description`, `debugDescription`, `dump`) never shows the API
/// key, only whether one is set.
public struct RemoteConfiguration: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `.openai` or `.ollama` (`.local` is refused by `RemoteEmbedder.init`).
    public var provider: EmbeddingProvider
    /// The base URL as the user gave it (`http://127.0.0.1:8080/v1`, `http://127.0.0.1:11434`);
    /// `RemoteEmbedder.endpoint` derives the request URL from it: `/embeddings` (openai) or
    /// `/api/embed` (ollama) is appended to the path unless it already ends so. http or https,
    /// without user name, password or a secret-looking query parameter.
    public var url: URL
    /// The model name sent with every request.
    public var model: String
    /// The API key, from the environment only (`RemoteEmbedder.apiKey(for:environment:)`);
    /// sent as `Authorization: Bearer`, never recorded, logged or shown.
    public var apiKey: String?
    /// The prompts prepended to queries and documents (none by default).
    public var prompts: Prompts
    /// Texts per request (≥ 1).
    public var batchSize: Int
    /// Requests in flight at once (1...64), each on its own thread.
    public var concurrency: Int
    /// Seconds one request may take, connection included (> 0).
    public var timeout: Double
    /// Retries of one request after a 408, 429, 500, 502, 503 or 504, a timeout, a refused or
    /// dropped connection (0...100): exponential backoff with jitter, or the server's
    /// `Retry-After` (at most 120 s).
    public var retries: Int
    /// The model's input limit in tokens as `RemoteEmbedder.countTokens` estimates them (≥ 1);
    /// `maxTextTokens(for:)` takes the role's prompt off it.
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

    public var description: String {
        "RemoteConfiguration(provider: \(provider.rawValue), url: \(shownURL), model: \(model), apiKey: \(apiKey == nil ? "none" : "set"), "
            + "batchSize: \(batchSize), concurrency: \(concurrency), timeout: \(timeout), retries: \(retries), maxTextTokens: \(maxTextTokens))"
    }

    public var debugDescription: String { description }

    /// `url` without user name, password and query, which may hold secrets.
    private var shownURL: String {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "(invalid URL)" }
        c.user = nil
        c.password = nil
        c.query = nil
        c.fragment = nil
        return c.string ?? "(invalid URL)"
    }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "provider": provider, "url": shownURL, "model": model, "apiKey": apiKey == nil ? "none" : "set", "prompts": prompts,
            "batchSize": batchSize, "concurrency": concurrency, "timeout": timeout, "retries": retries, "maxTextTokens": maxTextTokens,
        ], displayStyle: .struct)
    }
}
