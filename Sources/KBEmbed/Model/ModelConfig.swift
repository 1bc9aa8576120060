import Foundation

/// How token vectors become one text vector (sentence-transformers' `1_Pooling/config.json`).
public enum Pooling: String, Sendable, Codable {
    /// Mean over every token the attention mask keeps ([CLS] and [SEP] included).
    case mean
    /// The first token's vector ([CLS]).
    case cls
    /// The element-wise maximum over the tokens.
    case max
}

/// The transformer's shape, read from `config.json`. Every size the encoder uses comes from here.
public struct BertConfig: Sendable, Equatable, Codable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float

    public init(vocabSize: Int, hiddenSize: Int, layerCount: Int, headCount: Int,
                intermediateSize: Int, maxPositions: Int, typeVocabSize: Int, layerNormEps: Float) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
    }

    /// Size of one attention head (`hiddenSize / headCount`).
    public var headSize: Int { hiddenSize / headCount }
}

/// Everything needed to run a sentence-embedding model folder in the Hugging Face layout:
/// the encoder's shape plus sentence-transformers' pooling, normalization and length limit.
public struct ModelConfig: Sendable, Equatable {
    /// A name for humans and for index files (the folder's name).
    public var name: String
    public var bert: BertConfig
    public var pooling: Pooling
    /// Whether the text vector is L2-normalized (`modules.json` lists a Normalize module).
    public var normalize: Bool
    /// Longest input in tokens, [CLS] and [SEP] included (`sentence_bert_config.json`).
    public var maxSequenceLength: Int
    /// The model's own prompts (`config_sentence_transformers.json`, resolved as
    /// sentence-transformers' `encode_query` / `encode_document` resolve them).
    public var prompts: Prompts
    /// Whether the prompt's tokens take part in pooling (`1_Pooling/config.json`'s
    /// `include_prompt`, true when absent).
    public var includePrompt: Bool

    public init(name: String, bert: BertConfig, pooling: Pooling, normalize: Bool, maxSequenceLength: Int,
                prompts: Prompts = .none, includePrompt: Bool = true) {
        self.name = name
        self.bert = bert
        self.pooling = pooling
        self.normalize = normalize
        self.maxSequenceLength = maxSequenceLength
        self.prompts = prompts
        self.includePrompt = includePrompt
    }

    /// Dimensions of the output vector.
    public var dimensions: Int { bert.hiddenSize }

    /// The longest input `load` accepts, in tokens (BERT-family models use 512).
    public static let maxSupportedSequenceLength = 8192

    /// Reads `config.json`, `sentence_bert_config.json`, `modules.json` and the pooling
    /// module's `config.json` from `directory`.
    ///
    /// Only `config.json` is required. Without `modules.json` the model is taken as a bare
    /// encoder: mean pooling, no normalization. Without `sentence_bert_config.json` the
    /// length limit is `max_position_embeddings`.
    /// - Throws: `ModelError` naming the file for a missing or invalid file, an architecture
    ///   other than BERT, or sizes that do not fit together.
    public static func load(directory: URL) throws -> ModelConfig {
        let configURL = directory.appendingPathComponent("config.json")
        let config = try readJSONObject(configURL, required: true)!
        let bert = try parseBert(config, file: configURL.path)

        var maxLength = bert.maxPositions
        var lengthFile = configURL
        let sbertURL = directory.appendingPathComponent("sentence_bert_config.json")
        if let sbert = try readJSONObject(sbertURL, required: false), let m = sbert["max_seq_length"] {
            guard let v = (m as? NSNumber)?.intValue, v >= 2 else {
                throw ModelError.invalidConfig(file: sbertURL.path, reason: "max_seq_length must be an integer ≥ 2")
            }
            maxLength = min(v, bert.maxPositions)
            lengthFile = sbertURL
        }
        // Each worker holds a length × length attention matrix: refuse what cannot be allocated.
        guard maxLength <= maxSupportedSequenceLength else {
            throw ModelError.unsupported(file: lengthFile.path, reason: "sequences of \(maxLength) tokens are not supported (at most \(maxSupportedSequenceLength): attention needs length² memory)")
        }

        var pooling = Pooling.mean
        var normalize = false
        let modulesURL = directory.appendingPathComponent("modules.json")
        if FileManager.default.fileExists(atPath: modulesURL.path) {
            let data = try readFile(modulesURL)
            guard let modules = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw ModelError.invalidConfig(file: modulesURL.path, reason: "expected a JSON list of modules")
            }
            for module in modules {
                let type = module["type"] as? String ?? ""
                if type.hasSuffix(".Normalize") { normalize = true }
                if type.hasSuffix(".Pooling") {
                    let path = module["path"] as? String ?? "1_Pooling"
                    let poolURL = directory.appendingPathComponent(path).appendingPathComponent("config.json")
                    pooling = try parsePooling(poolURL)
                }
                if !type.hasSuffix(".Normalize"), !type.hasSuffix(".Pooling"), !type.hasSuffix(".Transformer") {
                    throw ModelError.unsupported(file: modulesURL.path, reason: "module type '\(type)' is not supported (kbindex runs Transformer, Pooling and Normalize)")
                }
            }
        }
        return ModelConfig(name: directory.lastPathComponent, bert: bert, pooling: pooling,
                           normalize: normalize, maxSequenceLength: maxLength)
    }

    static func parseBert(_ c: [String: Any], file: String) throws -> BertConfig {
        let modelType = c["model_type"] as? String
        let architectures = c["architectures"] as? [String] ?? []
        guard modelType == "bert" || (modelType == nil && architectures.contains(where: { $0.hasPrefix("Bert") })) else {
            let what = modelType.map { "model_type '\($0)'" } ?? "architectures \(architectures)"
            throw ModelError.unsupported(file: file, reason: "\(what) is not supported: kbindex runs BERT-family encoders (model_type 'bert')")
        }
        if let act = c["hidden_act"] as? String, act != "gelu" {
            throw ModelError.unsupported(file: file, reason: "hidden_act '\(act)' is not supported (only 'gelu', the exact erf form)")
        }
        if let pos = c["position_embedding_type"] as? String, pos != "absolute" {
            throw ModelError.unsupported(file: file, reason: "position_embedding_type '\(pos)' is not supported (only 'absolute')")
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            if let n = c[key] as? NSNumber, n.doubleValue == n.doubleValue.rounded(), n.intValue > 0 { return n.intValue }
            if c[key] == nil, let d { return d }
            throw ModelError.invalidConfig(file: file, reason: "'\(key)' must be a positive integer")
        }
        let eps = (c["layer_norm_eps"] as? NSNumber)?.floatValue ?? 1e-12
        let cfg = BertConfig(
            vocabSize: try int("vocab_size"),
            hiddenSize: try int("hidden_size"),
            layerCount: try int("num_hidden_layers"),
            headCount: try int("num_attention_heads"),
            intermediateSize: try int("intermediate_size"),
            maxPositions: try int("max_position_embeddings"),
            typeVocabSize: try int("type_vocab_size", default: 2),
            layerNormEps: eps)
        guard cfg.hiddenSize % cfg.headCount == 0 else {
            throw ModelError.invalidConfig(file: file, reason: "hidden_size \(cfg.hiddenSize) is not a multiple of num_attention_heads \(cfg.headCount)")
        }
        guard eps > 0, eps < 1 else { throw ModelError.invalidConfig(file: file, reason: "layer_norm_eps must be in (0, 1)") }
        let limit = 1 << 20
        for (k, v) in [("vocab_size", cfg.vocabSize), ("hidden_size", cfg.hiddenSize), ("intermediate_size", cfg.intermediateSize),
                       ("max_position_embeddings", cfg.maxPositions), ("num_hidden_layers", cfg.layerCount)] where v > limit {
            throw ModelError.invalidConfig(file: file, reason: "'\(k)' \(v) is implausibly large")
        }
        return cfg
    }

    static func parsePooling(_ url: URL) throws -> Pooling {
        guard let p = try readJSONObject(url, required: true) else { return .mean }
        let on = { (k: String) in (p[k] as? Bool) ?? false }
        let modes = [("pooling_mode_mean_tokens", Pooling.mean), ("pooling_mode_cls_token", .cls), ("pooling_mode_max_tokens", .max)]
            .filter { on($0.0) }
        let others = ["pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"].filter(on)
        guard others.isEmpty else {
            throw ModelError.unsupported(file: url.path, reason: "\(others[0]) is not supported (mean, cls or max pooling)")
        }
        guard modes.count == 1 else {
            throw ModelError.unsupported(file: url.path, reason: modes.isEmpty ? "no pooling mode is enabled" : "more than one pooling mode at once is not supported")
        }
        return modes[0].1
    }

    static func readFile(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw ModelError.unreadable(file: url.path, reason: (error as NSError).localizedDescription)
        }
    }

    static func readJSONObject(_ url: URL, required: Bool) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required { throw ModelError.missingFile(url.path) }
            return nil
        }
        let data = try readFile(url)
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.invalidConfig(file: url.path, reason: "not a JSON object")
        }
        return obj
    }
}

/// Why a model folder cannot be used. Every case names the file; the description is one
/// line a person can act on.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case unreadable(file: String, reason: String)
    case invalidConfig(file: String, reason: String)
    case unsupported(file: String, reason: String)
    case invalidWeights(file: String, reason: String)
    case missingTensor(file: String, tensor: String)
    case badTensor(file: String, tensor: String, reason: String)
    /// Two files of the folder disagree (`vocab.txt` and `config.json`'s `vocab_size`, or
    /// `vocab.txt` and `tokenizer.json`): one of them is damaged or cut short.
    case inconsistentFiles(file: String, reason: String)
    /// The encoder produced a NaN or infinite value: the weights are damaged (or hold values
    /// out of range). `detail` says what is known, e.g. which tensor holds NaN.
    case nonFiniteVector(model: String, directory: String, detail: String)

    /// True when the error says the model's files are damaged (a fresh copy of the model
    /// would fix it), rather than unsupported, misconfigured or missing.
    public var isDamage: Bool {
        switch self {
        case .invalidWeights, .badTensor, .inconsistentFiles, .nonFiniteVector: return true
        case .missingFile, .unreadable, .invalidConfig, .unsupported, .missingTensor: return false
        }
    }

    public var description: String {
        switch self {
        case .missingFile(let f): return "\(f): file not found (is this a Hugging Face model folder?)"
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .invalidConfig(let f, let r): return "\(f): invalid: \(r)"
        case .unsupported(let f, let r): return "\(f): \(r)"
        case .invalidWeights(let f, let r): return "\(f): not a valid safetensors file: \(r)"
        case .missingTensor(let f, let t): return "\(f): tensor '\(t)' is missing"
        case .badTensor(let f, let t, let r): return "\(f): tensor '\(t)': \(r)"
        case .inconsistentFiles(let f, let r): return "\(f): \(r)"
        case .nonFiniteVector(let m, let d, let detail):
            return "model '\(m)' (\(d)) produced a vector with NaN or infinite values \(detail)"
        }
    }
}
