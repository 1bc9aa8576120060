import Foundation
import KBEmbed
import KBHTTP

/// An embedding model behind an HTTP API: OpenAI-compatible `/v1/embeddings` or Ollama's
/// `/api/embed`.
///
/// ```swift
/// let config = RemoteConfiguration(provider: .openai, url: URL(string: "http://127.0.0.1:8080/v1")!,
///                                  model: "all-MiniLM-L6-v2",
///                                  apiKey: RemoteEmbedder.apiKey(for: .openai))
/// let embedder = try RemoteEmbedder(config)          // one request: learns `dimensions`
/// let vectors = try embedder.embed(["a chunk"], as: .document)
/// ```
///
/// Requests: `POST {url}/embeddings` with `{"model", "input": [texts], "encoding_format":
/// "float"}` (vectors read from `data[].embedding`, placed by `data[].index`), or `POST
/// {url}/api/embed` with `{"model", "input": [texts]}` (vectors read from `embeddings`);
/// `Content-Type: application/json`, `Authorization: Bearer KEY` when a key is set.
///
/// Every vector is checked (count, length, finite values, not empty, not zero) and
/// L2-normalized. Failures that waiting can fix (408, 429, 500, 502, 503, 504, a timeout, a
/// refused, reset or dropped connection) are retried `configuration.retries` times with
/// exponential backoff (0.5 s doubling up to 30 s, with jitter) or after the server's
/// `Retry-After` (seconds or an HTTP date; at most 120 s); others fail at once with a
/// `RemoteEmbedError` whose text never holds the API key.
///
/// Thread-safe: `embed` may run on any number of threads at once.
public final class RemoteEmbedder: TextEmbedder {
    public let configuration: RemoteConfiguration
    /// The length of the model's vectors, learned from the first request.
    public let dimensions: Int
    /// The URL requests go to (`configuration.url` with `/embeddings` or `/api/embed`).
    public let endpoint: URL

    let session: RemoteSession

    /// Connects: sends one short request to learn the dimensions and to fail early (a wrong
    /// URL, key or model name) before a build reads any file. A refused connection is not
    /// retried here (it most likely means a wrong URL); busy answers and timeouts are.
    ///
    /// - Parameters:
    ///   - client: the HTTP client (its `userAgent` and `connectTimeout` apply).
    ///   - onRetry: told, in one line without the key, about each retry and its wait
    ///     ("HTTP 429 from URL: retry 1 of 6 in 2 s"), possibly from several threads.
    /// - Throws: `RemoteEmbedError` (configuration, URL, connection, HTTP status, answer).
    public convenience init(_ configuration: RemoteConfiguration, client: HTTPClient = HTTPClient(),
                            onRetry: (@Sendable (String) -> Void)? = nil) throws {
        try self.init(configuration, client: client, onRetry: onRetry, retryPolicy: RetryPolicy(),
                      environment: ProcessInfo.processInfo.environment)
    }

    /// `init(_:client:onRetry:)` with the waits and the environment (where the key came
    /// from, for messages) given: for tests.
    init(_ configuration: RemoteConfiguration, client: HTTPClient, onRetry: (@Sendable (String) -> Void)?,
         retryPolicy: RetryPolicy, environment: [String: String]) throws {
        try RemoteEmbedder.validate(configuration)
        let components = try RemoteURL.checked(configuration.url)
        guard let endpoint = RemoteURL.endpoint(components, provider: configuration.provider) else {
            throw RemoteEmbedError.invalidURL(url: shownText(configuration.url.absoluteString), reason: "it is not a valid URL")
        }
        self.configuration = configuration
        self.endpoint = endpoint
        let key = configuration.apiKey.flatMap { $0.isEmpty ? nil : $0 }
        let source = key.flatMap { key in
            RemoteEmbedder.keyVariables(for: configuration.provider).first { environment[$0].map(RemoteEmbedder.trimmedKey) == key }
        }
        let shown = shownText(endpoint.absoluteString.scrubbed(of: key), limit: 300)
        let limit = (16 << 20) + min(configuration.batchSize, 4096) * (256 << 10)  // at most 1040 MiB
        let session = RemoteSession(
            provider: configuration.provider, model: configuration.model, endpoint: endpoint, shownEndpoint: shown,
            apiKey: key, keySource: source, timeout: configuration.timeout, retries: configuration.retries,
            responseLimit: limit, client: client, policy: retryPolicy, onRetry: onRetry)
        self.session = session
        let probe = try session.embed(["kbindex probe"], offset: 0, dimensions: nil, retryConnect: false, shouldStop: { false })
        // The segment format takes fewer than 2^24 values per vector; no embedding model has
        // more than a few thousand.
        guard probe[0].count <= RemoteEmbedder.maxDimensions else {
            throw RemoteEmbedError.malformedResponse(url: shown, detail: "a vector of \(probe[0].count) values, more than the \(RemoteEmbedder.maxDimensions) kbindex takes")
        }
        dimensions = probe[0].count
    }

    /// The most values a remote vector may have.
    public static let maxDimensions = 65_536

    private static func validate(_ c: RemoteConfiguration) throws {
        func bad(_ message: String) -> RemoteEmbedError { .invalidConfiguration(message) }
        if c.provider == .local { throw RemoteEmbedError.localProvider }
        let model = c.model.trimmingCharacters(in: .whitespaces)
        guard !model.isEmpty else { throw bad("the embedding model name is empty") }
        guard !c.model.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw bad("the embedding model name '\(shownText(c.model, limit: 100))' contains control characters")
        }
        guard c.batchSize >= 1 else { throw bad("the embedding batch size must be at least 1 (got \(c.batchSize))") }
        guard (1...64).contains(c.concurrency) else { throw bad("the number of embedding requests in flight must be 1 to 64 (got \(c.concurrency))") }
        guard c.timeout.isFinite, c.timeout > 0 else { throw bad("the embedding request timeout must be more than 0 seconds (got \(c.timeout))") }
        guard (0...100).contains(c.retries) else { throw bad("the embedding retries must be 0 to 100 (got \(c.retries))") }
        guard c.maxTextTokens >= 1 else { throw bad("the embedding model's token limit must be at least 1 (got \(c.maxTextTokens))") }
        if let key = c.apiKey, key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw bad("the API key contains a line break or another control character")
        }
    }

    // MARK: Keys and URLs

    /// The variable every provider reads its key from first.
    public static let genericKeyVariable = "KBINDEX_EMBED_API_KEY"

    /// Where `apiKey(for:)` looks, in order: `KBINDEX_EMBED_API_KEY`, then `OPENAI_API_KEY`
    /// (openai) or `OLLAMA_API_KEY` (ollama).
    public static func keyVariables(for provider: EmbeddingProvider) -> [String] {
        switch provider {
        case .openai: return [genericKeyVariable, "OPENAI_API_KEY"]
        case .ollama: return [genericKeyVariable, "OLLAMA_API_KEY"]
        case .local: return [genericKeyVariable]
        }
    }

    /// The API key for `provider` from `environment`: `KBINDEX_EMBED_API_KEY`, else the
    /// provider's usual variable (`OPENAI_API_KEY` for `.openai`, `OLLAMA_API_KEY` for `.ollama`).
    /// Surrounding white space (a newline from `$(cat key.txt)`) is dropped; an empty or
    /// blank variable counts as unset.
    public static func apiKey(for provider: EmbeddingProvider, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        for name in keyVariables(for: provider) {
            if let value = environment[name].map(trimmedKey), !value.isEmpty { return value }
        }
        return nil
    }

    private static func trimmedKey(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The URL as index files record it: the user's base URL without fragment (and without a
    /// trailing slash). Throws `RemoteEmbedError` for a URL that is not http(s) with a host,
    /// that carries credentials (`user:password@`), or a query parameter that looks like a
    /// secret (`key`, `api_key`, `apikey`, `token`, `access_token`, `sig`, `signature`, `code`,
    /// `password`, ...): keys come from the environment only. Other query parameters
    /// (`?api-version=...`) are kept.
    public static func recordedURL(_ url: URL) throws -> String {
        var c = try RemoteURL.checked(url)
        while c.path.count > 1 && c.path.hasSuffix("/") { c.path.removeLast() }
        if c.path == "/" { c.path = "" }
        guard let text = c.string else {
            throw RemoteEmbedError.invalidURL(url: shownText(url.absoluteString), reason: "it is not a valid URL")
        }
        return text
    }

    // MARK: TextEmbedder

    public var name: String { configuration.model }
    public var provider: EmbeddingProvider { configuration.provider }
    /// Vectors are L2-normalized by kbindex after they arrive.
    public var normalizes: Bool { true }
    public var prompts: Prompts { configuration.prompts }
    public var threads: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// `configuration.maxTextTokens` less the role's prompt (as `countTokens` counts it), at least 1.
    public func maxTextTokens(for role: TextRole) -> Int {
        let prompt = prompts.prompt(for: role).map(countTokens) ?? 0
        return max(1, configuration.maxTextTokens - prompt)
    }

    /// An estimate (kbindex does not have the remote model's tokenizer): words of up to 8
    /// bytes count 1 and longer ones 1 more per 4 bytes, every punctuation mark and CJK
    /// character counts 1, as BERT's pre-tokenizer splits text. Errs on the high side.
    /// - Complexity: O(n) in the length of `text`.
    public func countTokens(_ text: String) -> Int { estimatedTokenCount(text) }

    /// The vectors of `texts` (each with `role`'s prompt prepended), in order, L2-normalized.
    ///
    /// Texts go in batches of `configuration.batchSize`, `configuration.concurrency` requests
    /// at a time (one thread each); `progress` hears each finished batch's size. A batch the
    /// server finds too large (413) is sent again as two halves. The first failure stops new
    /// batches from starting and is thrown once the requests in flight end.
    ///
    /// - Throws: `RemoteEmbedError`, `CancellationError` when `isCancelled` turned true
    ///   (polled before each batch and while waiting to retry).
    /// - Complexity: ⌈n / batchSize⌉ requests plus retries; memory O(n × dimensions).
    public func embed(_ texts: [String], as role: TextRole, progress: (@Sendable (Int) -> Void)?,
                      isCancelled: (@Sendable () -> Bool)?) throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let inputs = prompts.prompt(for: role).map { prompt in texts.map { prompt + $0 } } ?? texts
        let size = configuration.batchSize
        let batches = stride(from: 0, to: inputs.count, by: size).map { $0..<min($0 + size, inputs.count) }
        let run = BatchRun(count: batches.count, isCancelled: isCancelled)
        let session = self.session, dimensions = self.dimensions
        let work: @Sendable () -> Void = {
            while let b = run.next() {
                let range = batches[b]
                do {
                    let vectors = try session.embedSplitting(Array(inputs[range]), offset: range.lowerBound, dimensions: dimensions,
                                                             shouldStop: { run.shouldStop })
                    run.store(vectors, at: b)
                    progress?(range.count)
                } catch {
                    run.fail(error)
                }
            }
        }
        let workers = min(configuration.concurrency, batches.count)
        let group = DispatchGroup()
        for _ in 1..<max(1, workers) {
            group.enter()
            let thread = Thread {
                work()
                group.leave()
            }
            thread.name = "kbindex-embed"
            thread.start()
        }
        work()
        group.wait()
        return try run.result()
    }
}

/// The shared state of one `embed` call's workers: which batch is next, the results, the
/// first failure.
private final class BatchRun: @unchecked Sendable {
    private let lock = NSLock()
    private var nextBatch = 0
    private var results: [[[Float]]?]
    private var failure: Error?
    private let isCancelled: (@Sendable () -> Bool)?

    init(count: Int, isCancelled: (@Sendable () -> Bool)?) {
        results = Array(repeating: nil, count: count)
        self.isCancelled = isCancelled
    }

    /// The next batch to send, or nil when all are taken, one failed, or the caller cancelled.
    func next() -> Int? {
        let cancelled = isCancelled?() ?? false
        return lock.withLock {
            if cancelled, failure == nil { failure = CancellationError() }
            guard failure == nil, nextBatch < results.count else { return nil }
            defer { nextBatch += 1 }
            return nextBatch
        }
    }

    /// Whether a worker waiting to retry should give up: a batch failed or the caller cancelled.
    var shouldStop: Bool {
        if lock.withLock({ failure != nil }) { return true }
        return isCancelled?() ?? false
    }

    func store(_ vectors: [[Float]], at batch: Int) {
        lock.withLock { results[batch] = vectors }
    }

    /// Records `error` unless an earlier one is recorded (a worker interrupted because of it
    /// throws `CancellationError`, which must not hide it).
    func fail(_ error: Error) {
        lock.withLock {
            if failure == nil { failure = error }
        }
    }

    func result() throws -> [[Float]] {
        try lock.withLock {
            if let failure { throw failure }
            var out: [[Float]] = []
            for batch in results {
                guard let batch else { throw CancellationError() }
                out.append(contentsOf: batch)
            }
            return out
        }
    }
}
