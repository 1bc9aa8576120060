import Foundation

/// Every limit the server puts on a request. A request over a limit gets a 4xx JSON error that
/// names the limit; nothing a client sends can make the server use unbounded memory or time.
public struct ServerLimits: Sendable, Equatable {
    /// Largest request body, in bytes (413 above it).
    public var maxBodyBytes = 1 << 20
    /// Longest question, in characters.
    public var maxQueryCharacters = 4096
    /// Largest `k` (hits per question).
    public var maxK = 100
    /// Most questions in one /v1/search request (`queries`).
    public var maxQueries = 64
    /// Most `path` globs in one request, and the longest glob in characters.
    public var maxPathGlobs = 32, maxGlobCharacters = 1024
    /// Most inputs in one /v1/embeddings request, and the longest input in characters.
    public var maxEmbeddingInputs = 256, maxEmbeddingCharacters = 16_384
    /// Most neighbouring chunks on either side in /v1/chunks/{id}.
    public var maxNeighbours = 10
    /// Longest index name or chunk id a request may name, in characters.
    public var maxNameCharacters = 256
    /// How long the server works on one request (a search, a chunk, embeddings, an MCP tool
    /// call), from the moment its body is read, before answering 503 `timeout` (an MCP tool
    /// error for /mcp).
    public var requestTimeout: Duration = .seconds(30)
    /// A connection on which nothing at all is read or written for this long is closed. This
    /// bounds silent connections only: each byte a client sends restarts the clock, so a client
    /// that trickles its headers or body (a byte every few seconds) keeps its connection, and
    /// the request timeout does not cover reading the body. What bounds such clients is
    /// `maxConnections` (they hold at most that many slots) and `maxBodyBytes`.
    public var idleTimeout: Duration = .seconds(60)
    /// Most open connections; further ones wait in the listen backlog until one closes.
    public var maxConnections = 256

    public init() {}
}

/// How `kbindex serve` listens and whom it answers.
public struct ServerConfiguration: Sendable {
    /// The address to bind: 127.0.0.1 by default (this machine only).
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one (`KBServerApp.run(onListening:)` reports which).
    public var port = 8765
    /// The bearer token every request must carry (`Authorization: Bearer TOKEN`), except
    /// GET /healthz; nil: none. Required when `host` is not a loopback address.
    public var token: String?
    public var limits = ServerLimits()
    /// Browser origins (e.g. "https://app.example.com") allowed to call the API, with CORS
    /// headers. Requests with any other `Origin` header are refused (403), except loopback
    /// origins (http://localhost:*, http://127.0.0.1:*, http://[::1]:*), which are let through
    /// without CORS headers.
    public var allowedOrigins: [String] = []
    /// Host names (e.g. "kb.example.com", without port) that a request's Host header may carry
    /// besides the loopback ones, when the server is bound to a loopback host: a reverse proxy
    /// that passes the client's Host (Caddy, Traefik) needs its public name here. Bound to a
    /// non-loopback host, any Host is answered (the token guards) and this list is not used.
    public var allowedHosts: [String] = []

    public init(host: String = "127.0.0.1", port: Int = 8765, token: String? = nil, limits: ServerLimits = .init(),
                allowedOrigins: [String] = [], allowedHosts: [String] = []) {
        self.host = host
        self.port = port
        self.token = token
        self.limits = limits
        self.allowedOrigins = allowedOrigins
        self.allowedHosts = allowedHosts
    }

    /// Whether `host` only accepts connections from this machine: 127.0.0.0/8, ::1, localhost.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h == "::1" || h == "[::1]" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { p in UInt8(p) != nil }
    }
}

/// Why a server cannot start (thrown by `KBServerApp.init`/`run`). One line each, without advice
/// on flags: the CLI adds that.
public enum ServerError: Error, CustomStringConvertible, Sendable {
    /// Binding a non-loopback host without a token.
    case tokenRequired(host: String)
    case invalidConfiguration(String)
    /// The listening socket could not be opened (address in use, bad host...).
    case cannotListen(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .tokenRequired(let host): return "\(host) is reachable from other machines, and no token is set"
        case .invalidConfiguration(let s): return s
        case .cannotListen(let host, let port, let reason): return "cannot listen on \(host):\(port): \(reason)"
        }
    }
}
