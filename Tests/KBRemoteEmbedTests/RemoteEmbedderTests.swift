import Foundation
import KBEmbed
import KBHTTP
import KBTestSupport
import XCTest
@testable import KBRemoteEmbed

/// What a test embedder's retries did: the waits asked for (never slept) and the notices.
final class RetryLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _delays: [Double] = []
    private var _notices: [String] = []
    var delays: [Double] { lock.withLock { _delays } }
    var notices: [String] { lock.withLock { _notices } }
    func delay(_ s: Double) { lock.withLock { _delays.append(s) } }
    func notice(_ s: String) { lock.withLock { _notices.append(s) } }
}

/// A flag any thread may set and read.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var _count = 0
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
    var count: Int { lock.withLock { _count } }
    func add(_ n: Int) { lock.withLock { _count += n } }
}

final class RemoteEmbedderTests: XCTestCase {
    private var service: FakeEmbeddingService!
    private var log = RetryLog()

    override func setUpWithError() throws {
        service = try FakeEmbeddingService(dimensions: 8)
        log = RetryLog()
    }

    override func tearDown() {
        service?.stop()
        service = nil
    }

    /// An embedder on `service` whose retries wait nothing (the waits are recorded in `log`).
    private func embedder(_ provider: EmbeddingProvider = .openai, url: URL? = nil, model: String = "test-model", key: String? = nil,
                          prompts: Prompts = .none, batchSize: Int = 4, concurrency: Int = 1, timeout: Double = 10,
                          retries: Int = 3, environment: [String: String] = [:], on service: FakeEmbeddingService? = nil,
                          sleep: (@Sendable (Double, @Sendable () -> Bool) -> Void)? = nil) throws -> RemoteEmbedder {
        let s = service ?? self.service!
        let config = RemoteConfiguration(provider: provider, url: url ?? (provider == .ollama ? s.ollamaURL : s.openAIURL), model: model,
                                         apiKey: key, prompts: prompts, batchSize: batchSize, concurrency: concurrency,
                                         timeout: timeout, retries: retries, maxTextTokens: 100)
        let log = self.log
        let policy = RetryPolicy(baseDelay: 0.01, maxDelay: 0.04, retryAfterCap: 120,
                                 sleep: sleep ?? { seconds, _ in log.delay(seconds) }, random: { 0.5 })
        return try RemoteEmbedder(config, client: HTTPClient(connectTimeout: 5), onRetry: { log.notice($0) },
                                  retryPolicy: policy, environment: environment)
    }

    private func texts(_ n: Int) -> [String] { (0..<n).map { "text number \($0)" } }

    private func assertVectors(_ vectors: [[Float]], _ texts: [String], prefix: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(vectors.count, texts.count, file: file, line: line)
        for (v, t) in zip(vectors, texts) {
            let expected = FakeEmbeddingService.normalizedVector(for: prefix + t, dimensions: 8)
            XCTAssertEqual(v.count, 8, file: file, line: line)
            for (a, b) in zip(v, expected) { XCTAssertEqual(a, b, accuracy: 1e-6, "\(t)", file: file, line: line) }
        }
    }

    private func error(_ body: () throws -> Any) -> Error? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    private func json(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    // MARK: The two APIs

    func testOpenAIBatchesInOrderNormalizedWithHeaders() throws {
        let e = try embedder(key: "sk-test-key", batchSize: 4)
        XCTAssertEqual(e.dimensions, 8)
        XCTAssertEqual(e.endpoint, service.server.url("/v1/embeddings"))
        let progress = Flag()
        let input = texts(10)
        let vectors = try e.embed(input, as: .document, progress: { progress.add($0) }, isCancelled: nil)
        assertVectors(vectors, input)
        XCTAssertEqual(progress.count, 10)
        // The probe, then 4 + 4 + 2 (the service lists `data` last first: order comes from `index`).
        XCTAssertEqual(service.batches.map(\.count), [1, 4, 4, 2])
        XCTAssertEqual(Array(service.batches.dropFirst().joined()), input)
        let request = try XCTUnwrap(service.requests.last)
        XCTAssertEqual(request.method, "POST")
        XCTAssertEqual(request.path, "/v1/embeddings")
        XCTAssertEqual(request.header("Content-Type"), "application/json")
        XCTAssertEqual(request.header("Authorization"), "Bearer sk-test-key")
        XCTAssertTrue(request.header("User-Agent")?.hasPrefix("kbindex/") ?? false)
        XCTAssertNil(request.header("Expect"))
        let body = json(request.body)
        XCTAssertEqual(body["model"] as? String, "test-model")
        XCTAssertEqual(body["encoding_format"] as? String, "float")
        XCTAssertEqual(body["input"] as? [String], ["text number 8", "text number 9"])
        XCTAssertEqual(try e.embed([], as: .document), [])
    }

    func testOllamaShape() throws {
        let e = try embedder(.ollama, batchSize: 3)
        XCTAssertEqual(e.endpoint, service.server.url("/api/embed"))
        let input = texts(5)
        assertVectors(try e.embed(input, as: .plain), input)
        let request = try XCTUnwrap(service.requests.last)
        XCTAssertEqual(request.path, "/api/embed")
        XCTAssertNil(request.header("Authorization"))
        let body = json(request.body)
        XCTAssertEqual(body["model"] as? String, "test-model")
        XCTAssertNil(body["encoding_format"])
        XCTAssertEqual(body["input"] as? [String], ["text number 3", "text number 4"])
    }

    func testEndpointKeepsAURLThatAlreadyNamesIt() throws {
        XCTAssertEqual(try embedder(url: service.server.url("/v1/embeddings")).endpoint, service.server.url("/v1/embeddings"))
        XCTAssertEqual(try embedder(url: service.server.url("/v1/")).endpoint, service.server.url("/v1/embeddings"))
        XCTAssertEqual(try embedder(.ollama, url: service.server.url("/api/embed")).endpoint, service.server.url("/api/embed"))
        XCTAssertEqual(try embedder(.ollama, url: service.server.url("/")).endpoint, service.server.url("/api/embed"))
        XCTAssertEqual(service.requests.map(\.path), ["/v1/embeddings", "/v1/embeddings", "/api/embed", "/api/embed"])
        let c = try RemoteURL.checked(URL(string: "https://gw.example/openai/deployments/d?api-version=2024-02-01")!)
        XCTAssertEqual(RemoteURL.endpoint(c, provider: .openai)?.absoluteString,
                       "https://gw.example/openai/deployments/d/embeddings?api-version=2024-02-01")
    }

    func testPromptsArePrependedByRole() throws {
        let e = try embedder(prompts: Prompts(query: "query: ", document: "passage: "))
        assertVectors(try e.embed(["a"], as: .query), ["a"], prefix: "query: ")
        assertVectors(try e.embed(["b"], as: .document), ["b"], prefix: "passage: ")
        assertVectors(try e.embed(["c"], as: .plain), ["c"])
        XCTAssertEqual(service.batches.dropFirst().map { $0 }, [["query: a"], ["passage: b"], ["c"]])
        XCTAssertEqual(e.maxTextTokens(for: .document), 100 - 2)  // "passage", ":"
        XCTAssertEqual(e.maxTextTokens(for: .plain), 100)
    }

    func testConcurrentRequestsKeepOrder() throws {
        let e = try embedder(batchSize: 2, concurrency: 3)
        service.holdUntilInFlight(3)
        let input = texts(13)
        let progress = Flag()
        let vectors = try e.embed(input, as: .document, progress: { progress.add($0) }, isCancelled: nil)
        assertVectors(vectors, input)
        XCTAssertEqual(progress.count, 13)
        XCTAssertEqual(service.batches.count, 1 + 7)
        XCTAssertEqual(Set(service.batches.dropFirst().joined()), Set(input))
        XCTAssertGreaterThanOrEqual(service.server.maxInFlight, 2, "the batches went one at a time")
        XCTAssertLessThanOrEqual(service.server.maxInFlight, 3, "more requests in flight than allowed")
    }

    // MARK: Retries

    func test429WithRetryAfterThenSuccess() throws {
        let e = try embedder()
        service.inject(.status(429, headers: [("Retry-After", "1")], body: #"{"error":{"message":"slow down"}}"#))
        assertVectors(try e.embed(["x"], as: .document), ["x"])
        XCTAssertEqual(log.delays, [1])
        XCTAssertEqual(log.notices, ["HTTP 429 (the server says 'slow down') from \(e.endpoint.absoluteString): retry 1 of 3 in 1 s"])
        XCTAssertEqual(service.batches.count, 3)
    }

    func testRetryAfterAsHTTPDateAndCapped() throws {
        let e = try embedder()
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        service.inject(.status(503, headers: [("Retry-After", f.string(from: Date().addingTimeInterval(40)))]),
                       .status(429, headers: [("Retry-After", "99999")]))
        assertVectors(try e.embed(["x"], as: .document), ["x"])
        XCTAssertEqual(log.delays.count, 2)
        XCTAssertTrue((30...41).contains(log.delays[0]), "\(log.delays)")
        XCTAssertEqual(log.delays[1], 120)
        XCTAssertTrue(log.notices[1].contains("it asked to wait 99999 s (Retry-After), kbindex waits at most 120 s"), log.notices[1])
        XCTAssertEqual(RetryPolicy.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: Date(timeIntervalSince1970: 1_445_412_470)), 10)
        XCTAssertEqual(RetryPolicy.retryAfter(" 0 "), 0)
        XCTAssertNil(RetryPolicy.retryAfter("soon"))
    }

    func test500ThenSuccessBacksOff() throws {
        let e = try embedder()
        service.inject(.status(500), .status(502), .status(504))
        assertVectors(try e.embed(["x", "y"], as: .document), ["x", "y"])
        // 0.01 × 2^k, capped at 0.04, times 0.75 (the jitter's middle).
        XCTAssertEqual(log.delays.count, 3)
        for (got, want) in zip(log.delays, [0.0075, 0.015, 0.03]) { XCTAssertEqual(got, want, accuracy: 1e-9) }
        XCTAssertTrue(log.notices[0].hasPrefix("HTTP 500 from "), log.notices[0])
    }

    func testBackoffIsCappedWithJitter() {
        var policy = RetryPolicy(baseDelay: 0.5, maxDelay: 30, random: { 0.999 })
        XCTAssertEqual(policy.backoff(retry: 0), 0.5 * (0.5 + 0.5 * 0.999), accuracy: 1e-9)
        XCTAssertEqual(policy.backoff(retry: 10), 30 * (0.5 + 0.5 * 0.999), accuracy: 1e-9)
        XCTAssertEqual(policy.backoff(retry: 1000), 30 * (0.5 + 0.5 * 0.999), accuracy: 1e-9)
        policy.random = { 0 }
        XCTAssertEqual(policy.backoff(retry: 2), 1, accuracy: 1e-9)
    }

    func testTimeoutThenSuccess() throws {
        let e = try embedder(timeout: 0.5)
        service.inject(.hang(seconds: 10))
        assertVectors(try e.embed(["x"], as: .document), ["x"])
        XCTAssertEqual(log.notices.count, 1)
        XCTAssertTrue(log.notices[0].hasPrefix("no complete answer within 0.5 s from "), log.notices[0])
    }

    func testDroppedConnectionMidBodyThenSuccess() throws {
        let e = try embedder()
        service.inject(.cut, .reset)
        let input = texts(3)
        assertVectors(try e.embed(input, as: .document), input)
        XCTAssertEqual(log.notices.count, 2)
        XCTAssertTrue(log.notices[0].hasPrefix("the connection dropped after "), log.notices[0])
        XCTAssertEqual(service.batches.count, 4)
    }

    func testRetriesExhausted() throws {
        let e = try embedder(retries: 2)
        service.inject(.status(503, body: #"{"error":"model is loading"}"#), .status(503, body: #"{"error":"model is loading"}"#),
                       .status(503, body: #"{"error":"model is loading"}"#), .status(503))
        let err = error { try e.embed(["x"], as: .document) }
        XCTAssertEqual(err as? RemoteEmbedError, .gaveUp(attempts: 3, url: e.endpoint.absoluteString, last: "HTTP 503 (the server says 'model is loading')"))
        XCTAssertEqual("\(err!)", "no answer from \(e.endpoint.absoluteString) after 3 attempts: HTTP 503 (the server says 'model is loading')")
        XCTAssertEqual(service.pendingFaults, 1, "more attempts than retries + 1")
    }

    func testRefusedConnectionFailsFastOnTheFirstRequest() throws {
        let closed = try FakeEmbeddingService()
        let url = closed.openAIURL
        closed.stop()
        let err = error { try self.embedder(url: url) }
        guard case let .couldNotConnect(shown, _)? = err as? RemoteEmbedError else { return XCTFail("got \(String(describing: err))") }
        XCTAssertEqual(shown, url.appendingPathComponent("embeddings").absoluteString)
        XCTAssertEqual(log.delays, [], "the first request retried a refused connection")
        XCTAssertTrue("\(err!)".hasPrefix("could not connect to the embedding server at http://127.0.0.1:"), "\(err!)")
    }

    func testRefusedConnectionDuringABuildIsRetried() throws {
        let e = try embedder(retries: 3)
        service.stop()
        let err = error { try e.embed(["x"], as: .document) }
        guard case let .gaveUp(attempts, _, last)? = err as? RemoteEmbedError else { return XCTFail("got \(String(describing: err))") }
        XCTAssertEqual(attempts, 4)
        XCTAssertTrue(last.hasPrefix("could not connect ("), last)
        XCTAssertEqual(log.delays.count, 3)
    }

    func testCancellationBetweenBatches() throws {
        let e = try embedder(batchSize: 2)
        let stop = Flag()
        let done = Flag()
        let err = error {
            try e.embed(self.texts(10), as: .document, progress: { done.add($0); stop.set() }, isCancelled: { stop.isSet })
        }
        XCTAssertTrue(err is CancellationError, "got \(String(describing: err))")
        XCTAssertEqual(done.count, 2)
        XCTAssertEqual(service.batches.count, 2, "a batch started after cancellation")
    }

    func testCancellationEndsARetryWait() throws {
        // The real wait (polling), with a Retry-After far longer than the test may take.
        let e = try embedder(sleep: RetryPolicy.sleepPolling)
        service.inject(.status(503, headers: [("Retry-After", "100")]))
        let service = self.service!
        // Polled before the batch, before the wait, then every 50 ms during it: the fourth poll cancels.
        let polls = Flag()
        let err = error {
            try e.embed(["x"], as: .document, progress: nil, isCancelled: { polls.add(1); return polls.count >= 4 })
        }
        XCTAssertTrue(err is CancellationError, "got \(String(describing: err))")
        XCTAssertEqual(service.batches.count, 2)
    }

    // MARK: Errors that are not retried

    func test401NeverShowsTheKeyEvenWhenEchoed() throws {
        let secret = "sk-wrong-secret-123456"
        let guarded = try FakeEmbeddingService(requiredKey: "sk-right")
        defer { guarded.stop() }
        let err = error { try self.embedder(key: secret, environment: ["KBINDEX_EMBED_API_KEY": secret + "\n"], on: guarded) }
        let text = "\(err!)"
        XCTAssertFalse(text.contains(secret), text)
        XCTAssertEqual(guarded.requests.last?.header("Authorization"), "Bearer \(secret)", "the key was not sent")
        let url = guarded.server.url("/v1/embeddings").absoluteString
        XCTAssertEqual(text, "HTTP 401 from \(url): the server refused the API key from KBINDEX_EMBED_API_KEY (the server says "
                       + "'Incorrect API key provided: Bearer ***. You can find your API key at https://example.invalid')")
        XCTAssertEqual(log.delays, [])

        let none = error { try self.embedder(on: guarded) }
        XCTAssertEqual("\(none!)", "HTTP 401 from \(url): the server wants an API key and none is set (KBINDEX_EMBED_API_KEY or OPENAI_API_KEY) "
                       + "(the server says 'Incorrect API key provided: (none). You can find your API key at https://example.invalid')")
        let fromOpenAI = error { try self.embedder(key: secret, environment: ["OPENAI_API_KEY": secret], on: guarded) }
        XCTAssertTrue("\(fromOpenAI!)".contains("refused the API key from OPENAI_API_KEY"), "\(fromOpenAI!)")

        // 403, and a key echoed inside any other error text.
        let e = try embedder(key: secret)
        service.inject(.status(403, body: "key \(secret) may not use this model"), .status(400, body: #"{"error":{"message":"bad key \#(secret)"}}"#),
                       .status(503, body: secret), .status(503, body: secret), .status(503, body: secret), .status(503, body: secret))
        for _ in 0..<3 {
            let err = error { try e.embed(["x"], as: .document) }
            XCTAssertFalse("\(err!)".contains(secret), "\(err!)")
            XCTAssertTrue("\(err!)".contains("***"), "\(err!)")
        }
        XCTAssertFalse(log.notices.joined().contains(secret))
        XCTAssertFalse("\(e.configuration)".contains(secret))
        XCTAssertFalse(String(reflecting: e.configuration).contains(secret))
    }

    func test404WrongURLAndMissingModel() throws {
        let wrong = error { try self.embedder(url: self.service.server.url("/nothing/here")) }
        XCTAssertEqual("\(wrong!)", "HTTP 404 from \(service.server.url("/nothing/here/embeddings").absoluteString): no OpenAI-compatible embeddings API at this URL (the server says '404 page not found')")

        let picky = try FakeEmbeddingService(models: ["real-model"])
        defer { picky.stop() }
        let openai = error { try self.embedder(model: "nomic-embed", on: picky) }
        XCTAssertEqual(openai as? RemoteEmbedError, .modelNotFound(provider: .openai, model: "nomic-embed", status: 404, url: picky.server.url("/v1/embeddings").absoluteString,
                                                             message: "The model `nomic-embed` does not exist or you do not have access to it."))
        let ollama = error { try self.embedder(.ollama, model: "nomic-embed", on: picky) }
        XCTAssertEqual("\(ollama!)", "HTTP 404 from \(picky.server.url("/api/embed").absoluteString): the Ollama server has no model 'nomic-embed': ollama pull nomic-embed "
                       + "(the server says 'model \"nomic-embed\" not found, try pulling it first')")
    }

    func test400ShowsTheServerMessageShortenedAndEscaped() throws {
        let e = try embedder()
        let long = String(repeating: "x", count: 500)
        service.inject(.status(400, body: #"{"error":{"message":"input too long\nline 'two' \u001b[31m \#(long)"}}"#), .status(413), .status(301, headers: [("Location", "https://elsewhere.example/v1/embeddings")]))
        let bad = error { try e.embed(["x"], as: .document) }
        guard case let .rejected(400, _, message?)? = bad as? RemoteEmbedError else { return XCTFail("got \(String(describing: bad))") }
        XCTAssertTrue(message.hasPrefix("input too long\\nline 'two' \\u{1b}[31m xxx"), message)
        XCTAssertTrue(message.hasSuffix("…"))
        XCTAssertLessThan(message.count, 230)
        XCTAssertFalse("\(bad!)".contains("\n"))
        XCTAssertEqual("\(error { try e.embed(["x"], as: .document) }!)", "HTTP 413 from \(e.endpoint.absoluteString) (the answer gives no reason)")
        XCTAssertEqual("\(error { try e.embed(["x"], as: .document) }!)",
                       "HTTP 301 from \(e.endpoint.absoluteString): the server redirects to 'https://elsewhere.example/v1/embeddings': give that URL instead")
        XCTAssertEqual(log.delays, [])
        XCTAssertEqual(service.batches.count, 4)
    }

    func testABatchTooLargeForTheServerIsSplit() throws {
        let e = try embedder(batchSize: 5)
        service.inject(.status(413, body: "request entity too large"), .status(413))
        let input = texts(5)
        assertVectors(try e.embed(input, as: .document), input)
        // 5 → 2 + 3, then the 2 is too large again → 1 + 1.
        XCTAssertEqual(service.batches.dropFirst().map(\.count), [5, 2, 1, 1, 3])
        XCTAssertEqual(log.delays, [])
        // A single text too large is an error.
        service.inject(.status(413, body: "request entity too large"))
        XCTAssertEqual("\(error { try e.embed(["x"], as: .document) }!)",
                       "HTTP 413 from \(e.endpoint.absoluteString): the server says 'request entity too large'")
    }

    // MARK: Bad answers

    func testWrongDimensions() throws {
        let e = try embedder(batchSize: 2)
        service.inject(.dimensions(5))
        let err = error { try e.embed(["a", "b"], as: .document) }
        XCTAssertEqual(err as? RemoteEmbedError, .wrongDimensions(url: e.endpoint.absoluteString, expected: 8, got: 5, input: 0))
        XCTAssertEqual("\(err!)", "a vector from \(e.endpoint.absoluteString) has 5 dimensions where the model's first had 8 (text 1 of its batch)")
        service.inject(.vector(index: 1, json: "[1,2,3]"))
        XCTAssertEqual(error { try e.embed(["a", "b", "c"], as: .document) } as? RemoteEmbedError,
                       .wrongDimensions(url: e.endpoint.absoluteString, expected: 8, got: 3, input: 1))
    }

    func testMalformedAnswers() throws {
        let e = try embedder()
        let url = e.endpoint.absoluteString
        service.inject(.body("{not json"), .body("[1, 2]"), .body(#"{"data": 5}"#), .body(#"{"error": {"message": "quota exceeded"}}"#),
                       .dropOne, .vector(index: 0, json: #"{"x": 1}"#), .vector(index: 0, json: "[1, true, 0, 0, 0, 0, 0, 0]"),
                       .body(#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}"#))
        func failure() -> String { error { try e.embed(["a"], as: .document) }.map { "\($0)" } ?? "no error" }
        XCTAssertEqual(failure(), "unexpected answer from \(url): the answer is not JSON (expected a member name in quotes at byte 1): '{not json'")
        XCTAssertEqual(failure(), "unexpected answer from \(url): the answer is an array, not an OpenAI embeddings API's JSON object")
        XCTAssertEqual(failure(), "unexpected answer from \(url): no 'data' array in the answer (is this an OpenAI embeddings API?)")
        XCTAssertEqual(failure(), "unexpected answer from \(url): no 'data' in the answer; the server says 'quota exceeded'")
        XCTAssertEqual(failure(), "the answer from \(url) has 0 vectors for 1 text")
        XCTAssertEqual(failure(), "unexpected answer from \(url): the embedding of input 0 is an object, not an array of numbers")
        XCTAssertEqual(failure(), "unexpected answer from \(url): value 1 of the embedding of input 0 is a boolean, not a number")
        XCTAssertEqual(error { try e.embed(["a", "b"], as: .document) } as? RemoteEmbedError,
                       .malformedResponse(url: url, detail: "'data' has index 0 twice"))
        XCTAssertEqual(log.delays, [], "a bad answer was retried")
    }

    func testNonFiniteEmptyAndZeroVectors() throws {
        let e = try embedder()
        let url = e.endpoint.absoluteString
        service.inject(.vector(index: 0, json: "[1e999, 0, 0, 0, 0, 0, 0, 0]"), .vector(index: 0, json: "[1, null, 0, 0, 0, 0, 0, 0]"),
                       .vector(index: 0, json: "[3.5e38, 0, 0, 0, 0, 0, 0, 0]"), .vector(index: 0, json: "[]"),
                       .vector(index: 0, json: "[0, 0, 0, 0, 0, 0, 0, 0]"), .vector(index: 0, json: "[-3e38, 3e38, 0, 0, 0, 0, 0, 0]"))
        func failure() -> String { error { try e.embed(["a"], as: .document) }.map { "\($0)" } ?? "no error" }
        XCTAssertEqual(failure(), "a vector from \(url) is not finite: value 0 is inf (beyond float32's range) (text 1 of its batch)")
        XCTAssertEqual(failure(), "a vector from \(url) is not finite: value 1 is null (NaN or infinity where JSON has no number) (text 1 of its batch)")
        XCTAssertTrue(failure().contains("is not finite: value 0 is 3.5e+38 (beyond float32's range)"))
        XCTAssertEqual(failure(), "a vector from \(url) is empty (text 1 of its batch)")
        XCTAssertEqual(failure(), "a vector from \(url) is all zeros (it has no direction) (text 1 of its batch)")
        // Huge but finite values normalize without overflow.
        let v = try e.embed(["a"], as: .document)[0]
        XCTAssertEqual(v[0], -Float(0.5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(v[1], Float(0.5).squareRoot(), accuracy: 1e-6)
    }

    func testBase64VectorsAreAccepted() throws {
        let e = try embedder()
        let floats: [Float] = [3, 4, 0, 0, 0, 0, 0, 0]
        var data = Data()
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        service.inject(.vector(index: 0, json: "\"\(data.base64EncodedString())\""))
        XCTAssertEqual(try e.embed(["a"], as: .document)[0], [0.6, 0.8, 0, 0, 0, 0, 0, 0])
    }

    // MARK: Configuration, keys, URLs, tokens

    func testConfigurationIsChecked() throws {
        XCTAssertEqual(error { try self.embedder(.local) } as? RemoteEmbedError, .localProvider)
        XCTAssertEqual(error { try self.embedder(batchSize: 0) } as? RemoteEmbedError,
                       .invalidConfiguration("the embedding batch size must be at least 1 (got 0)"))
        XCTAssertEqual(error { try self.embedder(concurrency: 0) } as? RemoteEmbedError,
                       .invalidConfiguration("the number of embedding requests in flight must be 1 to 64 (got 0)"))
        XCTAssertEqual(error { try self.embedder(timeout: 0) } as? RemoteEmbedError,
                       .invalidConfiguration("the embedding request timeout must be more than 0 seconds (got 0.0)"))
        XCTAssertEqual(error { try self.embedder(model: " ") } as? RemoteEmbedError, .invalidConfiguration("the embedding model name is empty"))
        XCTAssertEqual(error { try self.embedder(retries: -1) } as? RemoteEmbedError, .invalidConfiguration("the embedding retries must be 0 to 100 (got -1)"))
        XCTAssertEqual(error { try self.embedder(url: URL(string: "ftp://127.0.0.1/v1")!) } as? RemoteEmbedError,
                       .invalidURL(url: "ftp://127.0.0.1/v1", reason: "it must start with http:// or https://"))
        XCTAssertEqual(service.requests.count, 0)
        // A huge batch size is no overflow.
        XCTAssertEqual(try embedder(batchSize: Int.max).dimensions, 8)
    }

    func testAPIKeyComesFromTheEnvironment() {
        XCTAssertEqual(RemoteEmbedder.apiKey(for: .openai, environment: ["KBINDEX_EMBED_API_KEY": "a", "OPENAI_API_KEY": "b"]), "a")
        XCTAssertEqual(RemoteEmbedder.apiKey(for: .openai, environment: ["OPENAI_API_KEY": " b\n", "OLLAMA_API_KEY": "c"]), "b")
        XCTAssertEqual(RemoteEmbedder.apiKey(for: .ollama, environment: ["OPENAI_API_KEY": "b", "OLLAMA_API_KEY": "c"]), "c")
        XCTAssertEqual(RemoteEmbedder.apiKey(for: .ollama, environment: ["KBINDEX_EMBED_API_KEY": " ", "OLLAMA_API_KEY": "c"]), "c")
        XCTAssertNil(RemoteEmbedder.apiKey(for: .openai, environment: ["OLLAMA_API_KEY": "c"]))
        XCTAssertNil(RemoteEmbedder.apiKey(for: .local, environment: ["OPENAI_API_KEY": "b"]))
    }

    func testRecordedURL() throws {
        XCTAssertEqual(try RemoteEmbedder.recordedURL(URL(string: "http://127.0.0.1:8080/v1/#frag")!), "http://127.0.0.1:8080/v1")
        XCTAssertEqual(try RemoteEmbedder.recordedURL(URL(string: "https://api.openai.com/v1")!), "https://api.openai.com/v1")
        XCTAssertEqual(try RemoteEmbedder.recordedURL(URL(string: "http://localhost:11434/")!), "http://localhost:11434")
        XCTAssertEqual(try RemoteEmbedder.recordedURL(URL(string: "https://gw.example/v1?api-version=2024-02-01")!),
                       "https://gw.example/v1?api-version=2024-02-01")
        XCTAssertEqual(error { try RemoteEmbedder.recordedURL(URL(string: "https://me:pa55@gw.example/v1")!) } as? RemoteEmbedError,
                       .credentialsInURL(url: "https://gw.example/v1"))
        for name in ["key", "api_key", "apikey", "API-Key", "token", "access_token", "sig", "signature", "code", "password", "x-goog-api-key"] {
            let err = error { try RemoteEmbedder.recordedURL(URL(string: "https://gw.example/v1?a=1&\(name)=s3cr3t")!) }
            XCTAssertEqual(err as? RemoteEmbedError, .secretInURL(url: "https://gw.example/v1", parameter: name), name)
            XCTAssertFalse("\(err!)".contains("s3cr3t"))
        }
        XCTAssertEqual("\(RemoteEmbedError.credentialsInURL(url: "https://gw.example/v1"))",
                       "the embedding URL 'https://gw.example/v1' carries a user name or password: remove them and put the API key in KBINDEX_EMBED_API_KEY")
        // The embedder refuses them as well, before any request.
        XCTAssertNotNil(error { try self.embedder(url: URL(string: "\(self.service.openAIURL.absoluteString)?token=abc")!) } as? RemoteEmbedError)
        XCTAssertEqual(service.requests.count, 0)
    }

    func testTokenEstimate() throws {
        let e = try embedder()
        XCTAssertEqual(e.countTokens(""), 0)
        XCTAssertEqual(e.countTokens("hello world"), 2)
        XCTAssertEqual(e.countTokens("Hello, world!"), 4)
        XCTAssertEqual(e.countTokens("internationalization"), 4)  // 20 bytes: 1 + ⌈12 / 4⌉
        XCTAssertEqual(e.countTokens("日本語のテキスト"), 8)
        XCTAssertEqual(e.countTokens("naïve café"), 2)
        XCTAssertEqual(e.countTokens("a\u{1F600}b"), 4)  // the emoji's 4 bytes count 2
        XCTAssertEqual(e.countTokens("x = f(y) + 2;"), 9)
    }

    // MARK: The JSON reader

    func testJSONReader() throws {
        XCTAssertEqual(try parseJSON(Data(#" {"a": [1, -2.5e3, true, null, "x\n\u00e9\ud83d\ude00"]} "#.utf8)),
                       .object([("a", .array([.number(1), .number(-2500), .bool(true), .null, .string("x\né😀")]))]))
        XCTAssertEqual(try parseJSON(Data("[1e999]".utf8)), .array([.number(.infinity)]))
        for bad in ["", "[1,]", "[01]", "[1.]", "{\"a\" 1}", "[\"\u{01}\"]", "tru", "[1] x", "[-]", "\"\\x\""] {
            XCTAssertThrowsError(try parseJSON(Data(bad.utf8)), bad)
        }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertThrowsError(try parseJSON(Data(deep.utf8))) { XCTAssertEqual(($0 as? JSONSyntaxError)?.message, "nested more than 64 levels deep") }
    }
}
