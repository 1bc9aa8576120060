import ArgumentParser
import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBModelStore
import KBRemoteEmbed
import KBRetrieval

/// Loading the embedding model for a command, and describing it for index files.
enum ModelLoading {
    /// The local model for `option` (a store name or a folder; nil = the default, or `preferred`
    /// when given, e.g. the model an index was built with), as one-line `CLIError`s.
    ///
    /// A model of the store is checked first (`ModelStore.check`: pinned SHA-256 sums for a
    /// known model, cached by size and mtime); any model's vocabulary and first vector are
    /// checked by `Embedder`. A damaged model is an error that says how to get a fresh copy.
    static func load(_ option: String?, preferred: String? = nil, threads: Int? = nil,
                     precision: Precision = .default) throws -> Embedder {
        do {
            return try ModelIdentity.loadLocal(option, preferred: preferred, threads: threads, precision: precision)
        } catch {
            throw failure(error)
        }
    }

    /// The embedder `options` ask for, what they leave out taken from `recorded` (the model
    /// an index or an interrupted build recorded): `ModelIdentity.load`, its errors as
    /// one-line `CLIError`s with advice.
    static func embedder(_ options: EmbedderOptions, recorded: ModelDescriptor?) throws -> any TextEmbedder {
        do {
            // A retry is worth a line: a long wait (a 429's Retry-After) is never silent.
            return try ModelIdentity.load(options, recorded: recorded, onRetry: { warn($0) }, onNote: { note("\($0): give --embed-url to send the provider's key there, or set \(RemoteEmbedder.genericKeyVariable) (sent over https or to this machine only)") })
        } catch {
            throw failure(error)
        }
    }

    /// The embedder for questions to an index built with `built`: what `options` say (an
    /// `EmbedderOptions` from `EmbedderChoice`), the rest as the index recorded (provider,
    /// model, URL, prompts), running in `precision` (`--precision`), else in the precision the
    /// index recorded. An embedder whose vectors are not comparable, or an index that recorded
    /// a precision this kbindex does not know (with no `--precision`), is a `CLIError` that
    /// says what differs and what to do (`verb`: "query", "evaluate"). A `--precision` other
    /// than the index's is allowed (the vectors are comparable) and said once in a note naming
    /// `index` ("the index", or its path when several are evaluated).
    static func load(_ options: EmbedderOptions, forIndexBuiltWith built: ModelDescriptor, precision asked: Precision?,
                     index: String = "the index", verb: String) throws -> any TextEmbedder {
        let chosen = try questionPrecision(asked: asked, indexes: [("", built)])
        var options = options
        options.precision = chosen.precision
        options.retries = options.retries ?? questionRetries
        let embedder = try embedder(options, recorded: built)
        if let reason = built.incompatibility(with: try descriptor(of: embedder)) {
            throw CLIError("\(reason): \(verb) with the model the index was built with, or rebuild the index with 'kbindex build'")
        }
        if let other = chosen.differing.first, embedder is Embedder {
            let questions = verb == "query" ? "the question is" : "questions are"
            note("\(index) was embedded in \(shown(other.recorded)); \(questions) embedded in \(chosen.precision), as --precision asks")
        }
        return embedder
    }

    /// The precision questions to `indexes` are embedded in (`QuestionPrecision.choose`), an
    /// unknown recorded precision as a `CLIError` that says what to do.
    static func questionPrecision(asked: Precision?, indexes: [(name: String, model: ModelDescriptor)]) throws -> QuestionPrecision {
        do {
            return try QuestionPrecision.choose(asked: asked, indexes: indexes)
        } catch let error as RetrievalError {
            throw CLIError("\(error): embed questions in one it knows with --precision f32 or --precision int8, rebuild the index with 'kbindex build --rebuild', or upgrade kbindex")
        } catch {
            throw CLIError(error)
        }
    }

    /// A precision an index recorded, for a message: a value from a file, so cut short.
    static func shown(_ recorded: String) -> String { SearchHit.shortened(recorded, to: 32) }

    /// `embedder.embed(texts, as: role)`, with a damaged model's error (NaN vectors) as a
    /// `CLIError` that says how to get a fresh copy, a remote service's as its one line.
    /// `progress` and `isCancelled` are `TextEmbedder.embed`'s.
    static func embed(_ texts: [String], as role: TextRole, with embedder: any TextEmbedder, progress: (@Sendable (Int) -> Void)? = nil,
                      isCancelled: (@Sendable () -> Bool)? = nil) throws -> [[Float]] {
        do { return try embedder.embed(texts, as: role, progress: progress, isCancelled: isCancelled) } catch let e as CancellationError {
            throw e
        } catch {
            throw failure(ModelIdentity.embeddingFailure(error, of: embedder))
        }
    }

    /// Retries of a remote request for questions (`query`, `eval`, `serve`, `mcp`): fewer than
    /// a build's, since a person or a server's queue waits on them.
    static let questionRetries = 2

    /// `error` (a `RetrievalError.model` or any other) as one line; when it says a local
    /// model's files are damaged, followed by how to replace them.
    static func failure(_ error: Error) -> CLIError {
        switch error {
        case RetrievalError.embedderChoice(.remoteOptionsWithLocalEmbedder): return CLIError("\(error): add --embedder openai or ollama")
        case RetrievalError.embedderChoice(.missingRemoteModel): return CLIError("\(error): give --embed-model NAME")
        default: break
        }
        if case RetrievalError.model(let message, let folder?, true) = error {
            return CLIError("\(message): \(repair(folder, store: ModelStore()))")
        }
        return CLIError(error)
    }

    /// How to replace a damaged model: fetch a store model again (by the repository it came
    /// from), reinstall the default model offline, or replace a folder of one's own.
    static func repair(_ folder: URL, store: ModelStore) -> String {
        guard let name = store.storeName(of: folder) else {
            return "replace the model folder with a fresh copy of the model"
        }
        let repo = store.source(of: name)  // recorded by 'model fetch'
        let known = store.knownModel(named: repo ?? name)
        let what: String
        if let known, known.name == name {
            what = name
        } else if let repo {
            what = repo.split(separator: "/").last.map(String.init) == name && known == nil ? repo : "\(repo) --name \(name)"
        } else {
            return "download it again with 'kbindex model fetch OWNER/REPO --name \(name)' from the hub repository it came from"
        }
        let offline = what == KnownModel.defaultName ? " (or scripts/install-model.sh without hub access)" : ""
        return "download it again with 'kbindex model fetch \(what)'\(offline)"
    }

    /// What an index records about the model that made its vectors (`ModelIdentity`), as
    /// a `CLIError` when the weights cannot be read.
    static func descriptor(of embedder: any TextEmbedder) throws -> ModelDescriptor {
        do { return try ModelIdentity.descriptor(of: embedder) } catch { throw CLIError(error) }
    }
}

extension Precision: ExpressibleByArgument {}
extension EmbeddingProvider: ExpressibleByArgument {}

/// How texts are embedded, for every command that embeds (`build`, `query`, `eval`, `serve`,
/// `mcp`): the local model, or a remote service, and the query prompt. Each option left out
/// is taken from the index (what it was built with), else the default.
struct EmbedderChoice: ParsableArguments {
    @Option(help: ArgumentHelp("Local model: a name in the model store or a model folder (default: the index's model, else \(KnownModel.defaultName)).", valueName: "name|path"))
    var model: String?

    @Option(help: ArgumentHelp("Where vectors come from: local (the built-in encoder), openai (any OpenAI-compatible /v1/embeddings service) or ollama (default: the index's, else local).", valueName: "local|openai|ollama"))
    var embedder: EmbeddingProvider?

    @Option(name: .customLong("embed-url"), help: ArgumentHelp("Base URL of the remote service (default: the index's, else https://api.openai.com/v1 or http://127.0.0.1:11434). The API key comes from KBINDEX_EMBED_API_KEY (else OPENAI_API_KEY or OLLAMA_API_KEY), never from a flag.", valueName: "url"))
    var embedURL: String?

    @Option(name: .customLong("embed-model"), help: ArgumentHelp("The remote model's name, as the service knows it (default: the index's).", valueName: "name"))
    var embedModel: String?

    @Option(name: .customLong("embed-timeout"), parsing: .unconditional, help: ArgumentHelp("Seconds one request to the remote service may take (default: 60).", valueName: "seconds"))
    var embedTimeout: Double?

    @Option(name: .customLong("query-prompt"), help: ArgumentHelp("Text prepended to questions, replacing the model's or index's query prompt ('' for none).", valueName: "text"))
    var queryPrompt: String?

    func validate() throws {
        if let t = embedTimeout, !(t > 0) { throw ValidationError("--embed-timeout must be a positive number of seconds, got \(t)") }
        let remote = embedder.map { $0 != .local }
        if remote == true, model != nil {
            throw ValidationError("--model names a local model; the remote model is named with --embed-model")
        }
        if remote == false, embedURL != nil || embedModel != nil {
            throw ValidationError("--embed-url and --embed-model are for --embedder openai or ollama, not local")
        }
        if remote == nil, model != nil, embedURL != nil || embedModel != nil {
            throw ValidationError("--model (a local model) and --embed-url/--embed-model (a remote one) cannot be used together")
        }
    }

    /// These options as `EmbedderOptions` (a remote URL or model alone implies nothing about
    /// the provider: the index's is kept).
    func options(threads: Int? = nil) -> EmbedderOptions {
        EmbedderOptions(provider: embedder ?? (model != nil ? .local : nil), localModel: model, remoteModel: embedModel, url: embedURL,
                        queryPrompt: queryPrompt, threads: threads, timeout: embedTimeout)
    }
}

/// `--precision` of the commands that embed questions for an index (`query`, `eval`, `serve`,
/// `mcp`): by default a question is embedded the way the index was.
struct PrecisionOption: ParsableArguments {
    @Option(help: ArgumentHelp("Embed questions in f32 or int8 (default: the precision the index was built in).", valueName: "f32|int8"))
    var precision: Precision?
}
