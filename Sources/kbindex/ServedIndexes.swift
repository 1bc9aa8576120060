import ArgumentParser
import Dispatch
import Foundation
import KBEmbed
import KBFormat
import KBObjectStore
import KBRemoteIndex
import KBRetrieval
import KBSearch

/// The options `serve` and `mcp` share: which indexes, the model, its precision, the scan
/// threads; and opening them into a `RetrievalService` with the one-line errors (and advice)
/// `query` gives.
struct ServedIndexOptions: ParsableArguments {
    @Option(help: ArgumentHelp("An index to serve, as DIR or NAME=DIR (repeatable; default: the nearest .kbindex); DIR may be s3://bucket/prefix. A bare DIR is named after the indexed folder (or the prefix's last part); requests pick an index by name.", valueName: "[name=]dir"))
    var index: [String] = []

    @OptionGroup(title: "Embedding")
    var embedding: EmbedderChoice

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads scanning an index (default: every core).", valueName: "n"))
    var threads: Int?

    @OptionGroup var precision: PrecisionOption

    @Option(name: .customLong("poll-interval"), parsing: .unconditional, help: ArgumentHelp("Seconds between two checks of an s3:// index's manifest for a new generation (one conditional GET each; default: 5).", valueName: "seconds"))
    var pollInterval: Double = 5

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be a positive number (1 or more), got \(threads)") }
        if !(0.05...86_400).contains(pollInterval) { throw ValidationError("--poll-interval must be between 0.05 and 86400 seconds, got \(pollInterval)") }
        _ = try indexes()
    }

    /// `--index` values as (name, folder, remote location): NAME=DIR, or DIR named after the
    /// indexed folder (the folder holding .kbindex); none: the nearest .kbindex. For
    /// s3://bucket/prefix the folder is the location's local mirror (pulled by `service`),
    /// named after the prefix's last part. Usage errors for an empty folder or a name given
    /// twice.
    func indexes() throws -> [(name: String, url: URL, remote: String?)] {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if index.isEmpty {
            let url = IndexDirectory.locate(from: cwd)
            return [(Self.name(of: url), url, nil)]
        }
        var out: [(name: String, url: URL, remote: String?)] = []
        for option in index {
            var name: String?, path = option
            if let eq = option.firstIndex(of: "="), Self.isName(String(option[..<eq])) {
                name = String(option[..<eq])
                path = String(option[option.index(after: eq)...])
            }
            if path.isEmpty { throw ValidationError("--index \(option): give a folder after '='") }
            var url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath, relativeTo: cwd).standardizedFileURL
            var remote: String?
            var n = name ?? Self.name(of: url)
            if S3IndexOption.isRemote(path) {
                let location: S3Location
                do { location = try S3Location(parsing: path) } catch { throw ValidationError("--index \(option): \(error)") }
                remote = location.description
                url = try S3IndexOption.cache(path).index
                if name == nil {
                    let cleaned = String((location.prefix.split(separator: "/").last.map(String.init) ?? location.bucket).unicodeScalars.map { Self.isName(String($0)) ? Character($0) : "-" })
                    n = Self.isName(cleaned) ? cleaned : "index"
                }
            }
            if out.contains(where: { $0.name == n }) {
                throw ValidationError("two indexes are named '\(n)': name them with --index NAME=DIR")
            }
            out.append((n, url, remote))
        }
        return out
    }

    /// Index names: letters, digits, '.', '_', '-'; at most 64 characters.
    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }

    /// The default name of the index in `url`: the indexed folder's name (".kbindex"'s parent,
    /// or the folder itself), made a valid name.
    static func name(of url: URL) -> String {
        let folder = url.lastPathComponent == IndexDirectory.defaultName ? url.deletingLastPathComponent() : url
        let cleaned = String(folder.lastPathComponent.unicodeScalars.map { isName(String($0)) ? Character($0) : "-" })
        return isName(cleaned) ? cleaned : "index"
    }

    /// Every index opened as `query` opens one, the model loaded and checked against them,
    /// as a service with `options` (its model, threads and precision are these options').
    /// Errors are `CLIError`s that say what to do.
    ///
    /// One model serves every index, so questions have one precision: `--precision`, else
    /// the first index's. An index that recorded another is served all the same (its vectors
    /// are comparable), and a note on stderr names it.
    func service(_ options: ServiceOptions = .init()) throws -> RetrievalService {
        let chosenIndexes = try indexes()
        // An index in object storage is pulled into its mirror first, then served from there
        // like a local folder; `startRemotePolling` keeps the mirror current.
        for case let (_, _, remote?) in chosenIndexes { _ = try S3IndexOption.pullForReading(remote, quiet: false) }
        let opened = try chosenIndexes.map { name, url, _ -> (name: String, index: IndexDirectory) in
            (name, try IndexOpening.open(IndexDirectory.resolve(url).path))
        }
        let chosen = try ModelLoading.questionPrecision(asked: precision.precision, indexes: opened.map { ($0.name, $0.index.manifest.model) })
        var choice = embedding.options(threads: threads)
        choice.precision = chosen.precision
        choice.retries = ModelLoading.questionRetries
        let embedder = try ModelLoading.embedder(choice, recorded: opened[0].index.manifest.model)
        if !chosen.differing.isEmpty, embedder is Embedder {
            let others = chosen.differing.map { "index '\($0.index)' was embedded in \(ModelLoading.shown($0.recorded))" }.joined(separator: ", ")
            let why = chosen.asked ? "as --precision asks" : "as index '\(opened[0].name)' was (the vectors are comparable; --precision chooses)"
            note("\(others); questions are embedded in \(chosen.precision), \(why)")
        }
        var options = options
        options.model = embedding.model
        options.embedder = choice
        options.threads = threads
        options.precision = chosen.precision
        do {
            return try RetrievalService(indexes: opened, embedder: embedder, options: options)
        } catch RetrievalError.incompatibleModel(let name, let reason) {
            throw CLIError("index '\(name)': \(reason): serve indexes built with the same model together (or name the model with --model or --embed-model), or rebuild one with 'kbindex build --rebuild'")
        } catch {
            throw CLIError(error)
        }
    }

    /// Polls every index in object storage every `--poll-interval` seconds (on a thread of its own, off the
    /// request path): a new generation is pulled into the mirror, whose manifest is written
    /// last, and the service's usual reload check picks it up. A failing poll keeps the
    /// current generation served and is logged once (again only when it changes or after
    /// polling worked again).
    func startRemotePolling(log: @escaping @Sendable (String) -> Void) throws {
        let remotes = try indexes().compactMap { i in i.remote.map { (name: i.name, location: $0) } }
        guard !remotes.isEmpty else { return }
        let bound = try S3IndexOption.sizeBound()
        let opened = try remotes.map { r in (name: r.name, remote: try S3IndexOption.open(r.location)) }
        let seconds = pollInterval
        let thread = Thread {
            var lastFailure: [String: String] = [:]
            while true {
                Thread.sleep(forTimeInterval: max(seconds, 0.05))
                for o in opened {
                    do {
                        let r = try o.remote.index.pull(into: o.remote.cache.index, sizeBound: bound)
                        if lastFailure.removeValue(forKey: o.name) != nil { log("index '\(o.name)': polling \(o.remote.index.location) works again") }
                        if r.changed {
                            log("index '\(o.name)': downloaded a new generation of \(o.remote.index.location) (\(Format.counted(r.downloadedFiles, "file")), \(Format.bytes(Int(r.downloadedBytes))))")
                            if r.overSizeBound { log(S3IndexOption.overBound(r, bound)) }
                        }
                    } catch {
                        // Unreachable: said as it is (polling goes on); a refusal with its advice.
                        let unreachable: Bool
                        if case RemoteIndexError.store(let s) = error { unreachable = s.isUnreachable } else { unreachable = false }
                        let line = unreachable ? "\(error)" : S3IndexOption.failure(error, location: o.remote.index.location).message
                        if lastFailure[o.name] != line {
                            lastFailure[o.name] = line
                            log("index '\(o.name)': cannot poll \(o.remote.index.location) (the current generation stays served): \(line)")
                        }
                    }
                }
            }
        }
        thread.start()
    }

    /// Runs `work` on the concurrency pool and waits for it on this (synchronous) thread: how
    /// the long-running commands, whose root is synchronous, run their async work.
    static func block<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}

/// The result of `ServedIndexOptions.block`, written by one task before the semaphore is
/// signalled and read after the wait (the semaphore orders the two).
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
