import Foundation
import Hummingbird
import KBRetrieval

/// Every route of the HTTP API, in one place. `table` lists them for the 405 answers and for
/// the test that checks the OpenAPI document against the routes.
public enum Routes {
    /// Each path (OpenAPI syntax) and the methods it answers.
    public static let table: [(path: String, methods: [HTTPRequest.Method])] = [
        ("/v1/search", [.post]),
        ("/v1/chunks/{id}", [.get]),
        ("/v1/info", [.get]),
        ("/v1/embeddings", [.post]),
        ("/healthz", [.get]),
        ("/metrics", [.get]),
        ("/openapi.json", [.get]),
        // GET and DELETE /mcp are routed too (MCPRoutes answers them 405: no SSE stream, no session).
        ("/mcp", [.post]),
    ]

    /// The router with every route behind the `Gatekeeper` middleware.
    static func router(service: RetrievalService, configuration: ServerConfiguration, metrics: ServerMetrics) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: Gatekeeper(configuration: configuration, metrics: metrics))
        let h = Handlers(service: service, limits: configuration.limits, metrics: metrics)
        router.post("/v1/search", use: h.search)
        router.get("/v1/chunks/{id}", use: h.chunk)
        router.get("/v1/info", use: h.info)
        router.post("/v1/embeddings", use: h.embeddings)
        router.get("/healthz", use: h.health)
        router.get("/metrics", use: h.metricsText)
        router.get("/openapi.json", use: h.openAPI)
        MCPRoutes.add(to: router, service: service, limits: MCPTools.Limits(configuration.limits), maxBodyBytes: configuration.limits.maxBodyBytes)
        return router
    }

    /// The methods `path` (a request path) answers, when it is one of `table`'s; nil otherwise.
    static func methods(of path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for (pattern, methods) in table {
            let p = pattern.split(separator: "/", omittingEmptySubsequences: false)
            if p.count == parts.count, zip(p, parts).allSatisfy({ $0.hasPrefix("{") ? !$1.isEmpty : $0 == $1 }) { return methods }
        }
        return nil
    }
}
