import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// The precision an index was embedded in (format-spec.md §8.3): absent for float32, so float32
/// files are byte for byte what kbindex wrote before the key existed; "int8" recorded in the
/// MODEL section and the manifest; not part of compatibility.
final class PrecisionRecordTests: TempDirTestCase {
    static let weights = String(repeating: "ab", count: 32)

    func model(precision: String?) -> ModelDescriptor {
        ModelDescriptor(name: "all-MiniLM-L6-v2", dimensions: 3, pooling: "mean", normalized: true, maxTokens: 256,
                        weightsSHA256: Self.weights, precision: precision)
    }

    /// The MODEL section's bytes of a one-chunk segment written with `model`.
    func modelSection(_ model: ModelDescriptor) throws -> (json: String, read: ModelDescriptor) {
        let w = SegmentWriter(model: model)
        w.addDocument(DocumentRecord(path: "a.md", size: 5, mtimeNanoseconds: 0, contentSHA256: [UInt8](repeating: 1, count: 32), title: "A"))
        w.addChunk(ChunkRecord(document: 0, ordinal: 0, lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 5, headingPath: []), text: "hello", vector: [1, 0, 0])
        let p = path("seg.kbseg")
        _ = try w.write(to: p)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: p))
        let start = try XCTUnwrap(bytes.range(of: Data(#"{"dimensions""#.utf8))).lowerBound
        let end = try XCTUnwrap(bytes.range(of: Data("}".utf8), in: start..<bytes.endIndex)).upperBound
        return (String(decoding: bytes[start..<end], as: UTF8.self), try SegmentReader(path: p).model)
    }

    func testFloat32WritesNoPrecisionKey() throws {
        let (json, read) = try modelSection(model(precision: nil))
        // Exactly §8.3's example shape, as before precisions existed.
        XCTAssertEqual(json, #"{"dimensions":3,"maxTokens":256,"name":"all-MiniLM-L6-v2","normalized":true,"pooling":"mean","weightsSHA256":""# + Self.weights + #""}"#)
        XCTAssertNil(read.precision)

        // The manifest: §13.2's example, byte for byte (a real output from before the key).
        let manifest = Manifest(formatVersion: 1, model: model(precision: nil),
                                segments: [.init(file: "seg-000001.kbseg", chunks: 2, documents: 1, bytes: 1232)],
                                createdAt: "2025-01-31T12:00:00Z")
        let text = String(decoding: try manifest.encoded(), as: UTF8.self)
        XCTAssertFalse(text.contains("precision"), text)
        XCTAssertTrue(text.hasSuffix(#""sha256": "327624f4765c5ff381263c46354da25ad845d93132a688755854eea16c91af12"\#n}\#n"#), text)
    }

    func testInt8IsRecordedInTheSegmentAndTheManifest() throws {
        let (json, read) = try modelSection(model(precision: "int8"))
        XCTAssertEqual(json, #"{"dimensions":3,"maxTokens":256,"name":"all-MiniLM-L6-v2","normalized":true,"pooling":"mean","precision":"int8","weightsSHA256":""# + Self.weights + #""}"#)
        XCTAssertEqual(read.precision, "int8")

        let manifest = Manifest(model: model(precision: "int8"), segments: [.init(file: "seg.kbseg", chunks: 1, documents: 1, bytes: 10)])
        try manifest.write(to: dir.path)
        let text = try String(contentsOfFile: path(Manifest.fileName), encoding: .utf8)
        XCTAssertTrue(text.contains("\"pooling\" : \"mean\",\n    \"precision\" : \"int8\",\n    \"weightsSHA256\""), text)
        XCTAssertEqual(try Manifest.read(from: dir.path).model.precision, "int8")
    }

    func testPrecisionDoesNotAffectCompatibilityButDistinguishesDescriptors() {
        let f32 = model(precision: nil), int8 = model(precision: "int8"), later = model(precision: "int4")
        XCTAssertNil(f32.incompatibility(with: int8))
        XCTAssertNil(int8.incompatibility(with: f32))
        XCTAssertNil(int8.incompatibility(with: later))
        // An incremental build compares descriptors with ==: another precision re-embeds.
        XCTAssertNotEqual(f32, int8)
    }

    func testAValueOfALaterKbindexReadsAndAMistypedOneIsDamage() throws {
        func decode(_ precision: String) throws -> ModelDescriptor {
            let json = #"{"dimensions":3,"maxTokens":256,"name":"m","normalized":true,"pooling":"mean","#
                + #""precision":\#(precision),"weightsSHA256":"\#(Self.weights)"}"#
            return try JSONDecoder().decode(ModelDescriptor.self, from: Data(json.utf8))
        }
        XCTAssertEqual(try decode(#""int4""#).precision, "int4")
        XCTAssertNil(try decode("null").precision)
        XCTAssertThrowsError(try decode("8"))
    }
}
