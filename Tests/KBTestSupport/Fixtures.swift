import Foundation

/// Locates the test fixtures that live in the repository (Tests/Fixtures) and the
/// golden MiniLM data copied from the reference implementation.
public enum Fixtures {
    /// `Tests/Fixtures` in this checkout.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// `Tests/Fixtures/minilm`: texts, token ids and embeddings made with `tokenizers` and
    /// `sentence-transformers` (see its README for the recipe and tolerances).
    public static let minilm: URL = root.appendingPathComponent("minilm")

    /// Reads a JSON-lines file into decoded values, one per non-empty line.
    /// The files escape every line-breaking character, so splitting on 0x0A is safe.
    public static func jsonLines<T: Decodable>(_ type: T.Type, _ url: URL) throws -> [T] {
        let data = try Data(contentsOf: url)
        let decoder = JSONDecoder()
        return try data.split(separator: 0x0A).map { try decoder.decode(T.self, from: Data($0)) }
    }

    public struct Text: Decodable, Sendable { public let id: Int; public let text: String; public let tag: String }
    public struct Tokens: Decodable, Sendable {
        public let id: Int
        public let input_ids: [Int32]
        public let attention_mask: [Int32]
        public let tokens: [String]
        public let full_length: Int
    }
    public struct Embedding: Decodable, Sendable { public let id: Int; public let embedding: [Double] }

    public static func minilmTexts() throws -> [Text] { try jsonLines(Text.self, minilm.appendingPathComponent("texts.jsonl")) }
    public static func minilmTokens() throws -> [Tokens] { try jsonLines(Tokens.self, minilm.appendingPathComponent("tokens.jsonl")) }
    public static func minilmEmbeddings() throws -> [Embedding] { try jsonLines(Embedding.self, minilm.appendingPathComponent("embeddings.jsonl")) }
}

/// A small, seeded, reproducible random number generator (SplitMix64) for tests.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
