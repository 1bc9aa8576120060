import ArgumentParser
import Foundation
import KBFormat
import KBRetrieval
import KBSearch
import KBServer

/// `kbindex serve`: answer searches over HTTP (JSON, OpenAI-compatible embeddings, MCP at /mcp)
/// from one or more indexes, reloading them when a build or compact changes them.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve indexes over HTTP: search, chunks, embeddings, metrics and MCP.",
        discussion: """
            Serves one or more indexes until stopped (Ctrl-C or SIGTERM: the requests in flight \
            finish, then it exits with status 0). Without --index it serves the nearest \
            .kbindex, as query does; --index NAME=DIR names an index (default name: the indexed \
            folder's name), and a request picks one with "index" (needed when there are several). \
            A 'kbindex build' or 'compact' of a served index is picked up within a second; \
            requests in flight finish on the generation they started on.

            It listens on 127.0.0.1 (this machine only) unless --host says otherwise; a host \
            reachable from other machines requires a token (--token, or KBINDEX_TOKEN, which \
            keeps it out of 'ps'), which every request but GET /healthz must send as \
            'Authorization: Bearer TOKEN'. Browser pages from other origins are refused unless \
            allowed with --allow-origin. Once listening, it prints one line on stderr with the \
            address (--port 0 picks a free port).

            Routes: POST /v1/search, GET /v1/chunks/{id}, POST /v1/embeddings (OpenAI's shape), \
            GET /v1/info, GET /healthz, GET /metrics (Prometheus), GET /openapi.json, and /mcp \
            (MCP streamable HTTP). Limits: 1 MiB bodies, 4096-character questions, k up to 100, \
            64 questions and 256 embedding inputs per request, 30 s per request, 256 connections.

            Examples:
              kbindex serve
              kbindex serve --index docs=~/docs --index notes=~/notes/.kbindex --port 9000
              KBINDEX_TOKEN=$(openssl rand -hex 16) kbindex serve --host 0.0.0.0
              curl -s localhost:8765/v1/search -d '{"query": "rotate logs", "k": 3}'
              curl -s 'localhost:8765/v1/chunks/3f9a0c1d2b4e5f60-2?neighbours=2'
              curl -s localhost:8765/v1/embeddings -d '{"input": ["a text", "another"]}'
            """
    )

    @Option(help: ArgumentHelp("An index to serve, as DIR or NAME=DIR (repeatable; default: the nearest .kbindex).", valueName: "[name=]dir"))
    var index: [String] = []

    @Option(help: ArgumentHelp("The address to listen on; anything but loopback requires a token.", valueName: "address"))
    var host = "127.0.0.1"

    @Option(parsing: .unconditional, help: ArgumentHelp("The port to listen on (0: a free one).", valueName: "port"))
    var port = 8765

    @Option(help: ArgumentHelp("The bearer token clients must send (default: $KBINDEX_TOKEN; none on loopback).", valueName: "token"))
    var token: String?

    @Option(name: .customLong("allow-origin"), help: ArgumentHelp("A browser origin allowed to call the API, with CORS, e.g. https://app.example.com (repeatable).", valueName: "origin"))
    var allowOrigin: [String] = []

    @Option(help: ArgumentHelp("Model name or folder (default: the model the indexes were built with).", valueName: "name|path"))
    var model: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads scanning an index (default: every core).", valueName: "n"))
    var threads: Int?

    @Option(name: .customLong("batch-window-ms"), parsing: .unconditional, help: ArgumentHelp("How long a question waits for others to share its pass over the index, in milliseconds.", valueName: "ms"))
    var batchWindowMs: Double = 2

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be from 0 to 65535, got \(port)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be a positive number (1 or more), got \(threads)") }
        if !(batchWindowMs >= 0 && batchWindowMs <= 1000) { throw ValidationError("--batch-window-ms must be from 0 to 1000, got \(batchWindowMs)") }
        if let token, token.isEmpty || token.contains(where: \.isWhitespace) { throw ValidationError("--token must not be empty or contain spaces") }
        for origin in allowOrigin where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || origin.dropFirst(8).contains("/") {
            throw ValidationError("--allow-origin takes an origin such as https://app.example.com (scheme and host, no path), got '\(origin)'")
        }
        _ = try Self.indexes(index)
    }

    /// `--index` values as (name, folder): NAME=DIR, or DIR named after the indexed folder
    /// (the folder holding .kbindex); none: the nearest .kbindex. Names must be unique.
    static func indexes(_ options: [String]) throws -> [(name: String, url: URL)] {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if options.isEmpty {
            let url = IndexDirectory.locate(from: cwd)
            return [(name(of: url), url)]
        }
        var out: [(name: String, url: URL)] = []
        for option in options {
            var name: String?, path = option
            if let eq = option.firstIndex(of: "="), isName(String(option[..<eq])) {
                name = String(option[..<eq])
                path = String(option[option.index(after: eq)...])
            }
            if path.isEmpty { throw ValidationError("--index \(option): give a folder after '='") }
            let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath, relativeTo: cwd).standardizedFileURL
            let n = name ?? self.name(of: url)
            if out.contains(where: { $0.name == n }) {
                throw ValidationError("two indexes are named '\(n)': name them with --index NAME=DIR")
            }
            out.append((n, url))
        }
        return out
    }

    /// Index names: letters, digits, '.', '_', '-'.
    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }

    /// The default name of the index in `url`: the indexed folder's name (".kbindex"'s parent,
    /// or the folder itself), made a valid name.
    static func name(of url: URL) -> String {
        let folder = url.lastPathComponent == IndexDirectory.defaultName ? url.deletingLastPathComponent() : url
        let raw = folder.lastPathComponent
        let cleaned = String(raw.unicodeScalars.map { isName(String($0)) ? Character($0) : "-" })
        return isName(cleaned) ? cleaned : "index"
    }

    func run() throws {
        let indexes = try Self.indexes(index)
        let token = self.token ?? ProcessInfo.processInfo.environment["KBINDEX_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var options = ServiceOptions()
        options.model = model
        options.threads = threads
        options.batchWindow = .microseconds(Int64(batchWindowMs * 1000))
        let configuration = ServerConfiguration(host: host, port: port, token: token, allowedOrigins: allowOrigin)
        // Checked before the model loads: a refused host is said at once.
        if !ServerConfiguration.isLoopback(host) && token == nil {
            throw CLIError("--host \(host) is reachable from other machines: give a token with --token or KBINDEX_TOKEN (clients send 'Authorization: Bearer TOKEN'), or serve on 127.0.0.1")
        }
        // Opened here, as query opens an index, for the same one-line errors with advice.
        let opened = try indexes.map { name, url -> (name: String, index: IndexDirectory) in
            let inside = url.appendingPathComponent(IndexDirectory.defaultName)
            let dir = FileManager.default.fileExists(atPath: inside.appendingPathComponent(Manifest.fileName).path) ? inside : url
            return (name, try IndexOpening.open(dir.path))
        }
        let embedder = try ModelLoading.load(model, preferred: opened[0].index.manifest.model.name, threads: threads)
        let service: RetrievalService
        do { service = try RetrievalService(indexes: opened, embedder: embedder, options: options) } catch { throw CLIError(Self.advice(error)) }
        service.setEventHandler { line in FileHandle.standardError.write(Data("kbindex: \(Format.displayed(line))\n".utf8)) }
        let app: KBServerApp
        do { app = try KBServerApp(service: service, configuration: configuration) } catch { throw CLIError(error) }

        let names = indexes.map(\.name)
        let modelName = service.info().model.name
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await app.run { url in
                    let what = names.count == 1 ? "index '\(names[0])'" : "\(names.count) indexes (\(names.joined(separator: ", ")))"
                    let line = "kbindex: serving \(what) on \(url.absoluteString) (model \(modelName)\(token == nil ? "" : "; token required"); Ctrl-C stops)\n"
                    FileHandle.standardError.write(Data(line.utf8))
                }
            } catch {
                outcome.set(error)
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error {
            if case ServerError.cannotListen = error {
                throw CLIError("\(error): pick another --port (0 picks a free one)")
            }
            throw CLIError(error)
        }
    }

    /// A start-up error of the retrieval service with what to do.
    static func advice(_ error: Error) -> String {
        switch error {
        case RetrievalError.incompatibleModel:
            return "\(error): serve indexes built with the same model together (or give --model), or rebuild one with 'kbindex build --rebuild'"
        default:
            return "\(error)"
        }
    }
}

/// The error `serve`'s server task ended with, if any.
private final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    func set(_ e: Error) { lock.lock(); stored = e; lock.unlock() }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return stored }
}
