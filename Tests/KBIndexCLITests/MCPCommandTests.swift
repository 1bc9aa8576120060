import Foundation
import KBTestSupport
import XCTest

/// `kbindex mcp` as an MCP client starts it: requests on stdin, answers on stdout (nothing
/// else there), exit 0 when stdin closes; start-up errors as one line with status 2 or 64.
/// The tiny test model keeps embedding cheap.
final class MCPCommandTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 29).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbmcpcli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus.appendingPathComponent("ops"), withIntermediateDirectories: true)
        try Data("# Soup\n\nRinse the lentils and simmer them with onions.\n".utf8).write(to: corpus.appendingPathComponent("soup.md"))
        try Data("# Logs\n\nLogrotate rotates the logs every week.\n".utf8).write(to: corpus.appendingPathComponent("ops/logs.md"))
        let r = try CLIRunner.run(["build", corpus.path, "--quiet", "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    override func tearDownWithError() throws {
        if let corpus { try? FileManager.default.removeItem(at: corpus) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func mcp(_ extra: [String] = [], stdin lines: [String]) throws -> CLIRunner.Result {
        try CLIRunner.run(["mcp", "--index", indexDir.path, "--model", model.path] + extra,
                          stdin: Data((lines.joined(separator: "\n") + "\n").utf8), killAfter: 300)
    }

    /// A whole session written at once and stdin closed: every request (a search, a fetch of
    /// an unknown id, a line that is not JSON) is answered before the exit, on stdout, which
    /// holds nothing but JSON-RPC messages.
    func testASessionPipedInIsAnsweredWholeThenItExitsZero() throws {
        let r = try mcp(stdin: [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            "not json",
            #"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"query":"logrotate","mode":"lexical"}}}"#,
            #"{"jsonrpc":"2.0","id":"four","method":"tools/call","params":{"name":"fetch","arguments":{"id":"0000000000000000-0"}}}"#,
        ])
        XCTAssertFalse(r.killed)
        XCTAssertEqual(r.status, 0, r.stderr)
        let messages = try r.stdoutLines.map { line -> [String: Any] in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return try XCTUnwrap(object, "stdout line is not a JSON object: \(line)")
        }
        XCTAssertTrue(messages.allSatisfy { $0["jsonrpc"] as? String == "2.0" }, r.stdout)
        func answer(_ id: AnyHashable) -> [String: Any]? {
            messages.first { ($0["id"] as? AnyHashable) == id && $0["method"] == nil }
        }
        let initialized = try XCTUnwrap(answer(1)?["result"] as? [String: Any], r.stdout)
        XCTAssertEqual((initialized["serverInfo"] as? [String: Any])?["name"] as? String, "kbindex")
        let tools = try XCTUnwrap((answer(2)?["result"] as? [String: Any])?["tools"] as? [[String: Any]], r.stdout)
        XCTAssertEqual(tools.compactMap { $0["name"] as? String }, ["search", "fetch", "status"])
        let search = try XCTUnwrap(answer(3)?["result"] as? [String: Any], r.stdout)
        XCTAssertNotEqual(search["isError"] as? Bool, true, r.stdout)
        let text = try XCTUnwrap(((search["content"] as? [[String: Any]])?.first)?["text"] as? String)
        let results = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["results"] as? [[String: Any]])
        XCTAssertEqual(results.compactMap { $0["path"] as? String }, ["ops/logs.md"])
        let fetch = try XCTUnwrap(answer("four")?["result"] as? [String: Any], r.stdout)
        XCTAssertEqual(fetch["isError"] as? Bool, true)
        XCTAssertTrue(messages.contains { ($0["error"] as? [String: Any])?["code"] as? Int == -32700 }, "no parse error for 'not json': \(r.stdout)")
        XCTAssertTrue(r.stderr.contains("serving 1 index (\(corpus.lastPathComponent))"), r.stderr)
    }

    func testNoInputIsACleanExit() throws {
        let r = try CLIRunner.run(["mcp", "--index", indexDir.path, "--model", model.path], killAfter: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testStartUpErrorsAreOneLineAndNothingOnStdout() throws {
        let missing = corpus.appendingPathComponent("nowhere/.kbindex").path
        let r = try CLIRunner.run(["mcp", "--index", missing, "--model", model.path], killAfter: 300)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr)

        let twice = try CLIRunner.run(["mcp", "--index", "a=\(indexDir.path)", "--index", "a=\(indexDir.path)"])
        XCTAssertEqual(twice.status, 64, twice.stderr)
        XCTAssertTrue(twice.stderr.contains("two indexes are named 'a'"), twice.stderr)

        let threads = try CLIRunner.run(["mcp", "--threads", "0"])
        XCTAssertEqual(threads.status, 64, threads.stderr)
        XCTAssertTrue(threads.stderr.contains("--threads must be a positive number"), threads.stderr)
    }

    func testHelpShowsTheToolsAndExamples() throws {
        let r = try CLIRunner.run(["mcp", "--help"])
        XCTAssertEqual(r.status, 0)
        for s in ["search", "fetch", "status", "claude mcp add", "--index NAME=DIR"] {
            XCTAssertTrue(r.stdout.contains(s), "help lacks \(s): \(r.stdout)")
        }
    }
}

extension MCPCommandTests {
    /// As HelpTests checks the other commands: prose without stray backslashes, examples that
    /// stay one line at 80 columns (pasteable).
    func testHelpIsCleanProseWithPasteableExamples() throws {
        let r = try CLIRunner.run(["mcp", "--help"], environment: ["COLUMNS": "80"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("OVERVIEW: "), r.stdout)
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines.filter { $0.trimmingCharacters(in: .whitespaces) == "\\" || $0.hasSuffix(" \\") }, [])
        let start = try XCTUnwrap(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "Examples:" })
        let examples = lines[(start + 1)...].prefix { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        XCTAssertGreaterThanOrEqual(examples.count, 3)
        for line in examples {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            XCTAssertTrue(trimmed.hasPrefix("kbindex ") || trimmed.hasPrefix("claude "), "wrapped example: '\(line)'")
            XCTAssertLessThan(line.count, 80, line)
        }
    }
}
