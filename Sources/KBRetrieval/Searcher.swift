import Foundation
import KBCore
import KBFormat
import KBIngest
import KBSearch

/// Answers questions from one opened generation of an index: vector, lexical or hybrid, with
/// what every question of a generation shares (the BM25 statistics, the chunk-id table)
/// computed once, on first use. Immutable apart from those caches, so any number of threads
/// may use one; a server keeps one per index and swaps it when the index is rebuilt, and a
/// request keeps the searcher it started with (its segments stay mapped until the last user
/// lets go).
public final class Searcher: @unchecked Sendable {
    /// The index's name where several are served ("" for the command line).
    public let name: String
    public let index: IndexDirectory
    /// 1 for the first opening, one more at each reload.
    public let generation: Int
    /// When this generation was opened.
    public let loadedAt: Date
    /// Whether every segment has its LEXICAL section (lexical and hybrid search).
    public let hasLexical: Bool

    private let lock = NSLock()
    /// Held while a cache is computed, so that concurrent first users compute it once.
    private let building = NSLock()
    private var statisticsCache: LexicalSearch.Statistics?
    private var documentTable: [String: (segment: Int, document: Int)]?

    /// A searcher over `index`. O(segments).
    public init(index: IndexDirectory, name: String = "", generation: Int = 1) {
        self.index = index
        self.name = name
        self.generation = generation
        self.loadedAt = Date()
        self.hasLexical = LexicalSearch.isAvailable(in: index)
    }

    /// The mode a question without one gets: hybrid, or vector without a lexical section.
    public var defaultMode: SearchMode { hasLexical ? .hybrid : .vector }

    /// The BM25 statistics of this generation, computed on first use (O(live chunks)) and
    /// kept; concurrent first users wait for one computation.
    public func statistics() throws -> LexicalSearch.Statistics {
        if let s = lock.withLock({ statisticsCache }) { return s }
        guard hasLexical else { throw RetrievalError.lexicalUnavailable(index: name) }
        return try building.withLock {
            if let s = lock.withLock({ statisticsCache }) { return s }
            let s: LexicalSearch.Statistics
            do { s = try LexicalSearch.Statistics(index) } catch { throw mapped(error) }
            lock.withLock { statisticsCache = s }
            return s
        }
    }

    /// Computes what the generation's questions share (the BM25 statistics, the chunk-id
    /// table) now rather than in the first request that needs it: a server calls it before
    /// it serves a new generation. A damaged lexical section is left for the questions to
    /// report. O(live chunks + live documents).
    public func warm() {
        if hasLexical { _ = try? statistics() }
        _ = documents()
    }

    /// The filter for `globs` (relative to the indexed folder, or to `base` inside it; .gitignore
    /// rules), nil for none. Throws `RetrievalError.invalidRequest` for an invalid glob.
    public static func filter(_ globs: [String], base: String = "") throws -> DocumentFilter? {
        guard !globs.isEmpty else { return nil }
        let selection: PathSelection
        do { selection = try PathSelection(globs: globs, base: base) } catch { throw RetrievalError.invalidRequest(error.description) }
        return { segment, document in selection.matches(segment.document(document).path) }
    }

    /// The `k` best chunks for each of `texts` in `mode`; `vectors[j]` is text j's embedding
    /// (ignored, and may be empty, in lexical mode). The vector scans of all questions share
    /// one pass over memory.
    ///
    /// Throws `RetrievalError`: `.lexicalUnavailable` (lexical or hybrid without a LEXICAL
    /// section), `.damaged` (a damaged segment), `.invalidRequest` (vectors of the wrong size).
    /// Cost: one scan of the index's vectors, O(postings of the questions' terms).
    public func answer(_ texts: [String], vectors: [[Float]], mode: SearchMode, k: Int,
                       filter: DocumentFilter? = nil, fusion: Fusion.Options = .init(), threads: Int? = nil) throws -> [[RankedHit]] {
        guard k > 0, !texts.isEmpty else { return Array(repeating: [], count: texts.count) }
        if mode != .lexical {
            let dims = index.manifest.model.dimensions
            guard vectors.count == texts.count, vectors.allSatisfy({ $0.count == dims }) else {
                throw RetrievalError.invalidRequest("question vectors do not match the index's \(dims) dimensions")
            }
        }
        let options = Search.Options(threads: threads)
        do {
            switch mode {
            case .vector:
                return Search.topK(batch: vectors, k: k, in: index, documentFilter: filter, options: options).map { hits in
                    hits.enumerated().map { RankedHit(segment: $1.segment, chunk: $1.chunk, score: Double($1.score), vectorScore: $1.score, vectorRank: $0 + 1) }
                }
            case .lexical:
                let statistics = try statistics()
                let selection = LexicalSearch.DocumentSelection(index, filter)
                let index = self.index
                return try Parallel.map(texts, threads: threads) { q in
                    try LexicalSearch.scores(q, statistics: statistics).top(k, in: index, selection: selection).enumerated().map {
                        RankedHit(segment: $1.segment, chunk: $1.chunk, score: Double($1.score), bm25Score: $1.score, lexicalRank: $0 + 1)
                    }
                }
            case .hybrid:
                let statistics = try statistics()
                return try HybridSearch.topK(texts: texts, vectors: vectors, k: k, in: index, documentFilter: filter,
                                             fusion: fusion, search: options, statistics: statistics).map { hits in
                    hits.map {
                        RankedHit(segment: $0.segment, chunk: $0.chunk, score: $0.score, vectorScore: $0.vectorScore, vectorRank: $0.vectorRank,
                                  bm25Score: $0.lexicalScore, lexicalRank: $0.lexicalRank)
                    }
                }
            }
        } catch {
            throw mapped(error)
        }
    }

    /// `ranked` with their texts, ids and documents, ranks from 1. Every text is read before
    /// any hit is returned: a damaged block is one `RetrievalError.damaged`. O(hits × block size).
    public func hits(_ ranked: [RankedHit]) throws -> [SearchHit] {
        try ranked.enumerated().map { try hit($1, rank: $0 + 1) }
    }

    /// `r` as a `SearchHit` at `rank`. Throws `RetrievalError.damaged`.
    public func hit(_ r: RankedHit, rank: Int) throws -> SearchHit {
        let seg = index.segments[r.segment]
        let chunk = seg.chunk(r.chunk)
        let doc = seg.document(Int(chunk.document))
        let text: String
        do { text = try seg.text(ofChunk: r.chunk) } catch { throw mapped(error) }
        return SearchHit(id: ChunkID(path: doc.path, contentSHA256: doc.contentSHA256, ordinal: Int(chunk.ordinal)).description,
                   rank: rank, score: r.score, vectorScore: r.vectorScore, bm25Score: r.bm25Score,
                   vectorRank: r.vectorRank, lexicalRank: r.lexicalRank, path: doc.path,
                   title: SearchHit.shortened(doc.title, to: SearchHit.titleLimit),
                   lineStart: Int(chunk.lineStart), lineEnd: Int(chunk.lineEnd), unit: chunk.unit, heading: chunk.headingPath, text: text)
    }

    /// The chunk `id` with its document and up to `neighbours` chunks either side. Throws
    /// `RetrievalError.unknownChunk` for a malformed id or one no live document has,
    /// `.damaged` for a damaged text block. The first call builds the id table: O(live
    /// documents) hashes; later ones O(log chunks + neighbours × block size).
    public func chunk(id text: String, neighbours: Int = 1) throws -> ChunkContext {
        guard let id = ChunkID(text), let (s, d) = documents()[id.document] else { throw RetrievalError.unknownChunk(text) }
        let seg = index.segments[s]
        guard let range = chunkRange(ofDocument: d, in: seg), id.ordinal < range.count else { throw RetrievalError.unknownChunk(text) }
        let doc = seg.document(d)
        let at = range.lowerBound + id.ordinal
        func record(_ c: Int) throws -> ChunkContext.Chunk {
            let r = seg.chunk(c)
            let body: String
            do { body = try seg.text(ofChunk: c) } catch { throw mapped(error) }
            return .init(id: ChunkID(path: doc.path, contentSHA256: doc.contentSHA256, ordinal: Int(r.ordinal)).description,
                         ordinal: Int(r.ordinal), lineStart: Int(r.lineStart), lineEnd: Int(r.lineEnd), unit: r.unit,
                         heading: r.headingPath, text: body)
        }
        let n = max(0, neighbours)
        let before = try (max(range.lowerBound, at - n)..<at).map(record)
        let after = try (at + 1..<min(range.upperBound, at + 1 + n)).map(record)
        let document = ChunkContext.Document(
            path: doc.path, title: doc.title, bytes: Int(clamping: doc.size),
            modified: ISO8601.string(Date(timeIntervalSince1970: Double(doc.mtimeNanoseconds) / 1e9)),
            sha256: doc.contentSHA256.map { String(format: "%02x", $0) }.joined(), chunks: range.count)
        return ChunkContext(index: name, generation: generation, document: document, chunk: try record(at), before: before, after: after)
    }

    /// Live documents by the document part of their chunk ids, built on first use.
    private func documents() -> [String: (segment: Int, document: Int)] {
        if let t = lock.withLock({ documentTable }) { return t }
        return building.withLock {
            if let t = lock.withLock({ documentTable }) { return t }
            var t: [String: (segment: Int, document: Int)] = [:]
            for (s, seg) in index.segments.enumerated() {
                for d in 0..<seg.documentCount where !index.isDeleted(segment: s, document: d) {
                    let doc = seg.document(d)
                    t[ChunkID.documentKey(path: doc.path, contentSHA256: doc.contentSHA256)] = (s, d)
                }
            }
            lock.withLock { documentTable = t }
            return t
        }
    }

    /// The chunks of document `d` of `seg`, in ordinal order: writers store a document's
    /// chunks together, in order, and documents in order, so a binary search finds them
    /// (checked; a segment written otherwise is searched linearly). O(log chunks).
    private func chunkRange(ofDocument d: Int, in seg: SegmentReader) -> Range<Int>? {
        var lo = 0, hi = seg.chunkCount
        while lo < hi {
            let mid = (lo + hi) / 2
            if seg.documentIndex(ofChunk: mid) < d { lo = mid + 1 } else { hi = mid }
        }
        var end = lo
        while end < seg.chunkCount && seg.documentIndex(ofChunk: end) == d { end += 1 }
        let range = lo..<end
        if !range.isEmpty && range.enumerated().allSatisfy({ Int(seg.chunk($1).ordinal) == $0 }) { return range }
        // Not stored in order: look at every chunk.
        let all = (0..<seg.chunkCount).filter { seg.documentIndex(ofChunk: $0) == d }
        guard let first = all.first, all == Array(first..<first + all.count),
              all.enumerated().allSatisfy({ Int(seg.chunk($1).ordinal) == $0 }) else { return nil }
        return first..<first + all.count
    }

    /// A library error as this module's.
    private func mapped(_ error: Error) -> Error {
        switch error {
        case let e as RetrievalError: return e
        case let e as SegmentError: return RetrievalError.damaged(e, index: index.url)
        case is LexicalUnavailable: return RetrievalError.lexicalUnavailable(index: name)
        default: return error
        }
    }
}
