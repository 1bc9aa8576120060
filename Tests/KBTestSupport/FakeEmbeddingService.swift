// A fake embedding service for tests: OpenAI's POST /v1/embeddings and Ollama's POST
// /api/embed on a ThreadedHTTPServer, with a deterministic "model" (each text's vector comes
// from a hash of the text) and faults injected on demand: error statuses with Retry-After,
// hangs, cut answers, resets, bodies of any shape.
import Foundation

/// A loopback embedding server that both APIs can talk to.
///
/// ```swift
/// let service = try FakeEmbeddingService(dimensions: 8)
/// defer { service.stop() }
/// service.inject(.status(429, headers: [("Retry-After", "0")]))   // the next request gets a 429
/// // point a client at service.openAIURL ("http://127.0.0.1:PORT/v1") or service.ollamaURL
/// ```
///
/// Each embedding request takes the next injected fault, if any, before anything else;
/// without one it answers like the API: 401 when `requiredKey` is set and the request's
/// `Authorization` is not `Bearer KEY` (the body echoes the header, as some servers do), 404
/// for a model outside `models`, else the vectors (OpenAI's `data` in reverse order, each with
/// its `index`, when `reverseData`). Vectors are `vector(for:dimensions:)`, not normalized.
public final class FakeEmbeddingService: @unchecked Sendable {
    /// One misbehaviour, for one request.
    public enum Fault: Sendable {
        /// Answer this status, with these headers and this body.
        case status(Int, headers: [(String, String)] = [], body: String = "")
        /// Send nothing for `seconds` (or until the client hangs up).
        case hang(seconds: Double)
        /// Send the correct answer's headers and half of its body, then close.
        case cut
        /// Reset the connection without answering.
        case reset
        /// Answer 200 with exactly this body.
        case body(String)
        /// Answer correctly, but with vectors of this length.
        case dimensions(Int)
        /// Answer correctly, with this JSON text in place of input `index`'s vector.
        case vector(index: Int, json: String)
        /// Answer correctly, but with one vector fewer.
        case dropOne
        /// Answer correctly: lets requests through before the faults queued after it.
        case pass
    }

    public let dimensions: Int
    public let server: ThreadedHTTPServer
    private let lock = NSLock()
    private var faults: [Fault] = []
    private var inputs: [[String]] = []
    private var released = true
    private var hold = 0
    private let gate = NSCondition()
    private var waiting = 0

    /// - Parameters:
    ///   - requiredKey: when set, requests must carry `Authorization: Bearer requiredKey`.
    ///   - models: the model names served (nil: any).
    ///   - reverseData: whether OpenAI answers list `data` last input first (clients must use `index`).
    public init(dimensions: Int = 8, requiredKey: String? = nil, models: Set<String>? = nil, reverseData: Bool = true) throws {
        self.dimensions = dimensions
        let box = Box()
        server = try ThreadedHTTPServer { request in
            guard let service = box.service else { return .respond(status: 503) }
            return service.answer(request, requiredKey: requiredKey, models: models, reverseData: reverseData)
        }
        box.service = self
    }

    /// From now on, embedding requests wait (at most 5 s) until this many are waiting at once,
    /// the first time only, so that a test can see a client's concurrency (0 or 1: no wait).
    public func holdUntilInFlight(_ n: Int) {
        gate.withLock {
            hold = n
            released = n <= 1
        }
    }

    /// Breaks the cycle between the server's handler and the service.
    private final class Box: @unchecked Sendable {
        weak var service: FakeEmbeddingService?
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL of the OpenAI-compatible API.
    public var openAIURL: URL { server.url("/v1") }
    /// `http://127.0.0.1:PORT`: the base URL of the Ollama API.
    public var ollamaURL: URL { server.baseURL }

    /// Queues faults for the next embedding requests, one each, in order.
    /// Drops the faults not used yet.
    public func clearFaults() { lock.withLock { faults.removeAll() } }

    public func inject(_ faults: Fault...) {
        lock.withLock { self.faults += faults }
    }

    /// Faults not used yet.
    public var pendingFaults: Int { lock.withLock { faults.count } }

    /// The `input` of every embedding request that got past authentication, in arrival order.
    public var batches: [[String]] { lock.withLock { inputs } }

    /// Every request, in arrival order.
    public var requests: [ThreadedHTTPServer.Request] { server.requests }

    public func stop() {
        gate.withLock {
            released = true
            gate.broadcast()
        }
        server.stop()
    }

    /// The vector this service gives `text`: a function of the text alone, not normalized
    /// (values in -3..<3).
    public static func vector(for text: String, dimensions: Int) -> [Float] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return (0..<dimensions).map { i in
            var z = h &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(Double(z >> 11) / Double(1 << 53) * 6 - 3)
        }
    }

    /// `vector(for:dimensions:)` scaled to length 1.
    public static func normalizedVector(for text: String, dimensions: Int) -> [Float] {
        let v = vector(for: text, dimensions: dimensions)
        let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        return v.map { Float(Double($0) / norm) }
    }

    // MARK: Answering

    private func answer(_ request: ThreadedHTTPServer.Request, requiredKey: String?, models: Set<String>?,
                        reverseData: Bool) -> ThreadedHTTPServer.Action {
        let ollama: Bool
        switch request.path {
        case "/v1/embeddings": ollama = false
        case "/api/embed": ollama = true
        default: return .respond(status: 404, headers: [("Content-Type", "text/plain")], body: Data("404 page not found".utf8))
        }
        guard request.method == "POST" else { return .respond(status: 405, body: Data("method not allowed".utf8)) }
        let fault: Fault? = lock.withLock { faults.isEmpty ? nil : faults.removeFirst() }

        if let requiredKey, request.header("Authorization") != "Bearer \(requiredKey)" {
            let echoed = request.header("Authorization") ?? "(none)"
            return json(401, #"{"error":{"message":"Incorrect API key provided: \#(escaped(echoed)). You can find your API key at https://example.invalid","type":"invalid_request_error","code":"invalid_api_key"}}"#)
        }
        guard let object = try? JSONSerialization.jsonObject(with: request.body) as? [String: Any],
              let model = object["model"] as? String, let texts = object["input"] as? [String] else {
            return json(400, #"{"error":{"message":"the body must be JSON with 'model' and 'input' (an array of strings)","type":"invalid_request_error"}}"#)
        }
        lock.withLock { inputs.append(texts) }
        if let models, !models.contains(model) {
            return ollama
                ? json(404, #"{"error":"model \"\#(escaped(model))\" not found, try pulling it first"}"#)
                : json(404, #"{"error":{"message":"The model `\#(escaped(model))` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#)
        }
        gate.withLock {
            guard !released else { return }
            waiting += 1
            if waiting >= hold { released = true }
            gate.broadcast()
            let deadline = Date().addingTimeInterval(5)
            while !released && gate.wait(until: deadline) {}
            released = true
            waiting -= 1
        }

        var vectorTexts = texts.map { Self.vector(for: $0, dimensions: dimensions).map { "\($0)" }.joined(separator: ",") }
        switch fault {
        case let .status(status, headers, body)?:
            return .respond(status: status, headers: headers, body: Data(body.utf8))
        case let .hang(seconds)?:
            return .hang(seconds: seconds)
        case .reset?:
            return .reset
        case let .body(text)?:
            return json(200, text)
        case let .dimensions(n)?:
            vectorTexts = texts.map { Self.vector(for: $0, dimensions: n).map { "\($0)" }.joined(separator: ",") }
        case let .vector(index, text)?:
            if vectorTexts.indices.contains(index) { vectorTexts[index] = text }
        case .dropOne?:
            vectorTexts.removeLast()
        case .cut?, .pass?, nil:
            break
        }
        let vectors = vectorTexts.map { $0.hasPrefix("[") || $0.hasPrefix("{") || $0.hasPrefix("\"") || $0 == "null" ? $0 : "[\($0)]" }
        let body: String
        if ollama {
            body = #"{"model":"\#(escaped(model))","embeddings":[\#(vectors.joined(separator: ","))],"total_duration":1}"#
        } else {
            var items = vectors.enumerated().map { #"{"object":"embedding","index":\#($0.offset),"embedding":\#($0.element)}"# }
            if reverseData { items.reverse() }
            body = #"{"object":"list","data":[\#(items.joined(separator: ","))],"model":"\#(escaped(model))","usage":{"prompt_tokens":1,"total_tokens":1}}"#
        }
        if case .cut? = fault {
            let data = Data(body.utf8)
            return .cut(status: 200, headers: [("Content-Type", "application/json")], body: data, after: data.count / 2)
        }
        return json(200, body)
    }

    private func json(_ status: Int, _ text: String) -> ThreadedHTTPServer.Action {
        .respond(status: status, headers: [("Content-Type", "application/json")], body: Data(text.utf8))
    }

    private func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
