import Foundation
import KBFormat
import KBTestSupport
import XCTest

/// Random segments for property tests: documents, chunks, unicode strings, vectors.
struct RandomSegment {
    var model: ModelDescriptor
    var documents: [DocumentRecord] = []
    var chunks: [(record: ChunkRecord, text: String, vector: [Float])] = []

    static let alphabet: [String] = ["a", "b", "z", " ", "\n", "é", "ß", "中", "文", "🙂", "👩‍👩‍👧", "\u{0301}", "\t", "\"", "\\", "/", "{", "\0", "Ω", "ا"]

    static func string(_ rng: inout SeededRNG, maxLength: Int) -> String {
        let n = Int.random(in: 0...maxLength, using: &rng)
        return (0..<n).map { _ in alphabet.randomElement(using: &rng)! }.joined()
    }

    static func model(dims: Int, name: String = "test-model", weights: String = String(repeating: "ab", count: 32)) -> ModelDescriptor {
        ModelDescriptor(name: name, dimensions: dims, pooling: "mean", normalized: true, maxTokens: 256, weightsSHA256: weights)
    }

    init(seed: UInt64, dims: Int? = nil, documents docCount: Int? = nil, chunks chunkCount: Int? = nil, maxText: Int = 300) {
        var rng = SeededRNG(seed: seed)
        let d = dims ?? [1, 3, 63, 64, 65, 100, 128, 384, 385].randomElement(using: &rng)!
        model = Self.model(dims: d, name: "model-" + Self.string(&rng, maxLength: 8))
        let nd = docCount ?? Int.random(in: 1...6, using: &rng)
        for i in 0..<nd {
            documents.append(DocumentRecord(
                path: "docs/\(i)/" + Self.string(&rng, maxLength: 12) + ".md",
                size: UInt64.random(in: 0...UInt64.max, using: &rng),
                mtimeNanoseconds: Int64.random(in: Int64.min...Int64.max, using: &rng),
                contentSHA256: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) },
                title: Self.string(&rng, maxLength: 20)))
        }
        let nc = chunkCount ?? Int.random(in: 0...60, using: &rng)
        let headings = (0..<4).map { _ in Self.string(&rng, maxLength: 10) }
        for i in 0..<nc {
            let kind = Int.random(in: 0..<10, using: &rng)
            let text: String
            if kind == 0 { text = "" } else if kind == 1 { text = String(repeating: "long line of text ", count: Int.random(in: 100...3000, using: &rng)) + Self.string(&rng, maxLength: 50) } else { text = Self.string(&rng, maxLength: maxText) }
            let zero = Int.random(in: 0..<15, using: &rng) == 0
            let vector = (0..<d).map { _ in zero ? Float(0) : Float.random(in: -1...1, using: &rng) * (Bool.random(using: &rng) ? 1 : 0.01) }
            let rec = ChunkRecord(
                document: UInt32.random(in: 0..<UInt32(nd), using: &rng), ordinal: UInt32(i),
                lineStart: UInt32.random(in: 1...1000, using: &rng), lineEnd: UInt32.random(in: 1000...UInt32.max, using: &rng),
                byteStart: UInt64.random(in: 0...UInt64.max / 2, using: &rng), byteEnd: UInt64.random(in: UInt64.max / 2...UInt64.max, using: &rng),
                headingPath: (0..<Int.random(in: 0...3, using: &rng)).map { _ in headings.randomElement(using: &rng)! })
            chunks.append((rec, text, vector))
        }
    }

    func writer(textBlockSize: Int = SegmentFormat.textBlockSize) -> SegmentWriter {
        let w = SegmentWriter(model: model, textBlockSize: textBlockSize)
        for d in documents { w.addDocument(d) }
        for c in chunks { w.addChunk(c.record, text: c.text, vector: c.vector) }
        return w
    }
}

/// A fresh temporary folder per test.
class TempDirTestCase: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbformat-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
}
