import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBModelStore
import KBRemoteEmbed

/// How a command or a server wants its texts embedded: which provider, model and prompts,
/// each nil when not said (then the index's recorded choice applies, else the defaults).
/// What `--model`, `--embedder`, `--embed-url`, `--embed-model`, `--query-prompt` and
/// `--document-prompt` say.
public struct EmbedderOptions: Sendable, Equatable {
    /// `local`, `openai` or `ollama`; nil: the index's, else `local`.
    public var provider: EmbeddingProvider?
    /// The local model: a store name or a folder; nil: the index's, else the default.
    public var localModel: String?
    /// The remote model's name; nil: the index's (required for a new remote index).
    public var remoteModel: String?
    /// The remote base URL; nil: the index's, else the provider's default.
    public var url: String?
    /// Replaces the query prompt ("" for none); nil: the index's, else the model's own.
    public var queryPrompt: String?
    /// Replaces the document prompt ("" for none); nil: the index's, else the model's own.
    public var documentPrompt: String?
    /// Local: the encoder's arithmetic (nil: the caller's choice, `QuestionPrecision` or the index's).
    public var precision: Precision?
    /// Local: worker threads (nil: every core).
    public var threads: Int?
    /// Remote: texts per request, requests in flight, seconds per request (nil: defaults).
    public var batchSize: Int?
    public var concurrency: Int?
    public var timeout: Double?
    public var retries: Int?
    /// Where API keys are read from (the process environment by default; tests pass their own).
    public var environment: [String: String]

    public init(provider: EmbeddingProvider? = nil, localModel: String? = nil, remoteModel: String? = nil, url: String? = nil,
                queryPrompt: String? = nil, documentPrompt: String? = nil, precision: Precision? = nil, threads: Int? = nil,
                batchSize: Int? = nil, concurrency: Int? = nil, timeout: Double? = nil, retries: Int? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.provider = provider
        self.localModel = localModel
        self.remoteModel = remoteModel
        self.url = url
        self.queryPrompt = queryPrompt
        self.documentPrompt = documentPrompt
        self.precision = precision
        self.threads = threads
        self.batchSize = batchSize
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.environment = environment
    }

    /// The default base URL of each remote provider.
    public static func defaultURL(_ provider: EmbeddingProvider) -> String? {
        switch provider {
        case .openai: return "https://api.openai.com/v1"
        case .ollama: return "http://127.0.0.1:11434"
        case .local: return nil
        }
    }
}

/// The model that embeds texts: choosing and loading it, and describing it as index files do.
public enum ModelIdentity {
    /// What an index records about the embedder that made its vectors (format-spec.md §8.3):
    /// for the built-in encoder its weights' SHA-256 (cached in the model folder,
    /// `FileCheckCache`, keyed by size and mtime, so only the first use hashes the file),
    /// pooling, normalization, precision and prompts; for a remote one the provider, base URL
    /// (without credentials), model name and prompts. Throws `FileError` when the weights
    /// cannot be read.
    public static func descriptor(of embedder: any TextEmbedder) throws -> ModelDescriptor {
        if let local = embedder as? Embedder {
            let c = local.config
            let weights = local.directory.appendingPathComponent("model.safetensors").path
            let sha = try FileCheckCache(folder: local.directory).sha256(ofFile: weights)
            var d = ModelDescriptor.local(name: c.name, dimensions: c.dimensions, pooling: c.pooling.rawValue, normalized: c.normalize,
                                          maxTokens: c.maxSequenceLength, weightsSHA256: sha, precision: local.precision.recorded,
                                          queryPrompt: local.prompts.query, documentPrompt: local.prompts.document)
            // A model with prompts of its own that runs without them (--query-prompt '') is
            // recorded as version 2 all the same: version 1 cannot say "no prompt", and its
            // questions would get the model's prompt back.
            if d.version == nil && c.prompts != .none {
                d.version = 2
                d.provider = "local"
            }
            return d
        }
        guard let remote = embedder as? RemoteEmbedder else {
            throw RetrievalError.model("an embedder kbindex cannot describe for index files (\(type(of: embedder)))", folder: nil, isDamage: false)
        }
        let c = remote.configuration
        return .remote(provider: c.provider.rawValue, url: try RemoteEmbedder.recordedURL(c.url), model: c.model,
                       dimensions: remote.dimensions, normalized: remote.normalizes, maxTokens: c.maxTextTokens,
                       queryPrompt: remote.prompts.query, documentPrompt: remote.prompts.document)
    }

    /// The provider an index's descriptor names: `.local` for version 1, nil for a provider
    /// this kbindex does not know (a newer kbindex's).
    public static func provider(of recorded: ModelDescriptor) -> EmbeddingProvider? {
        guard recorded.version == 2 else { return .local }
        return recorded.provider.flatMap(EmbeddingProvider.init(rawValue:))
    }

    /// The embedder `options` ask for, with what they leave out taken from `recorded` (the
    /// model an index was built with, or nil for none): its provider, model and URL, and,
    /// when the same model is used, its prompts and chunk limit. A version-1 descriptor
    /// recorded no prompts: its documents had none, and questions get the model's own query
    /// prompt (format-spec.md §8.3). A local model runs in `options.precision ?? .default`.
    ///
    /// The API key: the provider's own variable (`OPENAI_API_KEY`, `OLLAMA_API_KEY`) goes
    /// only to a URL given in `options` or to the provider's default; to a URL that comes from
    /// `recorded` only `KBINDEX_EMBED_API_KEY` goes, and only over https or to loopback. An
    /// index folder from elsewhere cannot send the user's key where it likes.
    ///
    /// Throws `RetrievalError.model`: an unknown recorded provider, a remote model without a
    /// name, a remote model or URL with a local embedder, a URL that does not parse or carries
    /// credentials, a remote service that cannot be reached or refuses (`RemoteEmbedder`'s
    /// probe), a local model that cannot be found, checked or loaded (`isDamage` when its files
    /// are damaged: the caller says how to replace them).
    /// - Parameters:
    ///   - onRetry: hears, in one line without the key, of each retry of a remote request.
    ///   - onNote: hears what the caller may want to say (a key withheld from a recorded URL).
    public static func load(_ options: EmbedderOptions, recorded: ModelDescriptor? = nil,
                            onRetry: (@Sendable (String) -> Void)? = nil, onNote: ((String) -> Void)? = nil) throws -> any TextEmbedder {
        let recordedProvider = recorded.map { Self.provider(of: $0) }
        if options.provider == nil, let r = recorded, case nil? = recordedProvider {
            throw RetrievalError.model("the index was embedded by provider '\(SearchHit.shortened(String(r.provider ?? ""), to: 32))', which this kbindex does not know (it knows \(EmbeddingProvider.allCases.map(\.rawValue).joined(separator: ", ")))", folder: nil, isDamage: false)
        }
        let kind = options.provider ?? recordedProvider.flatMap { $0 } ?? .local
        // The recorded choice applies only to the same provider.
        let same = recorded.flatMap { r in recordedProvider == kind ? r : nil }
        if kind == .local {
            if options.remoteModel != nil || options.url != nil {
                throw RetrievalError.embedderChoice(.remoteOptionsWithLocalEmbedder)
            }
            return try loadLocal(options, same: same)
        }
        guard let model = options.remoteModel ?? same?.model, !model.isEmpty else {
            throw RetrievalError.embedderChoice(.missingRemoteModel(kind))
        }
        let sameModel = same.flatMap { $0.model == model ? $0 : nil }
        let text = options.url ?? same?.url ?? EmbedderOptions.defaultURL(kind) ?? ""
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), let host = url.host else {
            throw RetrievalError.model("'\(SearchHit.shortened(text, to: 200))' is not an http or https URL", folder: nil, isDamage: false)
        }
        var key = RemoteEmbedder.apiKey(for: kind, environment: options.environment)
        if options.url == nil, let defaultURL = EmbedderOptions.defaultURL(kind), text != defaultURL {
            // A URL from the index: only kbindex's own key, and not in clear over the network.
            let own = RemoteEmbedder.apiKey(for: kind, environment: options.environment.filter { $0.key == RemoteEmbedder.genericKeyVariable })
            let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
            let safe = scheme == "https" || loopback
            if key != nil && (own == nil || !safe) {
                let variable = own == nil ? RemoteEmbedder.keyVariables(for: kind).last ?? "" : RemoteEmbedder.genericKeyVariable
                onNote?("\(variable) is not sent to \(host), which the index names\(safe ? "" : " over plain http")")
            }
            key = safe ? own : nil
        }
        let recordedPrompts = sameModel.map { Prompts(query: $0.queryPrompt, document: $0.documentPrompt) }
        let prompts = (recordedPrompts ?? .none).overridden(query: options.queryPrompt, document: options.documentPrompt)
        var config = RemoteConfiguration(provider: kind, url: url, model: model, apiKey: key, prompts: prompts)
        if let b = options.batchSize { config.batchSize = b }
        if let c = options.concurrency { config.concurrency = c }
        if let t = options.timeout { config.timeout = t }
        if let r = options.retries { config.retries = r }
        // The chunk limit a file records is bounded: an edited manifest cannot make the
        // chunker's arithmetic overflow.
        if let m = sameModel?.maxTokens { config.maxTextTokens = min(max(m, 16), 8192) }
        do {
            _ = try RemoteEmbedder.recordedURL(url)
            return try RemoteEmbedder(config, onRetry: onRetry)
        } catch {
            throw RetrievalError.model("\(error)", folder: nil, isDamage: false)
        }
    }

    /// The local model `options` name (else the one `same` recorded, else the default), with
    /// its prompts: `same`'s when it is the same weights (a version-1 `same`: no document
    /// prompt, the model's own query prompt), else the model's own; `options`' prompts
    /// replace either.
    static func loadLocal(_ options: EmbedderOptions, same: ModelDescriptor?) throws -> Embedder {
        let store = ModelStore()
        let dir: URL
        do { dir = try store.resolve(options.localModel ?? same?.name) } catch { throw RetrievalError.model("\(error)", folder: nil, isDamage: false) }
        var prompts: Prompts
        do {
            prompts = try ModelConfig.load(directory: dir).prompts
            if let same, options.localModel == nil || (try? FileCheckCache(folder: dir).sha256(ofFile: dir.appendingPathComponent("model.safetensors").path))?.lowercased() == same.weightsSHA256?.lowercased() {
                prompts = same.version == 2 ? Prompts(query: same.queryPrompt, document: same.documentPrompt) : Prompts(query: prompts.query, document: nil)
            }
        } catch {
            throw RetrievalError.model("\(error)", folder: dir, isDamage: isDamage(error))
        }
        return try loadLocal(dir.path, threads: options.threads, precision: options.precision ?? .default,
                             prompts: prompts.overridden(query: options.queryPrompt, document: options.documentPrompt))
    }

    /// The local model `option` names (a store name or a folder; nil: `preferred`, else the
    /// default), checked (`ModelStore.check`) and loaded to run in `precision` with `prompts`
    /// (nil: the model's own). Throws `RetrievalError.model`, with `isDamage` when its files are
    /// damaged (the caller says how to replace them).
    public static func loadLocal(_ option: String?, preferred: String? = nil, threads: Int? = nil,
                                 precision: Precision = .default, prompts: Prompts? = nil) throws -> Embedder {
        let store = ModelStore()
        let dir: URL
        do { dir = try store.resolve(option ?? preferred) } catch { throw RetrievalError.model("\(error)", folder: nil, isDamage: false) }
        do {
            try store.check(folder: dir)
            return try Embedder(modelDirectory: dir, threads: threads, precision: precision, prompts: prompts)
        } catch {
            throw RetrievalError.model("\(error)", folder: dir, isDamage: isDamage(error))
        }
    }

    /// Whether `error` says a model's files are damaged (and replacing them would help).
    public static func isDamage(_ error: Error) -> Bool {
        switch error {
        case let e as ModelError: return e.isDamage
        case let e as ModelStoreError: if case .damaged = e { return true } else { return false }
        case let e as RetrievalError: if case .model(_, _, let d) = e { return d } else { return false }
        default: return false
        }
    }

    /// The local model folder behind `embedder`, for messages about damaged files (nil for a
    /// remote one).
    public static func folder(of embedder: any TextEmbedder) -> URL? { (embedder as? Embedder)?.directory }

    /// `error` from `embedder.embed` as a `RetrievalError`: `.embeddingService` for a remote
    /// service's failure, `.model` for the local model's.
    public static func embeddingFailure(_ error: Error, of embedder: any TextEmbedder) -> RetrievalError {
        if let e = error as? RetrievalError { return e }
        if embedder.provider != .local { return .embeddingService("\(error)") }
        return .model("\(error)", folder: folder(of: embedder), isDamage: isDamage(error))
    }
}
