import CKBKernels
import Foundation
import KBCore
import KBTestSupport
import XCTest

@testable import KBEmbed

/// The int8 encoder against sentence-transformers' float32 embeddings of the 302 golden
/// fixture texts (the quality gates of issue 16), and the properties a build relies on:
/// the same vectors every time, and the same vectors in a batch as alone.
final class Int8EncoderTests: XCTestCase {
    /// The gates: mean cosine to the float32 golden vectors ≥ 0.999, worst ≥ 0.995.
    static let minMeanCosine = 0.999
    static let minWorstCosine = 0.995

    static func cosine(_ a: [Float], _ b: [Double]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * y; na += Double(x) * Double(x); nb += y * y }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    func testInt8MeetsTheQualityGatesOnTheGoldenTexts() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM(), precision: .int8)
        XCTAssertEqual(model.precision, .int8)
        let tokens = try Fixtures.minilmTokens()
        let golden = try Fixtures.minilmEmbeddings()
        XCTAssertEqual(tokens.count, 302)
        let vectors = try model.embed(tokenIDs: tokens.map(\.input_ids))
        var sum = 0.0, worst = 1.0, worstID = -1
        for (t, (v, g)) in zip(tokens, zip(vectors, golden)) {
            XCTAssertEqual(t.id, g.id)
            let c = Self.cosine(v, g.embedding)
            sum += c
            if c < worst { worst = c; worstID = t.id }
        }
        let mean = sum / Double(tokens.count)
        print("int8 (gemm kernel \(String(cString: kb_gemm_kernel_name()))) vs float32 golden, 302 texts: mean cosine \(mean), worst \(worst) (text \(worstID))")
        XCTAssertGreaterThanOrEqual(mean, Self.minMeanCosine)
        XCTAssertGreaterThanOrEqual(worst, Self.minWorstCosine, "text \(worstID)")
    }

    /// The int8 path really runs: its vectors are close to float32's but not equal to them.
    func testInt8IsNotTheFloatPath() throws {
        let f32 = try Embedder(modelDirectory: InstalledModels.miniLM(), precision: .f32)
        let int8 = try Embedder(modelDirectory: InstalledModels.miniLM(), precision: .int8)
        let text = "The committee approved the budget after a long debate about the new library."
        let a = try f32.embed(text), b = try int8.embed(text)
        XCTAssertNotEqual(a, b)
        XCTAssertGreaterThan(Self.cosine(b, a.map(Double.init)), 0.99)
    }

    func testInt8IsDeterministicAndBatchEqualsOneAtATime() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM(), threads: 2, tokenBudget: 300, precision: .int8)
        let tokens = try Fixtures.minilmTokens()
        // Short, long and truncated texts mixed, in an order unrelated to their length.
        let picked = stride(from: 0, to: tokens.count, by: 5).map { tokens[$0].input_ids }
        let batched = try model.embed(tokenIDs: picked)
        XCTAssertEqual(try model.embed(tokenIDs: picked), batched, "a second run gave other vectors")
        let again = try Embedder(modelDirectory: InstalledModels.miniLM(), threads: 1, precision: .int8)
        XCTAssertEqual(try again.embed(tokenIDs: picked), batched, "another load (other batches) gave other vectors")
        for (ids, v) in zip(picked, batched) {
            XCTAssertEqual(try model.embed(tokenIDs: [ids])[0], v, "length \(ids.count): alone ≠ in a batch")
        }
    }

    /// Loading in int8 remembers the calibration's outlier channels in the model folder's
    /// check cache (so a `kbindex query` does not pay the calibration pass again); a load that
    /// uses the remembered channels gives exactly the vectors of one that calibrated, and a
    /// remembered value that does not fit the model is ignored (calibrated again).
    func testRememberedOutlierChannelsGiveTheCalibratedVectors() throws {
        let source = try InstalledModels.miniLM()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbint8-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) where !name.hasPrefix(".") {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(name), withDestinationURL: source.appendingPathComponent(name))
        }
        let weights = dir.appendingPathComponent("model.safetensors").path
        let cache = FileCheckCache(folder: dir)
        XCTAssertNil(cache.value(Embedder.outlierCacheKey, files: [weights]))
        let text = "Rotate the logs weekly and keep four old copies, compressed."
        let calibrated = try Embedder(modelDirectory: dir, threads: 1, precision: .int8).embed(text)
        let remembered = try XCTUnwrap(cache.value(Embedder.outlierCacheKey, files: [weights]), "the channels were not remembered")
        XCTAssertEqual(remembered.split(separator: ";", omittingEmptySubsequences: false).count, 24)
        XCTAssertEqual(try Embedder(modelDirectory: dir, threads: 1, precision: .int8).embed(text), calibrated)
        for bogus in ["", "1,2,3", String(repeating: "0,0,0,0,0,0,0,0;", count: 23) + "0,0,0,0,0,0,0,0", remembered.replacingOccurrences(of: ";", with: ",")] {
            cache.record(Embedder.outlierCacheKey, value: bogus, files: [weights])
            XCTAssertEqual(try Embedder(modelDirectory: dir, threads: 1, precision: .int8).embed(text), calibrated, "remembered \(bogus.prefix(40))")
        }
    }

    /// A NaN or infinity in a linear weight (quantized, or in an outlier column kept in float)
    /// poisons the int8 vectors as it does the float ones: loading fails naming the tensor.
    func testNonFiniteLinearWeightIsAnErrorNamingTheTensor() throws {
        // (tensor, value index, value, the name and value the error gives: Q, K and V are fused)
        let cases: [(String, Int, Float, String)] = [
            ("encoder.layer.0.intermediate.dense.weight", 5, .nan, "'encoder.layer.0.intermediate.dense.weight' holds NaN"),
            ("encoder.layer.1.output.dense.weight", 17, -.infinity, "'encoder.layer.1.output.dense.weight' holds -inf"),
            ("encoder.layer.0.attention.self.query.weight", 0, .infinity, "'encoder.layer.0.attention.self.{query,key,value}.weight' holds inf"),
        ]
        for (tensor, index, value, shown) in cases {
            var m = TinyModel(seed: 11)
            m.defects = [.tensorValues(tensor, [index: value])]
            let dir = try m.writeTemporary()
            defer { TinyModel.remove(dir) }
            do {
                _ = try Embedder(modelDirectory: dir, threads: 1, precision: .int8)
                XCTFail("\(tensor): loaded")
            } catch let e as ModelError {
                guard case .nonFiniteVector = e else { XCTFail("\(tensor): \(e)"); continue }
                XCTAssertTrue(e.description.contains("tensor \(shown)"), e.description)
            }
        }
    }
}
