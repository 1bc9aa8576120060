import Foundation
import KBCore
import KBRetrieval
import MCP

/// The MCP tools of kbindex over one `RetrievalService`: `search`, `fetch` and `status`, their
/// input (and output) schemas, argument checks and result shapes. Used by the stdio server
/// (`kbindex mcp`) and by `/mcp` of `kbindex serve` alike.
///
/// Results are one JSON text content (what ChatGPT-style connectors read: `search` returns
/// `{"results": [{id, title, text, …}]}`, `fetch` returns `{id, title, text, metadata}`) and the
/// same object as `structuredContent` (what clients that read structured output use).
///
/// A bad argument is a tool error result (`isError`, one line saying what to send), never a
/// protocol error or a crash; so is a search the service refuses (unknown index, damaged index).
public struct MCPTools: Sendable {
    /// What a tool call may ask for, and how long it may take: the numbers of the HTTP API,
    /// taken from `ServerLimits` (`init(_:)`), so that `/mcp` honours the server's configured
    /// limits and the stdio server (`init()`) has the HTTP API's defaults.
    public struct Limits: Sendable, Equatable {
        /// Longest query, in characters.
        public var maxQueryCharacters: Int
        /// Largest `k`.
        public var maxK: Int
        /// Most `path` globs, and the longest glob in characters.
        public var maxPathGlobs: Int, maxGlobCharacters: Int
        /// Most neighbouring chunks on either side that `fetch` adds.
        public var maxNeighbours: Int
        /// Longest index name or id, in characters.
        public var maxNameCharacters: Int
        /// How long a tool call may run before it is answered with a tool error (`isError`).
        public var requestTimeout: Duration
        /// Characters of a chunk's text that a search result shows (`fetch` has it all).
        public var snippetCharacters = 400

        /// The limits of `ServerLimits()`.
        public init() { self.init(ServerLimits()) }

        /// The tool-call limits of `limits` (the server's configuration).
        public init(_ limits: ServerLimits) {
            maxQueryCharacters = limits.maxQueryCharacters
            maxK = limits.maxK
            maxPathGlobs = limits.maxPathGlobs
            maxGlobCharacters = limits.maxGlobCharacters
            maxNeighbours = limits.maxNeighbours
            maxNameCharacters = limits.maxNameCharacters
            requestTimeout = limits.requestTimeout
        }
    }

    public let service: RetrievalService
    public let limits: Limits

    public init(service: RetrievalService, limits: Limits = .init()) {
        self.service = service
        self.limits = limits
    }

    /// The tool names, in the order `tools/list` gives them.
    public static let names = ["search", "fetch", "status"]

    // MARK: - Tool definitions

    /// The three tools with their schemas. The `index` argument lists the served index names
    /// (an `enum`) so that a model picks a valid one. O(number of indexes).
    public var definitions: [Tool] {
        let names = service.indexNames
        var index: [String: Value] = [
            "type": "string",
            "description": .string(names.count == 1
                ? "The index to search (only one is served: \(names[0])); may be left out."
                : "The index to search, one of: \(names.joined(separator: ", ")). Required: several indexes are served."),
        ]
        index["enum"] = .array(names.map { .string($0) })
        let readOnly = Tool.Annotations(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false)
        return [
            Tool(
                name: "search",
                title: "Search the knowledge base",
                description: """
                    Searches the local knowledge base (documents indexed by kbindex) for the passages \
                    that best answer a question, by meaning and by keywords (hybrid search). Returns \
                    {"results": [{id, title, text, path, line_start, line_end, heading, score, rank}]} \
                    (page and page_end instead of the lines for a PDF, paragraph_start and paragraph_end \
                    for DOCX, ODT and EPUB): text is the start of each passage; call fetch with an id \
                    for the whole passage.
                    """,
                inputSchema: .object([
                    "type": "object",
                    "properties": .object([
                        "query": .object([
                            "type": "string", "minLength": 1, "maxLength": .int(limits.maxQueryCharacters),
                            "description": "The question or keywords, in natural language (e.g. \"how do I rotate the logs?\").",
                        ]),
                        "k": .object([
                            "type": "integer", "minimum": 1, "maximum": .int(limits.maxK), "default": 5,
                            "description": .string("How many passages to return (1 to \(limits.maxK), default 5)."),
                        ]),
                        "mode": .object([
                            "type": "string", "enum": ["hybrid", "vector", "lexical"],
                            "description": "hybrid (default: meaning and keywords fused), vector (meaning only) or lexical (BM25 keywords only; good for exact identifiers such as os.path.join).",
                        ]),
                        "path": .object([
                            "type": "array", "maxItems": .int(limits.maxPathGlobs),
                            "items": .object(["type": "string", "maxLength": .int(limits.maxGlobCharacters)]),
                            "description": "Only documents whose path matches one of these globs, as in .gitignore (e.g. [\"*.md\"] or [\"docs/*\"]); relative to the indexed folder. A single string is accepted too.",
                        ]),
                        "index": .object(index),
                    ]),
                    "required": ["query"],
                    "additionalProperties": false,
                ]),
                annotations: readOnly,
                outputSchema: Self.searchOutputSchema
            ),
            Tool(
                name: "fetch",
                title: "Fetch a passage",
                description: """
                    Returns the whole passage with the id that search gave: {id, title, text, metadata: \
                    {index, generation, path, line_start, line_end (or page, page_end / paragraph_start, \
                    paragraph_end, as in search), heading, chunks, document}}. With \
                    neighbours > 0, text also holds that many passages before and after it in the same \
                    document (context for an answer).
                    """,
                inputSchema: .object([
                    "type": "object",
                    "properties": .object([
                        "id": .object([
                            "type": "string", "minLength": 1, "maxLength": .int(limits.maxNameCharacters * 2 + 1),
                            "description": "A result id from search.",
                        ]),
                        "neighbours": .object([
                            "type": "integer", "minimum": 0, "maximum": .int(limits.maxNeighbours), "default": 0,
                            "description": .string("How many passages before and after it to add (0 to \(limits.maxNeighbours), default 0)."),
                        ]),
                        "index": .object(index.merging(["description": "The index the id comes from; may be left out (the id names it when several are served)."]) { $1 }),
                    ]),
                    "required": ["id"],
                    "additionalProperties": false,
                ]),
                annotations: readOnly,
                outputSchema: Self.fetchOutputSchema
            ),
            Tool(
                name: "status",
                title: "Knowledge base status",
                description: "Describes the served indexes (documents, chunks, generation, whether keyword search is available) and the embedding model.",
                inputSchema: .object(["type": "object", "properties": .object([:]), "additionalProperties": false]),
                annotations: readOnly
            ),
        ]
    }

    static let searchOutputSchema: Value = .object([
        "type": "object",
        "properties": .object([
            "results": .object([
                "type": "array",
                "items": .object([
                    "type": "object",
                    "properties": .object([
                        "id": ["type": "string"], "title": ["type": "string"], "text": ["type": "string"],
                        "path": ["type": "string"], "line_start": ["type": "integer"], "line_end": ["type": "integer"],
                        "page": ["type": "integer"], "page_end": ["type": "integer"],
                        "paragraph_start": ["type": "integer"], "paragraph_end": ["type": "integer"],
                        "heading": ["type": "array", "items": ["type": "string"]],
                        "score": ["type": "number"], "rank": ["type": "integer"],
                    ]),
                    "required": ["id", "title", "text", "path", "heading", "score", "rank"],
                    "anyOf": Self.oneLocation,
                ]),
            ]),
            "index": ["type": "string"], "generation": ["type": "integer"], "mode": ["type": "string"],
        ]),
        "required": ["results", "index", "generation", "mode"],
    ])

    /// A hit or passage has one pair of location keys, by its unit (`SourceLocationKeys`).
    static let oneLocation: Value = .array(LocationUnit.allCases.map { unit in
        let (s, e) = SourceLocationKeys.keys(unit)
        return .object(["required": .array([.string(s.rawValue), .string(e.rawValue)])])
    })

    static let fetchOutputSchema: Value = .object([
        "type": "object",
        "properties": .object([
            "id": ["type": "string"], "title": ["type": "string"], "text": ["type": "string"],
            "metadata": .object([
                "type": "object",
                "properties": .object([
                    "index": ["type": "string"], "generation": ["type": "integer"], "path": ["type": "string"],
                    "line_start": ["type": "integer"], "line_end": ["type": "integer"],
                    "page": ["type": "integer"], "page_end": ["type": "integer"],
                    "paragraph_start": ["type": "integer"], "paragraph_end": ["type": "integer"],
                    "heading": ["type": "array", "items": ["type": "string"]],
                    "chunks": ["type": "array", "items": ["type": "string"]],
                    "document": ["type": "object"],
                ]),
                "required": ["index", "generation", "path", "heading", "chunks", "document"],
                "anyOf": Self.oneLocation,
            ]),
        ]),
        "required": ["id", "title", "text", "metadata"],
    ])

    // MARK: - Calls

    /// A tool argument that cannot be used: the one-line message of an `isError` result.
    struct ArgumentError: Error { let message: String }

    /// Runs tool `name`. Bad arguments and refused requests come back as an `isError` result
    /// with one line; an unknown tool name is a protocol error (`invalidParams`), as the MCP
    /// specification asks. A call still running after `limits.requestTimeout` is abandoned and
    /// answered with an `isError` result. Complexity: that of the search or chunk lookup.
    public func call(_ name: String, arguments: [String: Value]?) async throws -> CallTool.Result {
        let arguments = arguments ?? [:]
        return try await Self.answer(within: limits.requestTimeout) { [self] in
            switch name {
            case "search": return try await search(arguments)
            case "fetch": return try fetch(arguments)
            case "status": return try status(arguments)
            default:
                throw MCPError.invalidParams("unknown tool '\(SearchHit.shortened(name, to: 64))': the tools are \(Self.names.joined(separator: ", "))")
            }
        }
    }

    /// The result of `work`, run under `withDeadline(timeout)`: its failures (a bad argument,
    /// a refused search, the timeout, cancellation) become `isError` results with one line;
    /// an `MCPError` (protocol error) is rethrown.
    static func answer(within timeout: Duration, _ work: @escaping @Sendable () async throws -> CallTool.Result) async throws -> CallTool.Result {
        do {
            return try await withDeadline(timeout, work)
        } catch let error as ArgumentError {
            return failure(error.message)
        } catch let error as RetrievalError {
            return failure(message(for: error))
        } catch let error as MCPError {
            throw error
        } catch is RequestTimeout {
            return failure("the tool call took longer than \(timeout) and was abandoned: ask for fewer hits (a smaller 'k') or fewer neighbours, or try again")
        } catch is CancellationError {
            return failure("the tool call was cancelled (the server is shutting down)")
        } catch {
            return failure("the search failed: \(error)")
        }
    }

    /// `search`: one question against one index.
    func search(_ args: [String: Value]) async throws -> CallTool.Result {
        try Self.onlyKnown(args, ["query", "k", "mode", "path", "index"])
        guard let query = try Self.string(args, "query", max: limits.maxQueryCharacters),
              !query.allSatisfy(\.isWhitespace) else {
            throw ArgumentError(message: "'query' is required: give the question or keywords to search for")
        }
        let k = try Self.integer(args, "k", in: 1...limits.maxK) ?? 5
        var mode: SearchMode?
        if let m = try Self.string(args, "mode", max: 16) {
            guard let parsed = SearchMode(rawValue: m) else {
                throw ArgumentError(message: "'mode' must be one of hybrid, vector, lexical, not '\(SearchHit.shortened(m, to: 32))'")
            }
            mode = parsed
        }
        let paths = try Self.strings(args, "path", maxItems: limits.maxPathGlobs, maxCharacters: limits.maxGlobCharacters) ?? []
        let index = try Self.string(args, "index", max: limits.maxNameCharacters)
        guard let result = try await service.search([SearchQuery(query, k: k, mode: mode, paths: paths)], index: index).first else {
            throw ArgumentError(message: "the search returned no answer")
        }
        let qualify = service.indexNames.count > 1
        let results: [Value] = result.hits.map { hit in
            .object([
                "id": .string(qualify ? Self.qualified(hit.id, index: result.index) : hit.id),
                "title": .string(hit.title),
                "text": .string(Self.snippet(hit.text, limits.snippetCharacters)),
                "path": .string(hit.path),
                "heading": .array(hit.heading.map { .string($0) }),
                "score": .double(hit.score.isFinite ? hit.score : 0),
                "rank": .int(hit.rank),
            ].merging(Self.location(hit.unit, hit.lineStart, hit.lineEnd)) { a, _ in a })
        }
        return Self.success(.object([
            "results": .array(results),
            "index": .string(result.index),
            "generation": .int(result.generation),
            "mode": .string(result.mode.rawValue),
        ]))
    }

    /// A chunk's place as the JSON API writes it: `line_start`/`line_end`, `page`/`page_end`
    /// or `paragraph_start`/`paragraph_end` (`SourceLocationKeys`).
    static func location(_ unit: LocationUnit, _ start: Int, _ end: Int) -> [String: Value] {
        let (s, e) = SourceLocationKeys.keys(unit)
        return [s.rawValue: .int(start), e.rawValue: .int(end)]
    }

    /// `fetch`: the whole chunk `id`, with `neighbours` chunks either side in `text`.
    func fetch(_ args: [String: Value]) throws -> CallTool.Result {
        try Self.onlyKnown(args, ["id", "neighbours", "index"])
        guard let given = try Self.string(args, "id", max: limits.maxNameCharacters * 2 + 1), !given.isEmpty else {
            throw ArgumentError(message: "'id' is required: give an id that search returned")
        }
        let neighbours = try Self.integer(args, "neighbours", in: 0...limits.maxNeighbours) ?? 0
        var index = try Self.string(args, "index", max: limits.maxNameCharacters)
        var id = given
        // "NAME:ID", as search gives ids when several indexes are served. Chunk ids have no ':'.
        if let colon = given.lastIndex(of: ":") {
            let name = String(given[..<colon])
            if let index, index != name {
                throw ArgumentError(message: "the id names index '\(SearchHit.shortened(name, to: 64))' but 'index' is '\(SearchHit.shortened(index, to: 64))'")
            }
            index = name
            id = String(given[given.index(after: colon)...])
        }
        let context = try service.chunk(id: id, index: index, neighbours: neighbours)
        let chunks = context.before + [context.chunk] + context.after
        let qualify = service.indexNames.count > 1
        let document = context.document
        return Self.success(.object([
            "id": .string(given),
            "title": .string(document.title),
            "text": .string(chunks.map(\.text).joined(separator: "\n\n")),
            "metadata": .object([
                "index": .string(context.index),
                "generation": .int(context.generation),
                "path": .string(document.path),
                "heading": .array(context.chunk.heading.map { .string($0) }),
                "ordinal": .int(context.chunk.ordinal),
                "chunks": .array(chunks.map { .string(qualify ? Self.qualified($0.id, index: context.index) : $0.id) }),
                "document": .object([
                    "path": .string(document.path),
                    "title": .string(document.title),
                    "bytes": .int(document.bytes),
                    "modified": .string(document.modified),
                    "sha256": .string(document.sha256),
                    "chunks": .int(document.chunks),
                ]),
            ].merging(Self.location(context.chunk.unit, chunks.first?.lineStart ?? context.chunk.lineStart,
                                     chunks.last?.lineEnd ?? context.chunk.lineEnd)) { a, _ in a }),
        ]))
    }

    /// `status`: the service's info (version, model, indexes), as `GET /v1/info` has it.
    func status(_ args: [String: Value]) throws -> CallTool.Result {
        try Self.onlyKnown(args, [])
        let info = service.info()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(info)
        let value = try JSONDecoder().decode(Value.self, from: data)
        return Self.success(value)
    }

    // MARK: - Results

    /// A result whose text content is `value` as JSON, also given as structured content.
    static func success(_ value: Value) -> CallTool.Result {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return CallTool.Result(content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: Optional(value), isError: false)
    }

    /// A tool error: one line (control characters replaced), `isError` set.
    static func failure(_ message: String) -> CallTool.Result {
        CallTool.Result(content: [.text(text: APIError.oneLine(message), annotations: nil, _meta: nil)], isError: true)
    }

    /// What a client reads for a refused request: the library's line, with what to do.
    static func message(for error: RetrievalError) -> String {
        switch error {
        case .indexNotNamed:
            return "\(error) with the 'index' argument"
        case .unknownChunk:
            return "\(error): search again for current ids (ids change when a document changes)"
        case .lexicalUnavailable:
            return "\(error): use mode \"vector\", or rebuild the index with 'kbindex build --rebuild'"
        case .damaged, .openFailed:
            return "\(error): 'kbindex verify' checks the index and 'kbindex build' repairs it"
        case .busy:
            return "\(error): try again in a moment"
        default:
            return "\(error)"
        }
    }

    // MARK: - Arguments

    static func onlyKnown(_ args: [String: Value], _ known: [String]) throws {
        if let unknown = args.keys.sorted().first(where: { !known.contains($0) }) {
            let expected = known.isEmpty ? "this tool takes no arguments" : "the arguments are \(known.joined(separator: ", "))"
            throw ArgumentError(message: "unknown argument '\(SearchHit.shortened(unknown, to: 64))': \(expected)")
        }
    }

    /// A string argument (null counts as absent) of at most `max` characters.
    static func string(_ args: [String: Value], _ name: String, max: Int) throws -> String? {
        guard let v = args[name], !v.isNull else { return nil }
        guard case .string(let s) = v else { throw ArgumentError(message: "'\(name)' must be a string, not \(kind(of: v))") }
        if s.count > max { throw ArgumentError(message: "'\(name)' is longer than \(max) characters") }
        return s
    }

    /// An integer argument in `range` (a number with no fraction counts, e.g. 5.0).
    static func integer(_ args: [String: Value], _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = args[name], !v.isNull else { return nil }
        let n: Int
        switch v {
        case .int(let i): n = i
        case .double(let d) where d.rounded() == d && abs(d) < 1e15: n = Int(d)
        default: throw ArgumentError(message: "'\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound), not \(kind(of: v))")
        }
        guard range.contains(n) else {
            throw ArgumentError(message: "'\(name)' must be from \(range.lowerBound) to \(range.upperBound), got \(n)")
        }
        return n
    }

    /// An array of strings, or one string (as a one-element array).
    static func strings(_ args: [String: Value], _ name: String, maxItems: Int, maxCharacters: Int) throws -> [String]? {
        guard let v = args[name], !v.isNull else { return nil }
        let items: [Value]
        switch v {
        case .string: items = [v]
        case .array(let a): items = a
        default: throw ArgumentError(message: "'\(name)' must be an array of strings, not \(kind(of: v))")
        }
        if items.count > maxItems { throw ArgumentError(message: "'\(name)' has \(items.count) items, more than the limit of \(maxItems)") }
        return try items.enumerated().map { i, item in
            guard case .string(let s) = item else { throw ArgumentError(message: "'\(name)[\(i)]' must be a string, not \(kind(of: item))") }
            if s.count > maxCharacters { throw ArgumentError(message: "'\(name)[\(i)]' is longer than \(maxCharacters) characters") }
            return s
        }
    }

    static func kind(of v: Value) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .data: return "data"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    // MARK: - Text

    /// "NAME:ID": a chunk id that names its index, for `fetch` when several are served.
    static func qualified(_ id: String, index: String) -> String { "\(index):\(id)" }

    /// The first `limit` characters of `text` with whitespace runs collapsed, "…" where cut.
    /// O(limit).
    static func snippet(_ text: String, _ limit: Int) -> String {
        var out = "", count = 0, pendingSpace = false
        for ch in text {
            if ch.isWhitespace { pendingSpace = !out.isEmpty; continue }
            if count + (pendingSpace ? 2 : 1) > limit { return out + "…" }
            if pendingSpace { out.append(" "); count += 1; pendingSpace = false }
            out.append(ch)
            count += 1
        }
        return out
    }
}
