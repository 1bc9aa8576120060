import Foundation
import KBEmbed
import KBTestSupport
import XCTest

/// `kbindex embed` as a user runs it: exact output lines, the JSON contract, and errors.
final class EmbedCommandTests: XCTestCase {
    private var storeEnv: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }

    private struct Line: Decodable {
        let model: String
        let dimensions: Int
        let tokens: Int
        let truncated: Bool
        let embedding: [Float]
    }

    func testJSONLinesMatchTheGoldenEmbeddings() throws {
        _ = try InstalledModels.miniLM()
        let texts = try Fixtures.minilmTexts()
        let tokens = try Fixtures.minilmTokens()
        let golden = try Fixtures.minilmEmbeddings()
        // A short text, an accented one and one longer than 256 tokens.
        let ids = [34, 120, tokens.first(where: { $0.full_length > 256 })!.id]
        let r = try CLIRunner.run(["embed", "--json"] + ids.map { texts[$0].text }, environment: storeEnv)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "")
        XCTAssertEqual(r.stdoutLines.count, ids.count)
        for (line, id) in zip(r.stdoutLines, ids) {
            let got = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            XCTAssertEqual(got.model, "all-MiniLM-L6-v2")
            XCTAssertEqual(got.dimensions, 384)
            XCTAssertEqual(got.tokens, tokens[id].input_ids.count)
            XCTAssertEqual(got.truncated, tokens[id].full_length > 256)
            let worst = zip(got.embedding, golden[id].embedding).map { abs(Double($0) - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, 1e-5, "text \(id)")
        }
    }

    func testHumanOutputShape() throws {
        _ = try InstalledModels.miniLM()
        let r = try CLIRunner.run(["embed", "Where is the index stored?"], environment: storeEnv)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdoutLines
        XCTAssertEqual(lines.first, "all-MiniLM-L6-v2: 384 dimensions, 8 tokens, mean pooling, normalized, \(Precision.default)")
        XCTAssertEqual(lines.count, 1 + 384 / 8)
        let values = lines.dropFirst().flatMap { $0.split(separator: " ").map { Float($0)! } }
        XCTAssertEqual(values.count, 384)
        XCTAssertEqual(values.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-4)
    }

    func testStandardInputAndTruncationNote() throws {
        _ = try InstalledModels.miniLM()
        let long = String(repeating: "lentil soup ", count: 300)
        let r = try CLIRunner.run(["embed", "-"], environment: storeEnv, stdin: Data(long.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdoutLines.first, "all-MiniLM-L6-v2: 384 dimensions, 256 tokens, truncated from 902, mean pooling, normalized, \(Precision.default)")
    }

    func testMissingModelIsOneLineThatNamesTheFix() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("kbempty-\(UUID().uuidString)")
        let r = try CLIRunner.run(["embed", "hello"], environment: ["KBINDEX_MODEL_DIR": empty.path])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, "error: model 'all-MiniLM-L6-v2' is not installed: run 'kbindex model fetch all-MiniLM-L6-v2' (or scripts/install-model.sh without hub access)\n")
    }

    func testBrokenModelFolderIsAClearError() throws {
        let model = try TinyModel(seed: 3).writeTemporary()
        defer { try? FileManager.default.removeItem(at: model) }
        try Data("{not json".utf8).write(to: model.appendingPathComponent("config.json"))
        let r = try CLIRunner.run(["embed", "--model", model.path, "hello"])
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "error: \(model.appendingPathComponent("config.json").path): invalid: not a JSON object\n")
    }

    func testNoTextIsAUsageError() throws {
        let r = try CLIRunner.run(["embed"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.hasPrefix("Error: Missing expected argument '<texts> ...'\n"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Usage: kbindex embed <texts> ..."), r.stderr)
    }
}
