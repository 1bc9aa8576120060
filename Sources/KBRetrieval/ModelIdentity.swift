import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBModelStore

/// The model that embeds questions: loading it and describing it as index files do.
public enum ModelIdentity {
    /// What an index records about the model that made its vectors. The weights' SHA-256
    /// is cached in the model folder (`FileCheckCache`, keyed by size and mtime), so only
    /// the first use hashes the 90 MB file. Throws `FileError` when the weights cannot be read.
    public static func descriptor(of embedder: Embedder) throws -> ModelDescriptor {
        let c = embedder.config
        let weights = embedder.directory.appendingPathComponent("model.safetensors").path
        let sha = try FileCheckCache(folder: embedder.directory).sha256(ofFile: weights)
        return ModelDescriptor(name: c.name, dimensions: c.dimensions, pooling: c.pooling.rawValue,
                               normalized: c.normalize, maxTokens: c.maxSequenceLength, weightsSHA256: sha,
                               precision: embedder.precision.recorded)
    }

    /// The model `option` names (a store name or a folder; nil: `preferred`, else the default),
    /// checked (`ModelStore.check`) and loaded to run in `precision`. Throws
    /// `RetrievalError.model`, with `isDamage` when its files are damaged (the caller says how
    /// to replace them).
    public static func load(_ option: String?, preferred: String? = nil, threads: Int? = nil,
                            precision: Precision = .default) throws -> Embedder {
        let store = ModelStore()
        let dir: URL
        do { dir = try store.resolve(option ?? preferred) } catch { throw RetrievalError.model("\(error)", folder: nil, isDamage: false) }
        do {
            try store.check(folder: dir)
            return try Embedder(modelDirectory: dir, threads: threads, precision: precision)
        } catch {
            throw RetrievalError.model("\(error)", folder: dir, isDamage: isDamage(error))
        }
    }

    /// Whether `error` says a model's files are damaged (and replacing them would help).
    public static func isDamage(_ error: Error) -> Bool {
        switch error {
        case let e as ModelError: return e.isDamage
        case let e as ModelStoreError: if case .damaged = e { return true } else { return false }
        case let e as RetrievalError: if case .model(_, _, let d) = e { return d } else { return false }
        default: return false
        }
    }
}
