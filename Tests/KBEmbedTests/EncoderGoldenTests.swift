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
        let vectors = try model.embed(tokenIDs: tokens.map(\.input_ids))
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

    /// The whole path a user gets: text → tokenizer → encoder, all 302 texts in one call.
    func testGoldenEmbeddingsFromText() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM())
        let texts = try Fixtures.minilmTexts()
        let golden = try Fixtures.minilmEmbeddings()
        let vectors = try model.embed(texts.map(\.text))
        XCTAssertEqual(vectors.count, golden.count)
        for (t, (v, g)) in zip(texts, zip(vectors, golden)) {
            let (a, c) = Self.compare(v, g.embedding)
            XCTAssertLessThanOrEqual(a, Self.maxAbs, "text \(t.id) (\(t.tag)): max |Δ| \(a)")
            XCTAssertLessThanOrEqual(c, Self.maxOneMinusCos, "text \(t.id) (\(t.tag)): 1 − cos \(c)")
        }
    }

    /// The pair cosines a person can read in similarities.json, recomputed from our vectors.
    func testReadableSimilaritiesHold() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM())
        let soup = try model.embed("How do I make lentil soup?")
        let unrelated = try model.embed("The quarterly report is due on Friday.")
        let paraphrase = try model.embed("What is the recipe for lentil soup?")
        func cos(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map(*).reduce(0, +) }
        XCTAssertEqual(cos(soup, soup), 1, accuracy: 1e-5)
        XCTAssertGreaterThan(cos(soup, paraphrase), 0.7)
        XCTAssertLessThan(cos(soup, unrelated), 0.3)
    }

    func testBatchOfMixedLengthsEqualsOneAtATime() throws {
        let model = try Embedder(modelDirectory: InstalledModels.miniLM(), threads: 2, tokenBudget: 300)
        let tokens = try Fixtures.minilmTokens()
        // Short, long and truncated texts mixed, in an order unrelated to their length.
        let picked = stride(from: 0, to: tokens.count, by: 7).map { tokens[$0].input_ids }
        let batched = try model.embed(tokenIDs: picked)
        for (ids, v) in zip(picked, batched) {
            let alone = try model.embed(tokenIDs: [ids])[0]
            let d = zip(alone, v).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(d, 1e-6, "length \(ids.count)")
        }
    }
}
