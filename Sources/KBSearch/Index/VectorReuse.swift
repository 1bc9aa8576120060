import Foundation
import KBCore

/// Identical texts embedded once per build (boilerplate repeated across pages, copied files).
///
/// Texts are compared by the SHA-256 of their UTF-8 bytes (byte-identical, not Unicode
/// equivalent). Within one call, each distinct text is embedded once; across calls, the
/// vectors of earlier texts are remembered up to `maxBytes` of vectors (64 MiB by default:
/// about 43,000 vectors of 384 dimensions). Once full, no further text is remembered (the
/// ones remembered are still reused, and repeats within one call are still embedded once):
/// memory stays bounded whatever the corpus. A reused vector is the one the model gave for
/// the same text, so the index holds exactly what embedding every chunk would give, as long
/// as the model embeds a text the same way whatever else is in its batch (kbindex's
/// encoder does: each sequence is computed on its own rows).
public struct VectorReuse {
    public let maxBytes: Int
    /// Texts that got an earlier vector instead of being embedded (within calls and across).
    public private(set) var reused = 0
    private var cache: [[UInt8]: [Float]] = [:]
    private var bytes = 0

    public init(maxBytes: Int = 64 << 20) { self.maxBytes = maxBytes }

    /// The vectors of `texts`, in order: `embed` is called once, with the distinct texts
    /// not remembered (in first-occurrence order; not called when there are none), and must
    /// return one vector per text. Rethrows `embed`'s error (nothing is remembered then).
    /// Cost: O(total text bytes) for the hashes, plus `embed`.
    public mutating func vectors(for texts: [String], embed: ([String]) throws -> [[Float]]) rethrows -> [[Float]] {
        let keys = texts.map { Hashing.sha256Bytes(Data($0.utf8)) }
        var slot: [[UInt8]: Int] = [:]  // key → index into `fresh`
        var fresh: [String] = [], freshKeys: [[UInt8]] = []
        for (t, k) in zip(texts, keys) where cache[k] == nil && slot[k] == nil {
            slot[k] = fresh.count
            fresh.append(t)
            freshKeys.append(k)
        }
        let vectors = fresh.isEmpty ? [] : try embed(fresh)
        precondition(vectors.count == fresh.count, "embed returned \(vectors.count) vectors for \(fresh.count) texts")
        var out: [[Float]] = []
        out.reserveCapacity(texts.count)
        var firstUse = Set<Int>()
        for k in keys {
            if let i = slot[k] {
                if !firstUse.insert(i).inserted { reused += 1 }
                out.append(vectors[i])
            } else {
                reused += 1
                out.append(cache[k]!)
            }
        }
        for (i, k) in freshKeys.enumerated() {
            let cost = vectors[i].count * MemoryLayout<Float>.size + 96  // vector + key and entry
            guard bytes + cost <= maxBytes else { continue }
            cache[k] = vectors[i]
            bytes += cost
        }
        return out
    }
}
