import COpenBLAS
import Dispatch
import Foundation
import KBCore
import Synchronization

/// The built-in embedding model: a model folder's tokenizer and BERT encoder, ready to
/// turn texts into vectors in-process.
///
/// Thread-safe: any number of threads may call `embed` at once. One call spreads its work
/// over `threads` workers; each runs a padding-free batch of similar-length texts through
/// the encoder, with OpenBLAS kept single-threaded so workers never oversubscribe cores.
public final class Embedder: Sendable {
    /// The model's folder.
    public let directory: URL
    public let config: ModelConfig
    public let tokenizer: WordPieceTokenizer
    /// Worker threads one `embed` call uses.
    public let threads: Int
    /// Tokens per batch: the row count of the encoder's matrix products.
    public let tokenBudget: Int
    /// The arithmetic of the encoder's linear layers.
    public let precision: Precision
    /// The prompts `embed(_:as:)` prepends: the model's own (`config.prompts`) unless
    /// `init` was given others.
    let promptsInEffect: Prompts
    let encoder: BertEncoder
    private let states = Mutex<[RunState]>([])

    /// Dimensions of every vector this model returns.
    public var dimensions: Int { config.dimensions }

    /// Loads the model in `directory` (Hugging Face layout: config.json, model.safetensors,
    /// vocab.txt, and the sentence-transformers files) and checks that its files agree:
    /// every tensor has the shape `config.json` gives, `vocab.txt` has `vocab_size` entries
    /// and matches `tokenizer.json` when there is one (see `VocabularyCheck`), and a first
    /// vector ([CLS] [SEP]) comes out finite.
    ///
    /// Cost: O(header) for the weights, which are memory-mapped, plus the vocabulary, plus one
    /// two-token forward pass; the tokenizer.json comparison runs once per version of the
    /// files (its result is cached in the folder). For int8, also one float forward pass over
    /// `calibrationTexts` and quantizing the linear weights (all-MiniLM-L6-v2: ~90 ms more,
    /// ~11 MB of int8 weights).
    /// - Parameters:
    ///   - threads: workers per call (default: every core; at most `maxThreads`).
    ///   - tokenBudget: tokens per batch (default 512: throughput is flat from 256 to 2048, memory grows with it; see Benchmarks/RESULTS.md).
    /// - Throws: `ModelError` (or `TokenizerError`) naming the file and what is wrong;
    ///   `ModelError.isDamage` tells damaged files from unsupported ones.
    ///   - prompts: the prompts `embed(_:as:)` uses (default: the model's own, `config.prompts`).
    public init(modelDirectory directory: URL, threads: Int? = nil, tokenBudget: Int = 512, precision: Precision = .default,
                prompts: Prompts? = nil) throws {
        self.directory = directory
        self.precision = precision
        let config = try ModelConfig.load(directory: directory)
        self.config = config
        self.promptsInEffect = prompts ?? config.prompts
        let weightsPath = directory.appendingPathComponent("model.safetensors").path
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw ModelError.missingFile(weightsPath) }
        let weights = try BertWeights(file: SafeTensorsFile(path: weightsPath), config: config.bert)
        let tokenizer = try WordPieceTokenizer(modelDirectory: directory, maxLength: config.maxSequenceLength)
        self.tokenizer = tokenizer
        // sentence-transformers lower-cases the text first (do_lower_case); the tokenizer must
        // do it too, or kbindex would embed other tokens than sentence-transformers does.
        if config.lowercasesInput, !tokenizer.options.lowercase {
            throw ModelError.unsupported(file: directory.appendingPathComponent("sentence_bert_config.json").path,
                                         reason: "do_lower_case with a tokenizer that keeps case is not supported")
        }
        // Token ids index the embedding matrix, whose shape was checked against vocab_size:
        // this keeps every id the tokenizer can return inside it.
        try VocabularyCheck.check(tokenizer, modelDirectory: directory, vocabSize: config.bert.vocabSize)
        Embedder.makeBLASSingleThreaded
        encoder = try BertEncoder(weights: weights, precision: precision,
                                  outliers: precision == .int8 ? Self.outliers(weights: weights, tokenizer: tokenizer, directory: directory) : [])
        self.threads = min(Self.maxThreads, max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount))
        self.tokenBudget = max(tokenBudget, config.maxSequenceLength)
        // Damaged weights usually poison every vector: find out now rather than mid-build.
        _ = try embed(tokenIDs: [[tokenizer.clsID, tokenizer.sepID]])
    }

    /// The int8 encoder's outlier channels for these weights: remembered in the model
    /// folder's check cache (`FileCheckCache`, keyed by the weights file's version), else
    /// found by the calibration pass over `calibrationTexts` and remembered. The pass is most
    /// of what loading in int8 costs (a float forward over ~300 tokens), and every `kbindex
    /// query` on an int8 index loads the model.
    private static func outliers(weights: BertWeights, tokenizer: WordPieceTokenizer, directory: URL) -> [[Int]] {
        let cache = FileCheckCache(folder: directory)
        let files = [weights.file.path]
        if let text = cache.value(outlierCacheKey, files: files) {
            let lists = text.split(separator: ";", omittingEmptySubsequences: false).map { $0.split(separator: ",").compactMap { Int($0) } }
            if BertEncoder.areValidOutliers(lists, config: weights.config) { return lists }
        }
        let lists = BertEncoder.outliers(weights: weights, calibration: calibrationTexts.map { tokenizer.encode($0).ids })
        if BertEncoder.areValidOutliers(lists, config: weights.config) {
            cache.record(outlierCacheKey, value: lists.map { $0.map(String.init).joined(separator: ",") }.joined(separator: ";"), files: files)
        }
        return lists
    }

    /// The check-cache key of the remembered outlier channels; its version changes whenever
    /// `calibrationTexts`, the tokenizer's treatment of them or `Int8Linear.outlierCount` does.
    static let outlierCacheKey = "int8-outlier-channels-v1"

    /// What the int8 encoder is calibrated on at load (which input channels stay in float,
    /// see `Int8Linear`): ordinary prose, a heading, code and numbers, about 300 tokens, so
    /// loading costs one short float forward pass. Changing it changes int8 vectors.
    static let calibrationTexts = [
        """
        Getting started. Install the package, then run the indexer on a folder of notes: it walks every file, \
        splits each document into passages of a few hundred words, and stores one vector per passage. \
        Questions are answered by comparing their vector with the stored ones, so a search for "how do I \
        renew my passport?" also finds a page titled "Travel documents". Results list the file, the heading \
        and the line where each passage starts.
        """,
        """
        def read_config(path: str) -> dict:
            # Returns the settings, or raises ValueError when the file is malformed.
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        """,
        """
        In 2023 the city recorded 1,284 mm of rain, 17% above the 30-year average; March alone brought 212 mm. \
        The committee met on 4 May at 10:30 and approved the budget (€2.5 million) by 9 votes to 2.
        """,
        "What is the capital of France?",
    ]

    /// The most workers one call uses, whatever `threads` asks: more than any machine has
    /// cores, and small enough that sizing batches by it cannot overflow (`--threads` comes
    /// from the command line).
    public static let maxThreads = 1024

    /// OpenBLAS runs on the calling thread: parallelism comes from our workers.
    private static let makeBLASSingleThreaded: Void = { openblas_set_num_threads(1) }()

    /// The vector of one text.
    /// - Throws: `ModelError.nonFiniteVector` (see `embed(tokenIDs:)`).
    public func embed(_ text: String) throws -> [Float] {
        try embed([text])[0]
    }

    /// The vectors of `texts`, in order. Texts longer than the model's limit are truncated
    /// (see `tokenizer.maxLength`). Cost: O(total tokens · model size) spread over `threads`.
    /// - Throws: `ModelError.nonFiniteVector` (see `embed(tokenIDs:)`).
    /// - Parameter progress: called as batches finish, with how many texts each held, from
    ///   the worker threads (so it must be thread-safe and cheap): progress inside one call,
    ///   however many texts it has.
    /// - Parameter isCancelled: polled before each batch, from the worker threads (so it
    ///   must be thread-safe and cheap); once it returns true no new batch starts and the
    ///   call throws `CancellationError` when the running ones finish.
    public func embed(_ texts: [String], progress: (@Sendable (Int) -> Void)? = nil,
                      isCancelled: (@Sendable () -> Bool)? = nil) throws -> [[Float]] {
        let ids = tokenize(texts)
        return try embed(tokenIDs: ids, progress: progress, isCancelled: isCancelled)
    }

    /// Token ids for each text ([CLS] … [SEP], truncated), computed on every worker.
    public func tokenize(_ texts: [String]) -> [[Int32]] {
        var out = [[Int32]](repeating: [], count: texts.count)
        out.withUnsafeMutableBufferPointer { buf in
            let dst = UnsafeSendable(buf)
            let workers = min(threads, max(1, texts.count / 64))
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < texts.count {
                    dst.value[i] = tokenizer.encode(texts[i]).ids
                    i += workers
                }
            }
        }
        return out
    }

    /// The vectors of already-tokenized inputs (each must start with [CLS], end with [SEP],
    /// hold ids below the vocabulary size and be at most `config.maxSequenceLength` long).
    ///
    /// Every value returned is finite: a NaN or infinity (which only damaged weights
    /// produce) is an error, never a vector.
    /// - Precondition: the sequences are as described (a programmer error otherwise;
    ///   `tokenizer.encode` output always is, since loading checked the vocabulary size).
    /// - Throws: `ModelError.nonFiniteVector` naming the model and, when one holds NaN or
    ///   infinite values, the tensor.
    ///   `CancellationError` once `isCancelled` returned true.
    ///   `progress` and `isCancelled` as for `embed(_:progress:isCancelled:)`.
    ///   `excludingLeadingTokens`: how many leading tokens of each sequence mean and max
    ///   pooling leave out (see `BertEncoder.pool`): `promptLength(_:)` for a prompt the
    ///   model's pooling does not include (`config.includePrompt` false), else 0.
    public func embed(tokenIDs sequences: [[Int32]], excludingLeadingTokens excluded: Int = 0,
                      progress: (@Sendable (Int) -> Void)? = nil,
                      isCancelled: (@Sendable () -> Bool)? = nil) throws -> [[Float]] {
        let h = dimensions
        let vocab = Int32(config.bert.vocabSize)
        precondition(sequences.allSatisfy { !$0.isEmpty && $0.count <= config.maxSequenceLength },
                     "each sequence needs 1...\(config.maxSequenceLength) ids")
        precondition(sequences.allSatisfy { $0.allSatisfy { $0 >= 0 && $0 < vocab } },
                     "token ids must be in 0..<\(vocab) (the model's vocab_size)")
        var flat = [Float](repeating: 0, count: sequences.count * h)
        let batches = makeBatches(sequences.map(\.count))
        let stopped = Atomic<Bool>(false)
        flat.withUnsafeMutableBufferPointer { out in
            let dst = UnsafeSendable(out)
            let next = Atomic<Int>(0)
            DispatchQueue.concurrentPerform(iterations: min(threads, batches.count)) { _ in
                let state = takeState()
                defer { returnState(state) }
                var pooled = [Float](repeating: 0, count: 0)
                while true {
                    let b = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    if b >= batches.count { break }
                    if let isCancelled, isCancelled() { stopped.store(true, ordering: .relaxed); break }
                    let members = batches[b]
                    let seqs = members.map { sequences[$0] }
                    encoder.forward(seqs, state: state)
                    pooled = [Float](repeating: 0, count: seqs.count * h)
                    pooled.withUnsafeMutableBufferPointer { p in
                        encoder.pool(seqs, state: state, pooling: config.pooling, normalize: config.normalize,
                                    excluded: excluded, into: p.baseAddress!)
                    }
                    for (k, idx) in members.enumerated() {
                        for j in 0..<h { dst.value[idx * h + j] = pooled[k * h + j] }
                    }
                    progress?(members.count)
                }
            }
        }
        if stopped.load(ordering: .relaxed) { throw CancellationError() }
        if let bad = flat.firstIndex(where: { !$0.isFinite }) {
            throw nonFiniteError(sequence: bad / h, of: sequences.count)
        }
        return (0..<sequences.count).map { Array(flat[($0 * h)..<(($0 + 1) * h)]) }
    }

    /// The error for a non-finite vector, naming the first tensor that holds a non-finite
    /// value (O(weights): only paid when things already went wrong).
    private func nonFiniteError(sequence: Int, of count: Int) -> ModelError {
        let which = count > 1 ? "input \(sequence + 1) of \(count)" : "the input"
        let detail: String
        if let (tensor, value) = encoder.weights.firstNonFinite() {
            detail = "for \(which); its weights are damaged (tensor '\(tensor)' holds \(value))"
        } else {
            detail = "for \(which); its weights are damaged or out of range"
        }
        return .nonFiniteVector(model: config.name, directory: directory.path, detail: detail)
    }

    /// Groups sequence indices into batches of at most `tokenBudget` tokens, longest first,
    /// so batches hold similar lengths and the slowest work starts first.
    func makeBatches(_ lengths: [Int]) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var batches: [[Int]] = []
        var current: [Int] = []
        var tokens = 0
        // Enough batches that every worker gets some, when there is enough work.
        let total = lengths.reduce(0, +)
        let budget = max(config.maxSequenceLength, min(tokenBudget, (total + threads - 1) / threads))
        for i in order {
            if tokens + lengths[i] > budget, !current.isEmpty {
                batches.append(current)
                current = []
                tokens = 0
            }
            current.append(i)
            tokens += lengths[i]
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    private func takeState() -> RunState {
        if let s = states.withLock({ $0.popLast() }) { return s }
        return RunState(config: config.bert, capacity: max(tokenBudget, config.maxSequenceLength),
                        maxSequence: config.maxSequenceLength, precision: precision)
    }

    private func returnState(_ s: RunState) {
        states.withLock { $0.append(s) }
    }
}

// MARK: - TextEmbedder

extension Embedder: TextEmbedder {
    public var name: String { config.name }
    public var provider: EmbeddingProvider { .local }
    public var normalizes: Bool { config.normalize }
    public var prompts: Prompts { promptsInEffect }

    /// `config.maxSequenceLength` less [CLS], [SEP] and the prompt's tokens. A prompt that
    /// ends in whitespace or punctuation (every known model's: "query: ", "Represent this
    /// sentence for searching relevant passages: ") is tokenized apart from the text, so a
    /// text of at most this many tokens is never cut. A prompt that ends inside a word joins
    /// the text's first word, which may then split differently: `promptJoinMargin` more
    /// tokens are kept free for that. O(prompt length).
    public func maxTextTokens(for role: TextRole) -> Int {
        guard let prompt = prompts.prompt(for: role) else { return max(0, config.maxSequenceLength - 2) }
        let margin = tokenizer.endsWord(prompt) ? 0 : Self.promptJoinMargin
        return max(0, config.maxSequenceLength - 2 - tokenizer.tokenIDs(prompt).count - margin)
    }

    /// Tokens kept free for a prompt that ends inside a word (see `maxTextTokens(for:)`).
    static let promptJoinMargin = 8

    public func countTokens(_ text: String) -> Int { tokenizer.tokenIDs(text).count }

    /// How many leading tokens of `prompt + text` sentence-transformers counts as the prompt
    /// (its `prompt_length`): the ids of `prompt` tokenized alone, truncated as any input,
    /// less the final [SEP], so [CLS] and the prompt's tokens. O(prompt length).
    public func promptLength(_ prompt: String) -> Int {
        tokenizer.encode(prompt).ids.count - 1
    }

    /// The vectors of `texts` with `role`'s prompt prepended to each, exactly as
    /// sentence-transformers' `encode_query` / `encode_document` compute them: the prompt and
    /// the text are one string, tokenized and truncated together to `config.maxSequenceLength`;
    /// when the model's pooling leaves the prompt out (`config.includePrompt` false), mean and
    /// max pooling skip the first `promptLength(prompt)` tokens, as its Pooling module does.
    /// `.plain` adds no prompt. Cost as `embed(_:progress:isCancelled:)`.
    public func embed(_ texts: [String], as role: TextRole, progress: (@Sendable (Int) -> Void)?,
                      isCancelled: (@Sendable () -> Bool)?) throws -> [[Float]] {
        guard let prompt = prompts.prompt(for: role) else { return try embed(texts, progress: progress, isCancelled: isCancelled) }
        let ids = tokenize(texts.map { prompt + $0 })
        return try embed(tokenIDs: ids, excludingLeadingTokens: config.includePrompt ? 0 : promptLength(prompt),
                         progress: progress, isCancelled: isCancelled)
    }
}

/// Lets disjoint-index writes from concurrent workers through Swift's Sendable checking.
/// Each worker writes only indices no other worker touches.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
