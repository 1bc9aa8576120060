import Foundation
import Hummingbird
import KBRetrieval
import Logging

/// STUB from the server branch, so that it compiles on its own: the MCP helper's version of
/// this file (same `add(to:service:maxBodyBytes:logger:)`) replaces it at the merge. Until then
/// /mcp answers 501.
public enum MCPRoutes {
    public static let path = "/mcp"

    public static func add<Context: RequestContext>(to router: Router<Context>, service: RetrievalService, maxBodyBytes: Int = 1 << 20, logger: Logger? = nil) {
        for method in [HTTPRequest.Method.post, .get, .delete] {
            router.on(RouterPath(path), method: method) { _, _ -> Response in
                throw APIError(.notImplemented, "not_implemented", "MCP over HTTP is not built into this server yet")
            }
        }
    }
}
