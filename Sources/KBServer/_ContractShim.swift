// TEMPORARY: the KBRetrieval contract (/work/issue14-api.md) with a fake service, so that the
// HTTP layer compiles and its tests run before the lead's KBRetrieval lands. Deleted at the merge.
import Foundation
import KBSearch

public enum SearchMode: String, Sendable, Codable, CaseIterable { case hybrid, vector, lexical }

public struct SearchQuery: Sendable, Equatable {
    public var text: String
    public var k: Int
    public var mode: SearchMode?
    public var paths: [String]
    public var fusion: Fusion.Options
    public init(_ text: String, k: Int = 5, mode: SearchMode? = nil, paths: [String] = [], fusion: Fusion.Options = .init()) {
        self.text = text; self.k = k; self.mode = mode; self.paths = paths; self.fusion = fusion
    }
}

public struct Hit: Sendable, Codable, Equatable {
    public var id: String
    public var rank: Int
    public var score: Double
    public var vectorScore: Float?, bm25Score: Float?, vectorRank: Int?, lexicalRank: Int?
    public var path: String, title: String
    public var lineStart: Int, lineEnd: Int
    public var heading: [String]
    public var text: String
    enum CodingKeys: String, CodingKey {
        case id, rank, score, vectorScore = "vector_score", bm25Score = "bm25_score", vectorRank = "vector_rank", lexicalRank = "lexical_rank"
        case path, title, lineStart = "line_start", lineEnd = "line_end", heading, text
    }
}

public struct SearchResult: Sendable, Codable, Equatable {
    public var index: String
    public var generation: Int
    public var mode: SearchMode
    public var hits: [Hit]
}

public struct ChunkContext: Sendable, Codable, Equatable {
    public struct Chunk: Sendable, Codable, Equatable { public var id: String, ordinal: Int, lineStart: Int, lineEnd: Int, heading: [String], text: String }
    public struct Document: Sendable, Codable, Equatable { public var path: String, title: String, bytes: Int, modified: String, sha256: String, chunks: Int }
    public var index: String
    public var generation: Int
    public var document: Document
    public var chunk: Chunk
    public var before: [Chunk]
    public var after: [Chunk]
}

public struct IndexInfo: Sendable, Codable, Equatable {
    public var name: String, generation: Int, documents: Int, chunks: Int, segments: Int, bytes: Int
    public var lexical: Bool
    public var loadedAt: String
}
public struct ModelInfo: Sendable, Codable, Equatable { public var name: String, dimensions: Int, maxTokens: Int }
public struct ServiceInfo: Sendable, Codable, Equatable {
    public var version: String
    public var model: ModelInfo
    public var indexes: [IndexInfo]
}

public enum RetrievalError: Error, CustomStringConvertible, Sendable {
    case invalidRequest(String)
    case unknownIndex(String, known: [String])
    case unknownChunk(String)
    case lexicalUnavailable(index: String)
    case openFailed(index: URL, underlying: String)
    case damaged(index: URL, String)
    case model(String, isDamage: Bool)
    case incompatibleModel(String)
    public var description: String { String(reflecting: Mirror(reflecting: self).children.first?.value ?? "") }
}

public struct ServiceOptions: Sendable {
    public var model: String? = nil
    public var threads: Int? = nil
    public var batchWindow: Duration = .milliseconds(2)
    public var maxBatch: Int = 64
    public var reloadInterval: Duration = .milliseconds(250)
    public init() {}
}

public final class RetrievalService: Sendable {
    let names: [String]
    public init(indexes: [(name: String, url: URL)], options: ServiceOptions = .init()) throws { names = indexes.map(\.name) }
    public var indexNames: [String] { names }
    func resolve(_ index: String?) throws -> String {
        if let index { guard names.contains(index) else { throw RetrievalError.unknownIndex(index, known: names) }; return index }
        guard names.count == 1 else { throw RetrievalError.invalidRequest("several indexes: name one") }
        return names[0]
    }
    public func search(_ queries: [SearchQuery], index: String?) async throws -> [SearchResult] {
        let name = try resolve(index)
        return queries.map { q in
            SearchResult(index: name, generation: 1, mode: q.mode ?? .hybrid, hits: (0..<min(q.k, 2)).map {
                Hit(id: "0123456789abcdef-\($0)", rank: $0 + 1, score: 0.5, path: "a.md", title: "A", lineStart: 1, lineEnd: 2, heading: [], text: q.text)
            })
        }
    }
    public func chunk(id: String, index: String?, neighbours: Int) throws -> ChunkContext {
        let name = try resolve(index)
        guard id.hasPrefix("0123456789abcdef-") else { throw RetrievalError.unknownChunk(id) }
        let c = ChunkContext.Chunk(id: id, ordinal: 0, lineStart: 1, lineEnd: 2, heading: [], text: "x")
        return ChunkContext(index: name, generation: 1, document: .init(path: "a.md", title: "A", bytes: 1, modified: "2026-01-01T00:00:00Z", sha256: "00", chunks: 1), chunk: c, before: [], after: [])
    }
    public func embed(_ texts: [String]) async throws -> (vectors: [[Float]], tokens: Int) {
        (texts.map { _ in [0.6, 0.8] }, texts.count * 3)
    }
    public func info() -> ServiceInfo {
        ServiceInfo(version: "0.1.0", model: .init(name: "all-MiniLM-L6-v2", dimensions: 2, maxTokens: 256),
                    indexes: names.map { IndexInfo(name: $0, generation: 1, documents: 1, chunks: 1, segments: 1, bytes: 1, lexical: true, loadedAt: "2026-01-01T00:00:00Z") })
    }
    @discardableResult public func reloadIfChanged() -> [String] { [] }
    public func runReloader() async { while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(250)) } }
    public func setBatchObserver(_ observer: @escaping @Sendable (Int) -> Void) {}
}
