import Foundation
import KBEmbed
import KBHTTP

/// One remote service as requests see it: where to post, what to send, how to read the
/// answer, how to retry. Immutable, shared by the threads of one `embed` call.
struct RemoteSession: Sendable {
    let provider: EmbeddingProvider
    let model: String
    let endpoint: URL
    /// `endpoint` as errors show it.
    let shownEndpoint: String
    let apiKey: String?
    /// The environment variable the key came from (nil: none sent, or not from the environment).
    let keySource: String?
    let timeout: Double
    let retries: Int
    let responseLimit: Int
    let client: HTTPClient
    let policy: RetryPolicy
    let onRetry: (@Sendable (String) -> Void)?

    /// The statuses retried: the server is busy or failing for a moment.
    static let retriedStatuses: Set<Int> = [408, 429, 500, 502, 503, 504]

    /// The L2-normalized vectors of `texts` (already prompted), retrying what can be retried.
    ///
    /// - Parameters:
    ///   - offset: the index of `texts[0]` in the caller's whole list, for messages.
    ///   - dimensions: the length every vector must have (nil: the first vector's).
    ///   - retryConnect: whether a refused connection is retried (not for the first request,
    ///     where it most likely means a wrong URL).
    ///   - shouldStop: polled while waiting to retry; true ends the wait with `CancellationError`.
    /// - Throws: `RemoteEmbedError` (scrubbed of the key), `CancellationError`.
    func embed(_ texts: [String], offset: Int, dimensions: Int?, retryConnect: Bool,
               shouldStop: @escaping @Sendable () -> Bool) throws -> [[Float]] {
        do {
            return try attempt(texts, offset: offset, dimensions: dimensions, retryConnect: retryConnect, shouldStop: shouldStop)
        } catch let error as RemoteEmbedError {
            throw error.scrubbing(apiKey)
        }
    }

    /// `embed` for a batch after the first request, which a server that finds it too large
    /// (413) gets again as two halves, down to single texts.
    func embedSplitting(_ texts: [String], offset: Int, dimensions: Int, shouldStop: @escaping @Sendable () -> Bool) throws -> [[Float]] {
        do {
            return try embed(texts, offset: offset, dimensions: dimensions, retryConnect: true, shouldStop: shouldStop)
        } catch RemoteEmbedError.rejected(413, _, _) where texts.count > 1 {
            let half = texts.count / 2
            let first = try embedSplitting(Array(texts[..<half]), offset: offset, dimensions: dimensions, shouldStop: shouldStop)
            if shouldStop() { throw CancellationError() }
            return first + (try embedSplitting(Array(texts[half...]), offset: offset + half, dimensions: dimensions, shouldStop: shouldStop))
        }
    }

    private func attempt(_ texts: [String], offset: Int, dimensions: Int?, retryConnect: Bool,
                         shouldStop: @escaping @Sendable () -> Bool) throws -> [[Float]] {
        let body = requestBody(texts)
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("Accept", "application/json"),
        ]
        if let apiKey { headers.append(("Authorization", "Bearer \(apiKey)")) }
        var retry = 0
        while true {
            // What went wrong this time, if retrying may help, and when the server asks to retry.
            var failure: String
            var retryAfter: Double? = nil
            do {
                let r = try client.post(url: endpoint, headers: headers, body: body, timeout: timeout, limit: responseLimit)
                if (200..<300).contains(r.status) {
                    return try vectors(from: r.body, count: texts.count, offset: offset, dimensions: dimensions)
                }
                guard Self.retriedStatuses.contains(r.status) else {
                    throw refusal(status: r.status, headers: r.headers, body: r.body)
                }
                failure = "HTTP \(r.status)" + (serverMessage(r.body).map { " (the server says '\($0)')" } ?? "")
                if let value = r.headers["Retry-After"], let asked = RetryPolicy.retryAfter(value) {
                    retryAfter = asked
                    if asked > policy.retryAfterCap {
                        failure += "; it asked to wait \(Self.seconds(asked)) s (Retry-After), kbindex waits at most \(Self.seconds(policy.retryAfterCap)) s"
                    }
                }
            } catch let error as HTTPError {
                switch error {
                case let .couldNotConnect(_, detail):
                    guard retryConnect else { throw RemoteEmbedError.couldNotConnect(url: shownEndpoint, detail: shownText(detail)) }
                    failure = "could not connect (\(shownText(detail)))"
                case let .timedOut(seconds, bytes, _):
                    failure = "no complete answer within \(Self.seconds(seconds)) s" + (bytes > 0 ? " (\(bytes) bytes arrived)" : "")
                case let .interrupted(bytes, _, detail):
                    failure = "the connection dropped after \(bytes) bytes of the answer (\(shownText(detail)))"
                case let .stalled(bytes, _, detail):
                    failure = "the answer stalled after \(bytes) bytes (\(shownText(detail)))"
                case let .bodyTooLarge(limit, _):
                    throw RemoteEmbedError.malformedResponse(url: shownEndpoint, detail: "the answer is larger than \(limit) bytes")
                case let .transport(code, _, detail) where code == 55 || code == 16 || code == 92:
                    // Send failures (a connection reset while the request went out), HTTP/2 stream errors.
                    failure = "the connection failed (\(shownText(detail)))"
                case .status, .file, .transport, .invalidRequest, .tlsCertificate:
                    throw RemoteEmbedError.couldNotConnect(url: shownEndpoint, detail: shownText(error.description))
                }
            }
            if retry >= retries {
                throw RemoteEmbedError.gaveUp(attempts: retry + 1, url: shownEndpoint, last: failure)
            }
            let delay = retryAfter.map { min($0, policy.retryAfterCap) } ?? policy.backoff(retry: retry)
            onRetry?("\(failure) from \(shownEndpoint): retry \(retry + 1) of \(retries) in \(Self.seconds(delay)) s".scrubbed(of: apiKey))
            if shouldStop() { throw CancellationError() }
            policy.sleep(delay, shouldStop)
            if shouldStop() { throw CancellationError() }
            retry += 1
        }
    }

    /// Seconds as messages show them: whole seconds when whole, else one decimal.
    static func seconds(_ s: Double) -> String {
        if s == s.rounded() && s < 1e9 { return String(Int(s)) }
        return String(format: "%.1f", s)
    }

    // MARK: The two APIs

    func requestBody(_ texts: [String]) -> Data {
        struct OpenAIRequest: Encodable {
            let model: String
            let input: [String]
            let encoding_format = "float"
        }
        struct OllamaRequest: Encodable {
            let model: String
            let input: [String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        // Encoding strings and a string array cannot fail.
        switch provider {
        case .ollama: return (try? encoder.encode(OllamaRequest(model: model, input: texts))) ?? Data()
        default: return (try? encoder.encode(OpenAIRequest(model: model, input: texts))) ?? Data()
        }
    }

    /// The vectors of a 2xx answer, in input order, checked and L2-normalized.
    func vectors(from body: Data, count: Int, offset: Int, dimensions: Int?) throws -> [[Float]] {
        let api = provider == .ollama ? "Ollama's /api/embed" : "an OpenAI embeddings API"
        func malformed(_ detail: String) -> RemoteEmbedError {
            .malformedResponse(url: shownEndpoint, detail: detail)
        }
        let root: JSONValue
        do {
            root = try parseJSON(body)
        } catch let e as JSONSyntaxError {
            // Scrubbed before it is cut: a key that crosses the cut must not leave its start behind.
            let room = 60 + (apiKey?.utf8.count ?? 0)
            let start = shownText(String(decoding: body.prefix(room), as: UTF8.self).scrubbed(of: apiKey), limit: 60)
            throw malformed("the answer is not JSON (\(e.message) at byte \(e.offset)): '\(start)'")
        }
        guard case .object = root else { throw malformed("the answer is \(root.kind), not \(api)'s JSON object") }
        var raw: [JSONValue?] = Array(repeating: nil, count: count)
        switch provider {
        case .ollama:
            guard case let .array(items)? = root["embeddings"] else {
                throw malformed(missing("embeddings", in: root, api: api))
            }
            guard items.count == count else { throw RemoteEmbedError.wrongCount(url: shownEndpoint, sent: count, received: items.count) }
            for (i, item) in items.enumerated() { raw[i] = item }
        default:
            guard case let .array(items)? = root["data"] else {
                throw malformed(missing("data", in: root, api: api))
            }
            guard items.count == count else { throw RemoteEmbedError.wrongCount(url: shownEndpoint, sent: count, received: items.count) }
            for (position, item) in items.enumerated() {
                guard case .object = item else { throw malformed("'data[\(position)]' is \(item.kind), not an object") }
                var index = position
                switch item["index"] {
                case nil, .null?:
                    break
                case let .number(n)?:
                    guard n == n.rounded(), n >= 0, n < Double(count) else {
                        throw malformed("'data[\(position)].index' is \(n), outside 0...\(count - 1)")
                    }
                    index = Int(n)
                case let other?:
                    throw malformed("'data[\(position)].index' is \(other.kind), not a number")
                }
                guard raw[index] == nil else { throw malformed("'data' has index \(index) twice") }
                guard let embedding = item["embedding"] else { throw malformed("'data[\(position)]' has no 'embedding'") }
                raw[index] = embedding
            }
        }
        var out: [[Float]] = []
        out.reserveCapacity(count)
        var expected = dimensions
        for (i, value) in raw.enumerated() {
            let field = provider == .ollama ? "embeddings[\(i)]" : "the embedding of input \(i)"
            guard let value else { throw malformed("\(field) is missing") }
            let v = try vector(value, field: field, input: offset + i)
            if let e = expected, v.count != e {
                throw RemoteEmbedError.wrongDimensions(url: shownEndpoint, expected: e, got: v.count, input: offset + i)
            }
            expected = v.count
            out.append(v)
        }
        return out
    }

    /// One vector from its JSON (an array of numbers, or base64 of little-endian float32 from
    /// a server that answers `encoding_format` with its default), L2-normalized.
    private func vector(_ value: JSONValue, field: String, input: Int) throws -> [Float] {
        var v: [Float]
        switch value {
        case let .array(items):
            v = []
            v.reserveCapacity(items.count)
            for (k, item) in items.enumerated() {
                switch item {
                case let .number(d):
                    let f = Float(d)
                    guard f.isFinite else {
                        throw RemoteEmbedError.badVector(url: shownEndpoint, input: input, reason: "not finite: value \(k) is \(d) (beyond float32's range)")
                    }
                    v.append(f)
                case .null:
                    throw RemoteEmbedError.badVector(url: shownEndpoint, input: input, reason: "not finite: value \(k) is null (NaN or infinity where JSON has no number)")
                default:
                    throw RemoteEmbedError.malformedResponse(url: shownEndpoint, detail: "value \(k) of \(field) is \(item.kind), not a number")
                }
            }
        case let .string(text):
            guard let data = Data(base64Encoded: text), data.count % 4 == 0 else {
                throw RemoteEmbedError.malformedResponse(url: shownEndpoint, detail: "\(field) is a string that is not base64 float32")
            }
            v = data.withUnsafeBytes { raw in
                (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            if let k = v.firstIndex(where: { !$0.isFinite }) {
                throw RemoteEmbedError.badVector(url: shownEndpoint, input: input, reason: "not finite: value \(k) is \(v[k])")
            }
        default:
            throw RemoteEmbedError.malformedResponse(url: shownEndpoint, detail: "\(field) is \(value.kind), not an array of numbers")
        }
        guard !v.isEmpty else { throw RemoteEmbedError.badVector(url: shownEndpoint, input: input, reason: "empty") }
        var sum = 0.0
        for x in v { sum += Double(x) * Double(x) }
        guard sum > 0 else { throw RemoteEmbedError.badVector(url: shownEndpoint, input: input, reason: "all zeros (it has no direction)") }
        let scale = 1 / sum.squareRoot()
        for k in v.indices { v[k] = Float(Double(v[k]) * scale) }
        return v
    }

    /// Why a 2xx answer lacks its main field: the server's error text when it put one there.
    private func missing(_ name: String, in root: JSONValue, api: String) -> String {
        if let message = errorText(root) {
            return "no '\(name)' in the answer; the server says '\(shownText(message.scrubbed(of: apiKey)))'"
        }
        return "no '\(name)' array in the answer (is this \(api)?)"
    }

    // MARK: Error answers

    /// The error for a status that retrying will not fix.
    func refusal(status: Int, headers: HTTPHeaders, body: Data) -> RemoteEmbedError {
        let message = serverMessage(body)
        switch status {
        case 401, 403:
            let variables = RemoteEmbedder.keyVariables(for: provider).joined(separator: " or ")
            return .unauthorized(status: status, url: shownEndpoint, keySource: apiKey == nil ? nil : (keySource ?? "the configuration"),
                                 variables: variables, message: message)
        case 404:
            if mentionsMissingModel(body) {
                return .modelNotFound(provider: provider, model: shownText(model, limit: 100), status: status, url: shownEndpoint, message: message)
            }
            return .notFound(provider: provider, url: shownEndpoint, message: message)
        case 300..<400:
            let location = headers["Location"].map { shownText($0.scrubbed(of: apiKey)) }
            return .redirected(status: status, url: shownEndpoint, location: location)
        default:
            if (400..<500).contains(status), mentionsMissingModel(body) {
                return .modelNotFound(provider: provider, model: shownText(model, limit: 100), status: status, url: shownEndpoint, message: message)
            }
            return .rejected(status: status, url: shownEndpoint, message: message)
        }
    }

    /// Whether an error answer says the model does not exist (OpenAI's `model_not_found`
    /// code, Ollama's "model \"x\" not found, try pulling it first", and their kin).
    private func mentionsMissingModel(_ body: Data) -> Bool {
        guard let root = try? parseJSON(body) else { return false }
        if case let .string(code)? = root["error"]?["code"], code == "model_not_found" { return true }
        if case let .string(code)? = root["code"], code == "model_not_found" { return true }
        guard let text = errorText(root)?.lowercased() else { return false }
        return text.contains("model") && (text.contains("not found") || text.contains("does not exist") || text.contains("not exist")
                                            || text.contains("unknown model") || text.contains("no such model"))
    }

    /// The server's explanation in an error body, shortened and escaped for a message, without
    /// the key: the JSON error text when there is one, else the body's text.
    func serverMessage(_ body: Data) -> String? {
        guard !body.isEmpty else { return nil }
        let text: String
        if let root = try? parseJSON(body), let message = errorText(root) {
            text = message
        } else {
            text = String(decoding: body.prefix(4096), as: UTF8.self)
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        return shownText(trimmed.scrubbed(of: apiKey))
    }

    /// The error text in the JSON shapes servers use: `{"error": {"message": ...}}` (OpenAI,
    /// vLLM, kbindex), `{"error": "..."}` (Ollama, TEI), `{"message": ...}`, `{"detail": ...}`
    /// (FastAPI, with pydantic's `[{"msg": ...}]`).
    private func errorText(_ root: JSONValue) -> String? {
        if case let .string(s)? = root["error"]?["message"] { return s }
        if case let .string(s)? = root["error"] { return s }
        if case let .string(s)? = root["message"] { return s }
        if case let .string(s)? = root["detail"] { return s }
        if case let .array(items)? = root["detail"], case let .string(s)? = items.first?["msg"] { return s }
        return nil
    }
}

extension String {
    /// This text with every occurrence of `secret` replaced by `***` (nil or empty: unchanged).
    func scrubbed(of secret: String?) -> String {
        guard let secret, !secret.isEmpty else { return self }
        return replacingOccurrences(of: secret, with: "***")
    }
}
