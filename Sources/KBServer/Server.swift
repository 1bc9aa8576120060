import Foundation
import Synchronization
import Hummingbird
// MaximumAvailableConnections (a module of the hummingbird package, built with Hummingbird).
import HummingbirdCore
import KBRetrieval
import Logging
import ServiceLifecycle

/// `kbindex serve`: the HTTP JSON API (and MCP at /mcp) over one `RetrievalService`.
///
/// ```swift
/// let service = try RetrievalService(indexes: [("notes", url)])
/// let app = try KBServerApp(service: service, configuration: .init(port: 0))
/// try await app.run { url in print("listening on \(url)") }   // until SIGTERM/SIGINT
/// ```
public struct KBServerApp: Sendable {
    public let service: RetrievalService
    public let configuration: ServerConfiguration
    let metrics = ServerMetrics()

    /// Checks the configuration. Throws `ServerError.tokenRequired` for a non-loopback host
    /// without a token, `.invalidConfiguration` for an empty token or a port out of range.
    public init(service: RetrievalService, configuration: ServerConfiguration) throws {
        if let token = configuration.token, token.isEmpty || token.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw ServerError.invalidConfiguration("the token must not be empty or contain spaces")
        }
        if !ServerConfiguration.isLoopback(configuration.host) && configuration.token == nil {
            throw ServerError.tokenRequired(host: configuration.host)
        }
        guard (0...65535).contains(configuration.port) else {
            throw ServerError.invalidConfiguration("the port must be from 0 to 65535, got \(configuration.port)")
        }
        self.service = service
        self.configuration = configuration
    }

    /// Serves until SIGTERM or SIGINT (with `handleSignals`) or until the calling task is
    /// cancelled, then stops accepting connections, lets the requests in flight finish, and
    /// returns. `onListening` gets the base URL with the actual port once the socket listens
    /// (port 0 picks a free one). A reloader checks the indexes every
    /// `ServiceOptions.reloadInterval` meanwhile. Throws `ServerError.cannotListen` when the
    /// socket cannot be opened.
    public func run(handleSignals: Bool = true, logger: Logger? = nil, onListening: @escaping @Sendable (URL) -> Void = { _ in }) async throws {
        let logger = logger ?? Self.quietLogger()
        let metrics = self.metrics
        service.setBatchObserver { metrics.recordBatch($0) }
        let router = Routes.router(service: service, configuration: configuration, metrics: metrics)
        let listening = ListeningFlag()
        let host = configuration.host
        let limits = configuration.limits
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(limits.idleTimeout.components.seconds) * 1_000_000_000))),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: nil,
                                 availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections)),
            onServerRunning: { channel in
                listening.set()
                onListening(Self.baseURL(host: host, port: channel.localAddress?.port ?? 0))
            },
            logger: logger
        )
        // Shut down in reverse order: the server drains first, then the reloader stops.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: Reloader(service: service), successTerminationBehavior: .ignore),
                .init(service: app),
            ],
            logger: logger
        )
        // A request in flight gets its whole timeout to finish, then the rest is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = limits.requestTimeout + .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        if handleSignals {
            ShutdownSignals.install { Task { await group.triggerGracefulShutdown() } }
        }
        do {
            try await group.run()
        } catch {
            if !listening.isSet { throw ServerError.cannotListen(host: host, port: configuration.port, reason: Self.reason(error)) }
            throw error
        }
    }

    /// "http://HOST:PORT" for a bound host: an IPv6 address in brackets with its zone id
    /// percent-encoded as RFC 6874 has it ("fe80::1%eth0" → "http://[fe80::1%25eth0]:8765"),
    /// any other character a URL host cannot carry percent-encoded. Never fails: a host that
    /// still makes no URL gives "http://localhost:PORT". O(host length).
    static func baseURL(host: String, port: Int) -> URL {
        var h = host
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        let shown: String
        if h.contains(":") {
            var allowed = CharacterSet.urlHostAllowed
            allowed.remove("%")
            shown = "[" + (h.addingPercentEncoding(withAllowedCharacters: allowed) ?? h) + "]"
        } else {
            var allowed = CharacterSet.urlHostAllowed
            allowed.remove(charactersIn: "%[]:")
            shown = h.addingPercentEncoding(withAllowedCharacters: allowed) ?? h
        }
        return URL(string: "http://\(shown):\(port)") ?? URL(string: "http://localhost:\(port)") ?? URL(fileURLWithPath: "/")
    }

    /// A logger that prints warnings and errors only, on stderr.
    static func quietLogger() -> Logger {
        var logger = Logger(label: "kbindex.serve") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }

    /// The short reason of a bind failure ("Address already in use").
    static func reason(_ error: Error) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") || text.contains("errno: 98") { return "address already in use" }
        if text.contains("Cannot assign requested address") || text.contains("errno: 99") { return "no such address on this machine" }
        return APIError.oneLine(text)
    }
}

/// Runs the index reloader until graceful shutdown.
struct Reloader: Service {
    let service: RetrievalService
    func run() async throws {
        let service = self.service
        await cancelWhenGracefulShutdown { await service.runReloader() }
    }
}

/// Set once the server listens (to tell a bind failure from a later error).
final class ListeningFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
