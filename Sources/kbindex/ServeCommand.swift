import ArgumentParser
import Foundation
import KBEmbed
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
            An index in object storage (--index s3://bucket/prefix) is downloaded into a local \
            cache and served from there; its manifest is polled (every 5 s, --poll-interval), and a new generation is \
            downloaded and served without a restart (a failing poll keeps the current one). \
            A 'kbindex build' or 'compact' of a served index is picked up within a second; \
            requests in flight finish on the generation they started on. Questions and \
            /v1/embeddings inputs are embedded in the precision the first index was built in \
            (f32 or int8) unless --precision says (GET /v1/info shows it); an index built in \
            the other one is served all the same, with a note.

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

    @OptionGroup var served: ServedIndexOptions

    @Option(help: ArgumentHelp("The address to listen on; anything but loopback requires a token.", valueName: "address"))
    var host = "127.0.0.1"

    @Option(parsing: .unconditional, help: ArgumentHelp("The port to listen on (0: a free one).", valueName: "port"))
    var port = 8765

    @Option(help: ArgumentHelp("The bearer token clients must send (default: $KBINDEX_TOKEN; none on loopback).", valueName: "token"))
    var token: String?

    @Option(name: .customLong("allow-origin"), help: ArgumentHelp("A browser origin allowed to call the API, with CORS, e.g. https://app.example.com (repeatable).", valueName: "origin"))
    var allowOrigin: [String] = []

    @Option(name: .customLong("allow-host"), help: ArgumentHelp("A Host name to accept while listening on loopback, e.g. kb.example.com behind a reverse proxy that passes the client's Host (repeatable).", valueName: "name"))
    var allowHost: [String] = []

    @Option(name: .customLong("batch-window-ms"), parsing: .unconditional, help: ArgumentHelp("How long a question on an idle server waits for others to share its pass over the index, in milliseconds (questions that arrive while one is answered are batched anyway).", valueName: "ms"))
    var batchWindowMs: Double = 0

    func validate() throws {
        if !(0...65535).contains(port) { throw ValidationError("--port must be from 0 to 65535, got \(port)") }
        if !(batchWindowMs >= 0 && batchWindowMs <= 1000) { throw ValidationError("--batch-window-ms must be from 0 to 1000, got \(batchWindowMs)") }
        if let token, token.isEmpty || token.contains(where: \.isWhitespace) { throw ValidationError("--token must not be empty or contain spaces") }
        for name in allowHost where name.isEmpty || name.contains(where: { $0.isWhitespace || $0 == "/" }) {
            throw ValidationError("--allow-host takes a host name such as kb.example.com, got '\(name)'")
        }
        for origin in allowOrigin where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || origin.dropFirst(8).contains("/") {
            throw ValidationError("--allow-origin takes an origin such as https://app.example.com (scheme and host, no path), got '\(origin)'")
        }
    }

    func run() throws {
        let token = self.token ?? ProcessInfo.processInfo.environment["KBINDEX_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var options = ServiceOptions()
        options.batchWindow = .microseconds(Int64(batchWindowMs * 1000))
        let configuration = ServerConfiguration(host: host, port: port, token: token, allowedOrigins: allowOrigin, allowedHosts: allowHost)
        // Checked before the model loads: a refused host is said at once.
        if !ServerConfiguration.isLoopback(host) && token == nil {
            throw CLIError("--host \(host) is reachable from other machines: give a token with --token or KBINDEX_TOKEN (clients send 'Authorization: Bearer TOKEN'), or serve on 127.0.0.1")
        }
        let service = try served.service(options)
        service.setEventHandler { line in FileHandle.standardError.write(Data("kbindex: \(Format.displayed(line))\n".utf8)) }
        try served.startRemotePolling { line in
            FileHandle.standardError.write(Data("kbindex: \(Format.displayed(line))\n".utf8))
        }
        let app: KBServerApp
        do { app = try KBServerApp(service: service, configuration: configuration) } catch { throw CLIError(error) }

        let names = service.indexNames
        let modelName = service.model.name
        let how = service.embedder is Embedder ? "precision \(service.info().model.precision)" : "via \(service.embedder.provider.rawValue)"
        let failure: (any Error)? = ServedIndexOptions.block {
            do {
                try await app.run { url in
                    let what = names.count == 1 ? "index '\(names[0])'" : "\(names.count) indexes (\(names.joined(separator: ", ")))"
                    let line = "kbindex: serving \(what) on \(url.absoluteString) (model \(modelName), \(how)\(token == nil ? "" : "; token required"); Ctrl-C stops)\n"
                    FileHandle.standardError.write(Data(line.utf8))
                }
                return nil
            } catch {
                return error
            }
        }
        if let error = failure {
            if case ServerError.cannotListen = error {
                throw CLIError("\(error): pick another --port (0 picks a free one)")
            }
            throw CLIError(error)
        }
    }
}
