import Foundation

/// The weights of one transformer layer. Linear weights are PyTorch's `[out, in]`, so a
/// layer computes `y = x · Wᵀ + b`. Q, K and V are fused at load into one `[3H, H]` matrix
/// so one matrix product yields all three.
struct BertLayerWeights: @unchecked Sendable {
    let qkvWeight: FloatTensor      // [3H, H]
    let qkvBias: FloatTensor        // [3H]
    let attnOutWeight: FloatTensor  // [H, H]
    let attnOutBias: FloatTensor
    let attnNormGamma: FloatTensor
    let attnNormBeta: FloatTensor
    let ffnInWeight: FloatTensor    // [I, H]
    let ffnInBias: FloatTensor      // [I]
    let ffnOutWeight: FloatTensor   // [H, I]
    let ffnOutBias: FloatTensor
    let outNormGamma: FloatTensor
    let outNormBeta: FloatTensor
}

/// All of a BERT encoder's weights, read from `model.safetensors` and checked against
/// `config.json`: every tensor must be present with exactly the configured shape.
/// The `pooler.*` weights are not used and not required.
final class BertWeights: @unchecked Sendable {
    let config: BertConfig
    let wordEmbeddings: FloatTensor      // [V, H]
    let positionEmbeddings: FloatTensor  // [P, H]
    let tokenTypeEmbeddings: FloatTensor // [T, H]
    let embedNormGamma: FloatTensor
    let embedNormBeta: FloatTensor
    let layers: [BertLayerWeights]
    /// The file the weights came from (kept open: F32 tensors point into its mapping).
    let file: SafeTensorsFile

    init(file: SafeTensorsFile, config c: BertConfig) throws {
        self.file = file
        self.config = c
        let h = c.hiddenSize, i = c.intermediateSize
        // Checkpoints saved from BertModel have no prefix; from BertFor* they have "bert.".
        let prefix = file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func t(_ name: String, _ shape: [Int]) throws -> FloatTensor { try file.floats(prefix + name, shape: shape) }

        wordEmbeddings = try t("embeddings.word_embeddings.weight", [c.vocabSize, h])
        positionEmbeddings = try t("embeddings.position_embeddings.weight", [c.maxPositions, h])
        tokenTypeEmbeddings = try t("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        embedNormGamma = try t("embeddings.LayerNorm.weight", [h])
        embedNormBeta = try t("embeddings.LayerNorm.bias", [h])

        var layers: [BertLayerWeights] = []
        for l in 0..<c.layerCount {
            let p = "encoder.layer.\(l)."
            let q = try t(p + "attention.self.query.weight", [h, h])
            let k = try t(p + "attention.self.key.weight", [h, h])
            let v = try t(p + "attention.self.value.weight", [h, h])
            let qb = try t(p + "attention.self.query.bias", [h])
            let kb = try t(p + "attention.self.key.bias", [h])
            let vb = try t(p + "attention.self.value.bias", [h])
            let qkv = FloatTensor(shape: [3 * h, h]) { out in
                for (n, m) in [q, k, v].enumerated() {
                    for j in 0..<(h * h) { out[n * h * h + j] = m.pointer[j] }
                }
            }
            let qkvBias = FloatTensor(shape: [3 * h]) { out in
                for (n, m) in [qb, kb, vb].enumerated() {
                    for j in 0..<h { out[n * h + j] = m.pointer[j] }
                }
            }
            layers.append(BertLayerWeights(
                qkvWeight: qkv, qkvBias: qkvBias,
                attnOutWeight: try t(p + "attention.output.dense.weight", [h, h]),
                attnOutBias: try t(p + "attention.output.dense.bias", [h]),
                attnNormGamma: try t(p + "attention.output.LayerNorm.weight", [h]),
                attnNormBeta: try t(p + "attention.output.LayerNorm.bias", [h]),
                ffnInWeight: try t(p + "intermediate.dense.weight", [i, h]),
                ffnInBias: try t(p + "intermediate.dense.bias", [i]),
                ffnOutWeight: try t(p + "output.dense.weight", [h, i]),
                ffnOutBias: try t(p + "output.dense.bias", [h]),
                outNormGamma: try t(p + "output.LayerNorm.weight", [h]),
                outNormBeta: try t(p + "output.LayerNorm.bias", [h])))
        }
        self.layers = layers
    }

    /// Every tensor with its checkpoint name (Q, K and V appear under their fused name).
    var named: [(String, FloatTensor)] {
        var out: [(String, FloatTensor)] = [
            ("embeddings.word_embeddings.weight", wordEmbeddings),
            ("embeddings.position_embeddings.weight", positionEmbeddings),
            ("embeddings.token_type_embeddings.weight", tokenTypeEmbeddings),
            ("embeddings.LayerNorm.weight", embedNormGamma), ("embeddings.LayerNorm.bias", embedNormBeta),
        ]
        for (l, w) in layers.enumerated() {
            let p = "encoder.layer.\(l)."
            out += [
                (p + "attention.self.{query,key,value}.weight", w.qkvWeight), (p + "attention.self.{query,key,value}.bias", w.qkvBias),
                (p + "attention.output.dense.weight", w.attnOutWeight), (p + "attention.output.dense.bias", w.attnOutBias),
                (p + "attention.output.LayerNorm.weight", w.attnNormGamma), (p + "attention.output.LayerNorm.bias", w.attnNormBeta),
                (p + "intermediate.dense.weight", w.ffnInWeight), (p + "intermediate.dense.bias", w.ffnInBias),
                (p + "output.dense.weight", w.ffnOutWeight), (p + "output.dense.bias", w.ffnOutBias),
                (p + "output.LayerNorm.weight", w.outNormGamma), (p + "output.LayerNorm.bias", w.outNormBeta),
            ]
        }
        return out
    }

    /// The first tensor (in checkpoint order) holding a NaN or infinity, and that value
    /// ("NaN", "inf", "-inf"); nil when all are finite. O(weights).
    func firstNonFinite() -> (String, String)? {
        for (name, t) in named {
            if let v = t.buffer.first(where: { !$0.isFinite }) { return (name, v.isNaN ? "NaN" : (v > 0 ? "inf" : "-inf")) }
        }
        return nil
    }
}
