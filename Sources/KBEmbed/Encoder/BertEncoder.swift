import CKBKernels
import COpenBLAS
import Foundation

/// Scratch memory for one forward pass over up to `capacity` tokens (llama2.c's RunState).
/// One per worker thread; never shared.
final class RunState: @unchecked Sendable {
    let capacity: Int
    let maxSequence: Int
    let x: UnsafeMutablePointer<Float>       // [T, H]  hidden states
    let qkv: UnsafeMutablePointer<Float>     // [T, 3H]
    let context: UnsafeMutablePointer<Float> // [T, H]  attention output before the dense layer
    let tmp: UnsafeMutablePointer<Float>     // [T, H]
    let ffn: UnsafeMutablePointer<Float>     // [T, I]
    let scores: UnsafeMutablePointer<Float>  // [L, L]  one head's attention matrix
    // int8 only (empty otherwise): a linear layer's input quantized per token.
    let quantizedStride: Int                          // bytes per row of `quantized`
    let quantized: UnsafeMutablePointer<Int8>         // [T, max(H, I) rounded up to 64]
    let quantizedScales: UnsafeMutablePointer<Float>  // [T]
    let outlierInputs: UnsafeMutablePointer<Float>    // [T, Int8Linear.outlierCount]

    init(config c: BertConfig, capacity: Int, maxSequence: Int, precision: Precision = .f32) {
        self.capacity = capacity
        self.maxSequence = maxSequence
        let h = c.hiddenSize
        let rowsInt8 = precision == .int8 ? capacity : 0
        quantizedStride = kb_i8_row_stride(max(h, c.intermediateSize))
        quantized = .allocate(capacity: rowsInt8 * quantizedStride)
        quantizedScales = .allocate(capacity: rowsInt8)
        outlierInputs = .allocate(capacity: rowsInt8 * Int8Linear.outlierCount)
        x = .allocate(capacity: capacity * h)
        qkv = .allocate(capacity: capacity * 3 * h)
        context = .allocate(capacity: capacity * h)
        tmp = .allocate(capacity: capacity * h)
        ffn = .allocate(capacity: capacity * c.intermediateSize)
        scores = .allocate(capacity: maxSequence * maxSequence)
    }

    deinit {
        x.deallocate(); qkv.deallocate(); context.deallocate()
        tmp.deallocate(); ffn.deallocate(); scores.deallocate()
        quantized.deallocate(); quantizedScales.deallocate(); outlierInputs.deallocate()
    }
}

/// A BERT encoder, readable top to bottom: embeddings → N post-LayerNorm transformer layers.
///
/// Sequences of one batch are packed back to back, with no padding: the dense layers see
/// one `[tokens, H]` matrix, and attention runs per sequence over exactly its own tokens.
/// So a batch gives the same vectors as encoding each text alone, and no work is spent on padding.
///
/// The four linear maps of each layer run in `precision` (see `linear`); everything else
/// (attention's products and softmax, layer norm, GELU, residuals, pooling) is float32 either way.
struct BertEncoder: @unchecked Sendable {
    let weights: BertWeights
    let precision: Precision
    /// Each layer's linear maps in `precision` (for int8, quantized and packed at load).
    let linears: [LayerLinears]
    var config: BertConfig { weights.config }

    /// The encoder in `precision`. For int8, `calibration` (token sequences, e.g. one
    /// paragraph of ordinary text) first runs through the float encoder to find each linear
    /// layer's outlier input channels (see `Int8Linear`); then the weights are quantized.
    /// - Throws: `ModelError.unsupported` when int8 cannot take a layer's shape (see `Int8Matrix`).
    /// Cost: nothing for f32; for int8 one float forward pass over `calibration` and one pass
    /// over the linear weights, which then take about a quarter of their float size again.
    init(weights: BertWeights, precision: Precision = .f32, calibration: [[Int32]] = []) throws {
        try self.init(weights: weights, precision: precision,
                      outliers: precision == .int8 ? Self.outliers(weights: weights, calibration: calibration) : [])
    }

    /// The encoder in `precision`; for int8 keeping `outliers` in float: four lists per layer
    /// (QKV, attention output, FFN in, FFN out), as `outliers(weights:calibration:)` returns
    /// and `areValidOutliers` accepts (a programmer error otherwise).
    /// Cost: nothing for f32; for int8 one pass over the linear weights.
    init(weights: BertWeights, precision: Precision, outliers: [[Int]]) throws {
        self.weights = weights
        self.precision = precision
        switch precision {
        case .f32:
            linears = weights.layers.map { LayerLinears(float: $0, calibrating: false) }
        case .int8:
            precondition(Self.areValidOutliers(outliers, config: weights.config), "outlier channels do not fit the model")
            linears = try weights.layers.enumerated().map { l, w in
                try LayerLinears(int8: w, outliers: Array(outliers[(4 * l)..<(4 * l + 4)]), layer: l, file: weights.file.path)
            }
        }
    }

    /// Each int8 linear map's outlier input channels, found by running `calibration` (token
    /// sequences; invalid ones are left out) through the float encoder: four lists per layer.
    /// Cost: one float forward pass over `calibration`.
    static func outliers(weights: BertWeights, calibration: [[Int32]]) -> [[Int]] {
        let c = weights.config
        let calibrating = BertEncoder(weights: weights, linears: weights.layers.map { LayerLinears(float: $0, calibrating: true) })
        let sequences = calibration.filter { ids in
            !ids.isEmpty && ids.count <= c.maxPositions && ids.allSatisfy { $0 >= 0 && Int($0) < c.vocabSize }
        }
        let total = sequences.reduce(0) { $0 + $1.count }
        if total > 0 {
            calibrating.forward(sequences, state: RunState(config: c, capacity: total, maxSequence: c.maxPositions))
        }
        return calibrating.linears.flatMap(\.calibratedOutliers)
    }

    /// Whether `outliers` fits a model of `config` (four lists per layer, each ascending,
    /// distinct, at most `Int8Linear.outlierCount` long and below its map's input width):
    /// checks a remembered list before trusting it. O(lists).
    static func areValidOutliers(_ outliers: [[Int]], config c: BertConfig) -> Bool {
        guard outliers.count == 4 * c.layerCount else { return false }
        let widths = [c.hiddenSize, c.hiddenSize, c.hiddenSize, c.intermediateSize]
        return outliers.enumerated().allSatisfy { i, list in
            list.count == min(Int8Linear.outlierCount, widths[i % 4]) && zip(list, list.dropFirst()).allSatisfy { $0 < $1 }
                && list.allSatisfy { $0 >= 0 && $0 < widths[i % 4] }
        }
    }

    private init(weights: BertWeights, linears: [LayerLinears]) {
        self.weights = weights
        self.precision = .f32
        self.linears = linears
    }

    /// Runs the encoder over `sequences` (token ids, each at most `state.maxSequence` long,
    /// all together at most `state.capacity`) and leaves the last hidden states in `state.x`,
    /// sequence after sequence. Cost: O(tokens · (H² + H·I) + Σ len² · H).
    func forward(_ sequences: [[Int32]], state: RunState) {
        let c = config
        let h = c.hiddenSize, inter = c.intermediateSize
        let total = sequences.reduce(0) { $0 + $1.count }
        precondition(total <= state.capacity && sequences.allSatisfy { $0.count <= state.maxSequence })
        let w = weights

        // Embeddings: word + position + token type 0, then LayerNorm.
        var row = 0
        for seq in sequences {
            for (pos, id) in seq.enumerated() {
                let dst = state.x + (row * h)
                let word = w.wordEmbeddings.pointer + Int(id) * h
                let position = w.positionEmbeddings.pointer + pos * h
                let type0 = w.tokenTypeEmbeddings.pointer
                for j in 0..<h { dst[j] = word[j] + position[j] + type0[j] }
                layerNormRow(dst, cols: h, gamma: w.embedNormGamma.pointer, beta: w.embedNormBeta.pointer, eps: c.layerNormEps)
                row += 1
            }
        }

        for (layer, lin) in zip(w.layers, linears) {
            // Self-attention: Q, K, V in one product, then softmax(Q Kᵀ / √d) V per head.
            linear(state.x, lin.qkv, state.qkv, m: total, n: 3 * h, k: h, state: state)
            addBias(state.qkv, rows: total, cols: 3 * h, bias: layer.qkvBias.pointer)
            attention(sequences, state: state)
            // Output projection + residual + LayerNorm.
            linear(state.context, lin.attnOut, state.tmp, m: total, n: h, k: h, state: state)
            biasResidualLayerNorm(state.tmp, rows: total, cols: h, bias: layer.attnOutBias.pointer,
                                  residual: state.x, gamma: layer.attnNormGamma.pointer,
                                  beta: layer.attnNormBeta.pointer, eps: c.layerNormEps)
            // Feed-forward: H → I (GELU) → H, + residual + LayerNorm.
            linear(state.tmp, lin.ffnIn, state.ffn, m: total, n: inter, k: h, state: state)
            kb_bias_gelu(state.ffn, total, inter, layer.ffnInBias.pointer)
            linear(state.ffn, lin.ffnOut, state.x, m: total, n: h, k: inter, state: state)
            biasResidualLayerNorm(state.x, rows: total, cols: h, bias: layer.ffnOutBias.pointer,
                                  residual: state.tmp, gamma: layer.outNormGamma.pointer,
                                  beta: layer.outNormBeta.pointer, eps: c.layerNormEps)
        }
    }

    /// Multi-head attention over each sequence's own tokens; writes `state.context`.
    private func attention(_ sequences: [[Int32]], state: RunState) {
        let c = config
        let h = c.hiddenSize, d = c.headSize
        let scale = 1 / Float(d).squareRoot()
        var start = 0
        for seq in sequences {
            let n = seq.count
            let base = state.qkv + start * 3 * h
            for head in 0..<c.headCount {
                let q = base + head * d, k = base + h + head * d, v = base + 2 * h + head * d
                // scores[n, n] = scale · Q_h K_hᵀ
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(d),
                            scale, q, Int32(3 * h), k, Int32(3 * h), 0, state.scores, Int32(n))
                kb_softmax_rows(state.scores, n, n, n)
                // context[:, head] = scores · V_h
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(n),
                            1, state.scores, Int32(n), v, Int32(3 * h), 0,
                            state.context + start * h + head * d, Int32(h))
            }
            start += n
        }
    }

    /// y[m, n] = x[m, k] · Wᵀ (no bias) in the weight's arithmetic: float32 sgemm, or x
    /// quantized per token into `state.quantized` and multiplied by the int8 weights
    /// (int32 sums, one float scale per token and per output; outlier channels in float).
    @inline(__always)
    private func linear(_ x: UnsafePointer<Float>, _ w: LinearWeight, _ y: UnsafeMutablePointer<Float>,
                        m: Int, n: Int, k: Int, state: RunState) {
        switch w {
        case .f32(let t):
            gemm(x, t.pointer, y, m: m, n: n, k: k)
        case .calibrating(let t, let range):
            range.record(x, rows: m)
            gemm(x, t.pointer, y, m: m, n: n, k: k)
        case .int8(let q):
            q.apply(x, m: m, into: y, quantized: state.quantized, stride: state.quantizedStride,
                    scales: state.quantizedScales, gathered: state.outlierInputs)
        }
    }

    /// C[m, n] = A[m, k] · B[n, k]ᵀ (B is a PyTorch `[out, in]` weight).
    @inline(__always)
    private func gemm(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(k), b, Int32(k), 0, c, Int32(n))
    }

    /// Pools each sequence's rows of `state.x` into one vector (mean, CLS or max), then
    /// L2-normalizes when `normalize` is set; writes `sequences.count × H` floats to `out`.
    ///
    /// The first `excluded` tokens (default none) of each sequence take no part in pooling:
    /// sentence-transformers' `include_prompt: false`, which zeroes the attention mask of the
    /// first `prompt_length` tokens ([CLS] and the prompt) in its Pooling module. As there
    /// (sentence-transformers 5.7), CLS pooling then reads the first token left in the mask
    /// (the first after the prompt), and when none is left: mean gives zeros (a sum divided by
    /// a count clamped to 1e-9), max gives -infinity (which `Embedder` refuses as non-finite),
    /// CLS the first token. Cost: O(tokens · H).
    func pool(_ sequences: [[Int32]], state: RunState, pooling: Pooling, normalize: Bool, excluded: Int = 0,
              into out: UnsafeMutablePointer<Float>) {
        let h = config.hiddenSize
        var start = 0
        for (s, seq) in sequences.enumerated() {
            let n = seq.count
            let first = Swift.min(Swift.max(excluded, 0), n)
            let dst = out + s * h
            switch pooling {
            case .cls:
                let row = start + (first < n ? first : 0)
                for j in 0..<h { dst[j] = state.x[row * h + j] }
            case .mean:
                for j in 0..<h {
                    var sum = 0.0
                    for r in first..<n { sum += Double(state.x[(start + r) * h + j]) }
                    dst[j] = first < n ? Float(sum / Double(n - first)) : 0
                }
            case .max:
                for j in 0..<h {
                    var m = -Float.infinity
                    for r in first..<n { m = Swift.max(m, state.x[(start + r) * h + j]) }
                    dst[j] = m
                }
            }
            if normalize {
                var sq = 0.0
                for j in 0..<h { sq += Double(dst[j]) * Double(dst[j]) }
                let norm = Swift.max(sq.squareRoot(), 1e-12)
                for j in 0..<h { dst[j] = Float(Double(dst[j]) / norm) }
            }
            start += n
        }
    }
}
