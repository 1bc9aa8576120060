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
    public var isRemote: Bool { version == 2 && provider != nil && provider != "local" }

    /// Whether vectors made by `other` (the query model) can be compared with vectors made by
    /// `self` (the index's model). nil when compatible: same dimensions, weights, pooling and
    /// normalization (the name and `maxTokens` may differ). Otherwise one line for a human, e.g.
    /// "index was built with all-MiniLM-L6-v2 (384 dims), the query model is bge-small (384 dims,
    /// different weights)". O(1).
    public func incompatibility(with other: ModelDescriptor) -> String? {
        var why: [String] = []
        if (weightsSHA256 ?? "").lowercased() != (other.weightsSHA256 ?? "").lowercased() { why.append("different weights") }
        if pooling != other.pooling { why.append("\(other.pooling ?? "no") pooling instead of \(pooling ?? "none")") }
        if normalized != other.normalized { why.append(other.normalized ? "normalized, the index's vectors are not" : "not normalized, the index's vectors are") }
        if dimensions == other.dimensions && why.isEmpty { return nil }
        let extra = why.isEmpty ? "" : ", " + why.joined(separator: ", ")
        return "index was built with \(name) (\(dimensions) dims), the query model is \(other.name) (\(other.dimensions) dims\(extra))"
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
