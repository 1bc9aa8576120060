import Foundation
import KBTestSupport
import XCTest

@testable import KBEmbed

/// Loading model folders: every malformed folder is a `ModelError` naming the file (and the
/// tensor); valid tiny models in every dtype, name prefix, pooling and normalization give the
/// vectors of a plain Double reference forward pass ("scalar twin"); the Embedder's batching
/// gives the same vectors as one text at a time.
final class ModelLoadingTests: XCTestCase {
    var made: [URL] = []

    override func tearDown() {
        for d in made { TinyModel.remove(d) }
        made = []
    }

    func write(_ model: TinyModel) throws -> URL {
        let dir = try model.writeTemporary()
        made.append(dir)
        return dir
    }

    /// Loads the encoder the way `Embedder` does, without the tokenizer.
    func loadEncoder(_ dir: URL) throws -> (ModelConfig, BertEncoder) {
        let config = try ModelConfig.load(directory: dir)
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        return (config, try BertEncoder(weights: try BertWeights(file: file, config: config.bert)))
    }

    /// Runs `sequences` as one padding-free batch and pools them as the folder says.
    func encode(_ dir: URL, _ sequences: [[Int32]]) throws -> [[Float]] {
        let (config, encoder) = try loadEncoder(dir)
        let total = sequences.reduce(0) { $0 + $1.count }
        let state = RunState(config: config.bert, capacity: total, maxSequence: config.maxSequenceLength)
        encoder.forward(sequences, state: state)
        let h = config.dimensions
        var out = [Float](repeating: 0, count: sequences.count * h)
        out.withUnsafeMutableBufferPointer { encoder.pool(sequences, state: state, pooling: config.pooling, normalize: config.normalize, into: $0.baseAddress!) }
        return sequences.indices.map { Array(out[($0 * h)..<(($0 + 1) * h)]) }
    }

    // MARK: Malformed folders

    /// Building an `Embedder` on `model` throws a `ModelError` whose description names
    /// `file` (relative to the folder) and contains every one of `parts`.
    func assertLoadFails(_ model: TinyModel, file: String, _ parts: [String],
                         sourceFile: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try write(model)
        do {
            _ = try Embedder(modelDirectory: dir, threads: 1)
            XCTFail("loaded without an error", file: sourceFile, line: line)
        } catch let e as ModelError {
            let text = e.description
            XCTAssertTrue(text.contains(dir.appendingPathComponent(file).path), "'\(text)' does not name \(file)", file: sourceFile, line: line)
            for p in parts {
                XCTAssertTrue(text.contains(p), "'\(text)' lacks '\(p)'", file: sourceFile, line: line)
            }
        } catch {
            XCTFail("not a ModelError: \(error)", file: sourceFile, line: line)
        }
    }

    func broken(_ defects: TinyModel.Defect..., configure: (inout TinyModel) -> Void = { _ in }) -> TinyModel {
        var m = TinyModel(seed: 3)
        m.defects = defects
        configure(&m)
        return m
    }

    func testConfigProblems() throws {
        try assertLoadFails(broken(.missingConfig), file: "config.json", ["not found"])
        try assertLoadFails(broken(.configNotJSON), file: "config.json", ["not a JSON object"])
        try assertLoadFails(broken(.file("config.json", "[1, 2, 3]")), file: "config.json", ["not a JSON object"])
        try assertLoadFails(broken(.configValue("model_type", "roberta")), file: "config.json", ["roberta", "BERT-family"])
        try assertLoadFails(broken(.configValue("model_type", nil), .configValue("architectures", ["XLMRobertaModel"])),
                            file: "config.json", ["XLMRobertaModel", "BERT-family"])
        try assertLoadFails(broken(.configValue("hidden_act", "gelu_new")), file: "config.json", ["hidden_act 'gelu_new'"])
        try assertLoadFails(broken(.configValue("position_embedding_type", "relative_key")), file: "config.json", ["relative_key"])
        try assertLoadFails(broken(.configValue("num_attention_heads", 3)), file: "config.json", ["hidden_size 16", "num_attention_heads 3"])
        try assertLoadFails(broken(.configValue("hidden_size", nil)), file: "config.json", ["'hidden_size'"])
        try assertLoadFails(broken(.configValue("hidden_size", "16")), file: "config.json", ["'hidden_size'"])
        try assertLoadFails(broken(.configValue("hidden_size", 16.5)), file: "config.json", ["'hidden_size'"])
        try assertLoadFails(broken(.configValue("num_hidden_layers", 0)), file: "config.json", ["'num_hidden_layers'"])
        try assertLoadFails(broken(.configValue("vocab_size", -50)), file: "config.json", ["'vocab_size'"])
        try assertLoadFails(broken(.configValue("vocab_size", 1e30)), file: "config.json", ["'vocab_size'"])
        try assertLoadFails(broken(.configValue("intermediate_size", 1e300)), file: "config.json", ["'intermediate_size'"])
        try assertLoadFails(broken(.configValue("layer_norm_eps", 0)), file: "config.json", ["layer_norm_eps"])
        try assertLoadFails(broken(.file("sentence_bert_config.json", #"{"max_seq_length": 1}"#)), file: "sentence_bert_config.json", ["max_seq_length"])
        try assertLoadFails(broken(.file("sentence_bert_config.json", "nope")), file: "sentence_bert_config.json", ["JSON"])
    }

    func testSentenceTransformersFileProblems() throws {
        try assertLoadFails(broken { $0.poolingModes = ["mean_tokens", "cls_token"] }, file: "1_Pooling/config.json", ["more than one pooling mode"])
        try assertLoadFails(broken { $0.poolingModes = [] }, file: "1_Pooling/config.json", ["no pooling mode"])
        try assertLoadFails(broken { $0.poolingModes = ["mean_sqrt_len_tokens"] }, file: "1_Pooling/config.json", ["pooling_mode_mean_sqrt_len_tokens"])
        try assertLoadFails(broken(.file("1_Pooling/config.json", "{")), file: "1_Pooling/config.json", ["JSON"])
        try assertLoadFails(broken(.extraModule(type: "sentence_transformers.models.Dense")), file: "modules.json",
                            ["sentence_transformers.models.Dense", "not supported"])
        try assertLoadFails(broken(.file("modules.json", #"{"type": "x"}"#)), file: "modules.json", ["list of modules"])
        // modules.json lists a Pooling module whose folder is missing.
        let dir = try write(TinyModel(seed: 3))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("1_Pooling"))
        XCTAssertThrowsError(try ModelConfig.load(directory: dir)) { e in
            XCTAssertEqual(e as? ModelError, .missingFile(dir.appendingPathComponent("1_Pooling/config.json").path))
        }
    }

    func testWeightsFileProblems() throws {
        try assertLoadFails(broken(.missingWeights), file: "model.safetensors", ["not found"])
        try assertLoadFails(broken(.headerNotJSON), file: "model.safetensors", ["header is not a JSON object"])
        try assertLoadFails(broken(.headerLengthTooLarge(excess: 1)), file: "model.safetensors", ["header length", "truncated"])
        let whole = SafeTensorsWriter.encode(TinyModel(seed: 3).safetensors())
        let n = SafeTensorsWriter.headerLength(of: whole)
        for cut in [0, 5] {
            try assertLoadFails(broken(.truncateWeights(toBytes: cut)), file: "model.safetensors", ["\(cut) bytes", "8-byte header length"])
        }
        for cut in [8, 8 + n / 3, 8 + n - 1, 8 + n + 100, whole.count - 1] {
            try assertLoadFails(broken(.truncateWeights(toBytes: cut)), file: "model.safetensors", ["truncated"])
        }
        // Cut inside the data: the tensor whose bytes are gone is named.
        try assertLoadFails(broken(.truncateWeights(toBytes: whole.count - 1)), file: "model.safetensors", ["tensor 'pooler.dense.bias'"])
    }

    func testTensorProblemsNameTheTensor() throws {
        let bias1 = "encoder.layer.1.output.dense.bias"
        try assertLoadFails(broken(.missingTensor(bias1)), file: "model.safetensors", ["tensor '\(bias1)' is missing"])
        try assertLoadFails(broken(.missingTensor("embeddings.LayerNorm.weight")) { $0.namePrefix = "bert." },
                            file: "model.safetensors", ["tensor 'bert.embeddings.LayerNorm.weight' is missing"])
        try assertLoadFails(broken(.tensorShape("embeddings.word_embeddings.weight", [17, 16])),
                            file: "model.safetensors", ["embeddings.word_embeddings.weight", "[17, 16]", "[50, 16]"])
        try assertLoadFails(broken(.tensorShape("encoder.layer.0.intermediate.dense.weight", [16, 32])),
                            file: "model.safetensors", ["encoder.layer.0.intermediate.dense.weight", "[16, 32]", "[32, 16]"])
        try assertLoadFails(broken(.dataOffsetsOutOfRange(bias1, past: 4)), file: "model.safetensors", ["tensor '\(bias1)'", "truncated"])
        try assertLoadFails(broken(.overlapping("encoder.layer.0.attention.self.key.bias", "encoder.layer.0.attention.self.query.bias")),
                            file: "model.safetensors", ["overlaps", "encoder.layer.0.attention.self."])
        try assertLoadFails(broken(.tensorDType("embeddings.LayerNorm.bias", dtype: "I64", elementSize: 8)),
                            file: "model.safetensors", ["tensor 'embeddings.LayerNorm.bias'", "I64", "not a floating-point type"])
        try assertLoadFails(broken(.tensorDType("encoder.layer.0.output.LayerNorm.weight", dtype: "F8_E4M3", elementSize: nil)),
                            file: "model.safetensors", ["tensor 'encoder.layer.0.output.LayerNorm.weight'", "unsupported dtype F8_E4M3"])
    }

    func testValidTinyModelLoadsWithItsSettings() throws {
        var m = TinyModel(seed: 4)
        m.poolingModes = ["max_tokens"]
        m.normalize = false
        m.maxSeqLength = 20
        let config = try ModelConfig.load(directory: write(m))
        XCTAssertEqual(config.bert, BertConfig(vocabSize: 50, hiddenSize: 16, layerCount: 2, headCount: 2, intermediateSize: 32,
                                               maxPositions: 32, typeVocabSize: 2, layerNormEps: 1e-12))
        XCTAssertEqual(config.pooling, .max)
        XCTAssertFalse(config.normalize)
        XCTAssertEqual(config.maxSequenceLength, 20)
        XCTAssertEqual(config.name, "tiny-bert")
        // Unused and extra tensors (pooler, position_ids) do not matter.
        var extra = TinyModel(seed: 4)
        extra.includePooler = false
        _ = try loadEncoder(write(extra))
        // Without modules.json: a bare encoder, mean pooling, no normalization; the limit is max_position_embeddings.
        var bare = TinyModel(seed: 4)
        bare.writeModules = false
        bare.maxSeqLength = nil
        let bareConfig = try ModelConfig.load(directory: write(bare))
        XCTAssertEqual(bareConfig.pooling, .mean)
        XCTAssertFalse(bareConfig.normalize)
        XCTAssertEqual(bareConfig.maxSequenceLength, 32)
    }

    // MARK: Dtypes and prefixes

    func testF16AndBF16ModelsEqualTheF32Model() throws {
        let seqs = TinyModel(seed: 5).randomSequences(lengths: [2, 7, 16, 31, 32], seed: 50)
        var m = TinyModel(seed: 5)
        let f32 = try encode(write(m), seqs)
        for dtype in [SafeTensorsWriter.DType.f16, .bf16] {
            for prefix in ["", "bert."] {
                m.dtype = dtype
                m.namePrefix = prefix
                let dir = try write(m)
                let st = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
                XCTAssertEqual(st.tensors[prefix + "embeddings.word_embeddings.weight"]?.dtype.rawValue, dtype.rawValue)
                XCTAssertEqual(try encode(dir, seqs), f32, "\(dtype) \(prefix)")
            }
        }
        // A changed weight changes the vectors (the comparison above can fail).
        var other = TinyModel(seed: 6)
        other.dtype = .bf16
        XCTAssertNotEqual(try encode(write(other), seqs), f32)
    }

    // MARK: Scalar twin

    /// The Double reference: embeddings → post-LN layers (exact-erf GELU) → pooling → normalization.
    struct ScalarBert {
        let m: TinyModel
        let w: [String: [Double]]

        init(_ m: TinyModel) {
            self.m = m
            w = m.weights().mapValues { $0.map(Double.init) }
        }

        func layerNorm(_ x: [Double], _ name: String) -> [Double] {
            let mean = x.reduce(0, +) / Double(x.count)
            let v = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
            let g = w[name + ".weight"]!, b = w[name + ".bias"]!
            return x.indices.map { (x[$0] - mean) / (v + m.layerNormEps).squareRoot() * g[$0] + b[$0] }
        }

        /// y = x Wᵀ + b for a PyTorch [out, in] weight.
        func linear(_ x: [Double], _ name: String) -> [Double] {
            let wt = w[name + ".weight"]!, b = w[name + ".bias"]!
            let n = x.count
            return b.indices.map { o in (0..<n).reduce(b[o]) { $0 + wt[o * n + $1] * x[$1] } }
        }

        func hidden(_ ids: [Int32]) -> [[Double]] {
            let h = m.hiddenSize, d = h / m.headCount
            let word = w["embeddings.word_embeddings.weight"]!, pos = w["embeddings.position_embeddings.weight"]!
            let type = w["embeddings.token_type_embeddings.weight"]!
            var x = ids.enumerated().map { p, id in
                layerNorm((0..<h).map { word[Int(id) * h + $0] + pos[p * h + $0] + type[$0] }, "embeddings.LayerNorm")
            }
            for l in 0..<m.layerCount {
                let p = "encoder.layer.\(l)."
                let q = x.map { linear($0, p + "attention.self.query") }
                let k = x.map { linear($0, p + "attention.self.key") }
                let v = x.map { linear($0, p + "attention.self.value") }
                var ctx = [[Double]](repeating: [Double](repeating: 0, count: h), count: x.count)
                for head in 0..<m.headCount {
                    let r = (head * d)..<((head + 1) * d)
                    for i in x.indices {
                        let s = x.indices.map { j in r.reduce(0.0) { $0 + q[i][$1] * k[j][$1] } / Double(d).squareRoot() }
                        let mx = s.max()!
                        let e = s.map { exp($0 - mx) }
                        let z = e.reduce(0, +)
                        for c in r { ctx[i][c] = x.indices.reduce(0.0) { $0 + e[$1] / z * v[$1][c] } }
                    }
                }
                let attn = x.indices.map { i in
                    layerNorm(zip(linear(ctx[i], p + "attention.output.dense"), x[i]).map { $0 + $1 }, p + "attention.output.LayerNorm")
                }
                x = attn.map { a in
                    let inner = linear(a, p + "intermediate.dense").map { $0 * 0.5 * (1 + erf($0 / 2.0.squareRoot())) }
                    return layerNorm(zip(linear(inner, p + "output.dense"), a).map { $0 + $1 }, p + "output.LayerNorm")
                }
            }
            return x
        }

        func embed(_ ids: [Int32], pooling: Pooling, normalize: Bool) -> [Double] {
            let x = hidden(ids)
            var v: [Double]
            switch pooling {
            case .cls: v = x[0]
            case .mean: v = x[0].indices.map { j in x.reduce(0) { $0 + $1[j] } / Double(x.count) }
            case .max: v = x[0].indices.map { j in x.map { $0[j] }.max()! }
            }
            if normalize {
                let n = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                v = v.map { $0 / n }
            }
            return v
        }
    }

    static func maxDelta(_ a: [Float], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        return zip(a, b).map { abs(Double($0) - $1) }.max()!
    }

    func testEncoderMatchesScalarTwinForEveryPoolingAndNormalization() throws {
        let lengths = [2, 3, 9, 17, 32, 5, 16]  // mixed, unsorted, up to max_position_embeddings
        var worst = 0.0
        defer { print("scalar twin: worst max |Δ| \(worst)") }
        for (seed, dtype, prefix) in [(UInt64(21), SafeTensorsWriter.DType.f32, ""), (22, .bf16, "bert."), (23, .f16, "")] {
            var m = TinyModel(seed: seed)
            m.dtype = dtype
            m.namePrefix = prefix
            m.halfRepresentable = dtype == .f32 ? false : true  // plain random floats where the dtype allows
            let twin = ScalarBert(m)
            let seqs = m.randomSequences(lengths: lengths, seed: seed + 100)
            for (modes, pooling) in [(["mean_tokens"], Pooling.mean), (["cls_token"], .cls), (["max_tokens"], .max)] {
                for normalize in [true, false] {
                    m.poolingModes = modes
                    m.normalize = normalize
                    let dir = try write(m)
                    let config = try ModelConfig.load(directory: dir)
                    XCTAssertEqual(config.pooling, pooling)
                    XCTAssertEqual(config.normalize, normalize)
                    let batch = try encode(dir, seqs)
                    for (s, ids) in seqs.enumerated() {
                        let want = twin.embed(ids, pooling: pooling, normalize: normalize)
                        let d = Self.maxDelta(batch[s], want)
                        worst = max(worst, d)
                        XCTAssertLessThanOrEqual(d, 1e-5, "seed \(seed) \(dtype) \(prefix) \(pooling) normalize \(normalize) length \(ids.count): max |Δ| \(d)")
                        if normalize {
                            XCTAssertEqual(batch[s].reduce(0) { $0 + Double($1) * Double($1) }, 1, accuracy: 1e-5)
                        }
                    }
                    // One sequence alone gives the same vector as inside the batch, to float32 noise: the
                    // matrix products' blocking depends on the row count, and each result is ~1e-6 from
                    // the exact (Double) one, so two of them may differ by about twice that.
                    let alone = try encode(dir, [seqs[3]])[0]
                    XCTAssertLessThanOrEqual(Self.maxDelta(alone, batch[3].map(Double.init)), 2.5e-6, "\(pooling) normalize \(normalize)")
                }
            }
        }
    }

    func testTwinDetectsAWrongModel() throws {
        // Guard against a vacuous comparison: a different seed is far from the twin.
        let m = TinyModel(seed: 31)
        let seqs = m.randomSequences(lengths: [6], seed: 1)
        let got = try encode(write(TinyModel(seed: 32)), seqs)[0]
        XCTAssertGreaterThan(Self.maxDelta(got, ScalarBert(m).embed(seqs[0], pooling: .mean, normalize: true)), 1e-2)
    }

    // MARK: Embedder batching

    /// A tiny model the Embedder accepts whatever tokenizer is linked: config.json's vocab_size
    /// is at least any BERT vocabulary (30522), while vocab.txt stays a few words.
    func embedderModel(seed: UInt64) -> TinyModel {
        var m = TinyModel(seed: seed)
        m.vocabSize = 30522
        return m
    }

    func testEmbedderBatchEqualsOneAtATime() throws {
        var m = embedderModel(seed: 41)
        m.poolingModes = ["mean_tokens"]
        let dir = try write(m)
        var rng = SeededRNG(seed: 42)
        let lengths = (0..<40).map { _ in Int.random(in: 2...32, using: &rng) }
        let seqs = m.randomSequences(lengths: lengths, seed: 43)
        let twin = ScalarBert(m)
        var reference: [[Float]]? = nil
        for threads in [1, 3] {
            for budget in [1, 32, 40, 100, 1024] {
                let e = try Embedder(modelDirectory: dir, threads: threads, tokenBudget: budget)
                XCTAssertEqual(e.dimensions, 16)
                XCTAssertEqual(e.config.pooling, .mean)
                XCTAssertTrue(e.config.normalize)
                // Small budgets force many batches (batches hold at most max(budget, 32) tokens).
                let total = lengths.reduce(0, +)
                XCTAssertGreaterThanOrEqual(e.makeBatches(lengths).count, budget <= 40 ? total / 40 : threads, "threads \(threads) budget \(budget)")
                let batch = try e.embed(tokenIDs: seqs)
                XCTAssertEqual(batch.count, seqs.count)
                for (s, ids) in seqs.enumerated() {
                    let alone = try e.embed(tokenIDs: [ids])[0]
                    let d = zip(alone, batch[s]).map { abs($0 - $1) }.max()!
                    XCTAssertLessThanOrEqual(d, 1e-6, "threads \(threads) budget \(budget) sequence \(s)")
                }
                if let reference {
                    let d = zip(batch, reference).map { zip($0, $1).map { abs($0 - $1) }.max()! }.max()!
                    XCTAssertLessThanOrEqual(d, 1e-6, "threads \(threads) budget \(budget) against threads 1 budget 1")
                } else {
                    reference = batch
                    for (s, ids) in seqs.enumerated() where s % 5 == 0 {
                        XCTAssertLessThanOrEqual(Self.maxDelta(batch[s], twin.embed(ids, pooling: .mean, normalize: true)), 1e-5)
                    }
                }
            }
        }
    }

    func testEmbedderBatchesCoverEverySequenceOnce() throws {
        let e = try Embedder(modelDirectory: write(embedderModel(seed: 44)), threads: 3, tokenBudget: 1)
        for lengths in [[2], [32, 32, 32], [2, 3, 4, 5, 6, 7, 8, 9], (0..<100).map { 2 + $0 % 31 }] {
            let batches = e.makeBatches(lengths)
            XCTAssertEqual(batches.flatMap { $0 }.sorted(), Array(lengths.indices))
            for b in batches {
                XCTAssertLessThanOrEqual(b.map { lengths[$0] }.reduce(0, +), max(e.tokenBudget, 32))
            }
        }
    }

    /// `embed(_:progress:)` reports every text once, batch by batch, from the workers; the
    /// vectors are the same as without it.
    func testProgressCountsEveryTextBatchByBatch() throws {
        let dir = try TinyModel(seed: 11).writeTemporary()
        defer { try? FileManager.default.removeItem(at: dir) }
        let e = try Embedder(modelDirectory: dir, threads: 2, tokenBudget: 64)
        let texts = (0..<200).map { "text number \($0) about " + String(repeating: "dogs and cats ", count: $0 % 7) }
        final class Counter: @unchecked Sendable {
            let lock = NSLock()
            var calls = 0, texts = 0
        }
        let counter = Counter()
        let vectors = try e.embed(texts) { n in counter.lock.withLock { counter.calls += 1; counter.texts += n } }
        XCTAssertEqual(counter.texts, texts.count)
        XCTAssertGreaterThan(counter.calls, 10, "one report per batch, not one per call")
        XCTAssertEqual(vectors, try e.embed(texts))
    }
}
