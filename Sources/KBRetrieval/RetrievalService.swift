import Dispatch
import Foundation
import KBEmbed
import KBFormat
import KBSearch

/// Options of a `RetrievalService`.
public struct ServiceOptions: Sendable {
    /// Model name or folder; nil: the model the indexes were built with.
    public var model: String?
    /// The rest of how questions are embedded (provider, remote model and URL, query prompt);
    /// `model`, `threads` and `precision` above take precedence over its own fields.
    public var embedder = EmbedderOptions()
    /// Threads scanning and embedding (nil: every core).
    public var threads: Int?
    /// The precision questions are embedded in; nil: the first index's
    /// (`QuestionPrecision.choose`). Used by `init(indexes:options:)`, which loads the model.
    public var precision: Precision?
    /// How long the first question of a batch waits for others to join it. Questions that
    /// arrive while a batch runs join the next one without waiting longer, so under load
    /// batches form without a window: 0 by default (Benchmarks/RESULTS.md, issue 14: 2 ms
    /// cost a lone question 1.7 ms at p50 and bought no throughput).
    public var batchWindow: Duration = .zero
    /// The most questions answered in one batch.
    public var maxBatch: Int = 64
    /// How often the indexes' manifests are checked for a new generation.
    public var reloadInterval: Duration = .milliseconds(250)
    /// The most questions (and, separately, embedding calls) that may wait for their turn;
    /// beyond it requests fail at once with `RetrievalError.busy` instead of queueing.
    public var maxWaiting: Int = 1024

    public init(model: String? = nil, threads: Int? = nil, precision: Precision? = nil, batchWindow: Duration = .zero,
                maxBatch: Int = 64, reloadInterval: Duration = .milliseconds(250), maxWaiting: Int = 1024) {
        self.model = model
        self.threads = threads
        self.precision = precision
        self.batchWindow = batchWindow
        self.maxBatch = maxBatch
        self.reloadInterval = reloadInterval
        self.maxWaiting = maxWaiting
    }
}

/// Named indexes and the model that embeds their questions, for a long-lived process (`serve`,
/// `mcp`): questions from concurrent callers are embedded as one batch and scanned in one
/// pass over memory, and each index is reopened when a build or compaction commits a new
/// manifest (`reloadIfChanged`, `runReloader`).
public final class RetrievalService: @unchecked Sendable {
    public let options: ServiceOptions
    public let embedder: any TextEmbedder
    /// The served model, as index manifests record it.
    public let model: ModelDescriptor
    private let indexes: [LiveIndex]
    private let batches: BatchQueue
    private let lock = NSLock()
    private var eventHandler: (@Sendable (String) -> Void)?

    /// Opens every index (`url`: an index folder, or a folder holding `.kbindex`) and loads
    /// the model once (`options.model`, else the first index's) to run in `options.precision`,
    /// else in the precision the first index recorded (`QuestionPrecision.choose`). Throws
    /// `RetrievalError`: `.openFailed`, `.model`, `.incompatibleModel`, `.unknownPrecision`,
    /// `.invalidRequest` (no index, a name given twice).
    public convenience init(indexes: [(name: String, url: URL)], options: ServiceOptions = .init()) throws {
        let opened = try indexes.map { name, url -> (name: String, index: IndexDirectory) in
            let dir = IndexDirectory.resolve(url)
            do { return (name, try IndexDirectory(url: dir)) } catch { throw RetrievalError.openFailed(index: dir, reason: "\(error)") }
        }
        guard !opened.isEmpty else { throw RetrievalError.invalidRequest("no index to serve") }
        let precision = try QuestionPrecision.choose(asked: options.precision, indexes: opened.map { ($0.name, $0.index.manifest.model) })
        var choice = options.embedder
        choice.localModel = options.model ?? choice.localModel
        choice.threads = options.threads ?? choice.threads
        choice.precision = precision.precision
        let embedder = try ModelIdentity.load(choice, recorded: opened.first?.index.manifest.model)
        try self.init(indexes: opened, embedder: embedder, options: options)
    }

    /// Serves `indexes` (opened already) with `embedder`: questions are embedded in
    /// the embedder's precision, whatever the indexes recorded, with its query prompt. Throws `RetrievalError`:
    /// `.incompatibleModel` when an index was built with a model whose vectors are not
    /// comparable, `.invalidRequest` for no index or a name given twice, `.model` when the
    /// model's weights cannot be read.
    public init(indexes: [(name: String, index: IndexDirectory)], embedder: any TextEmbedder, options: ServiceOptions = .init()) throws {
        guard !indexes.isEmpty else { throw RetrievalError.invalidRequest("no index to serve") }
        var seen = Set<String>()
        for (name, _) in indexes where !seen.insert(name).inserted {
            throw RetrievalError.invalidRequest("two indexes are named '\(name)': give each its own name (NAME=DIR)")
        }
        do { model = try ModelIdentity.descriptor(of: embedder) } catch {
            throw RetrievalError.model("\(error)", folder: ModelIdentity.folder(of: embedder), isDamage: false)
        }
        for (name, index) in indexes {
            if let reason = index.manifest.model.incompatibility(with: model) {
                throw RetrievalError.incompatibleModel(index: name, reason: reason)
            }
        }
        self.options = options
        self.embedder = embedder
        self.indexes = indexes.map { LiveIndex(name: $0.name, index: $0.index) }
        self.batches = BatchQueue(embedder: embedder, window: options.batchWindow, maxBatch: max(1, options.maxBatch),
                                  maxWaiting: options.maxWaiting, threads: options.threads)
    }

    /// The served indexes' names, in the order given.
    public var indexNames: [String] { indexes.map(\.name) }

    /// The searcher requests to `name` use now (nil: the only index). Throws
    /// `RetrievalError.unknownIndex` or `.indexNotNamed`.
    public func searcher(_ name: String?) throws -> Searcher {
        try live(name).current
    }

    private func live(_ name: String?) throws -> LiveIndex {
        guard let name, !name.isEmpty else {
            if indexes.count == 1 { return indexes[0] }
            throw RetrievalError.indexNotNamed(known: indexNames)
        }
        guard let l = indexes.first(where: { $0.name == name }) else { throw RetrievalError.unknownIndex(name, known: indexNames) }
        return l
    }

    /// Answers `queries` from the index `index` (nil: the only one); a cancelled task's
    /// questions that have not started are dropped (`CancellationError`). Questions that arrive
    /// together, from this call and concurrent ones, are embedded as one batch and each
    /// group with the same index, mode, k, paths and fusion is scanned in one pass. Every
    /// query of a call is answered from the generation current when the call began.
    ///
    /// Throws `RetrievalError`: `.invalidRequest` (an empty question, k < 1, an invalid
    /// glob), `.unknownIndex`, `.indexNotNamed`, `.lexicalUnavailable`, `.damaged`, `.model`,
    /// `.busy` (`options.maxWaiting` questions wait already).
    public func search(_ queries: [SearchQuery], index: String?) async throws -> [SearchResult] {
        let searcher = try searcher(index)
        var prepared: [BatchQueue.Question] = []
        for q in queries {
            if q.text.allSatisfy(\.isWhitespace) { throw RetrievalError.invalidRequest("the query is empty: give the words to search for") }
            if q.k < 1 { throw RetrievalError.invalidRequest("k must be a positive number (1 or more), got \(q.k)") }
            let mode = q.mode ?? searcher.defaultMode
            if mode != .vector && !searcher.hasLexical { throw RetrievalError.lexicalUnavailable(index: searcher.name) }
            prepared.append(.init(query: q, mode: mode, filter: try Searcher.filter(q.paths)))
        }
        if prepared.isEmpty { return [] }
        try Task.checkCancellation()
        let id = batches.newID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                batches.submit(.init(id: id, searcher: searcher, questions: prepared, continuation: continuation))
            }
        } onCancel: {
            batches.cancel(id)
        }
    }

    /// The chunk `id` of index `index` (nil: the only one) with up to `neighbours` chunks
    /// either side. Throws `RetrievalError`: `.unknownChunk`, `.unknownIndex`, `.damaged`.
    public func chunk(id: String, index: String?, neighbours: Int = 1) throws -> ChunkContext {
        try searcher(index).chunk(id: id, neighbours: neighbours)
    }

    /// The served model's embeddings of `texts` (normalised when the model normalises) and
    /// the number of tokens they took (each cut to the model's limit). Runs between search
    /// batches. Throws `RetrievalError.model` for vectors that are not finite.
    public func embed(_ texts: [String]) async throws -> (vectors: [[Float]], tokens: Int) {
        if texts.isEmpty { return ([], 0) }
        try Task.checkCancellation()
        let cancelled = Flag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let accepted = batches.perform { embedder in
                    if cancelled.isSet { return continuation.resume(throwing: CancellationError()) }
                    do {
                        let vectors = try embedder.embed(texts, as: .plain)
                        continuation.resume(returning: (vectors, Self.tokens(texts, embedder)))
                    } catch {
                        continuation.resume(throwing: ModelIdentity.embeddingFailure(error, of: embedder))
                    }
                }
                if !accepted { continuation.resume(throwing: RetrievalError.busy("\(options.maxWaiting) embedding requests are waiting already")) }
            }
        } onCancel: {
            cancelled.set()
        }
    }

    /// Tokens `texts` take as inputs of `embedder` ([CLS] and [SEP] included for the built-in
    /// model, each cut to its limit; an estimate for a remote one).
    static func tokens(_ texts: [String], _ embedder: any TextEmbedder) -> Int {
        if let local = embedder as? Embedder { return local.tokenize(texts).reduce(0) { $0 + $1.count } }
        return texts.reduce(0) { $0 + embedder.countTokens($1) }
    }

    /// The precision questions are embedded in, as `/v1/info` says it.
    var precisionName: String { ((embedder as? Embedder)?.precision ?? .f32).rawValue }

    /// The model and every index as served now.
    public func info() -> ServiceInfo {
        ServiceInfo(
            version: KBIndexVersion.string,
            model: ModelInfo(name: model.name, dimensions: model.dimensions, maxTokens: model.maxTokens,
                             precision: precisionName, provider: embedder.provider.rawValue, queryPrompt: embedder.prompts.query),
            indexes: indexes.map { l in
                let s = l.current
                return IndexInfo(name: l.name, generation: s.generation, documents: s.index.liveDocumentCount,
                                 chunks: s.index.liveChunkCount, segments: s.index.segments.count, bytes: s.index.bytesOnDisk,
                                 lexical: s.hasLexical, precision: QuestionPrecision.recorded(s.index.manifest.model),
                                 loadedAt: ISO8601.string(s.loadedAt))
            })
    }

    /// Checks every index's manifest and reopens those a build or compaction replaced; a
    /// new generation that cannot be opened (or was built with another model) leaves the old
    /// one served and is tried again at the next check. Reports each reload and each new
    /// failure to the event handler. Returns the names reloaded. O(indexes) `stat`s when
    /// nothing changed.
    @discardableResult
    public func reloadIfChanged() -> [String] {
        var reloaded: [String] = []
        for l in indexes {
            switch l.reloadIfChanged(model: model) {
            case .unchanged: break
            case .reloaded(let generation):
                reloaded.append(l.name)
                let index = l.current.index
                let recorded = QuestionPrecision.recorded(index.manifest.model)
                // Vectors of either precision are comparable: a rebuild in another precision is
                // served, with questions still embedded in the served model's precision.
                let precision = recorded == precisionName || model.isRemote ? ""
                    : "; it was embedded in \(SearchHit.shortened(recorded, to: 32)), questions are embedded in \(precisionName) as served"
                report("index '\(l.name)' reloaded: generation \(generation), \(index.liveChunkCount) chunks\(precision)")
            case .failed(let why):
                report("index '\(l.name)' changed but cannot be served yet (the previous generation stays): \(why)")
            }
        }
        return reloaded
    }

    /// Runs `reloadIfChanged` every `options.reloadInterval` until the task is cancelled.
    public func runReloader() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: options.reloadInterval) } catch { return }
            reloadIfChanged()
        }
    }

    /// Where reloads and reload failures are reported (one line each); by default nowhere.
    public func setEventHandler(_ handler: @escaping @Sendable (String) -> Void) {
        lock.withLock { eventHandler = handler }
    }

    /// Questions waiting for their batch now (for metrics: the queue's depth).
    public var waitingQuestions: Int { batches.waiting }

    /// Called with the number of questions of each batch, as it runs (for metrics).
    public func setBatchObserver(_ observer: @escaping @Sendable (Int) -> Void) {
        batches.setObserver(observer)
    }

    private func report(_ line: String) {
        lock.withLock { eventHandler }?(line)
    }
}

/// A flag set once from any thread (a cancelled embedding request).
private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
