import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBModelStore

/// Loading the embedding model for a command, and describing it for index files.
enum ModelLoading {
    /// The model for `option` (a store name or a folder; nil = the default, or `preferred`
    /// when given, e.g. the model an index was built with), as one-line `CLIError`s.
    static func load(_ option: String?, preferred: String? = nil, threads: Int? = nil) throws -> Embedder {
        do {
            let dir = try ModelStore().resolve(option ?? preferred)
            return try Embedder(modelDirectory: dir, threads: threads)
        } catch {
            throw CLIError(error)
        }
    }

    /// The model to embed questions for an index built with `built`: `option`, else the
    /// index's own model. A model whose vectors are not comparable is a `CLIError` that says
    /// what differs and what to do (`verb`: "query", "evaluate").
    static func load(_ option: String?, forIndexBuiltWith built: ModelDescriptor, verb: String) throws -> Embedder {
        let embedder = try load(option, preferred: built.name)
        if let reason = built.incompatibility(with: try descriptor(of: embedder)) {
            throw CLIError("\(reason): \(verb) with the model the index was built with (--model), or rebuild the index with 'kbindex build'")
        }
        return embedder
    }

    /// What an index records about the model that made its vectors. The weights' SHA-256
    /// is cached beside them (`model.safetensors.sha256`, keyed by size and mtime), so only
    /// the first use hashes the 90 MB file.
    static func descriptor(of embedder: Embedder) throws -> ModelDescriptor {
        let c = embedder.config
        return ModelDescriptor(name: c.name, dimensions: c.dimensions, pooling: c.pooling.rawValue,
                               normalized: c.normalize, maxTokens: c.maxSequenceLength,
                               weightsSHA256: try weightsSHA256(embedder.directory))
    }

    static func weightsSHA256(_ dir: URL) throws -> String {
        let weights = dir.appendingPathComponent("model.safetensors").path
        let cache = weights + ".sha256"
        let attrs = try FileManager.default.attributesOfItem(atPath: weights)
        let size = (attrs[.size] as? Int) ?? -1
        let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = "\(size) \(Int64(mtime * 1e6))"
        if let line = try? String(contentsOfFile: cache, encoding: .utf8) {
            let parts = line.split(separator: " ")
            if parts.count == 3, "\(parts[0]) \(parts[1])" == key, parts[2].count == 64 { return String(parts[2]) }
        }
        let sha = try Hashing.sha256Hex(ofFile: weights)
        try? AtomicFile.write(Data("\(key) \(sha)".utf8), to: cache)  // a read-only model folder just means hashing again
        return sha
    }
}
