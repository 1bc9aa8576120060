import Foundation
import KBTestSupport
import XCTest

@testable import KBEmbed

/// The Swift encoder against sentence-transformers' own embeddings for the 302 fixture
/// texts (Tests/Fixtures/minilm/README.md gives the tolerances and why they are what they are).
final class EncoderGoldenTests: XCTestCase {
    /// Per value, and per text as 1 − cosine (cosine in Double). About 30× above float32
    /// noise, and far below the smallest real mistake (float16 weights, eps 1e-5, tanh GELU).
    static let maxAbs = 1e-5
    static let maxOneMinusCos = 1e-8

    static func compare(_ got: [Float], _ want: [Double]) -> (maxAbs: Double, oneMinusCos: Double) {
        var m = 0.0, dot = 0.0, ng = 0.0, nw = 0.0
        for (g, w) in zip(got, want) {
            let g = Double(g)
            m = max(m, abs(g - w))
            dot += g * w; ng += g * g; nw += w * w
        }
        return (m, 1 - dot / (ng.squareRoot() * nw.squareRoot()))
    }

    func testGoldenEmbeddingsFromReferenceTokenIDs() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM())
        let tokens = try Fixtures.minilmTokens()
        let golden = try Fixtures.minilmEmbeddings()
        XCTAssertEqual(tokens.count, 302)
        let vectors = model.embed(tokenIDs: tokens.map(\.input_ids))
        var worstAbs = 0.0, worstCos = 0.0
        for (t, (v, g)) in zip(tokens, zip(vectors, golden)) {
            XCTAssertEqual(t.id, g.id)
            XCTAssertEqual(v.count, 384)
            let (a, c) = Self.compare(v, g.embedding)
            worstAbs = max(worstAbs, a); worstCos = max(worstCos, c)
            XCTAssertLessThanOrEqual(a, Self.maxAbs, "text \(t.id): max |Δ| \(a)")
            XCTAssertLessThanOrEqual(c, Self.maxOneMinusCos, "text \(t.id): 1 − cos \(c)")
        }
        print("golden embeddings: worst max|Δ| \(worstAbs), worst 1−cos \(worstCos)")
    }

    func testBatchOfMixedLengthsEqualsOneAtATime() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM(), threads: 2, tokenBudget: 300)
        let tokens = try Fixtures.minilmTokens()
        // Short, long and truncated texts mixed, in an order unrelated to their length.
        let picked = stride(from: 0, to: tokens.count, by: 7).map { tokens[$0].input_ids }
        let batched = model.embed(tokenIDs: picked)
        for (ids, v) in zip(picked, batched) {
            let alone = model.embed(tokenIDs: [ids])[0]
            let d = zip(alone, v).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(d, 1e-6, "length \(ids.count)")
        }
    }
}
