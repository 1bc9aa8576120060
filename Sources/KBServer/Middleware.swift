import Foundation
import Hummingbird
import KBRetrieval

/// The one middleware in front of every route (the MCP ones included), in this order:
/// CORS preflight for allowed origins; the Host check (DNS rebinding: when bound to loopback,
/// a Host that is not loopback, the bound host or one of `allowedHosts` is refused); the Origin check (a browser
/// Origin that is neither loopback nor allowed is refused); the bearer token (every route but
/// GET /healthz when a token is set); then the route. Any error, from here or the route,
/// becomes a JSON error (`APIError.from`); a known path with a wrong method becomes 405.
/// Every answer is counted in the metrics.
struct Gatekeeper: RouterMiddleware {
    typealias Context = BasicRequestContext

    let token: [UInt8]?
    /// Host names a Host header may carry, lowercased; nil: any (bound to a non-loopback host).
    let allowedHosts: Set<String>?
    /// Origins allowed with CORS headers, lowercased.
    let allowedOrigins: Set<String>
    let metrics: ServerMetrics

    init(configuration: ServerConfiguration, metrics: ServerMetrics) {
        token = configuration.token.map { Array($0.utf8) }
        allowedHosts = ServerConfiguration.isLoopback(configuration.host)
            ? Set(["localhost", "127.0.0.1", "::1", Gatekeeper.hostName(configuration.host)] + configuration.allowedHosts.map(Gatekeeper.hostName)) : nil
        allowedOrigins = Set(configuration.allowedOrigins.map { $0.lowercased() })
        self.metrics = metrics
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let origin = request.headers[.origin]
        let corsAllowed = origin.map { allowedOrigins.contains($0.lowercased()) } ?? false
        var response: Response
        do {
            if corsAllowed, request.method == .options, request.headers[.accessControlRequestMethod] != nil {
                response = Response(status: .noContent, headers: [
                    .accessControlAllowMethods: "GET, POST, DELETE",
                    .accessControlAllowHeaders: "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID",
                    .accessControlMaxAge: "600",
                ])
            } else {
                try check(request, origin: origin)
                response = try await next(request, context)
            }
        } catch {
            var apiError = APIError.from(error)
            if apiError.status == .notFound, context.endpointPath == "NotFound" {
                let path = SearchHit.shortened(request.uri.path, to: 80)
                if let methods = Routes.methods(of: request.uri.path) {
                    let allow = methods.map(\.rawValue).joined(separator: ", ")
                    apiError = APIError(.methodNotAllowed, "method_not_allowed", "\(SearchHit.shortened(request.method.rawValue, to: 16)) is not allowed on \(path): use \(allow)", headers: [.allow: allow])
                } else {
                    apiError = APIError(.notFound, "not_found", "no route \(path): the routes are listed at /openapi.json")
                }
            }
            response = apiError.response()
        }
        if corsAllowed, let origin {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = "Mcp-Session-Id, WWW-Authenticate"
            response.headers[.vary] = "Origin"
        }
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
        metrics.record(route: route, method: request.method.rawValue, status: Int(response.status.code), duration: ContinuousClock.now - start)
        return response
    }

    /// Throws 403 for a foreign Host or Origin, 401 for a missing or wrong token.
    func check(_ request: Request, origin: String?) throws {
        if let allowedHosts, let authority = request.head.authority {
            let name = Self.hostName(authority)
            if !allowedHosts.contains(name) && !ServerConfiguration.isLoopback(name) {
                throw APIError(.forbidden, "forbidden_host", "Host '\(SearchHit.shortened(authority, to: 80))' is not this server's: the server only answers requests addressed to a loopback host or an allowed host name (DNS rebinding protection); behind a reverse proxy, have the proxy send 'Host: 127.0.0.1' or allow the name with --allow-host")
            }
        }
        if let origin, !allowedOrigins.contains(origin.lowercased()), !Self.isLoopbackOrigin(origin) {
            throw APIError(.forbidden, "forbidden_origin", "requests from the web page at '\(SearchHit.shortened(origin, to: 80))' are not allowed: start the server with --allow-origin \(SearchHit.shortened(origin, to: 80)) to allow them")
        }
        guard let token, request.uri.path != "/healthz" else { return }
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "unauthorized", "this server requires a token: send 'Authorization: Bearer TOKEN'",
                           headers: [.wwwAuthenticate: #"Bearer realm="kbindex""#])
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              Self.constantTimeEquals(Array(parts[1].trimmingCharacters(in: .whitespaces).utf8), token) else {
            throw APIError(.unauthorized, "unauthorized", "the token is not this server's: send 'Authorization: Bearer TOKEN' with the server's token",
                           headers: [.wwwAuthenticate: #"Bearer realm="kbindex", error="invalid_token""#])
        }
    }

    /// Whether `given` equals `expected`, in time that depends on the lengths only, never on
    /// where the bytes first differ. O(expected.count).
    static func constantTimeEquals(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var diff: UInt8 = given.count == expected.count ? 0 : 1
        for i in 0..<expected.count { diff |= (i < given.count ? given[i] : 0) ^ expected[i] }
        return diff == 0
    }

    /// The host of a Host header or bind address, lowercased, without port or brackets:
    /// "LOCALHOST:8765" → "localhost", "[::1]:80" → "::1", "::1" → "::1".
    static func hostName(_ authority: String) -> String {
        let a = authority.lowercased()
        if a.hasPrefix("["), let end = a.firstIndex(of: "]") { return String(a[a.index(after: a.startIndex)..<end]) }
        if a.filter({ $0 == ":" }).count == 1, let colon = a.firstIndex(of: ":") { return String(a[..<colon]) }
        return a
    }

    /// Whether a browser Origin ("http://localhost:3000") is a page served from this machine.
    static func isLoopbackOrigin(_ origin: String) -> Bool {
        let o = origin.lowercased()
        for scheme in ["http://", "https://"] where o.hasPrefix(scheme) {
            let authority = String(o.dropFirst(scheme.count))
            if authority.contains("/") || authority.contains("@") { return false }
            return ServerConfiguration.isLoopback(hostName(authority))
        }
        return false
    }
}
