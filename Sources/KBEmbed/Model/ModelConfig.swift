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

    /// Whether `sentence_bert_config.json` asks for the text to be lower-cased before the
    /// tokenizer (`do_lower_case`): `Embedder` accepts it only when the tokenizer lower-cases.
    public var lowercasesInput = false

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
    /// encoder: mean pooling, no normalization. The length limit is `sentence_bert_config.json`'s
    /// `max_seq_length`, else (as sentence-transformers ≥ 5.4 saves it) `tokenizer_config.json`'s
    /// `model_max_length`, at most `max_position_embeddings`. `config_sentence_transformers.json`
    /// gives the prompts (see `parsePrompts`), the pooling module's config `include_prompt`.
    /// - Throws: `ModelError` naming the file for a missing or invalid file, an architecture
    ///   other than BERT, sizes that do not fit together, or anything kbindex cannot reproduce
    ///   exactly (a module other than Transformer → Pooling → Normalize, a pooling mode other
    ///   than mean, CLS or max): such a model is refused, never embedded approximately.
    public static func load(directory: URL) throws -> ModelConfig {
        let configURL = directory.appendingPathComponent("config.json")
        let config = try readJSONObject(configURL, required: true)!
        let bert = try parseBert(config, file: configURL.path)

        var maxLength = bert.maxPositions
        var lengthFile = configURL
        let sbertURL = directory.appendingPathComponent("sentence_bert_config.json")
        let sbert = try readJSONObject(sbertURL, required: false)
        var lowercasesInput = false
        if let d = sbert?["do_lower_case"], !(d is NSNull) {
            guard let b = d as? Bool else {
                throw ModelError.invalidConfig(file: sbertURL.path, reason: "'do_lower_case' must be true or false")
            }
            lowercasesInput = b
        }
        if let m = sbert?["max_seq_length"], !(m is NSNull) {
            guard let v = (m as? NSNumber)?.intValue, v >= 2 else {
                throw ModelError.invalidConfig(file: sbertURL.path, reason: "max_seq_length must be an integer ≥ 2")
            }
            maxLength = min(v, bert.maxPositions)
            lengthFile = sbertURL
        } else {
            // sentence-transformers ≥ 5.4 keeps the limit in the tokenizer's model_max_length
            // (capped at max_position_embeddings), no longer in sentence_bert_config.json.
            let tokenizerURL = directory.appendingPathComponent("tokenizer_config.json")
            if let t = try? readJSONObject(tokenizerURL, required: false), let m = t["model_max_length"], !(m is NSNull) {
                guard let v = (m as? NSNumber)?.doubleValue, v >= 2 else {
                    throw ModelError.invalidConfig(file: tokenizerURL.path, reason: "model_max_length must be a number ≥ 2")
                }
                if v < Double(bert.maxPositions) {
                    maxLength = Int(v)
                    lengthFile = tokenizerURL
                }
            }
        }
        // Each worker holds a length × length attention matrix: refuse what cannot be allocated.
        guard maxLength <= maxSupportedSequenceLength else {
            throw ModelError.unsupported(file: lengthFile.path, reason: "sequences of \(maxLength) tokens are not supported (at most \(maxSupportedSequenceLength): attention needs length² memory)")
        }

        var pooling = Pooling.mean
        var normalize = false
        var includePrompt = true
        let modulesURL = directory.appendingPathComponent("modules.json")
        if FileManager.default.fileExists(atPath: modulesURL.path) {
            let modules = try parseModules(modulesURL)
            if let poolingPath = modules.poolingPath {
                let poolURL = directory.appendingPathComponent(poolingPath).appendingPathComponent("config.json")
                (pooling, includePrompt) = try parsePooling(poolURL, hiddenSize: bert.hiddenSize)
            }
            normalize = modules.normalize
        }
        let prompts = try parsePrompts(directory.appendingPathComponent(promptsFileName))
        var result = ModelConfig(name: directory.lastPathComponent, bert: bert, pooling: pooling,
                                 normalize: normalize, maxSequenceLength: maxLength,
                                 prompts: prompts, includePrompt: includePrompt)
        result.lowercasesInput = lowercasesInput
        return result
    }

    /// sentence-transformers' own settings file: prompts, default prompt, similarity.
    public static let promptsFileName = "config_sentence_transformers.json"

    /// The last component of a module's `type` (`sentence_transformers.models.Pooling` → `Pooling`).
    static func moduleKind(_ type: String) -> String {
        String(type.split(separator: ".").last ?? Substring(type))
    }

    /// Reads `modules.json`: the pipeline must be exactly Transformer → Pooling → optional
    /// Normalize, the only one kbindex reproduces exactly; anything else (a Dense layer, a
    /// second Transformer, a module of another library, a Transformer in a subfolder) is
    /// refused rather than embedded approximately.
    /// - Returns: the Pooling module's folder and whether a Normalize module follows it.
    static func parseModules(_ url: URL) throws -> (poolingPath: String?, normalize: Bool) {
        let data = try readFile(url)
        guard let list = (try? JSONSerialization.jsonObject(with: data)) as? [Any] else {
            throw ModelError.invalidConfig(file: url.path, reason: "expected a JSON list of modules")
        }
        var kinds: [String] = []
        var poolingPath: String?
        for (i, item) in list.enumerated() {
            guard let module = item as? [String: Any], let type = module["type"] as? String, !type.isEmpty else {
                throw ModelError.invalidConfig(file: url.path, reason: "module \(i) has no 'type' string")
            }
            if let p = module["path"], !(p is String) {
                throw ModelError.invalidConfig(file: url.path, reason: "module \(i)'s 'path' is not a string")
            }
            let path = module["path"] as? String ?? ""
            let kind = moduleKind(type)
            let supported = type.hasPrefix("sentence_transformers.") || !type.contains(".")
            switch kind {
            case "Transformer" where supported:
                guard path.isEmpty || path == "." || path == "./" else {
                    throw ModelError.unsupported(file: url.path, reason: "the Transformer module lives in '\(path)/': kbindex reads the encoder from the model folder itself")
                }
            case "Pooling" where supported:
                guard !path.isEmpty, !path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                    throw ModelError.invalidConfig(file: url.path, reason: "the Pooling module's 'path' '\(path)' is not a folder inside the model")
                }
                poolingPath = path
            case "Normalize" where supported:
                break
            default:
                throw ModelError.unsupported(file: url.path, reason: "module type '\(type)' is not supported (kbindex runs Transformer, Pooling and Normalize)")
            }
            kinds.append(kind)
        }
        guard kinds == ["Transformer", "Pooling"] || kinds == ["Transformer", "Pooling", "Normalize"] else {
            throw ModelError.unsupported(file: url.path, reason: "modules [\(kinds.joined(separator: ", "))] are not supported (kbindex runs Transformer, Pooling and an optional Normalize, in that order)")
        }
        return (poolingPath, kinds.last == "Normalize")
    }

    /// Reads `config_sentence_transformers.json` (optional) and resolves its prompts as
    /// sentence-transformers (5.0 to 6.3) resolves them for `encode_query` and
    /// `encode_document`: the query prompt is `prompts["query"]`, the document prompt
    /// `prompts["document"]`, and neither else. sentence-transformers starts every model's
    /// prompts with empty "query" and "document" entries, so its fallbacks (the "passage" and
    /// "corpus" prompts for documents, the `default_prompt_name` prompt for either) never apply
    /// to them; `default_prompt_name` only affects plain `encode`, which kbindex does not
    /// prompt. An empty or null prompt is none. O(file).
    /// - Throws: `ModelError.invalidConfig` for a file that is not a JSON object, prompts that
    ///   are not strings, a `default_prompt_name` that names no prompt (sentence-transformers
    ///   refuses to load such a model); `.unsupported` for a `model_type` other than
    ///   SentenceTransformer (a sparse encoder, a cross-encoder).
    static func parsePrompts(_ url: URL) throws -> Prompts {
        guard let c = try readJSONObject(url, required: false) else { return .none }
        if let t = c["model_type"], !(t is NSNull) {
            guard let type = t as? String else {
                throw ModelError.invalidConfig(file: url.path, reason: "'model_type' is not a string")
            }
            guard type == "SentenceTransformer" else {
                throw ModelError.unsupported(file: url.path, reason: "model_type '\(type)' is not supported (kbindex runs SentenceTransformer models)")
            }
        }
        // sentence-transformers' starting point: empty query and document prompts.
        var prompts: [String: String] = ["query": "", "document": ""]
        if let p = c["prompts"], !(p is NSNull) {
            guard let dict = p as? [String: Any] else {
                throw ModelError.invalidConfig(file: url.path, reason: "'prompts' is not an object of names to prompt strings")
            }
            for (name, value) in dict {
                // sentence-transformers reads a null prompt as an empty one.
                guard let text = value is NSNull ? "" : value as? String else {
                    throw ModelError.invalidConfig(file: url.path, reason: "prompt '\(name)' is not a string")
                }
                prompts[name] = text
            }
        }
        if let d = c["default_prompt_name"], !(d is NSNull) {
            guard let name = d as? String else {
                throw ModelError.invalidConfig(file: url.path, reason: "'default_prompt_name' is not a string")
            }
            guard prompts[name] != nil else {
                let known = prompts.keys.sorted().map { "'\($0)'" }.joined(separator: ", ")
                throw ModelError.invalidConfig(file: url.path, reason: "default_prompt_name '\(name)' names no prompt (prompts: \(known))")
            }
        }
        return Prompts(query: prompts["query"], document: prompts["document"])
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

    /// Reads the Pooling module's `config.json`, in either of sentence-transformers' forms:
    /// `pooling_mode` ("mean", "cls", "max", or a list of one), as sentence-transformers ≥ 5.4
    /// writes it, or the older `pooling_mode_*_token(s)` flags of which exactly one is true;
    /// and `include_prompt` (true when absent).
    /// - Throws: `ModelError.unsupported` for another mode (mean-sqrt-len, weighted mean, last
    ///   token) or several at once; `.invalidConfig` for values of the wrong JSON type or an
    ///   embedding dimension other than the encoder's hidden size.
    static func parsePooling(_ url: URL, hiddenSize: Int) throws -> (Pooling, includePrompt: Bool) {
        guard let p = try readJSONObject(url, required: true) else { return (.mean, true) }
        func flag(_ key: String, default d: Bool = false) throws -> Bool {
            guard let v = p[key], !(v is NSNull) else { return d }
            guard let b = v as? Bool else {
                throw ModelError.invalidConfig(file: url.path, reason: "'\(key)' must be true or false")
            }
            return b
        }
        for key in ["word_embedding_dimension", "embedding_dimension"] {
            if let d = p[key], !(d is NSNull) {
                guard let n = d as? NSNumber, n.doubleValue == Double(hiddenSize) else {
                    throw ModelError.invalidConfig(file: url.path, reason: "\(key) \(d) is not the encoder's hidden_size \(hiddenSize)")
                }
            }
        }
        let known: [String: Pooling] = ["mean": .mean, "cls": .cls, "max": .max]
        var modes: [String] = []
        if let m = p["pooling_mode"], !(m is NSNull) {
            if let one = m as? String {
                modes = [one]
            } else if let list = m as? [Any], let names = list as? [String] {
                modes = names
            } else {
                throw ModelError.invalidConfig(file: url.path, reason: "'pooling_mode' must be a mode name or a list of them")
            }
        } else {
            // sentence-transformers' order of the legacy flags.
            for (key, mode) in [("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean"),
                                ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_mean_sqrt_len_tokens"),
                                ("pooling_mode_weightedmean_tokens", "pooling_mode_weightedmean_tokens"),
                                ("pooling_mode_lasttoken", "pooling_mode_lasttoken")] where try flag(key) {
                modes.append(mode)
            }
        }
        if let other = modes.first(where: { known[$0] == nil }) {
            throw ModelError.unsupported(file: url.path, reason: "\(other) is not supported (mean, cls or max pooling)")
        }
        guard modes.count == 1, let mode = known[modes[0]] else {
            throw ModelError.unsupported(file: url.path, reason: modes.isEmpty ? "no pooling mode is enabled" : "more than one pooling mode at once is not supported")
        }
        return (mode, try flag("include_prompt", default: true))
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
