import Foundation
import KBRetrieval
@testable import KBServer
import KBTestSupport
import XCTest

/// Every route of `kbindex serve` on a real index, answered by a server on an ephemeral port.
final class EndpointTests: XCTestCase {
    nonisolated(unsafe) static var corpus: Corpus!
    nonisolated(unsafe) static var server: RunningServer!
    var http: RawHTTP { Self.server.http }

    override class func setUp() {
        super.setUp()
        do {
            corpus = try Corpus()
            try corpus.build()
            server = try RunningServer(indexes: [("docs", corpus.index)])
        } catch {
            XCTFail("could not start the server: \(error)")
        }
    }

    override class func tearDown() {
        server?.stop()
        corpus?.remove()
        super.tearDown()
    }

    override func setUpWithError() throws {
        if Self.server == nil { throw XCTSkip("no server") }
    }

    // MARK: /v1/search

    func testSearchAnswersOneQuestionWithHitsIdsAndGeneration() throws {
        let r = try http.post("/v1/search", json: #"{"query": "how do I cook lentil soup?", "k": 3}"#)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        let o = try r.json()
        XCTAssertNotNil(o["took_ms"] as? Double)
        let results = try XCTUnwrap(o["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 1)
        XCTAssertEqual(results[0]["index"] as? String, "docs")
        XCTAssertEqual(results[0]["generation"] as? Int, 1)
        XCTAssertEqual(results[0]["mode"] as? String, "hybrid")
        let hits = try XCTUnwrap(results[0]["hits"] as? [[String: Any]])
        XCTAssertEqual(hits.map { $0["rank"] as? Int }, [1, 2, 3])
        XCTAssertEqual(hits[0]["path"] as? String, "cooking.md")
        XCTAssertEqual(hits[0]["heading"] as? [String], ["Recipes", "Lentil soup"])
        let id = try XCTUnwrap(hits[0]["id"] as? String)
        XCTAssertNotNil(id.range(of: #"^[0-9a-f]{16}-[0-9]+$"#, options: .regularExpression), id)
        XCTAssertNotNil(hits[0]["vector_score"] as? Double)
        XCTAssertNotNil(hits[0]["bm25_score"] as? Double)
    }

    func testSearchAnswersSeveralQuestionsInOrderWithOptions() throws {
        let r = try http.post("/v1/search", object: [
            "queries": ["log rotation schedule", "moon orbit", "nightly database backup"],
            "k": 1, "mode": "vector", "index": "docs",
        ])
        XCTAssertEqual(r.status, 200, r.text)
        let results = try XCTUnwrap(try r.json()["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["mode"] as? String }, ["vector", "vector", "vector"])
        let top = results.map { (($0["hits"] as? [[String: Any]])?.first?["path"] as? String) ?? "" }
        XCTAssertEqual(top[0], "ops/logging.md")
        XCTAssertEqual(top[1], "space.html")
        XCTAssertTrue(["tools/backup.py", "ops/logging.md"].contains(top[2]), top[2])
        // path restricts the documents; lexical mode has BM25 scores only.
        let py = try http.post("/v1/search", object: ["query": "database backup", "path": "*.py", "mode": "lexical"])
        XCTAssertEqual(py.status, 200, py.text)
        let hits = try XCTUnwrap(((try py.json()["results"] as? [[String: Any]])?.first?["hits"]) as? [[String: Any]])
        XCTAssertFalse(hits.isEmpty)
        XCTAssertTrue(hits.allSatisfy { $0["path"] as? String == "tools/backup.py" && $0["vector_score"] == nil && $0["bm25_score"] != nil })
        // rank fusion with weights is accepted and changes the scores' scale.
        let rrf = try http.post("/v1/search", object: ["query": "database backup", "fusion": "rrf", "rrf_k": 10, "vector_weight": 2, "lexical_weight": 0.5])
        XCTAssertEqual(rrf.status, 200, rrf.text)
        let rrfTop = try XCTUnwrap(((try rrf.json()["results"] as? [[String: Any]])?.first?["hits"] as? [[String: Any]])?.first)
        XCTAssertLessThanOrEqual(try XCTUnwrap(rrfTop["score"] as? Double), 2.5 / 11 + 1e-9)
    }

    /// The server's hits are `kbindex query --json`'s: same ids, order and scores.
    func testSearchEqualsQueryJSONOfTheCLI() throws {
        let questions = ["how do I cook lentil soup?", "back_up the database file", "when do tomatoes go in", "moon orbit"]
        for mode in ["hybrid", "vector", "lexical"] {
            let served = try http.post("/v1/search", object: ["queries": questions, "k": 5, "mode": mode])
            XCTAssertEqual(served.status, 200, served.text)
            let results = try XCTUnwrap(try served.json()["results"] as? [[String: Any]])
            for (q, result) in zip(questions, results) {
                let cli = try CLIRunner.run(["query", "--index", Self.corpus.index.path, "--json", "-k", "5", "--mode", mode, q], environment: Corpus.env)
                XCTAssertEqual(cli.status, 0, cli.stderr)
                let want = try cli.stdoutLines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                let got = try XCTUnwrap(result["hits"] as? [[String: Any]])
                XCTAssertEqual(got.map { $0["id"] as? String }, want.map { $0["id"] as? String }, "\(mode): \(q)")
                XCTAssertEqual(got.count, want.count)
                for (g, w) in zip(got, want) {
                    XCTAssertEqual(Set(g.keys), Set(w.keys), "\(mode): \(q)")
                    for key in ["score", "vector_score", "bm25_score"] where w[key] != nil {
                        XCTAssertEqual(try XCTUnwrap(g[key] as? Double), try XCTUnwrap(w[key] as? Double), accuracy: 1e-6, "\(mode) \(key): \(q)")
                    }
                    for key in ["rank", "vector_rank", "lexical_rank", "line_start", "line_end"] { XCTAssertEqual(g[key] as? Int, w[key] as? Int, key) }
                    for key in ["path", "title", "text"] { XCTAssertEqual(g[key] as? String, w[key] as? String, key) }
                    XCTAssertEqual(g["heading"] as? [String], w["heading"] as? [String])
                }
            }
        }
    }

    // MARK: /v1/chunks/{id}

    func testChunkComesWithItsDocumentAndNeighbours() throws {
        let s = try http.post("/v1/search", object: ["query": "knead the bread dough", "k": 1, "path": "cooking.md"])
        let hit = try XCTUnwrap(((try s.json()["results"] as? [[String: Any]])?.first?["hits"] as? [[String: Any]])?.first)
        let id = try XCTUnwrap(hit["id"] as? String)
        let r = try http.get("/v1/chunks/\(id)?neighbours=1")
        XCTAssertEqual(r.status, 200, r.text)
        let o = try r.json()
        XCTAssertEqual(o["index"] as? String, "docs")
        XCTAssertEqual(o["generation"] as? Int, 1)
        let chunk = try XCTUnwrap(o["chunk"] as? [String: Any])
        XCTAssertEqual(chunk["id"] as? String, id)
        XCTAssertEqual(chunk["text"] as? String, hit["text"] as? String)
        let document = try XCTUnwrap(o["document"] as? [String: Any])
        XCTAssertEqual(document["path"] as? String, "cooking.md")
        XCTAssertEqual((document["sha256"] as? String)?.count, 64)
        let before = try XCTUnwrap(o["before"] as? [[String: Any]]), after = try XCTUnwrap(o["after"] as? [[String: Any]])
        XCTAssertLessThanOrEqual(before.count, 1)
        XCTAssertLessThanOrEqual(after.count, 1)
        let total = try XCTUnwrap(document["chunks"] as? Int)
        let ordinal = try XCTUnwrap(chunk["ordinal"] as? Int)
        XCTAssertEqual(before.count, min(1, ordinal))
        XCTAssertEqual(after.count, min(1, total - 1 - ordinal))
        // neighbours=0: the chunk alone; the index may be named.
        let alone = try http.get("/v1/chunks/\(id)?neighbours=0&index=docs").json()
        XCTAssertEqual((alone["before"] as? [Any])?.count, 0)
        XCTAssertEqual((alone["after"] as? [Any])?.count, 0)
    }

    func testChunkErrors() throws {
        let unknown = try http.get("/v1/chunks/0123456789abcdef-0")
        XCTAssertEqual(unknown.status, 404, unknown.text)
        XCTAssertEqual(unknown.errorCode, "unknown_chunk")
        let malformed = try http.get("/v1/chunks/not-an-id")
        XCTAssertEqual(malformed.status, 404, malformed.text)
        XCTAssertEqual(malformed.errorCode, "unknown_chunk")
        // Longer than the documented maxLength (256): out of range, so 400 like any other.
        let long = try http.get("/v1/chunks/" + String(repeating: "a", count: 5000))
        XCTAssertEqual(long.status, 400, long.text)
        XCTAssertEqual(long.errorCode, "invalid_request")
        XCTAssertEqual(try http.get("/v1/chunks/" + String(repeating: "a", count: 257)).status, 400)
        XCTAssertEqual(try http.get("/v1/chunks/" + String(repeating: "a", count: 256)).status, 404)
        for bad in ["neighbours=11", "neighbours=-1", "neighbours=x", "colour=red", "neighbours=1&neighbours=2"] {
            let r = try http.get("/v1/chunks/0123456789abcdef-0?\(bad)")
            XCTAssertEqual(r.status, 400, "\(bad): \(r.text)")
            XCTAssertEqual(r.errorCode, "invalid_request", bad)
        }
        let index = try http.get("/v1/chunks/0123456789abcdef-0?index=nope")
        XCTAssertEqual(index.status, 404, index.text)
        XCTAssertEqual(index.errorCode, "unknown_index")
    }

    // MARK: /v1/info, /healthz, /metrics, /openapi.json

    func testInfoHealthMetricsAndOpenAPI() throws {
        let info = try http.get("/v1/info")
        XCTAssertEqual(info.status, 200, info.text)
        let o = try info.json()
        XCTAssertEqual((o["model"] as? [String: Any])?["name"] as? String, "all-MiniLM-L6-v2")
        let indexes = try XCTUnwrap(o["indexes"] as? [[String: Any]])
        XCTAssertEqual(indexes.map { $0["name"] as? String }, ["docs"])
        XCTAssertEqual(indexes[0]["documents"] as? Int, Corpus.files.count)

        let health = try http.get("/healthz")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.text, #"{"status":"ok"}"#)

        _ = try http.post("/v1/search", json: #"{"query": "garden"}"#)
        _ = try http.get("/nowhere")
        let metrics = try http.get("/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.headers["content-type"]?.hasPrefix("text/plain") ?? false)
        XCTAssertTrue(metrics.text.contains(#"kbindex_http_requests_total{route="/v1/search",method="POST",status="200"}"#), metrics.text)
        XCTAssertTrue(metrics.text.contains(#"kbindex_http_requests_total{route="unmatched",method="GET",status="404"}"#), metrics.text)
        XCTAssertTrue(metrics.text.contains(#"kbindex_http_request_duration_seconds_bucket{route="/v1/search""#), metrics.text)
        XCTAssertTrue(metrics.text.contains(#"kbindex_index_generation{index="docs"} 1"#), metrics.text)
        let batches = metrics.text.split(separator: "\n").first { $0.hasPrefix("kbindex_search_batch_size_count") }
        XCTAssertGreaterThan(Double(batches?.split(separator: " ").last ?? "0") ?? 0, 0, metrics.text)

        let openapi = try http.get("/openapi.json")
        XCTAssertEqual(openapi.status, 200)
        XCTAssertEqual(openapi.text, OpenAPIDocument.json)
    }

    // MARK: /v1/embeddings

    func testEmbeddingsAreOpenAICompatible() throws {
        let r = try http.post("/v1/embeddings", object: ["model": "all-MiniLM-L6-v2", "input": ["lentil soup", "the moon"]])
        XCTAssertEqual(r.status, 200, r.text)
        let o = try r.json()
        XCTAssertEqual(o["object"] as? String, "list")
        XCTAssertEqual(o["model"] as? String, "all-MiniLM-L6-v2")
        let data = try XCTUnwrap(o["data"] as? [[String: Any]])
        XCTAssertEqual(data.map { $0["index"] as? Int }, [0, 1])
        XCTAssertEqual(data.map { $0["object"] as? String }, ["embedding", "embedding"])
        let v0 = try XCTUnwrap(data[0]["embedding"] as? [Double]), v1 = try XCTUnwrap(data[1]["embedding"] as? [Double])
        XCTAssertEqual(v0.count, 384)
        XCTAssertEqual(v0.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4)
        XCTAssertNotEqual(v0, v1)
        let usage = try XCTUnwrap(o["usage"] as? [String: Any])
        XCTAssertGreaterThan(usage["prompt_tokens"] as? Int ?? 0, 0)
        XCTAssertEqual(usage["prompt_tokens"] as? Int, usage["total_tokens"] as? Int)

        // A single string, no model, base64: the same vector.
        let b = try http.post("/v1/embeddings", object: ["input": "lentil soup", "encoding_format": "base64", "model": "sentence-transformers/all-MiniLM-L6-v2"])
        XCTAssertEqual(b.status, 200, b.text)
        let encoded = try XCTUnwrap(((try b.json()["data"] as? [[String: Any]])?.first?["embedding"]) as? String)
        let bytes = try XCTUnwrap(Data(base64Encoded: encoded))
        let floats = stride(from: 0, to: bytes.count, by: 4).map { i in Float(bitPattern: bytes[i..<i + 4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }) }
        XCTAssertEqual(floats.count, 384)
        for (a, b) in zip(floats, v0) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }

        let model = try http.post("/v1/embeddings", object: ["model": "text-embedding-3-small", "input": "x"])
        XCTAssertEqual(model.status, 404, model.text)
        XCTAssertEqual(model.errorCode, "model_not_found")
        XCTAssertTrue(model.errorMessage?.contains("all-MiniLM-L6-v2") ?? false)
        for bad in [#"{"input": [1, 2, 3]}"#, #"{"input": []}"#, #"{"input": ""}"#, #"{"input": 5}"#, #"{"model": "all-MiniLM-L6-v2"}"#,
                    #"{"input": "x", "dimensions": 12}"#, #"{"input": "x", "encoding_format": "hex"}"#, #"{"input": "x", "temperature": 1}"#] {
            let e = try http.post("/v1/embeddings", json: bad)
            XCTAssertEqual(e.status, 400, "\(bad): \(e.text)")
            XCTAssertEqual(e.errorCode, "invalid_request", bad)
        }
    }

    // MARK: Errors and limits

    func testEveryErrorIsOneLineOfJSONWithTheRightStatus() throws {
        let cases: [(String, String, String?, Int, String)] = [
            ("GET", "/nowhere", nil, 404, "not_found"),
            ("GET", "/v1/search", nil, 405, "method_not_allowed"),
            ("DELETE", "/v1/info", nil, 405, "method_not_allowed"),
            ("PUT", "/v1/chunks/abc", nil, 405, "method_not_allowed"),
            ("POST", "/v1/search", "{not json", 400, "invalid_request"),
            ("POST", "/v1/search", "", 400, "invalid_request"),
            ("POST", "/v1/search", "[1,2]", 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": 5}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "k": "5"}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "k": true}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "k": 2.5}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "k": 0}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "k": 101}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "k": 1e300}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "top_k": 5}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "   "}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"queries": []}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"queries": "x"}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"queries": ["a", 1]}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "queries": ["y"]}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "mode": "fuzzy"}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "fusion": "max"}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "alpha": 1.5}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "rrf_k": -1}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "path": [""]}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "path": 3}"#, 400, "invalid_request"),
            ("POST", "/v1/search", #"{"query": "x", "index": "nope"}"#, 404, "unknown_index"),
            ("POST", "/v1/search", #"{"query": "x", "index": 1}"#, 400, "invalid_request"),
            ("GET", "/v1/info?verbose=1", nil, 400, "invalid_request"),
        ]
        for (method, path, body, status, code) in cases {
            let r = try http.send(method, path, headers: [("Content-Type", "application/json")], body: body.map { Data($0.utf8) })
            XCTAssertEqual(r.status, status, "\(method) \(path) \(body ?? ""): \(r.text)")
            XCTAssertEqual(r.errorCode, code, "\(method) \(path) \(body ?? ""): \(r.text)")
            let message = try XCTUnwrap(r.errorMessage, r.text)
            XCTAssertFalse(message.isEmpty)
            XCTAssertFalse(message.contains("\n"), message)
            XCTAssertEqual(r.headers["content-type"], "application/json; charset=utf-8")
        }
        XCTAssertEqual(try http.get("/v1/search").headers["allow"], "POST")
        XCTAssertEqual(try http.get("/nowhere").errorMessage, "no route /nowhere: the routes are listed at /openapi.json")
        XCTAssertEqual(try http.send("PATCH", "/mcp").headers["allow"], "POST")
    }

    func testLimitsAnswer4xxAndTheServerStaysUp() throws {
        let limits = ServerLimits()
        // Body over 1 MiB: with Content-Length, and streamed (chunked) without it.
        let big = Data(repeating: UInt8(ascii: "a"), count: limits.maxBodyBytes + 1)
        let withLength = try http.send("POST", "/v1/search", headers: [("Content-Type", "application/json")], body: big)
        XCTAssertEqual(withLength.status, 413, withLength.text)
        XCTAssertEqual(withLength.errorCode, "payload_too_large")
        var chunked = Data("POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
        for _ in 0..<17 { chunked += Data(String(65536, radix: 16).utf8) + Data("\r\n".utf8) + Data(repeating: 0x20, count: 65536) + Data("\r\n".utf8) }
        chunked += Data("0\r\n\r\n".utf8)
        let streamed = try http.raw(chunked)
        XCTAssertEqual(streamed.status, 413, streamed.text)
        XCTAssertEqual(streamed.errorCode, "payload_too_large")

        let long = String(repeating: "word ", count: limits.maxQueryCharacters / 5 + 1)
        let tooLong = try http.post("/v1/search", object: ["query": long])
        XCTAssertEqual(tooLong.status, 400, tooLong.text)
        XCTAssertTrue(tooLong.errorMessage?.contains("4096") ?? false, tooLong.text)
        let many = try http.post("/v1/search", object: ["queries": Array(repeating: "soup", count: limits.maxQueries + 1)])
        XCTAssertEqual(many.status, 400, many.text)
        XCTAssertTrue(many.errorMessage?.contains("64") ?? false, many.text)
        let atLimit = try http.post("/v1/search", object: ["queries": Array(repeating: "soup", count: limits.maxQueries), "k": limits.maxK])
        XCTAssertEqual(atLimit.status, 200, atLimit.text)
        let globs = try http.post("/v1/search", object: ["query": "soup", "path": Array(repeating: "*.md", count: limits.maxPathGlobs + 1)])
        XCTAssertEqual(globs.status, 400, globs.text)
        let inputs = try http.post("/v1/embeddings", object: ["input": Array(repeating: "soup", count: limits.maxEmbeddingInputs + 1)])
        XCTAssertEqual(inputs.status, 400, inputs.text)
        let longInput = try http.post("/v1/embeddings", object: ["input": String(repeating: "a", count: limits.maxEmbeddingCharacters + 1)])
        XCTAssertEqual(longInput.status, 400, longInput.text)
        // Deeply nested JSON is refused, not a crash.
        let nested = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let deep = try http.post("/v1/search", json: #"{"query": "x", "path": "# + nested + "}")
        XCTAssertEqual(deep.status, 400, deep.text)
        // Invalid UTF-8 in the body.
        let invalid = try http.send("POST", "/v1/search", body: Data([0x7B, 0x22, 0x71, 0x75, 0x65, 0x72, 0x79, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D]))
        XCTAssertEqual(invalid.status, 400, invalid.text)
        XCTAssertEqual(try http.get("/healthz").status, 200)
    }
}
