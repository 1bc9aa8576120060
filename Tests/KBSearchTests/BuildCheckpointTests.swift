import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

@testable import KBSearch

/// The checkpoint file (format-spec.md §13.6), the files it protects, and `VectorReuse`.
final class BuildCheckpointTests: XCTestCase {
    var dir: URL!
    let model = ModelDescriptor(name: "test", dimensions: 4, pooling: "mean", normalized: true,
                                maxTokens: 16, weightsSHA256: String(repeating: "ab", count: 32))

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbcheckpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func checkpoint(_ files: [String] = ["seg-a.kbseg"]) -> BuildCheckpoint {
        BuildCheckpoint(model: model, rebuild: true, segments: files.map { Manifest.Segment(file: $0, chunks: 3, documents: 1, bytes: 100) },
                        documents: files.count, chunks: 3 * files.count)
    }

    func testACheckpointReadsBackAsWrittenAndEndsWithItsChecksum() throws {
        XCTAssertNil(try BuildCheckpoint.read(from: dir))
        let cp = checkpoint(["seg-a.kbseg", "seg-b.kbseg"])
        try cp.write(to: dir)
        XCTAssertEqual(try BuildCheckpoint.read(from: dir), cp)
        let text = try String(contentsOf: dir.appendingPathComponent(BuildCheckpoint.fileName), encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("{\n  \"chunks\" : 6,\n  \"createdAt\" : "), text)
        XCTAssertNotNil(text.range(of: #",\n  "sha256": "[0-9a-f]{64}"\n\}\n$"#, options: .regularExpression), text)
        XCTAssertFalse(try DirectoryListing.names(in: dir.path).contains { $0.contains(".tmp-") })
    }

    func testADamagedCheckpointIsAnErrorThatSaysWhy() throws {
        let path = dir.appendingPathComponent(BuildCheckpoint.fileName)
        try checkpoint().write(to: dir)
        var bytes = try Data(contentsOf: path)
        bytes[20] ^= 0x20
        try bytes.write(to: path)
        XCTAssertThrowsError(try BuildCheckpoint.read(from: dir)) { XCTAssertEqual("\($0)", "the checkpoint \(path.path) is damaged (sha256 mismatch)") }

        // Checksummed, but naming a file outside the index folder.
        try checkpoint(["../escape.kbseg"]).write(to: dir)
        XCTAssertThrowsError(try BuildCheckpoint.read(from: dir)) { XCTAssertTrue("\($0)".contains("is not a plain file name"), "\($0)") }

        try Data("{}".utf8).write(to: path)
        XCTAssertThrowsError(try BuildCheckpoint.read(from: dir)) { XCTAssertTrue("\($0)".hasSuffix("(no sha256)"), "\($0)") }
    }

    func testCleanupKeepsTheFilesOfAReadableCheckpointOnly() throws {
        for name in ["seg-old.kbseg", "seg-aside.kbseg", "seg-stray.kbseg"] { try Data().write(to: dir.appendingPathComponent(name)) }
        try checkpoint(["seg-aside.kbseg"]).write(to: dir)
        XCTAssertEqual(IndexFiles.unreferenced(in: dir, keeping: ["seg-old.kbseg"]), ["seg-stray.kbseg"])
        // A checkpoint the manifest already lists is obsolete; one it does not list is pending.
        let committed = Manifest(model: model, segments: [Manifest.Segment(file: "seg-aside.kbseg", chunks: 3, documents: 1, bytes: 100)])
        XCTAssertNil(BuildCheckpoint.pending(in: dir, manifest: committed))
        XCTAssertNotNil(BuildCheckpoint.pending(in: dir, manifest: Manifest(model: model, segments: [])))
        // Damaged: its files are strays.
        try Data("damaged".utf8).write(to: dir.appendingPathComponent(BuildCheckpoint.fileName))
        XCTAssertEqual(IndexFiles.unreferenced(in: dir, keeping: ["seg-old.kbseg"]).sorted(), ["seg-aside.kbseg", "seg-stray.kbseg"])
    }

    func testIdenticalTextsAreEmbeddedOnceWithinACallAndAcrossCalls() throws {
        var calls: [[String]] = []
        func fake(_ texts: [String]) -> [[Float]] { calls.append(texts); return texts.map { [Float($0.utf8.count), 1] } }
        var reuse = VectorReuse()
        XCTAssertEqual(reuse.vectors(for: ["a", "bb", "a"], embed: fake), [[1, 1], [2, 1], [1, 1]])
        XCTAssertEqual(reuse.vectors(for: ["bb", "ccc", "ccc"], embed: fake), [[2, 1], [3, 1], [3, 1]])
        XCTAssertEqual(reuse.vectors(for: ["a"], embed: fake), [[1, 1]])
        XCTAssertEqual(calls, [["a", "bb"], ["ccc"]], "embed is not called when every text is known")
        XCTAssertEqual(reuse.reused, 4)
        // Byte-identical only: "é" precomposed and decomposed are two texts.
        _ = reuse.vectors(for: ["\u{E9}", "e\u{301}"], embed: fake)
        XCTAssertEqual(calls.last, ["\u{E9}", "e\u{301}"])
    }

    func testAFullCacheRemembersNothingMoreButStillDedupesWithinACall() throws {
        var calls: [[String]] = []
        func fake(_ texts: [String]) -> [[Float]] { calls.append(texts); return texts.map { _ in [0, 0, 0, 0] } }
        var reuse = VectorReuse(maxBytes: 120)  // one 4-dimension vector (16 bytes + 96)
        _ = reuse.vectors(for: ["a", "b", "b"], embed: fake)
        _ = reuse.vectors(for: ["a", "b"], embed: fake)
        XCTAssertEqual(calls, [["a", "b"], ["b"]], "'a' was remembered, 'b' did not fit")
        XCTAssertEqual(reuse.reused, 2)
    }
}
