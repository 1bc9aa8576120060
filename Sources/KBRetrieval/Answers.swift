import Foundation
import KBCore
import KBSearch

/// The version of kbindex, as `kbindex --version` and the server's `/v1/info` report it.
public enum KBIndexVersion {
    public static let string = "0.1.0"
}

/// How a question is answered: by its embedding (`vector`), by BM25 over words (`lexical`), or
/// both fused (`hybrid`).
public enum SearchMode: String, Sendable, Codable, CaseIterable {
    case hybrid, vector, lexical
}

/// One question as a client asks it.
public struct SearchQuery: Sendable, Equatable {
    /// The question (any text; not empty).
    public var text: String
    /// How many hits (1 or more).
    public var k: Int
    /// nil: hybrid, or vector when the index has no lexical section.
    public var mode: SearchMode?
    /// Globs as .gitignore reads them, relative to the indexed folder: only documents whose
    /// path matches one are returned. Empty: every document.
    public var paths: [String]
    /// How hybrid mode fuses its two rankings.
    public var fusion: Fusion.Options

    public init(_ text: String, k: Int = 5, mode: SearchMode? = nil, paths: [String] = [], fusion: Fusion.Options = .init()) {
        self.text = text
        self.k = k
        self.mode = mode
        self.paths = paths
        self.fusion = fusion
    }
}

/// One ranked chunk, with what each retrieval said about it (positions in the opened index,
/// before its text is read).
public struct RankedHit: Sendable, Equatable {
    public var segment: Int
    public var chunk: Int
    /// The ranking score of the mode: cosine (vector), BM25 (lexical) or the fused score (hybrid).
    public var score: Double
    public var vectorScore: Float?, vectorRank: Int?
    public var bm25Score: Float?, lexicalRank: Int?

    public init(segment: Int, chunk: Int, score: Double, vectorScore: Float? = nil, vectorRank: Int? = nil,
                bm25Score: Float? = nil, lexicalRank: Int? = nil) {
        self.segment = segment
        self.chunk = chunk
        self.score = score
        self.vectorScore = vectorScore
        self.vectorRank = vectorRank
        self.bm25Score = bm25Score
        self.lexicalRank = lexicalRank
    }
}

/// One hit as `kbindex query --json` prints it and the server returns it: snake_case keys,
/// absent scores omitted, the whole chunk text, real names (not escaped for a terminal).
public struct SearchHit: Sendable, Codable, Equatable {
    /// The chunk's stable id (`ChunkID`): what `GET /v1/chunks/{id}` and MCP `fetch` take.
    public var id: String
    public var rank: Int
    public var score: Double
    public var vectorScore: Float?
    public var bm25Score: Float?
    public var vectorRank: Int?
    public var lexicalRank: Int?
    public var path: String
    /// The document's title, cut to `SearchHit.titleLimit` characters.
    public var title: String
    /// Where the chunk is: first and last line, page or paragraph, as `unit` says; in JSON
    /// `line_start`/`line_end`, `page`/`page_end` or `paragraph_start`/`paragraph_end`.
    public var lineStart: Int
    public var lineEnd: Int
    public var unit: LocationUnit
    public var heading: [String]
    public var text: String

    enum CodingKeys: String, CodingKey {
        case id, rank, score, path, title, heading, text
        case vectorScore = "vector_score", bm25Score = "bm25_score", vectorRank = "vector_rank", lexicalRank = "lexical_rank"
    }

    public init(id: String, rank: Int, score: Double, vectorScore: Float?, bm25Score: Float?, vectorRank: Int?, lexicalRank: Int?,
                path: String, title: String, lineStart: Int, lineEnd: Int, unit: LocationUnit = .lines, heading: [String], text: String) {
        self.id = id
        self.rank = rank
        self.score = score
        self.vectorScore = vectorScore
        self.bm25Score = bm25Score
        self.vectorRank = vectorRank
        self.lexicalRank = lexicalRank
        self.path = path
        self.title = title
        self.lineStart = lineStart
        self.lineEnd = lineEnd
        self.unit = unit
        self.heading = heading
        self.text = text
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        rank = try c.decode(Int.self, forKey: .rank)
        score = try c.decode(Double.self, forKey: .score)
        vectorScore = try c.decodeIfPresent(Float.self, forKey: .vectorScore)
        bm25Score = try c.decodeIfPresent(Float.self, forKey: .bm25Score)
        vectorRank = try c.decodeIfPresent(Int.self, forKey: .vectorRank)
        lexicalRank = try c.decodeIfPresent(Int.self, forKey: .lexicalRank)
        path = try c.decode(String.self, forKey: .path)
        title = try c.decode(String.self, forKey: .title)
        (unit, lineStart, lineEnd) = try SourceLocationKeys.decode(from: decoder)
        heading = try c.decode([String].self, forKey: .heading)
        text = try c.decode(String.self, forKey: .text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(rank, forKey: .rank)
        try c.encode(score, forKey: .score)
        try c.encodeIfPresent(vectorScore, forKey: .vectorScore)
        try c.encodeIfPresent(bm25Score, forKey: .bm25Score)
        try c.encodeIfPresent(vectorRank, forKey: .vectorRank)
        try c.encodeIfPresent(lexicalRank, forKey: .lexicalRank)
        try c.encode(path, forKey: .path)
        try c.encode(title, forKey: .title)
        try SourceLocationKeys.encode(unit, lineStart, lineEnd, to: encoder)
        try c.encode(heading, forKey: .heading)
        try c.encode(text, forKey: .text)
    }

    /// The most characters of a document title in a hit: a title is a label (markdown takes
    /// the first H1, which can be a whole paragraph long), and the same heading is in `heading`.
    public static let titleLimit = 200

    /// `s` if it has at most `limit` characters, else its first `limit - 1` and "…". O(limit).
    public static func shortened(_ s: String, to limit: Int) -> String {
        var i = s.startIndex, n = 0
        while i < s.endIndex {
            if n == limit { return String(s[..<s.index(before: i)]) + "…" }
            n += 1
            i = s.index(after: i)
        }
        return s
    }
}

/// The answer to one `SearchQuery`.
public struct SearchResult: Sendable, Codable, Equatable {
    /// The served index's name.
    public var index: String
    /// 1 when the index was opened, one more at each reload.
    public var generation: Int
    /// The mode that answered (a query without one gets the index's default).
    public var mode: SearchMode
    public var hits: [SearchHit]
}

/// A chunk with its document and neighbours: context for a RAG prompt.
public struct ChunkContext: Sendable, Codable, Equatable {
    public struct Chunk: Sendable, Codable, Equatable {
        public var id: String
        /// Its position in its document (0, 1, 2…).
        public var ordinal: Int
        /// Lines, pages or paragraphs, as `unit` says (see `SearchHit.lineStart`).
        public var lineStart: Int
        public var lineEnd: Int
        public var unit: LocationUnit
        public var heading: [String]
        public var text: String
        enum CodingKeys: String, CodingKey {
            case id, ordinal, heading, text
        }

        public init(id: String, ordinal: Int, lineStart: Int, lineEnd: Int, unit: LocationUnit = .lines, heading: [String], text: String) {
            self.id = id
            self.ordinal = ordinal
            self.lineStart = lineStart
            self.lineEnd = lineEnd
            self.unit = unit
            self.heading = heading
            self.text = text
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(String.self, forKey: .id)
            ordinal = try c.decode(Int.self, forKey: .ordinal)
            (unit, lineStart, lineEnd) = try SourceLocationKeys.decode(from: decoder)
            heading = try c.decode([String].self, forKey: .heading)
            text = try c.decode(String.self, forKey: .text)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(ordinal, forKey: .ordinal)
            try SourceLocationKeys.encode(unit, lineStart, lineEnd, to: encoder)
            try c.encode(heading, forKey: .heading)
            try c.encode(text, forKey: .text)
        }
    }
    public struct Document: Sendable, Codable, Equatable {
        public var path: String
        public var title: String
        /// The file's size when indexed.
        public var bytes: Int
        /// Its modification time when indexed, ISO 8601 (UTC).
        public var modified: String
        /// SHA-256 of its content, hex.
        public var sha256: String
        /// How many chunks it has.
        public var chunks: Int
    }
    public var index: String
    public var generation: Int
    public var document: Document
    public var chunk: Chunk
    /// Up to `neighbours` chunks before it in its document, in document order.
    public var before: [Chunk]
    /// Up to `neighbours` chunks after it, in document order.
    public var after: [Chunk]
}

/// What a served index holds, for `/v1/info` and MCP `status`.
public struct IndexInfo: Sendable, Codable, Equatable {
    public var name: String
    public var generation: Int
    public var documents: Int
    public var chunks: Int
    public var segments: Int
    public var bytes: Int
    /// Whether it has the BM25 section (lexical and hybrid search).
    public var lexical: Bool
    /// The precision its vectors were embedded in, as its manifest records it: "f32" (no
    /// `precision` key), "int8", or a newer kbindex's value.
    public var precision: String
    /// When this generation was opened, ISO 8601 (UTC).
    public var loadedAt: String
    enum CodingKeys: String, CodingKey {
        case name, generation, documents, chunks, segments, bytes, lexical, precision
        case loadedAt = "loaded_at"
    }
}

public struct ModelInfo: Sendable, Codable, Equatable {
    public var name: String
    public var dimensions: Int
    public var maxTokens: Int
    /// The precision questions and /v1/embeddings inputs are embedded in: "f32" or "int8"
    /// ("f32" for a remote model, whose vectors arrive as float32).
    public var precision: String
    /// Where vectors come from: "local", "openai" or "ollama".
    public var provider: String
    /// The prompt prepended to questions (absent: none). /v1/embeddings adds none.
    public var queryPrompt: String?
    enum CodingKeys: String, CodingKey {
        case name, dimensions, precision, provider
        case maxTokens = "max_tokens"
        case queryPrompt = "query_prompt"
    }

    public init(name: String, dimensions: Int, maxTokens: Int, precision: String, provider: String = "local", queryPrompt: String? = nil) {
        self.name = name
        self.dimensions = dimensions
        self.maxTokens = maxTokens
        self.precision = precision
        self.provider = provider
        self.queryPrompt = queryPrompt
    }
}

public struct ServiceInfo: Sendable, Codable, Equatable {
    public var version: String
    public var model: ModelInfo
    public var indexes: [IndexInfo]
}

enum ISO8601 {
    /// `date` as "2026-12-02T06:50:00Z".
    static func string(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }
}

/// The JSON keys of a chunk's place in its file, by `LocationUnit`: `line_start`/`line_end`,
/// `page`/`page_end`, or `paragraph_start`/`paragraph_end` (one pair, never two).
public enum SourceLocationKeys: String, CodingKey, CaseIterable {
    case lineStart = "line_start", lineEnd = "line_end"
    case page, pageEnd = "page_end"
    case paragraphStart = "paragraph_start", paragraphEnd = "paragraph_end"

    /// The pair of keys that `unit` is written with.
    public static func keys(_ unit: LocationUnit) -> (start: SourceLocationKeys, end: SourceLocationKeys) {
        switch unit {
        case .lines: return (.lineStart, .lineEnd)
        case .pages: return (.page, .pageEnd)
        case .paragraphs: return (.paragraphStart, .paragraphEnd)
        }
    }

    static func encode(_ unit: LocationUnit, _ start: Int, _ end: Int, to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: SourceLocationKeys.self)
        let (s, e) = keys(unit)
        try c.encode(start, forKey: s)
        try c.encode(end, forKey: e)
    }

    static func decode(from decoder: any Decoder) throws -> (LocationUnit, Int, Int) {
        let c = try decoder.container(keyedBy: SourceLocationKeys.self)
        for unit in LocationUnit.allCases {
            let (s, e) = keys(unit)
            if c.contains(s) { return (unit, try c.decode(Int.self, forKey: s), try c.decode(Int.self, forKey: e)) }
        }
        throw DecodingError.keyNotFound(SourceLocationKeys.lineStart, .init(codingPath: c.codingPath, debugDescription: "no line_start, page or paragraph_start"))
    }
}
