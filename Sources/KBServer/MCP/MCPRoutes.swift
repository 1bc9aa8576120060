import Foundation
import Hummingbird
import KBRetrieval
import Logging
import MCP

/// MCP over streamable HTTP at `/mcp` of `kbindex serve`, stateless: every POST is answered on
/// its own by a fresh MCP server over `StatelessHTTPServerTransport` (JSON responses, no
/// `Mcp-Session-Id`, no server-initiated messages: the tools need none). No state is kept
/// between requests, so any number of clients can call at once and nothing grows with them;
/// a client that sends `tools/call` without `initialize` is answered too.
///
/// GET and DELETE answer 405 (no SSE stream, no session to end), as the MCP specification
/// allows; clients then work by POST alone.
///
/// Host, Origin and the bearer token are checked by the server's middleware before these
/// handlers; here the SDK checks what the transport needs (Accept, Content-Type,
/// MCP-Protocol-Version) and the body is limited to `maxBodyBytes`.
public enum MCPRoutes {
    /// The path of the MCP endpoint.
    public static let path = "/mcp"

    /// Adds POST, GET and DELETE `/mcp` to `router`.
    /// - Parameters:
    ///   - limits: what a tool call may ask for (query length, k...) and how long it may run;
    ///     `kbindex serve` passes `MCPTools.Limits(configuration.limits)`.
    ///   - maxBodyBytes: the largest request body read; a larger one is refused (413).
    ///   - logger: where the transport logs (nil: nowhere).
    public static func add<Context: Hummingbird.RequestContext>(
        to router: Router<Context>,
        service: RetrievalService,
        limits: MCPTools.Limits = .init(),
        maxBodyBytes: Int = ServerLimits().maxBodyBytes,
        logger: Logger? = nil
    ) {
        let endpoint = MCPHTTPEndpoint(service: service, limits: limits, maxBodyBytes: maxBodyBytes, logger: logger)
        router.on(RouterPath(path), method: .post) { request, _ -> Response in await endpoint.respond(to: request) }
        router.on(RouterPath(path), method: .get) { request, _ -> Response in await endpoint.respond(to: request) }
        router.on(RouterPath(path), method: .delete) { request, _ -> Response in await endpoint.respond(to: request) }
    }
}

/// The `/mcp` handler without the router: a hummingbird `Request` in, a `Response` out.
public struct MCPHTTPEndpoint: Sendable {
    public let service: RetrievalService
    public let limits: MCPTools.Limits
    public let maxBodyBytes: Int
    let logger: Logger?

    public init(service: RetrievalService, limits: MCPTools.Limits = .init(), maxBodyBytes: Int = ServerLimits().maxBodyBytes, logger: Logger? = nil) {
        self.service = service
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
    }

    /// What the SDK checks before a message reaches the server (Host and Origin are the
    /// middleware's: its rule knows the bound host and the allowed origins).
    static let validation = StandardValidationPipeline(validators: [
        AcceptHeaderValidator(mode: .jsonOnly),
        ContentTypeValidator(),
        ProtocolVersionValidator(),
    ])

    /// Answers one HTTP request. Never throws: every failure is a JSON-RPC error response
    /// with an HTTP status (400 bad JSON-RPC or a body that could not be read, 405 wrong method,
    /// 406/415 wrong headers, 413 body too large). A tool call is bounded by
    /// `limits.requestTimeout` (past it, an `isError` tool result). O(body size) plus the
    /// tool's work.
    public func respond(to request: Request) async -> Response {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { $0 + ", " + field.value } ?? field.value
        }
        if headers["host"] == nil, let authority = request.head.authority { headers["host"] = authority }

        var body: Data?
        if request.method == .post {
            // The API's body rules (413 over the limit, 400 when it cannot be read whole), as
            // a JSON-RPC error.
            do {
                body = Data(try await Handlers.body(request, limit: maxBodyBytes).readableBytesView)
            } catch let error as APIError {
                return Self.response(.error(statusCode: Int(error.status.code), .invalidRequest(error.message)))
            } catch {
                return Self.response(.error(statusCode: 400, .invalidRequest("the request body could not be read: send it whole, with a correct Content-Length")))
            }
        }
        let mcpRequest = MCP.HTTPRequest(method: request.method.rawValue, headers: headers, body: body, path: request.uri.path)
        return Self.response(await handle(mcpRequest))
    }

    /// Answers one MCP HTTP request with a server of its own (see `MCPRoutes`).
    public func handle(_ request: MCP.HTTPRequest) async -> MCP.HTTPResponse {
        let transport = StatelessHTTPServerTransport(validationPipeline: Self.validation, logger: logger)
        // GET/DELETE and malformed bodies are answered by the transport without a server.
        guard request.method.uppercased() == "POST" else { return await transport.handleRequest(request) }
        let server = await MCPServerFactory.makeServer(service: service, limits: limits)
        do {
            try await server.start(transport: transport)
        } catch {
            return .error(statusCode: 500, .internalError("the MCP server could not start: \(error)"))
        }
        let response = await transport.handleRequest(request)
        await server.stop()
        return response
    }

    /// `response` as a hummingbird `Response`. An SSE stream (which the stateless transport
    /// never returns) would be answered 500 rather than read.
    static func response(_ response: MCP.HTTPResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPFields.Element.Name(name) { fields[field] = value }
        }
        if case .stream = response {
            return Response(status: .internalServerError, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"jsonrpc":"2.0","error":{"code":-32603,"message":"streaming is not supported"},"id":null}"#)))
        }
        guard let data = response.bodyData else { return Response(status: .init(code: response.statusCode), headers: fields) }
        return Response(status: .init(code: response.statusCode), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
