import Foundation
import Hummingbird
import KBRetrieval

/// What each route does, over one `RetrievalService`. Handlers read only what the request
/// carries and the service's opened indexes: never a file named by a client.
struct Handlers: Sendable {
    let service: RetrievalService
    let limits: ServerLimits
    let metrics: ServerMetrics

    // MARK: POST /v1/search

    /// The answer to POST /v1/search: one result per question, in the order asked.
    struct SearchResponse: Encodable {
        let results: [SearchResult]
        let took_ms: Double
    }

    func search(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let body = try await Self.body(request, limit: limits.maxBodyBytes)
        let parsed = try SearchRequest(try JSONValue.object(from: body, example: SearchRequest.example), limits: limits)
        let service = self.service
        let results = try await withDeadline(limits.requestTimeout) {
            try await service.search(parsed.queries, index: parsed.index)
        }
        return try JSON.response(SearchResponse(results: results, took_ms: Self.milliseconds(since: start)))
    }

    // MARK: GET /v1/chunks/{id}

    func chunk(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        if id.count > limits.maxNameCharacters {
            throw APIError.badRequest("the chunk id '\(SearchHit.shortened(id, to: 64))' is longer than \(limits.maxNameCharacters) characters: use an id that /v1/search returned")
        }
        let query = try QueryParameters(request.uri.queryParameters, known: ["index", "neighbours"])
        let index = try query.string("index", maxCharacters: limits.maxNameCharacters)
        let neighbours = try query.integer("neighbours", in: 0...limits.maxNeighbours) ?? 1
        let service = self.service
        let context = try await withDeadline(limits.requestTimeout) {
            try service.chunk(id: id, index: index, neighbours: neighbours)
        }
        return try JSON.response(context)
    }

    // MARK: GET /v1/info, /healthz, /metrics, /openapi.json

    func info(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        _ = try QueryParameters(request.uri.queryParameters, known: [])
        return try JSON.response(service.info())
    }

    struct Health: Encodable { let status: String }

    func health(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        try JSON.response(Health(status: "ok"))
    }

    func metricsText(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        let text = metrics.exposition(service.info())
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func openAPI(_ request: Request, _ context: BasicRequestContext) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
    }

    // MARK: POST /v1/embeddings (OpenAI's shape)

    struct EmbeddingsResponse: Encodable {
        struct Item: Encodable {
            let object = "embedding"
            let index: Int
            let embedding: Embedding
        }
        /// An array of floats, or base64 of little-endian float32 (`encoding_format: base64`).
        enum Embedding: Encodable {
            case floats([Float]), base64(String)
            func encode(to encoder: Encoder) throws {
                var c = encoder.singleValueContainer()
                switch self {
                case .floats(let v): try c.encode(v)
                case .base64(let s): try c.encode(s)
                }
            }
        }
        struct Usage: Encodable { let prompt_tokens: Int, total_tokens: Int }
        let object = "list"
        let data: [Item]
        let model: String
        let usage: Usage
    }

    func embeddings(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = try await Self.body(request, limit: limits.maxBodyBytes)
        let parsed = try EmbeddingsRequest(try JSONValue.object(from: body, example: EmbeddingsRequest.example), limits: limits)
        let model = service.model
        if let asked = parsed.model, !Self.names(asked, model: model.name) {
            throw APIError(.notFound, "model_not_found", "this server embeds with '\(model.name)', not '\(SearchHit.shortened(asked, to: 64))': send \"model\": \"\(model.name)\" or leave it out")
        }
        if let d = parsed.dimensions, d != model.dimensions {
            throw APIError.badRequest("'\(model.name)' makes \(model.dimensions)-dimensional vectors, not \(d): leave 'dimensions' out")
        }
        let service = self.service, inputs = parsed.inputs
        let (vectors, tokens) = try await withDeadline(limits.requestTimeout) { try await service.embed(inputs) }
        let items = vectors.enumerated().map { i, v in
            EmbeddingsResponse.Item(index: i, embedding: parsed.base64 ? .base64(Self.base64(v)) : .floats(v))
        }
        return try JSON.response(EmbeddingsResponse(data: items, model: model.name, usage: .init(prompt_tokens: tokens, total_tokens: tokens)))
    }

    /// Whether a client's `model` names the served model: its name, or a path ending in it
    /// ("sentence-transformers/all-MiniLM-L6-v2"), letter case aside.
    static func names(_ asked: String, model: String) -> Bool {
        let a = asked.lowercased(), m = model.lowercased()
        return a == m || a.hasSuffix("/" + m)
    }

    /// Little-endian float32s in base64, as OpenAI's `encoding_format: base64`.
    static func base64(_ v: [Float]) -> String {
        var data = Data(capacity: v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data.base64EncodedString()
    }

    // MARK: Helpers

    /// The request body, at most `limit` bytes: a larger one is refused before it is read when
    /// Content-Length says so, else as soon as it passes the limit (413 either way); a body
    /// that cannot be read whole (cut short, reset) is 400.
    static func body(_ request: Request, limit: Int) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw APIError.tooLarge("the body has \(length) bytes, more than the limit of \(limit)")
        }
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPResponseError where error.status == .contentTooLarge {
            throw APIError.tooLarge("the body is larger than the limit of \(limit) bytes")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // The client stopped sending before Content-Length (or reset): its fault, not ours.
            throw APIError.badRequest("the request body could not be read: send it whole, with a correct Content-Length")
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return (ms * 1000).rounded() / 1000
    }
}
