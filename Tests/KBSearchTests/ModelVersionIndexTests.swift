import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

@testable import KBSearch

/// Version-2 model descriptors (format-spec.md §8.3.2) where an index keeps them: the manifest
/// against its segments (§8.3.3) and the build checkpoint (§13.6).
final class ModelVersionIndexTests: XCTestCase {
    var dir: URL!
    static let weights = String(repeating: "ab", count: 32)
    let v1 = ModelDescriptor(name: "mini", dimensions: 4, pooling: "mean", normalized: true, maxTokens: 16, weightsSHA256: weights)
    let remote = ModelDescriptor.remote(provider: "openai", url: "http://127.0.0.1:9/v1", model: "text-embedding-3-small",
                                        dimensions: 4, normalized: true, maxTokens: 8191, queryPrompt: "q: ")

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbmodelversion-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func local(query: String? = nil, document: String? = nil) -> ModelDescriptor {
        .local(name: "mini", dimensions: 4, pooling: "mean", normalized: true, maxTokens: 16, weightsSHA256: Self.weights,
               queryPrompt: query, documentPrompt: document)
    }

    func writeSegment(_ model: ModelDescriptor, _ name: String) throws -> Manifest.Segment {
        let w = SegmentWriter(model: model)
        w.addDocument(DocumentRecord(path: "\(name).md", size: 5, mtimeNanoseconds: 0, contentSHA256: [UInt8](repeating: 1, count: 32), title: ""))
        w.addChunk(ChunkRecord(document: 0, ordinal: 0, lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 5, headingPath: []),
                   text: "hello", vector: [1, 0, 0, 0])
        let bytes = try w.write(to: dir.appendingPathComponent(name).path)
        return Manifest.Segment(file: name, chunks: 1, documents: 1, bytes: bytes)
    }

    func testAVersion1SegmentBelongsInAnIndexOfTheSameLocalModelWithAQueryPrompt() throws {
        let old = try writeSegment(v1, "seg-old.kbseg")
        let new = try writeSegment(local(query: "query: "), "seg-new.kbseg")
        try IndexFiles.commit(Manifest(model: local(query: "query: "), segments: [old, new]), in: dir)
        let index = try IndexDirectory(url: dir)
        XCTAssertEqual(index.manifest.formatVersion, 3)
        XCTAssertEqual(index.segments.map(\.model), [v1, local(query: "query: ")])
    }

    func testASegmentOfAnotherDocumentPromptOrARemoteModelIsRefused() throws {
        let old = try writeSegment(v1, "seg-old.kbseg")
        try IndexFiles.commit(Manifest(model: local(document: "passage: "), segments: [old]), in: dir)
        XCTAssertThrowsError(try IndexDirectory(url: dir)) { e in
            XCTAssertEqual(e as? SegmentError, .corrupt(file: dir.appendingPathComponent("seg-old.kbseg").path,
                                                        reason: "its vectors come from mini (4 dims), the manifest names mini (4 dims, other weights, pooling, normalization or document prompt)"))
        }
        try IndexFiles.commit(Manifest(model: remote, segments: [old]), in: dir)
        XCTAssertThrowsError(try IndexDirectory(url: dir)) { e in
            XCTAssertTrue("\(e)".hasSuffix("its vectors come from mini (4 dims), the manifest names text-embedding-3-small (4 dims, another model)"), "\(e)")
        }
        // The same remote model reached through another URL: the same vectors.
        let proxied = ModelDescriptor.remote(provider: "ollama", url: "http://proxy/", model: "text-embedding-3-small", dimensions: 4,
                                             normalized: true, maxTokens: 1)
        let seg = try writeSegment(proxied, "seg-proxied.kbseg")
        try IndexFiles.commit(Manifest(model: remote, segments: [seg]), in: dir)
        XCTAssertEqual(try IndexDirectory(url: dir).segments.map(\.model), [proxied])
    }

    func testVersion2DescriptorsRoundTripThroughTheCheckpoint() throws {
        for model in [remote, local(query: "query: ", document: "passage: "), v1] {
            let seg = try writeSegment(model, "seg-aside.kbseg")
            let cp = BuildCheckpoint(model: model, rebuild: false, segments: [seg], documents: 1, chunks: 1)
            try cp.write(to: dir)
            let read = try XCTUnwrap(try BuildCheckpoint.read(from: dir))
            XCTAssertEqual(read, cp)
            XCTAssertEqual(read.formatVersion, 1)
            let opened = cp.open(in: dir)
            XCTAssertEqual(opened.dropped.map(\.file), [])
            XCTAssertEqual(opened.index?.segments.map(\.model), [model])
        }
        // An aside segment of another document prompt is dropped with the reason.
        _ = try writeSegment(v1, "seg-aside.kbseg")
        let cp = BuildCheckpoint(model: local(document: "passage: "), rebuild: false,
                                 segments: [.init(file: "seg-aside.kbseg", chunks: 1, documents: 1, bytes: 1)], documents: 1, chunks: 1)
        XCTAssertEqual(cp.open(in: dir).dropped.map(\.reason),
                       ["index was built with mini (4 dims), the query model is mini (4 dims, the index's documents were embedded with the prompt 'passage: ', the query model's with none)"])
    }

    func testACheckpointOfALaterDescriptorVersionIsKeptNotDiscarded() throws {
        var later = remote
        later.version = 3
        try ChecksummedJSON.encode(BuildCheckpoint(model: later, rebuild: false, segments: [], documents: 0, chunks: 0))
            .write(to: dir.appendingPathComponent(BuildCheckpoint.fileName))
        XCTAssertThrowsError(try BuildCheckpoint.read(from: dir)) { e in
            XCTAssertEqual((e as? CheckpointError)?.isDamage, false, "\(e)")
            XCTAssertTrue("\(e)".contains("the model descriptor has version 3"), "\(e)")
        }
        var broken = remote
        broken.url = nil
        try ChecksummedJSON.encode(BuildCheckpoint(model: broken, rebuild: false, segments: [], documents: 0, chunks: 0))
            .write(to: dir.appendingPathComponent(BuildCheckpoint.fileName))
        XCTAssertThrowsError(try BuildCheckpoint.read(from: dir)) { e in
            XCTAssertEqual((e as? CheckpointError)?.isDamage, true, "\(e)")
        }
    }
}
