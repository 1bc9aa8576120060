import Foundation
import KBEmbed
import KBFormat
import KBRetrieval
import KBSearch
import KBTestSupport
import XCTest

/// The precision questions are embedded in: the index's (`ModelDescriptor.precision`) unless
/// asked otherwise; several indexes share the first one's; an unknown recorded value is a
/// clear error unless a precision is asked for. The int8 indexes are f32 builds whose
/// manifest records "int8": what is tested is the choice, not the int8 encoder.
final class QuestionPrecisionTests: XCTestCase {
    var model: URL!
    var scratch: [URL] = []

    override func setUpWithError() throws {
        model = try TinyModel(seed: 11).writeTemporary()
        scratch.append(model)
    }

    override func tearDownWithError() throws {
        for u in scratch { try? FileManager.default.removeItem(at: u) }
    }

    /// A folder with one document, indexed with the tiny model, its manifest recording
    /// `precision`.
    func index(_ text: String, precision: String?) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("kbqprecision-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        scratch.append(root)
        try Data(text.utf8).write(to: root.appendingPathComponent("doc.md"))
        let r = try CLIRunner.run(["build", root.path, "--quiet", "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        try record(precision, in: root)
        return root
    }

    func record(_ precision: String?, in root: URL) throws {
        let dir = root.appendingPathComponent(".kbindex").path
        var manifest = try Manifest.read(from: dir)
        manifest.model.precision = precision
        try manifest.write(to: dir)
    }

    func descriptor(_ precision: String?) -> ModelDescriptor {
        ModelDescriptor(name: "m", dimensions: 4, pooling: "mean", normalized: true, maxTokens: 256,
                        weightsSHA256: String(repeating: "ab", count: 32), precision: precision)
    }

    func testTheChoice() throws {
        let f32 = descriptor(nil), int8 = descriptor("int8"), int4 = descriptor("int4")
        XCTAssertEqual(try QuestionPrecision.choose(asked: nil, indexes: [("a", int8)]),
                       QuestionPrecision(precision: .int8, asked: false, differing: []))
        XCTAssertEqual(try QuestionPrecision.choose(asked: nil, indexes: [("a", f32), ("b", int8)]),
                       QuestionPrecision(precision: .f32, asked: false, differing: [.init(index: "b", recorded: "int8")]))
        XCTAssertEqual(try QuestionPrecision.choose(asked: .f32, indexes: [("a", int8), ("b", f32)]),
                       QuestionPrecision(precision: .f32, asked: true, differing: [.init(index: "a", recorded: "int8")]))
        XCTAssertEqual(try QuestionPrecision.choose(asked: .int8, indexes: [("", int4)]),
                       QuestionPrecision(precision: .int8, asked: true, differing: [.init(index: "", recorded: "int4")]))
        XCTAssertThrowsError(try QuestionPrecision.choose(asked: nil, indexes: [("a", f32), ("b", int4)])) { e in
            guard case RetrievalError.unknownPrecision(let index, let value) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(index, "b")
            XCTAssertEqual(value, "int4")
            XCTAssertEqual("\(e)", "index 'b' was embedded in precision 'int4', which this kbindex does not know (it knows f32, int8)")
        }
        XCTAssertThrowsError(try QuestionPrecision.choose(asked: nil, indexes: [("", int4)])) { e in
            XCTAssertTrue("\(e)".hasPrefix("the index was embedded in precision 'int4'"), "\(e)")
        }
    }

    func testTheServiceEmbedsInTheFirstIndexsPrecisionAndSaysSoInItsInfo() async throws {
        let a = try index("# Soup\n\nRinse the lentils.\n", precision: "int8")
        let b = try index("# Tea\n\nGreen tea wants cool water.\n", precision: nil)
        let s = try RetrievalService(indexes: [("a", a), ("b", b)], options: ServiceOptions(model: model.path))
        XCTAssertEqual((s.embedder as? Embedder)?.precision, .int8)
        XCTAssertEqual(s.info().model.precision, "int8")
        XCTAssertEqual(s.info().indexes.map(\.precision), ["int8", "f32"])
        // Both are answered: the vectors of either precision are comparable.
        let hits = try await s.search([SearchQuery("lentils", k: 1, mode: .vector)], index: "b")
        XCTAssertEqual(hits[0].hits.count, 1)

        // As /v1/info and MCP status encode it.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(s.info()), as: UTF8.self)
        XCTAssertTrue(json.contains(#""model":{"dimensions":"#) && json.contains(#","precision":"int8","provider":"local"}"#), json)
        XCTAssertTrue(json.contains(#""lexical":true,"loaded_at":"#) && json.contains(#""precision":"f32","segments":"#), json)

        let told = try RetrievalService(indexes: [("a", a), ("b", b)], options: ServiceOptions(model: model.path, precision: .f32))
        XCTAssertEqual((told.embedder as? Embedder)?.precision, .f32)
        XCTAssertEqual(told.info().model.precision, "f32")

        try record("int4", in: b)
        XCTAssertThrowsError(try RetrievalService(indexes: [("a", a), ("b", b)], options: ServiceOptions(model: model.path))) { e in
            guard case RetrievalError.unknownPrecision(let index, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(index, "b")
        }
        XCTAssertEqual(try RetrievalService(indexes: [("a", a), ("b", b)], options: ServiceOptions(model: model.path, precision: .int8)).info().indexes.map(\.precision),
                       ["int8", "int4"])
    }

    func testAnIndexRebuiltInAnotherPrecisionIsReloadedAndTheReportSaysSo() throws {
        let a = try index("# Soup\n\nRinse the lentils.\n", precision: nil)
        let s = try RetrievalService(indexes: [("a", a)], options: ServiceOptions(model: model.path))
        let events = Sizes.Lines()
        s.setEventHandler { events.add($0) }
        try record("int8", in: a)
        XCTAssertEqual(s.reloadIfChanged(), ["a"])
        XCTAssertEqual(s.info().indexes[0].precision, "int8")
        XCTAssertEqual(s.info().model.precision, "f32", "the served model keeps its precision")
        XCTAssertEqual(events.all.count, 1)
        XCTAssertTrue(events.all[0].hasSuffix("; it was embedded in int8, questions are embedded in f32 as served"), "\(events.all)")
    }
}
