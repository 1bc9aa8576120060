import Foundation
import Hummingbird
import HummingbirdTesting
import KBRetrieval
@testable import KBServer
import KBTestSupport
import Logging
import MCP
import XCTest

/// A small index built by the `kbindex` binary with the tiny test model (cheap to embed; its
/// vectors mean nothing, so the tests that need a particular hit search in lexical mode).
final class MCPFixture {
    let root: URL, model: URL
    var corpus: URL { root.appendingPathComponent("notes") }
    var index: URL { corpus.appendingPathComponent(".kbindex") }

    static let files = [
        "soup.md": "# Lentil soup\n\nRinse the lentils and simmer them with onions for half an hour.\n",
        "tea.md": "# Green tea\n\nGreen tea wants water below boiling, about eighty degrees.\n",
        "ops/logs.md": "# Rotating logs\n\nLogrotate rotates the service logs every week and keeps four copies.\n",
        "guide.md": "# Guide\n\n## One\n\nAlpha section text.\n\n## Two\n\nBravo section text.\n\n## Three\n\nCharlie section text.\n",
    ]

    init() throws {
        model = try TinyModel(seed: 23).writeTemporary()
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kbmcp-\(UUID().uuidString)")
        for (name, text) in Self.files {
            let url = root.appendingPathComponent("notes").appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let r = try CLIRunner.run(["build", corpus.path, "--quiet", "--model", model.path])
        guard r.status == 0 else { throw FixtureError(description: "kbindex build failed: \(r.stderr)") }
    }

    func service(names: [String] = ["notes"]) throws -> RetrievalService {
        var options = ServiceOptions()
        options.model = model.path
        return try RetrievalService(indexes: names.map { (name: $0, url: index) }, options: options)
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
        try? FileManager.default.removeItem(at: model)
    }
}

struct FixtureError: Error, CustomStringConvertible { let description: String }

/// The MCP tools (`MCPTools`), the stdio drain and the `/mcp` endpoint, on a real index.
final class MCPToolsTests: XCTestCase {
    nonisolated(unsafe) static var fixture: MCPFixture!
    nonisolated(unsafe) static var service: RetrievalService!

    override class func setUp() {
        super.setUp()
        do {
            fixture = try MCPFixture()
            service = try fixture.service()
        } catch {
            XCTFail("could not build the test index: \(error)")
        }
    }

    override class func tearDown() {
        fixture?.remove()
        super.tearDown()
    }

    override func setUpWithError() throws {
        if Self.service == nil { throw XCTSkip("no index") }
    }

    var tools: MCPTools { MCPTools(service: Self.service) }

    /// The JSON object of a successful result's text content (which must equal its structured
    /// content).
    func object(_ result: CallTool.Result, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Value] {
        XCTAssertNotEqual(result.isError, true, "\(result.content)", file: file, line: line)
        guard case .text(let text, _, _) = try XCTUnwrap(result.content.first, file: file, line: line) else {
            XCTFail("not a text content", file: file, line: line); return [:]
        }
        let value = try JSONDecoder().decode(Value.self, from: Data(text.utf8))
        XCTAssertEqual(value, result.structuredContent, "text and structured content differ", file: file, line: line)
        return try XCTUnwrap(value.objectValue, file: file, line: line)
    }

    func errorLine(_ result: CallTool.Result) -> String? {
        guard result.isError == true, case .text(let text, _, _)? = result.content.first else { return nil }
        return text
    }

    // MARK: - Tools

    func testToolListHasTheThreeToolsWithStrictSchemas() throws {
        let defs = tools.definitions
        XCTAssertEqual(defs.map(\.name), ["search", "fetch", "status"])
        let search = try XCTUnwrap(defs.first?.inputSchema.objectValue)
        XCTAssertEqual(search["required"], ["query"])
        XCTAssertEqual(search["additionalProperties"], false)
        let properties = try XCTUnwrap(search["properties"]?.objectValue)
        XCTAssertEqual(Set(properties.keys), ["query", "k", "mode", "path", "index"])
        XCTAssertEqual(properties["k"]?.objectValue?["maximum"], 100)
        XCTAssertEqual(properties["index"]?.objectValue?["enum"], ["notes"])
        for tool in defs {
            XCTAssertEqual(tool.annotations.readOnlyHint, true, tool.name)
            XCTAssertFalse(tool.description?.isEmpty ?? true, tool.name)
        }
    }

    func testSearchThenFetchRoundTripsTheIdAndTheText() async throws {
        let found = try object(await tools.call("search", arguments: ["query": "lentils simmer", "mode": "lexical", "k": 2]))
        XCTAssertEqual(found["mode"], "lexical")
        XCTAssertEqual(found["index"], "notes")
        XCTAssertEqual(found["generation"], 1)
        let results = try XCTUnwrap(found["results"]?.arrayValue)
        XCTAssertEqual(results.count, 1, "only soup.md has these words")
        let hit = try XCTUnwrap(results.first?.objectValue)
        XCTAssertEqual(hit["path"], "soup.md")
        XCTAssertEqual(hit["title"], "Lentil soup")
        XCTAssertEqual(hit["rank"], 1)
        let id = try XCTUnwrap(hit["id"]?.stringValue)
        XCTAssertNotNil(id.range(of: #"^[0-9a-f]{16}-[0-9]+$"#, options: .regularExpression), id)

        let fetched = try object(await tools.call("fetch", arguments: ["id": .string(id)]))
        XCTAssertEqual(fetched["id"], .string(id))
        XCTAssertEqual(fetched["title"], "Lentil soup")
        let text = try XCTUnwrap(fetched["text"]?.stringValue)
        XCTAssertTrue(text.contains("Rinse the lentils and simmer them"), text)
        let snippet = try XCTUnwrap(hit["text"]?.stringValue)
        XCTAssertTrue(text.split(whereSeparator: \.isWhitespace).joined(separator: " ").hasPrefix(snippet), "\(snippet) / \(text)")
        let meta = try XCTUnwrap(fetched["metadata"]?.objectValue)
        XCTAssertEqual(meta["path"], "soup.md")
        XCTAssertEqual(meta["index"], "notes")
        XCTAssertEqual(meta["line_start"], hit["line_start"])
        XCTAssertEqual(meta["line_end"], hit["line_end"])
        XCTAssertEqual(meta["chunks"], [.string(id)])
        XCTAssertEqual(meta["document"]?.objectValue?["path"], "soup.md")
    }

    func testSearchHonoursPathKAndASingleGlobString() async throws {
        for path: Value in [["ops/*"], "ops/*"] {
            let found = try object(await tools.call("search", arguments: ["query": "logs lentils tea", "path": path, "k": 3]))
            let paths = try XCTUnwrap(found["results"]?.arrayValue).compactMap { $0.objectValue?["path"]?.stringValue }
            XCTAssertEqual(paths, ["ops/logs.md"], "path \(path)")
        }
        let all = try object(await tools.call("search", arguments: ["query": "water", "k": 2, "mode": "vector"]))
        XCTAssertEqual(all["results"]?.arrayValue?.count, 2)
    }

    func testBadArgumentsAreOneLineToolErrorsThatNameTheArgument() async throws {
        let cases: [(String, [String: Value], String)] = [
            ("search", [:], "'query' is required"),
            ("search", ["query": "   "], "'query' is required"),
            ("search", ["query": 3], "'query' must be a string"),
            ("search", ["query": .string(String(repeating: "x", count: 4097))], "longer than 4096"),
            ("search", ["query": "soup", "k": 0], "'k' must be from 1 to 100"),
            ("search", ["query": "soup", "k": 101], "'k' must be from 1 to 100"),
            ("search", ["query": "soup", "k": 2.5], "'k' must be an integer"),
            ("search", ["query": "soup", "k": "5"], "'k' must be an integer"),
            ("search", ["query": "soup", "mode": "fuzzy"], "'mode' must be one of"),
            ("search", ["query": "soup", "path": [1]], "'path[0]' must be a string"),
            ("search", ["query": "soup", "path": .array(Array(repeating: "*.md", count: 33))], "more than the limit of 32"),
            ("search", ["query": "soup", "colour": "red"], "unknown argument 'colour'"),
            ("search", ["query": "soup", "index": "nope"], "nope"),
            ("fetch", [:], "'id' is required"),
            ("fetch", ["id": "0000000000000000-0"], "0000000000000000-0"),
            ("fetch", ["id": "x", "neighbours": 11], "'neighbours' must be from 0 to 10"),
            ("fetch", ["id": "other:0000000000000000-0"], "other"),
            ("status", ["verbose": true], "takes no arguments"),
        ]
        for (tool, args, expected) in cases {
            let result = try await tools.call(tool, arguments: args)
            let line = errorLine(result)
            XCTAssertNotNil(line, "\(tool) \(args): not an error: \(result.content)")
            XCTAssertFalse(line?.contains("\n") ?? true, "\(tool) \(args): \(line ?? "")")
            XCTAssertTrue(line?.contains(expected) ?? false, "\(tool) \(args): \(line ?? "") lacks \(expected)")
        }
    }

    func testAnUnknownToolIsAProtocolError() async throws {
        do {
            _ = try await tools.call("delete_everything", arguments: [:])
            XCTFail("an unknown tool was answered")
        } catch let error as MCPError {
            XCTAssertEqual(error.code, -32602)
            XCTAssertTrue("\(error)".contains("search, fetch, status"), "\(error)")
        }
    }

    func testStatusDescribesTheIndex() async throws {
        let info = try object(await tools.call("status", arguments: nil))
        let indexes = try XCTUnwrap(info["indexes"]?.arrayValue)
        XCTAssertEqual(indexes.count, 1)
        XCTAssertEqual(indexes.first?.objectValue?["name"], "notes")
        XCTAssertEqual(indexes.first?.objectValue?["documents"], 4)
        XCTAssertNotNil(info["model"]?.objectValue)
    }

    /// With several indexes, ids name their index ("NAME:ID"), so fetch needs nothing else; a
    /// search must name one.
    func testSeveralIndexesQualifyIds() async throws {
        let service = try Self.fixture.service(names: ["a", "b"])
        let tools = MCPTools(service: service)
        XCTAssertEqual(tools.definitions.first?.inputSchema.objectValue?["properties"]?.objectValue?["index"]?.objectValue?["enum"], ["a", "b"])
        let unnamed = try await tools.call("search", arguments: ["query": "tea"])
        XCTAssertTrue(errorLine(unnamed)?.contains("with the 'index' argument") ?? false, "\(unnamed.content)")
        let found = try object(await tools.call("search", arguments: ["query": "green tea", "mode": "lexical", "index": "b"]))
        let id = try XCTUnwrap(found["results"]?.arrayValue?.first?.objectValue?["id"]?.stringValue)
        XCTAssertTrue(id.hasPrefix("b:"), id)
        let fetched = try object(await tools.call("fetch", arguments: ["id": .string(id)]))
        XCTAssertEqual(fetched["metadata"]?.objectValue?["index"], "b")
        XCTAssertEqual(fetched["metadata"]?.objectValue?["path"], "tea.md")
        let bare = String(id.dropFirst(2))
        let viaArgument = try object(await tools.call("fetch", arguments: ["id": .string(bare), "index": "a"]))
        XCTAssertEqual(viaArgument["metadata"]?.objectValue?["index"], "a")
        let conflicting = try await tools.call("fetch", arguments: ["id": .string(id), "index": "a"])
        XCTAssertTrue(errorLine(conflicting)?.contains("names index 'b'") ?? false, "\(conflicting.content)")
    }

    /// neighbours: the passages either side join the text, in order; metadata spans them all.
    func testFetchWithNeighboursAddsThePassagesAround() async throws {
        let found = try object(await tools.call("search", arguments: ["query": "bravo", "mode": "lexical", "k": 1]))
        let hit = try XCTUnwrap(found["results"]?.arrayValue?.first?.objectValue)
        XCTAssertEqual(hit["path"], "guide.md")
        let id = try XCTUnwrap(hit["id"]?.stringValue)
        let alone = try object(await tools.call("fetch", arguments: ["id": .string(id)]))
        XCTAssertFalse(alone["text"]?.stringValue?.contains("Alpha") ?? true, "\(alone)")
        let wide = try object(await tools.call("fetch", arguments: ["id": .string(id), "neighbours": 1]))
        let text = try XCTUnwrap(wide["text"]?.stringValue)
        let a = try XCTUnwrap(text.range(of: "Alpha")), b = try XCTUnwrap(text.range(of: "Bravo")), c = try XCTUnwrap(text.range(of: "Charlie"))
        XCTAssertTrue(a.lowerBound < b.lowerBound && b.lowerBound < c.lowerBound, text)
        let meta = try XCTUnwrap(wide["metadata"]?.objectValue)
        let chunks = try XCTUnwrap(meta["chunks"]?.arrayValue)
        XCTAssertEqual(chunks.count, 3)
        XCTAssertEqual(chunks[1], .string(id))
        XCTAssertLessThan(meta["line_start"]?.intValue ?? 0, hit["line_start"]?.intValue ?? 0)
        XCTAssertGreaterThan(meta["line_end"]?.intValue ?? 0, hit["line_end"]?.intValue ?? 0)
        XCTAssertEqual(wide["id"], .string(id), "the id stays the asked one")
    }

    func testSnippetsCollapseWhitespaceAndCut() {
        XCTAssertEqual(MCPTools.snippet("  a\n\n b\tc  ", 10), "a b c")
        XCTAssertEqual(MCPTools.snippet("abcdef", 3), "abc…")
        XCTAssertEqual(MCPTools.snippet("ab cd", 3), "ab…")
        XCTAssertEqual(MCPTools.snippet("ab cd", 4), "ab c…")
        XCTAssertEqual(MCPTools.snippet("ab cd", 5), "ab cd")
        XCTAssertEqual(MCPTools.snippet("", 3), "")
    }

    // MARK: - Stdio: answers are not lost when the input ends

    /// A transport whose input is `messages`, then the end; records what the server sends.
    actor ScriptedTransport: Transport {
        nonisolated let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let messages: [Data]
        var sent: [Data] = []
        var inputEnded = false
        init(_ messages: [Data]) { self.messages = messages }
        func connect() async throws {}
        func disconnect() async {}
        func send(_ data: Data) async throws { sent.append(data) }
        func receive() -> AsyncThrowingStream<Data, Swift.Error> {
            let (stream, continuation) = AsyncThrowingStream<Data, Swift.Error>.makeStream()
            for m in messages { continuation.yield(m) }
            continuation.finish()
            inputEnded = true
            return stream
        }
    }

    /// The server handles each request in a task of its own and stops at the end of input; the
    /// drain keeps the stream open until the answer is written. The handler here waits until
    /// the input has ended, so without the drain the server would stop before it answers.
    func testDrainingTransportAnswersRequestsReadBeforeTheEnd() async throws {
        let request = #"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#
        let cancelled = #"{"jsonrpc":"2.0","id":8,"method":"tools/list"}"#
        let cancel = #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":8}}"#
        let inner = ScriptedTransport([Data(request.utf8), Data(cancelled.utf8), Data(cancel.utf8)])
        let server = Server(name: "t", version: "0")
        await server.withMethodHandler(ListTools.self) { _ in
            while await !inner.inputEnded { await Task.yield() }
            try await Task.sleep(for: .milliseconds(20))
            return ListTools.Result(tools: [])
        }
        try await server.start(transport: DrainingTransport(inner, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), drainLimit: .seconds(600)))
        await server.waitUntilCompleted()
        let sent = await inner.sent.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertTrue(sent.contains { $0.contains(#""id":7"#) && $0.contains(#""tools":[]"#) }, "\(sent)")
    }

    func testDrainKeysKeepStringAndNumberIdsApart() {
        XCTAssertEqual(DrainingTransport.key("1"), "s:1")
        XCTAssertEqual(DrainingTransport.key(NSNumber(value: 1)), "n:1")
        XCTAssertNil(DrainingTransport.key(nil))
        XCTAssertEqual(DrainingTransport.messages(in: Data(#"[{"id":1},{"id":"a"}]"#.utf8)).count, 2)
        XCTAssertEqual(DrainingTransport.messages(in: Data("not json".utf8)).count, 0)
    }

    // MARK: - HTTP

    static let acceptBoth = "application/json, text/event-stream"

    static func mcpRequest(_ body: String, method: String = "POST", accept: String = acceptBoth) -> MCP.HTTPRequest {
        MCP.HTTPRequest(method: method, headers: ["Content-Type": "application/json", "Accept": accept], body: Data(body.utf8), path: "/mcp")
    }

    func testEndpointAnswersEachPostOnItsOwn() async throws {
        let endpoint = MCPHTTPEndpoint(service: Self.service)
        // tools/call without initialize, and twice the same JSON-RPC id from "two clients".
        let call = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"green tea","mode":"lexical","k":1}}}"#
        let request = Self.mcpRequest(call)
        async let first = endpoint.handle(request)
        async let second = endpoint.handle(request)
        for response in await [first, second] {
            XCTAssertEqual(response.statusCode, 200)
            let body = try XCTUnwrap(response.bodyData.map { String(decoding: $0, as: UTF8.self) })
            XCTAssertTrue(body.contains("tea.md"), body)
            XCTAssertNil(response.headers.first { $0.key.lowercased() == "mcp-session-id" }, "stateless: no session")
        }
        let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#
        for _ in 0..<2 {  // every client initializes its own (stateless) server
            let r = await endpoint.handle(Self.mcpRequest(initialize))
            XCTAssertEqual(r.statusCode, 200)
            XCTAssertTrue(r.bodyData.map { String(decoding: $0, as: UTF8.self) }?.contains(#""name":"kbindex""#) ?? false)
        }
        let notification = await endpoint.handle(Self.mcpRequest(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#))
        XCTAssertEqual(notification.statusCode, 202)
        let get = await endpoint.handle(Self.mcpRequest("", method: "GET"))
        XCTAssertEqual(get.statusCode, 405)
        let delete = await endpoint.handle(Self.mcpRequest("", method: "DELETE"))
        XCTAssertEqual(delete.statusCode, 405)
        let malformed = await endpoint.handle(Self.mcpRequest("{not json"))
        XCTAssertEqual(malformed.statusCode, 400)
        let html = await endpoint.handle(Self.mcpRequest(call, accept: "text/html"))
        XCTAssertEqual(html.statusCode, 406)
    }

    func testRoutesBridgeHummingbirdRequestsAndLimitTheBody() async throws {
        let router = Router()
        MCPRoutes.add(to: router, service: Self.service, maxBodyBytes: 4096)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let headers: HTTPFields = [.contentType: "application/json", .accept: Self.acceptBoth]
            let list = ByteBuffer(string: #"{"jsonrpc":"2.0","id":"x","method":"tools/list"}"#)
            try await client.execute(uri: "/mcp", method: .post, headers: headers, body: list) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], "application/json")
                let text = String(buffer: response.body)
                XCTAssertTrue(text.contains(#""name":"fetch""#), text)
                XCTAssertTrue(text.contains(#""id":"x""#), text)
            }
            let big = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":""# + String(repeating: "x", count: 5000) + "\"}}")
            try await client.execute(uri: "/mcp", method: .post, headers: headers, body: big) { response in
                XCTAssertEqual(response.status.code, 413)
                XCTAssertTrue(String(buffer: response.body).contains("4096"), String(buffer: response.body))
            }
            try await client.execute(uri: "/mcp", method: .get, headers: [.accept: "text/event-stream"]) { response in
                XCTAssertEqual(response.status, .methodNotAllowed)
                XCTAssertEqual(response.headers[.allow], "POST")
            }
        }
    }

    // MARK: - Limits, deadline, body

    /// An MCP tool call that outlives the request timeout is answered with a tool error.
    func testAToolCallPastTheDeadlineIsAToolError() async throws {
        let result = try await MCPTools.answer(within: .milliseconds(1)) {
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        XCTAssertEqual(errorLine(result)?.contains("took longer than"), true, "\(result)")
        // Work that ends in time gives its result.
        let ok = try await MCPTools.answer(within: .seconds(3600)) { MCPTools.failure("x\ny") }
        XCTAssertEqual(errorLine(ok), "x y")
    }

    /// A busy service (too many questions waiting) is a tool error that says to retry.
    func testABusyServiceIsAToolErrorThatSaysToRetry() async throws {
        let result = try await MCPTools.answer(within: .seconds(3600)) { throw RetrievalError.busy("64 questions are waiting already") }
        let line = try XCTUnwrap(errorLine(result))
        XCTAssertTrue(line.contains("64 questions are waiting") && line.contains("try again"), line)
    }

    /// /mcp of `kbindex serve` takes its limits (k, query length, timeout) from the server's
    /// configuration; the stdio server's defaults are ServerLimits' own.
    func testServeMCPHonoursTheConfiguredLimits() async throws {
        XCTAssertEqual(MCPTools.Limits(), MCPTools.Limits(ServerLimits()))
        var limits = ServerLimits()
        limits.maxK = 3
        limits.maxQueryCharacters = 20
        limits.requestTimeout = .seconds(7)
        let mcp = MCPTools.Limits(limits)
        XCTAssertEqual(mcp.maxK, 3)
        XCTAssertEqual(mcp.maxQueryCharacters, 20)
        XCTAssertEqual(mcp.requestTimeout, .seconds(7))
        let router = Routes.router(service: Self.service, configuration: .init(port: 0, limits: limits), metrics: ServerMetrics())
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let headers: HTTPFields = [.contentType: "application/json", .accept: Self.acceptBoth]
            let call = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"green tea","k":5}}}"#)
            try await client.execute(uri: "/mcp", method: .post, headers: headers, body: call) { response in
                XCTAssertEqual(response.status, .ok)
                let text = String(buffer: response.body)
                XCTAssertTrue(text.contains(#""isError":true"#), text)
                XCTAssertTrue(text.contains("from 1 to 3"), text)
            }
        }
    }
}
