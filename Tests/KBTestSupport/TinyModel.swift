import Foundation

// Tiny, valid BERT model folders for tests (and deliberately broken ones).
//
//     var m = TinyModel(seed: 7)             // vocab 50, hidden 16, 2 layers, 2 heads, FFN 32
//     m.dtype = .bf16; m.namePrefix = "bert."
//     m.defects = [.missingTensor("encoder.layer.1.output.dense.bias")]
//     let dir = try m.writeTemporary()       // a fresh folder under the temp directory
//
// Weights come from `SeededRNG`, so one seed gives the same model every time. By default every
// weight is a multiple of 1/256 below 1 in magnitude (or 1 ± such a value for LayerNorm γ), which
// F32, F16 and BF16 all represent exactly: the same seed in three dtypes is the same model.

/// A minimal safetensors writer: 8-byte little-endian header length, a JSON header padded with
/// spaces to a multiple of 8, then the tensors' bytes back to back in the order given.
public enum SafeTensorsWriter {
    public enum DType: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"

        public var size: Int { self == .f32 ? 4 : 2 }

        /// `values` in this dtype, little-endian (F16/BF16 round to nearest even).
        public func encode(_ values: [Float]) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(values.count * size)
            for v in values {
                switch self {
                case .f32:
                    let b = v.bitPattern
                    for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: b >> (8 * UInt32(i)))) }
                case .f16:
                    let b = SafeTensorsWriter.halfBits(v)
                    out.append(UInt8(truncatingIfNeeded: b)); out.append(UInt8(truncatingIfNeeded: b >> 8))
                case .bf16:
                    let b = SafeTensorsWriter.bfloat16Bits(v)
                    out.append(UInt8(truncatingIfNeeded: b)); out.append(UInt8(truncatingIfNeeded: b >> 8))
                }
            }
            return out
        }

        /// What `v` becomes after a round trip through this dtype.
        public func rounded(_ v: Float) -> Float {
            switch self {
            case .f32: return v
            case .f16: return SafeTensorsWriter.floatFromHalfBits(SafeTensorsWriter.halfBits(v))
            case .bf16: return Float(bitPattern: UInt32(SafeTensorsWriter.bfloat16Bits(v)) << 16)
            }
        }
    }

    /// One header entry and its bytes. `dtype` is free text so tests can write dtypes the
    /// reader does not know; `dataOffsets`, when set, replaces the computed offsets in the
    /// header (the bytes are still written in order).
    public struct Tensor: Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var data: [UInt8]
        public var dataOffsets: (Int, Int)?

        public init(name: String, dtype: String, shape: [Int], data: [UInt8], dataOffsets: (Int, Int)? = nil) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.data = data; self.dataOffsets = dataOffsets
        }

        public init(name: String, dtype: DType, shape: [Int], values: [Float]) {
            precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
            self.init(name: name, dtype: dtype.rawValue, shape: shape, data: dtype.encode(values))
        }
    }

    /// Offsets (relative to the data section) each tensor gets when written back to back.
    public static func layout(_ tensors: [Tensor]) -> [(Int, Int)] {
        var offset = 0
        return tensors.map { t in
            defer { offset += t.data.count }
            return t.dataOffsets ?? (offset, offset + t.data.count)
        }
    }

    /// The header's JSON text, padded with spaces to a multiple of 8 bytes.
    public static func header(_ tensors: [Tensor], metadata: [String: String]? = ["format": "pt"]) -> Data {
        var parts: [String] = []
        if let metadata {
            let kv = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        for (t, (b, e)) in zip(tensors, layout(tensors)) {
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(t.name)):{\"dtype\":\(jsonString(t.dtype)),\"shape\":[\(shape)],\"data_offsets\":[\(b),\(e)]}")
        }
        var text = Array("{\(parts.joined(separator: ","))}".utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        return Data(text)
    }

    /// The whole file.
    public static func encode(_ tensors: [Tensor], metadata: [String: String]? = ["format": "pt"]) -> Data {
        let h = header(tensors, metadata: metadata)
        var out = Data()
        var n = UInt64(h.count)
        for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
        out.append(h)
        for t in tensors { out.append(contentsOf: t.data) }
        return out
    }

    /// The header length stored in a file's first 8 bytes.
    public static func headerLength(of file: Data) -> Int {
        var n = 0
        for i in 0..<8 { n |= Int(file[file.startIndex + i]) << (8 * i) }
        return n
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// IEEE 754 single → half, round to nearest even (overflow to ±inf, NaN kept quiet).
    public static func halfBits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (b >> 16) & 0x8000)
        let exp = Int((b >> 23) & 0xFF)
        let mant = b & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 | UInt16(truncatingIfNeeded: mant >> 13) : 0) }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            let m = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var h = m >> shift
            let rem = m & ((1 << shift) - 1), half = UInt32(1) << (shift - 1)
            if rem > half || (rem == half && h & 1 == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) { h += 1 }  // a carry rounds up into the exponent (to inf at the top)
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// IEEE 754 half → single, written independently of the library's `floatFromHalf`
    /// (by arithmetic on the value rather than on the bits).
    public static func floatFromHalfBits(_ h: UInt16) -> Float {
        let negative = h & 0x8000 != 0
        let exp = Int((h >> 10) & 0x1F)
        let mant = Int(h & 0x3FF)
        let magnitude: Float
        if exp == 0x1F {
            if mant != 0 {
                // NaN: keep the payload in the top of the single's mantissa, as hardware does.
                return Float(bitPattern: (negative ? 0x8000_0000 : 0) | 0x7F80_0000 | (UInt32(mant) << 13))
            }
            magnitude = .infinity
        } else if exp == 0 {
            magnitude = Float(mant) * 0x1p-24
        } else {
            magnitude = Float(1024 + mant) * Float(sign: .plus, exponent: exp - 25, significand: 1)
        }
        return negative ? -magnitude : magnitude
    }

    /// IEEE 754 single → bfloat16, round to nearest even.
    public static func bfloat16Bits(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        if f.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }
}

/// A tiny BERT sentence-embedding model folder in the Hugging Face / sentence-transformers
/// layout. Change the fields, then `write(to:)` or `writeTemporary()`.
public struct TinyModel {
    public var vocabSize = 50
    public var hiddenSize = 16
    public var layerCount = 2
    public var headCount = 2
    public var intermediateSize = 32
    public var maxPositions = 32
    public var typeVocabSize = 2
    public var layerNormEps = 1e-12
    /// `sentence_bert_config.json`'s `max_seq_length` (nil: no such file).
    public var maxSeqLength: Int? = 32

    public var seed: UInt64
    /// The dtype every weight is stored in.
    public var dtype: SafeTensorsWriter.DType = .f32
    /// "" for a BertModel checkpoint, "bert." for a BertFor* one.
    public var namePrefix = ""
    /// Also write the (unused) `pooler.dense.*` tensors.
    public var includePooler = true
    /// Weights are multiples of 1/256 (exact in F32, F16 and BF16). Off: plain random floats.
    public var halfRepresentable = true

    /// `1_Pooling/config.json` modes set to true: "mean_tokens", "cls_token", "max_tokens", ….
    public var poolingModes = ["mean_tokens"]
    /// Whether `modules.json` lists a Normalize module.
    public var normalize = true
    /// Write `modules.json` (and with it `1_Pooling/config.json`).
    public var writeModules = true

    /// Ways to break the folder, applied in order when writing.
    public var defects: [Defect] = []

    public enum Defect {
        case missingConfig
        case configNotJSON
        /// Sets (or with nil removes) a key of config.json.
        case configValue(String, Any?)
        case missingWeights
        /// Keeps only the first `n` bytes of model.safetensors.
        case truncateWeights(toBytes: Int)
        /// Replaces the header's text with as many bytes of non-JSON.
        case headerNotJSON
        /// Writes a header length of file size + `excess` bytes.
        case headerLengthTooLarge(excess: Int)
        /// Leaves a tensor out (name without the prefix).
        case missingTensor(String)
        /// Writes a tensor with another shape (its bytes fit that shape, so only the model check fails).
        case tensorShape(String, [Int])
        /// Makes a tensor's data end `past` bytes after the end of the data section.
        case dataOffsetsOutOfRange(String, past: Int)
        /// Points the first tensor's data_offsets at the second's bytes (same size needed).
        case overlapping(String, String)
        /// Declares a tensor with another dtype, with bytes sized for it (`elementSize`) or, for a
        /// dtype the reader cannot know, the original bytes.
        case tensorDType(String, dtype: String, elementSize: Int?)
        /// Appends a module of this type to `modules.json`.
        case extraModule(type: String)
        /// Writes any file (relative path) with this text.
        case file(String, String)
        /// Overwrites elements of a tensor (flat index → value), e.g. a NaN where damaged
        /// weights would have one.
        case tensorValues(String, [Int: Float])
    }

    public init(seed: UInt64 = 1) { self.seed = seed }

    // MARK: Weights

    /// Every tensor's name (without the prefix) and shape, in the order they are written.
    public var tensorShapes: [(String, [Int])] {
        let h = hiddenSize, i = intermediateSize
        var out: [(String, [Int])] = [
            ("embeddings.word_embeddings.weight", [vocabSize, h]),
            ("embeddings.position_embeddings.weight", [maxPositions, h]),
            ("embeddings.token_type_embeddings.weight", [typeVocabSize, h]),
            ("embeddings.LayerNorm.weight", [h]),
            ("embeddings.LayerNorm.bias", [h]),
        ]
        for l in 0..<layerCount {
            let p = "encoder.layer.\(l)."
            for m in ["query", "key", "value"] {
                out.append((p + "attention.self.\(m).weight", [h, h]))
                out.append((p + "attention.self.\(m).bias", [h]))
            }
            out += [
                (p + "attention.output.dense.weight", [h, h]), (p + "attention.output.dense.bias", [h]),
                (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                (p + "intermediate.dense.weight", [i, h]), (p + "intermediate.dense.bias", [i]),
                (p + "output.dense.weight", [h, i]), (p + "output.dense.bias", [h]),
                (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h]),
            ]
        }
        if includePooler { out += [("pooler.dense.weight", [h, h]), ("pooler.dense.bias", [h])] }
        return out
    }

    /// The weights by name (without the prefix), exactly as stored in the file's dtype.
    public func weights() -> [String: [Float]] {
        var rng = SeededRNG(seed: seed)
        var out: [String: [Float]] = [:]
        for (name, shape) in tensorShapes {
            let n = shape.reduce(1, *)
            let isGamma = name.hasSuffix("LayerNorm.weight")
            let isBias = name.hasSuffix(".bias")
            // Embeddings about ±1, linear weights ±0.5, biases ±0.125, γ in 1 ± 0.25.
            let scale: Float = name.hasPrefix("embeddings.") && !isGamma && !isBias ? 1 : (isBias ? 0.125 : (isGamma ? 0.25 : 0.5))
            out[name] = (0..<n).map { _ in
                let v: Float
                if halfRepresentable {
                    // At most 8 significant bits (BF16's precision), exponents well inside F16's range.
                    v = isGamma ? 1 + Float(Int.random(in: -31...31, using: &rng)) / 128
                                : Float(Int.random(in: -255...255, using: &rng)) / 256 * scale
                } else {
                    v = (isGamma ? 1 : 0) + Float.random(in: -1...1, using: &rng) * scale
                }
                return dtype.rounded(v)
            }
        }
        return out
    }

    public func safetensors() -> [SafeTensorsWriter.Tensor] {
        let w = weights()
        return tensorShapes.map { name, shape in
            SafeTensorsWriter.Tensor(name: namePrefix + name, dtype: dtype, shape: shape, values: w[name]!)
        }
    }

    // MARK: Files

    public var configJSON: [String: Any] {
        [
            "architectures": ["BertModel"], "model_type": "bert",
            "vocab_size": vocabSize, "hidden_size": hiddenSize, "num_hidden_layers": layerCount,
            "num_attention_heads": headCount, "intermediate_size": intermediateSize,
            "max_position_embeddings": maxPositions, "type_vocab_size": typeVocabSize,
            "layer_norm_eps": layerNormEps, "hidden_act": "gelu", "position_embedding_type": "absolute",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
            "initializer_range": 0.02, "torch_dtype": dtype == .f32 ? "float32" : (dtype == .f16 ? "float16" : "bfloat16"),
        ]
    }

    /// [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4), then a few words and pieces.
    public static let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                    "the", "a", "cat", "dog", "sat", "on", "mat", "##s", ",", ".", "hello", "world", "##ing", "run"]
    /// The lines of `vocab.txt`: `vocabulary`, then `[unused19]`… up to `vocabSize` entries,
    /// so vocab.txt has exactly config.json's `vocab_size` entries, as a real model's does.
    public var vocabularyLines: [String] {
        Self.vocabulary + (Self.vocabulary.count..<max(vocabSize, Self.vocabulary.count)).map { "[unused\($0)]" }
    }
    public static let clsID: Int32 = 2
    public static let sepID: Int32 = 3

    /// Writes the folder into `dir` (created if needed) and returns it.
    @discardableResult
    public func write(to dir: URL) throws -> URL {
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        func put(_ rel: String, _ data: Data) throws {
            let url = dir.appendingPathComponent(rel)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        func json(_ obj: Any) throws -> Data { try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]) }

        var config = configJSON
        var tensors = safetensors()
        var modules: [[String: Any]] = [
            ["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
            ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"],
        ]
        if normalize { modules.append(["idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"]) }
        var pooling: [String: Any] = ["word_embedding_dimension": hiddenSize, "include_prompt": true]
        for mode in ["cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens", "lasttoken"] {
            pooling["pooling_mode_\(mode)"] = poolingModes.contains(mode)
        }
        func index(_ name: String) -> Int {
            guard let i = tensors.firstIndex(where: { $0.name == namePrefix + name }) else { fatalError("TinyModel: no tensor \(name)") }
            return i
        }
        var skipConfig = false, skipWeights = false
        var extraFiles: [(String, String)] = []
        for d in defects {
            switch d {
            case .missingConfig: skipConfig = true
            case .configValue(let k, let v): config[k] = v
            case .missingWeights: skipWeights = true
            case .missingTensor(let n): tensors.remove(at: index(n))
            case .tensorShape(let n, let shape):
                var rng = SeededRNG(seed: seed ^ 0xABCD)
                let values = (0..<shape.reduce(1, *)).map { _ in Float(Int.random(in: -255...255, using: &rng)) / 512 }
                tensors[index(n)] = .init(name: namePrefix + n, dtype: dtype, shape: shape, values: values)
            case .tensorDType(let n, let dt, let size):
                let i = index(n)
                tensors[i].dtype = dt
                if let size { tensors[i].data = [UInt8](repeating: 0, count: tensors[i].shape.reduce(1, *) * size) }
            case .extraModule(let type):
                modules.append(["idx": modules.count, "name": "\(modules.count)", "path": "\(modules.count)_Extra", "type": type])
            case .file(let rel, let text): extraFiles.append((rel, text))
            case .overlapping(let a, let b):
                let l = SafeTensorsWriter.layout(tensors)
                tensors[index(a)].dataOffsets = l[index(b)]
            case .dataOffsetsOutOfRange(let n, let past):
                let total = tensors.reduce(0) { $0 + $1.data.count }
                let i = index(n)
                tensors[i].dataOffsets = (total + past - tensors[i].data.count, total + past)
            case .tensorValues(let n, let values):
                let i = index(n)
                var v = weights()[n]!
                for (k, x) in values { v[k] = x }
                tensors[i] = .init(name: namePrefix + n, dtype: dtype, shape: tensors[i].shape, values: v)
            case .configNotJSON, .truncateWeights, .headerNotJSON, .headerLengthTooLarge: break
            }
        }

        if !skipConfig { try put("config.json", json(config)) }
        try put("vocab.txt", Data((vocabularyLines.joined(separator: "\n") + "\n").utf8))
        try put("tokenizer_config.json", json([
            "do_lower_case": true, "model_max_length": maxSeqLength ?? maxPositions, "tokenizer_class": "BertTokenizer",
            "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]",
            "strip_accents": NSNull(), "tokenize_chinese_chars": true,
        ] as [String: Any]))
        try put("special_tokens_map.json", json(["cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"]))
        if let maxSeqLength { try put("sentence_bert_config.json", json(["max_seq_length": maxSeqLength, "do_lower_case": false] as [String: Any])) }
        if writeModules {
            try put("modules.json", json(modules))
            try put("1_Pooling/config.json", json(pooling))
        }

        var file = SafeTensorsWriter.encode(tensors)
        for d in defects {
            switch d {
            case .configNotJSON: try put("config.json", Data("{\"model_type\": \"bert\", \"hidden_size\": 16,".utf8))
            case .truncateWeights(let n): file = file.prefix(n)
            case .headerNotJSON:
                let n = SafeTensorsWriter.headerLength(of: file)
                file.replaceSubrange(8..<(8 + n), with: Data(repeating: UInt8(ascii: "x"), count: n))
            case .headerLengthTooLarge(let excess):
                var n = UInt64(file.count + excess)
                for i in 0..<8 { file[i] = UInt8(truncatingIfNeeded: n); n >>= 8 }
            default: break
            }
        }
        if !skipWeights { try put("model.safetensors", file) }
        for (rel, text) in extraFiles { try put(rel, Data(text.utf8)) }
        return dir
    }

    /// Writes the folder into a new temporary directory (named after the model, so errors read well).
    public func writeTemporary() throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("kbindex-tiny-\(UUID().uuidString.prefix(8))")
            .appendingPathComponent("tiny-bert")
        return try write(to: dir)
    }

    /// Removes a folder made by `writeTemporary()` (and its parent).
    public static func remove(_ dir: URL) {
        try? FileManager.default.removeItem(at: dir.deletingLastPathComponent())
    }

    /// Random token sequences [CLS] w… [SEP] with the given lengths (ids below `vocabSize`).
    public func randomSequences(lengths: [Int], seed: UInt64) -> [[Int32]] {
        var rng = SeededRNG(seed: seed)
        return lengths.map { n in
            precondition(n >= 2)
            return [Self.clsID] + (0..<(n - 2)).map { _ in Int32(Int.random(in: 5..<vocabSize, using: &rng)) } + [Self.sepID]
        }
    }
}
