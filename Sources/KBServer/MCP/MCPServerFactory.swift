import Foundation
import KBRetrieval
import Logging
import MCP

/// Makes MCP `Server`s that answer `tools/list` and `tools/call` with `MCPTools` over one
/// `RetrievalService`. The server is not started: give it a transport with `start(transport:)`.
public enum MCPServerFactory {
    /// What clients may show to the model about this server (MCP `instructions`).
    public static let instructions = """
        kbindex searches a local knowledge base of the user's own documents. Call search with a \
        question to find passages (each with an id, path and lines); call fetch with an id for the \
        whole passage before quoting it; call status to see which indexes are served.
        """

    /// A server named "kbindex" with the tools of `MCPTools(service:limits:)`. O(1).
    public static func makeServer(service: RetrievalService, limits: MCPTools.Limits = .init()) async -> Server {
        let tools = MCPTools(service: service, limits: limits)
        let server = Server(
            name: "kbindex",
            version: KBIndexVersion.string,
            title: "kbindex knowledge base",
            instructions: instructions,
            capabilities: .init(tools: .init(listChanged: false))
        )
        await server.withMethodHandler(ListTools.self) { _ in
            ListTools.Result(tools: tools.definitions)
        }
        await server.withMethodHandler(CallTool.self) { params in
            try await tools.call(params.name, arguments: params.arguments)
        }
        return server
    }

    /// A logger that writes to standard error (never standard output, which carries MCP
    /// messages over stdio), at `level`.
    public static func stderrLogger(label: String = "kbindex.mcp", level: Logger.Level = .warning) -> Logger {
        var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = level
        return logger
    }
}
