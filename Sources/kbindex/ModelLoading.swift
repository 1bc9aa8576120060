import ArgumentParser
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
    /// index's own model, running in `precision` (`--precision`), else in the precision the
    /// index recorded. A model whose vectors are not comparable, or an index that recorded a
    /// precision this kbindex does not know (with no `--precision`), is a `CLIError` that says
    /// what differs and what to do (`verb`: "query", "evaluate"). A `--precision` other than
    /// the index's is allowed (the vectors are comparable) and said once in a note naming
    /// `index` ("the index", or its path when several are evaluated).
    static func load(_ option: String?, forIndexBuiltWith built: ModelDescriptor, precision asked: Precision?,
                     index: String = "the index", verb: String) throws -> Embedder {
        let chosen = try questionPrecision(asked: asked, indexes: [("", built)])
        let embedder = try load(option, preferred: built.name, precision: chosen.precision)
        if let reason = built.incompatibility(with: try descriptor(of: embedder)) {
            throw CLIError("\(reason): \(verb) with the model the index was built with (--model), or rebuild the index with 'kbindex build'")
        }
        if let other = chosen.differing.first {
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

extension Precision: ExpressibleByArgument {}

/// `--precision` of the commands that embed questions for an index (`query`, `eval`, `serve`,
/// `mcp`): by default a question is embedded the way the index was.
struct PrecisionOption: ParsableArguments {
    @Option(help: ArgumentHelp("Embed questions in f32 or int8 (default: the precision the index was built in).", valueName: "f32|int8"))
    var precision: Precision?
}
