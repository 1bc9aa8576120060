import Foundation

/// One file of a model in the Hugging Face layout.
public struct ModelFile: Sendable, Hashable {
    /// The path inside the repository and inside the model folder (`1_Pooling/config.json`).
    public let path: String
    /// A required file must be present for the model to count as installed; an optional
    /// one may be missing on the hub (404) without failing a fetch.
    public let required: Bool
    /// The pinned SHA-256 (lower-case hex). When nil, the hub's checksum headers are used.
    public let sha256: String?

    public init(_ path: String, required: Bool = true, sha256: String? = nil) {
        self.path = path
        self.required = required
        self.sha256 = sha256
    }
}

/// A model the store knows how to fetch: a local name, its hub repository and its files.
///
/// The built-in table is `KnownModel.builtIn`; `ModelStore` takes the table as a
/// parameter so tests (and other tools) can supply their own.
public struct KnownModel: Sendable, Hashable {
    /// The folder name under the store root (`all-MiniLM-L6-v2`).
    public let name: String
    /// The hub repository id (`sentence-transformers/all-MiniLM-L6-v2`).
    public let repo: String
    /// The files to download, required ones first.
    public let files: [ModelFile]

    public init(name: String, repo: String, files: [ModelFile]) {
        self.name = name
        self.repo = repo
        self.files = files
    }

    /// The name of the model used when none is given.
    public static let defaultName = "all-MiniLM-L6-v2"

    /// Files a sentence-transformers BERT model needs; a model folder is complete when
    /// all of them exist.
    public static let requiredFiles = [
        "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
        "sentence_bert_config.json", "modules.json", "1_Pooling/config.json",
    ]

    /// Files fetched when the hub has them. `config_sentence_transformers.json` holds the
    /// model's query and document prompts (e5, bge, arctic-embed): without it they are lost.
    public static let optionalFiles = ["tokenizer.json", "special_tokens_map.json", "config_sentence_transformers.json"]

    /// The standard file list (required, then optional), with the given pinned hashes.
    public static func standardFiles(pinned: [String: String] = [:]) -> [ModelFile] {
        requiredFiles.map { ModelFile($0, required: true, sha256: pinned[$0]) }
            + optionalFiles.map { ModelFile($0, required: false, sha256: pinned[$0]) }
    }

    /// A model for any hub repository `owner/repo`, stored as `name` (default: the repo part).
    public static func hub(repo: String, name: String? = nil) -> KnownModel {
        KnownModel(name: name ?? String(repo.split(separator: "/").last ?? Substring(repo)), repo: repo, files: standardFiles())
    }

    /// The default model, with every file's SHA-256 pinned.
    public static let allMiniLML6v2 = KnownModel(
        name: defaultName,
        repo: "sentence-transformers/all-MiniLM-L6-v2",
        files: standardFiles(pinned: [
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
            "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
            "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
            "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
        ]))

    /// The models `kbindex model fetch NAME` accepts by short name. Only the default
    /// has pinned hashes; the others are verified with the hub's checksums.
    public static let builtIn: [KnownModel] = [
        allMiniLML6v2,
        .hub(repo: "BAAI/bge-small-en-v1.5", name: "bge-small-en-v1.5"),
        .hub(repo: "Snowflake/snowflake-arctic-embed-xs", name: "snowflake-arctic-embed-xs"),
        .hub(repo: "intfloat/e5-small-v2", name: "e5-small-v2"),
        .hub(repo: "thenlper/gte-small", name: "gte-small"),
    ]
}
