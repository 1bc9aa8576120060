import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBModelStore
import KBRetrieval

/// Loading the embedding model for a command, and describing it for index files.
enum ModelLoading {
    /// The model for `option` (a store name or a folder; nil = the default, or `preferred`
    /// when given, e.g. the model an index was built with), as one-line `CLIError`s.
    ///
    /// A model of the store is checked first (`ModelStore.check`: pinned SHA-256 sums for a
    /// known model, cached by size and mtime); any model's vocabulary and first vector are
    /// checked by `Embedder`. A damaged model is an error that says how to get a fresh copy.
    static func load(_ option: String?, preferred: String? = nil, threads: Int? = nil,
                     precision: Precision = .default) throws -> Embedder {
        do {
            return try ModelIdentity.load(option, preferred: preferred, threads: threads, precision: precision)
        } catch RetrievalError.model(let message, let folder?, true) {
            throw CLIError("\(message): \(repair(folder, store: ModelStore()))")
        } catch {
            throw CLIError(error)
        }
    }

    /// The model to embed questions for an index built with `built`: `option`, else the
    /// index's own model. A model whose vectors are not comparable is a `CLIError` that says
    /// what differs and what to do (`verb`: "query", "evaluate").
    static func load(_ option: String?, forIndexBuiltWith built: ModelDescriptor, verb: String) throws -> Embedder {
        let embedder = try load(option, preferred: built.name)
        if let reason = built.incompatibility(with: try descriptor(of: embedder)) {
            throw CLIError("\(reason): \(verb) with the model the index was built with (--model), or rebuild the index with 'kbindex build'")
        }
        return embedder
    }

    /// `embedder.embed(texts)`, with a damaged model's error (NaN vectors) as a `CLIError`
    /// that says how to get a fresh copy.
    /// `progress` is `Embedder.embed`'s (texts done, from the workers).
    static func embed(_ texts: [String], with embedder: Embedder, progress: (@Sendable (Int) -> Void)? = nil) throws -> [[Float]] {
        do { return try embedder.embed(texts, progress: progress) } catch { throw failure(error, folder: embedder.directory, store: ModelStore()) }
    }

    /// `embedder.embed(tokenIDs:)`, with errors as for `embed(_:with:)`.
    static func embed(tokenIDs: [[Int32]], with embedder: Embedder) throws -> [[Float]] {
        do { return try embedder.embed(tokenIDs: tokenIDs) } catch { throw failure(error, folder: embedder.directory, store: ModelStore()) }
    }

    /// `error` as one line; when it says the model's files are damaged, followed by how to
    /// replace them.
    static func failure(_ error: Error, folder: URL, store: ModelStore) -> CLIError {
        ModelIdentity.isDamage(error) ? CLIError("\(error): \(repair(folder, store: store))") : CLIError(error)
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
    static func descriptor(of embedder: Embedder) throws -> ModelDescriptor {
        do { return try ModelIdentity.descriptor(of: embedder) } catch { throw CLIError(error) }
    }
}
