import KBCore

/// The embedding model an index was built with. Stored in every segment's MODEL section and
/// in `manifest.json`; a query must be embedded with a compatible model (format-spec.md §8.3).
///
/// Two versions: version 1 (`version` absent) identifies a local model by its weights'
/// SHA-256 and has no prompts; version 2 (`version` 2) also describes remote models
/// (`provider`, `url`, `model`) and the query and document prompts. kbindex writes version 1
/// whenever it can say everything (a local model without prompts), so such files are byte
/// for byte what kbindex wrote before version 2 existed.
public struct ModelDescriptor: Codable, Equatable, Sendable {
    /// A human name, e.g. "all-MiniLM-L6-v2". Not used for compatibility.
    public var name: String
    /// Vector length, ≥ 1.
    public var dimensions: Int
    /// How token vectors become one vector: "mean", "cls" or "max". Required for local
    /// models, absent for remote ones.
    public var pooling: String?
    /// Whether vectors are L2-normalized (then the int8 dot product approximates cosine).
    public var normalized: Bool
    /// The longest input the model takes, in tokens (does not affect compatibility).
    public var maxTokens: Int
    /// SHA-256 of the weights file, 64 hex digits (compared case-insensitively). Required for
    /// local models, absent for remote ones.
    public var weightsSHA256: String?
    /// The arithmetic the encoder ran in (format-spec.md §8.3): nil for float32 (the key is
    /// then absent, as in indexes from before precisions existed), "int8" for the int8
    /// encoder. Does not affect compatibility: vectors of either precision are comparable;
    /// a query embeds its question the index's way by default.
    public var precision: String?
    /// The MODEL section's version: nil (absent) for version 1, 2 for version 2.
    public var version: Int?
    /// Version 2: where the vectors came from: "local", "openai" or "ollama".
    public var provider: String?
    /// Version 2, remote: the model name the provider was asked for.
    public var model: String?
    /// Version 2, remote: the base URL the vectors came from (never with credentials).
    public var url: String?
    /// Version 2: the prompt prepended to questions (nil: none).
    public var queryPrompt: String?
    /// Version 2: the prompt prepended to documents (nil: none). Part of compatibility.
    public var documentPrompt: String?

    /// Reads a descriptor and checks it as format-spec.md §8.3 says (§10 check 17): `version`
    /// absent, `null` or 1 → version 1: the six keys `name`, `dimensions`, `pooling`,
    /// `normalized`, `maxTokens`, `weightsSHA256` with their types, `precision` an optional
    /// string, every other key ignored. `version` 2 → the four common keys, a non-empty
    /// `provider`; provider "local": `pooling` and `weightsSHA256`, no `model` or `url`;
    /// any other provider: a non-empty `model` and `url`, no `pooling` or `weightsSHA256`;
    /// `queryPrompt`, `documentPrompt` optional strings (empty = absent). Throws
    /// `ModelDescriptorError.unsupportedVersion` for any other `version` number and
    /// `ModelDescriptorError.invalid` for anything else wrong. O(size of the JSON).
    public init(from decoder: any Decoder) throws {
        let c: KeyedDecodingContainer<CodingKeys>
        do { c = try decoder.container(keyedBy: CodingKeys.self) } catch { throw ModelDescriptorError.invalid("it is not a JSON object") }
        func optional<T: Decodable>(_ key: CodingKeys, _ what: String) throws -> T? {
            do { return try c.decodeIfPresent(T.self, forKey: key) } catch { throw ModelDescriptorError.invalid("\"\(key.stringValue)\" is not \(what)") }
        }
        func required<T: Decodable>(_ key: CodingKeys, _ what: String) throws -> T {
            guard let v: T = try optional(key, what) else { throw ModelDescriptorError.invalid("it has no \"\(key.stringValue)\"") }
            return v
        }
        func absent(_ key: CodingKeys, _ why: String) throws {
            if c.contains(key), (try? c.decodeNil(forKey: key)) != true { throw ModelDescriptorError.invalid("\"\(key.stringValue)\" is not allowed \(why)") }
        }
        let v: Int? = try optional(.version, "an integer")
        guard v == nil || v == 1 || v == 2 else { throw ModelDescriptorError.unsupportedVersion(v!) }
        name = try required(.name, "a string")
        dimensions = try required(.dimensions, "an integer")
        normalized = try required(.normalized, "a boolean")
        maxTokens = try required(.maxTokens, "an integer")
        precision = try optional(.precision, "a string")
        guard v == 2 else {
            pooling = try required(.pooling, "a string") as String
            weightsSHA256 = try required(.weightsSHA256, "a string") as String
            return  // version 1: the keys of version 2 are unknown keys, ignored
        }
        version = 2
        let p: String = try required(.provider, "a string")
        guard !p.isEmpty else { throw ModelDescriptorError.invalid("\"provider\" is empty") }
        provider = p
        if p == "local" {
            pooling = try required(.pooling, "a string") as String
            weightsSHA256 = try required(.weightsSHA256, "a string") as String
            try absent(.model, "for a local model")
            try absent(.url, "for a local model")
        } else {
            let m: String = try required(.model, "a string"), u: String = try required(.url, "a string")
            guard !m.isEmpty else { throw ModelDescriptorError.invalid("\"model\" is empty") }
            guard !u.isEmpty else { throw ModelDescriptorError.invalid("\"url\" is empty") }
            model = m
            url = u
            try absent(.pooling, "for a remote model")
            try absent(.weightsSHA256, "for a remote model")
        }
        queryPrompt = try (optional(.queryPrompt, "a string") as String?).flatMap { $0.isEmpty ? nil : $0 }
        documentPrompt = try (optional(.documentPrompt, "a string") as String?).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A version-1 descriptor (a local model without prompts).
    public init(name: String, dimensions: Int, pooling: String, normalized: Bool, maxTokens: Int, weightsSHA256: String,
                precision: String? = nil) {
        self.precision = precision
        self.name = name
        self.dimensions = dimensions
        self.pooling = pooling
        self.normalized = normalized
        self.maxTokens = maxTokens
        self.weightsSHA256 = weightsSHA256
    }

    /// A local model's descriptor: version 1 when it has no prompts, else version 2 with
    /// `provider` "local". Empty prompts count as none.
    public static func local(name: String, dimensions: Int, pooling: String, normalized: Bool, maxTokens: Int, weightsSHA256: String,
                             precision: String? = nil, queryPrompt: String? = nil, documentPrompt: String? = nil) -> ModelDescriptor {
        var d = ModelDescriptor(name: name, dimensions: dimensions, pooling: pooling, normalized: normalized, maxTokens: maxTokens,
                                weightsSHA256: weightsSHA256, precision: precision)
        let q = queryPrompt.flatMap { $0.isEmpty ? nil : $0 }, p = documentPrompt.flatMap { $0.isEmpty ? nil : $0 }
        if q != nil || p != nil {
            d.version = 2
            d.provider = "local"
            d.queryPrompt = q
            d.documentPrompt = p
        }
        return d
    }

    /// A remote model's descriptor (version 2): `provider` "openai" or "ollama", the base
    /// `url` without credentials, the provider's `model` name.
    public static func remote(provider: String, url: String, model: String, dimensions: Int, normalized: Bool, maxTokens: Int,
                              queryPrompt: String? = nil, documentPrompt: String? = nil) -> ModelDescriptor {
        var d = ModelDescriptor(name: model, dimensions: dimensions, pooling: "", normalized: normalized, maxTokens: maxTokens,
                                weightsSHA256: "")
        d.pooling = nil
        d.weightsSHA256 = nil
        d.version = 2
        d.provider = provider
        d.model = model
        d.url = url
        d.queryPrompt = queryPrompt.flatMap { $0.isEmpty ? nil : $0 }
        d.documentPrompt = documentPrompt.flatMap { $0.isEmpty ? nil : $0 }
        return d
    }

    /// Whether the vectors come from a remote provider (version 2, provider not "local").
    /// A provider this kbindex does not know (a later version's) counts as remote.
    public var isRemote: Bool { version == 2 && provider != nil && provider != "local" }

    /// The providers this kbindex can embed with. A version-2 descriptor may name another
    /// (it is readable, and its vectors searchable with a question vector made elsewhere),
    /// but questions cannot be embedded for it.
    public static let knownProviders: Set<String> = ["local", "openai", "ollama"]

    /// Whether vectors made by `other` (the query model) can be compared with vectors made by
    /// `self` (the index's model) (format-spec.md §8.3.3). nil when compatible:
    /// - two local models (version 1, or version 2 with provider "local"): same dimensions,
    ///   weights (case-insensitively), pooling, normalization and document prompt (version 1
    ///   has none);
    /// - two remote models: same `model`, dimensions, normalization and document prompt (the
    ///   provider and URL may differ: the same model reached another way);
    /// - a local and a remote model: never.
    /// The name, `maxTokens`, `precision` and the query prompt never matter. Otherwise one
    /// line for a human, e.g. "index was built with all-MiniLM-L6-v2 (384 dims), the query
    /// model is bge-small (384 dims, different weights)". O(1).
    public func incompatibility(with other: ModelDescriptor) -> String? {
        if isRemote != other.isRemote {
            func side(_ d: ModelDescriptor) -> String { d.isRemote ? d.summary : "the local model \(d.summary)" }
            return "index was built with \(side(self)), the query model is \(side(other))"
        }
        var why: [String] = []
        if isRemote {
            if model != other.model { why.append("a different model") }
        } else {
            if (weightsSHA256 ?? "").lowercased() != (other.weightsSHA256 ?? "").lowercased() { why.append("different weights") }
            if pooling != other.pooling { why.append("\(other.pooling ?? "no") pooling instead of \(pooling ?? "none")") }
        }
        if normalized != other.normalized { why.append(other.normalized ? "normalized, the index's vectors are not" : "not normalized, the index's vectors are") }
        if documentPrompt != other.documentPrompt {
            func quoted(_ p: String?) -> String { p.map { "the prompt '\($0)'" } ?? "none" }
            why.append("the index's documents were embedded with \(quoted(documentPrompt)), the query model's with \(quoted(other.documentPrompt))")
        }
        if dimensions == other.dimensions && why.isEmpty { return nil }
        let extra = why.isEmpty ? "" : ", " + why.joined(separator: ", ")
        return "index was built with \(summary), the query model is \(other.summaryOpen)\(extra))"
    }

    /// Whether `other` makes the same vectors as `self`: compatible (`incompatibility(with:)`
    /// is nil) and the same `precision`. A build whose model makes the same vectors as the
    /// index's updates the index incrementally; any other model re-embeds every document. O(1).
    public func sameVectors(as other: ModelDescriptor) -> Bool {
        incompatibility(with: other) == nil && precision == other.precision
    }

    /// "all-MiniLM-L6-v2 (384 dims)" for a local model, "openai model text-embedding-3-small
    /// (1536 dims) at https://api.openai.com/v1" for a remote one.
    var summary: String {
        isRemote ? "\(summaryOpen)) at \(url ?? "")" : "\(summaryOpen))"
    }

    /// `summary` before the closing parenthesis of the dimensions, so that reasons can be
    /// added inside it; "local model …" when a local model is compared with a remote one.
    private var summaryOpen: String {
        isRemote ? "\(provider ?? "") model \(model ?? name) (\(dimensions) dims" : "\(name) (\(dimensions) dims"
    }
}

/// Why a MODEL section (or a manifest's or checkpoint's `model`) is not a model descriptor
/// this kbindex reads (format-spec.md §8.3). `description` is one line without the file's
/// name: the reader that met it adds that.
public enum ModelDescriptorError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `version` is a number this kbindex does not know (a later kbindex's descriptor).
    case unsupportedVersion(Int)
    /// A key is missing, has the wrong type or is not allowed for the version and provider.
    case invalid(String)

    public var description: String {
        switch self {
        case .unsupportedVersion(let v): "the model descriptor has version \(v); this kbindex reads versions 1 and 2"
        case .invalid(let why): "the model descriptor is invalid: \(why)"
        }
    }
}

/// One indexed source file.
public struct DocumentRecord: Equatable, Sendable {
    /// Relative to the indexed folder, '/' separators.
    public var path: String
    /// File size in bytes when indexed.
    public var size: UInt64
    /// Modification time, nanoseconds since the Unix epoch.
    public var mtimeNanoseconds: Int64
    /// SHA-256 of the file's content: exactly 32 bytes.
    public var contentSHA256: [UInt8]
    /// The document's title (first heading or file name); may be empty.
    public var title: String

    public init(path: String, size: UInt64, mtimeNanoseconds: Int64, contentSHA256: [UInt8], title: String) {
        self.path = path
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.contentSHA256 = contentSHA256
        self.title = title
    }
}

/// Where one chunk comes from. Its text and vector are stored beside it.
public struct ChunkRecord: Equatable, Sendable {
    /// Index of its document in the segment (the value `SegmentWriter.addDocument` returned).
    public var document: UInt32
    /// Ordinal within its document (0, 1, 2…).
    public var ordinal: UInt32
    /// First and last line in the source file, 1-based, inclusive; pages or paragraphs when
    /// `unit` says so.
    public var lineStart: UInt32
    public var lineEnd: UInt32
    /// Byte range in the source file, end exclusive (in the extracted text when `unit` is not
    /// `.lines`).
    public var byteStart: UInt64
    public var byteEnd: UInt64
    /// The headings above the chunk, outermost first, e.g. ["Guide", "Install", "Linux"].
    public var headingPath: [String]
    /// What `lineStart`/`lineEnd` count.
    public var unit: LocationUnit

    public init(
        document: UInt32, ordinal: UInt32, lineStart: UInt32, lineEnd: UInt32, byteStart: UInt64, byteEnd: UInt64,
        headingPath: [String], unit: LocationUnit = .lines
    ) {
        self.document = document
        self.ordinal = ordinal
        self.lineStart = lineStart
        self.lineEnd = lineEnd
        self.byteStart = byteStart
        self.byteEnd = byteEnd
        self.headingPath = headingPath
        self.unit = unit
    }
}

/// Per-vector symmetric int8 quantization (format-spec.md, "Quantization").
public enum Quantization {
    /// Quantizes `x` into `q`: `q[i] = clamp(round(x[i] / scale), -127, 127)` with
    /// `scale = max|x| / 127` (round half away from zero). An all-zero vector gets scale 0 and
    /// all q = 0. Also returns Σ q[i] (Int32), stored for kernels that need an offset correction
    /// (e.g. when q is shifted to unsigned). Dequantize with `x[i] ≈ scale · q[i]`; the error per
    /// value is at most scale/2.
    ///
    /// Preconditions: `q.count == x.count`, every x[i] finite. O(x.count). Both are programmer
    /// errors, not reachable from a file: vectors come from `Embedder`, which throws
    /// `ModelError.nonFiniteVector` rather than return a NaN or infinity from damaged weights.
    /// (They stay preconditions: quantizing is on the hot path of writing and scanning, and
    /// a NaN here would silently corrupt a segment's scale.)
    public static func quantize(_ x: UnsafeBufferPointer<Float>, into q: UnsafeMutableBufferPointer<Int8>) -> (scale: Float, sum: Int32) {
        precondition(q.count == x.count, "quantize: \(x.count) values into \(q.count) slots")
        var maxAbs: Float = 0
        for v in x {
            precondition(v.isFinite, "quantize: non-finite value \(v)")
            maxAbs = max(maxAbs, abs(v))
        }
        guard maxAbs > 0 else {
            for i in 0..<q.count { q[i] = 0 }
            return (0, 0)
        }
        let scale = maxAbs / 127
        var sum: Int32 = 0
        for i in 0..<x.count {
            let r = (x[i] / scale).rounded(.toNearestOrAwayFromZero)
            let c = Int8(min(127, max(-127, r)))
            q[i] = c
            sum += Int32(c)
        }
        return (scale, sum)
    }
}
