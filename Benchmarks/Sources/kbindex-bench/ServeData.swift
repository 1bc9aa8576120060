import Dispatch
import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBSearch

/// The synthetic index `kbindex-bench serve` loads: `chunks` chunks of seeded random unit
/// vectors and short texts of real words (so BM25 has postings to walk and hybrid search
/// does both halves of its work), 8 chunks per document, in segments of at most 200,000
/// chunks (as `kbindex build` rolls them; at least 4 segments so the per-segment paths run).
/// Its manifest names the served model (`model`), so `kbindex serve` and `kbindex query`
/// open it as they open a built index.
enum SyntheticServeIndex {
    static let formatTag = "v2"  // bump when the generator changes: the cache key
    static let chunksPerDocument = 8

    /// The index folder for `chunks` under `cache`, written the first time (minutes for 1M
    /// chunks) and reused afterwards. The folder is written under a temporary name and
    /// renamed, so an interrupted run never leaves a half-written index in the cache.
    static func prepare(chunks: Int, model: ModelDescriptor, words: [String], cache: URL, log: @escaping @Sendable (String) -> Void) throws -> URL {
        let key = "serve-synthetic-\(chunks)-\(model.dimensions)d-\((model.weightsSHA256 ?? model.name).prefix(12))-\(formatTag)"
        let dir = cache.appendingPathComponent(key + ".kbindex")
        if let m = try? Manifest.read(from: dir.path), m.segments.reduce(0, { $0 + $1.chunks }) == chunks, m.model == model {
            log("synthetic index: \(chunks) chunks from cache \(dir.path)")
            return dir
        }
        let fm = FileManager.default
        try fm.createDirectory(at: cache, withIntermediateDirectories: true)
        let tmp = cache.appendingPathComponent(key + ".tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: tmp) }

        let segmentRows = min(200_000, max(chunksPerDocument, (chunks + 3) / 4 / chunksPerDocument * chunksPerDocument))
        let starts = Array(stride(from: 0, to: chunks, by: segmentRows))
        log("synthetic index: writing \(chunks) chunks in \(starts.count) segments to \(dir.path) (once; cached)")
        let vocabulary = Vocabulary(words)
        let t0 = now()
        let results = Locked([Int: Result<Manifest.Segment, Error>]())
        let done = Locked(0)
        DispatchQueue.concurrentPerform(iterations: starts.count) { s in
            let start = starts[s], end = min(start + segmentRows, chunks)
            let r = Result {
                let bytes = try writeSegment(rows: start..<end, model: model, vocabulary: vocabulary,
                                             to: tmp.appendingPathComponent("seg-synthetic-\(s).kbseg"))
                return Manifest.Segment(file: "seg-synthetic-\(s).kbseg", chunks: end - start,
                                        documents: (end - start + chunksPerDocument - 1) / chunksPerDocument, bytes: bytes)
            }
            results.withLock { $0[s] = r }
            let n = done.withLock { $0 += end - start; return $0 }
            log("  \(n)/\(chunks) chunks, \(fmt(now() - t0, 0)) s")
        }
        let all = results.withLock { $0 }
        let segments = try (0..<starts.count).map { try all[$0]!.get() }
        try Manifest(model: model, segments: segments).write(to: tmp.path)
        try? fm.removeItem(at: dir)
        try fm.moveItem(at: tmp, to: dir)
        return dir
    }

    /// One segment holding rows `rows` (global chunk numbers; documents never straddle
    /// segments because segment sizes are multiples of 8). Returns its size in bytes.
    static func writeSegment(rows: Range<Int>, model: ModelDescriptor, vocabulary: Vocabulary, to url: URL) throws -> Int {
        var rng = SplitMix(seed: 0x5e7e_0000 &+ UInt64(rows.lowerBound))
        let d = model.dimensions
        let w = SegmentWriter(model: model)
        var vector = [Float](repeating: 0, count: d)
        var doc: UInt32 = 0
        for r in rows {
            let ordinal = r % chunksPerDocument
            let docNumber = r / chunksPerDocument
            if ordinal == 0 {
                var sha = [UInt8](repeating: 0, count: 32)
                for i in 0..<4 { withUnsafeBytes(of: rng.next()) { sha.replaceSubrange(i * 8..<(i + 1) * 8, with: $0) } }
                let topic = vocabulary.words[docNumber % min(500, vocabulary.words.count)]
                doc = w.addDocument(DocumentRecord(path: String(format: "synthetic/%03d/doc-%07d.md", docNumber % 1000, docNumber),
                                                   size: 2048, mtimeNanoseconds: 1_700_000_000_000_000_000, contentSHA256: sha,
                                                   title: "Synthetic document \(docNumber) about \(topic)"))
            }
            // Seeded random unit vector (sum of 4 uniforms per component, as VectorSet.synthetic).
            var norm: Float = 0
            for i in 0..<d {
                var g: Float = -2
                for _ in 0..<4 { g += Float(rng.next() >> 40) / Float(1 << 24) }
                vector[i] = g
                norm += g * g
            }
            let inv = 1 / max(norm.squareRoot(), 1e-12)
            for i in 0..<d { vector[i] *= inv }
            // 20-60 words, Zipf-distributed over the vocabulary.
            let count = 20 + Int(rng.next() % 41)
            var text = ""
            text.reserveCapacity(count * 8)
            for i in 0..<count {
                if i > 0 { text += i % 12 == 0 ? ". " : " " }
                text += vocabulary.sample(&rng)
            }
            text += "."
            let line = UInt32(1 + ordinal * 10)
            w.addChunk(ChunkRecord(document: doc, ordinal: UInt32(ordinal), lineStart: line, lineEnd: line + 9,
                                   byteStart: UInt64(ordinal * 256), byteEnd: UInt64(ordinal * 256 + 256),
                                   headingPath: ["Synthetic document \(docNumber)", "Part \(ordinal + 1)"]),
                       text: text, vector: vector)
        }
        return try w.write(to: url.path)
    }

    /// The words texts are made of: those of the benchmark's questions (so lexical search
    /// finds matches) and made-up words, 20,000 in all; sampled with Zipf weights (1/rank).
    struct Vocabulary: Sendable {
        let words: [String]
        let cumulative: [Double]

        init(_ seed: [String]) {
            var seen = Set<String>(), real: [String] = [], made: [String] = []
            for w in seed where w.count >= 2 && seen.insert(w).inserted { real.append(w) }
            let syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zen", "par", "dex", "qui", "bor", "fel", "gan", "hop"]
            var rng = SplitMix(seed: 42)
            while real.count + made.count < 20_000 {
                let n = 2 + Int(rng.next() % 3)
                let w = (0..<n).map { _ in syllables[Int(rng.next() % UInt64(syllables.count))] }.joined()
                if seen.insert(w).inserted { made.append(w) }
            }
            // The questions' words take every other rank at the top (shuffled), so they are
            // frequent as real words are: a question's terms have long posting lists to walk.
            for i in stride(from: real.count - 1, to: 0, by: -1) { real.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            var list: [String] = []
            var m = made.makeIterator()
            for w in real {
                list.append(w)
                if let x = m.next() { list.append(x) }
            }
            while let x = m.next() { list.append(x) }
            words = list
            var c: [Double] = [], total = 0.0
            for r in 0..<list.count { total += 1 / Double(r + 1); c.append(total) }
            cumulative = c.map { $0 / total }
        }

        func sample(_ rng: inout SplitMix) -> String {
            let u = Double(rng.next() >> 11) / Double(1 << 53)
            var lo = 0, hi = cumulative.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
            }
            return words[lo]
        }
    }

    /// Lower-cased words of `texts` (letters and digits), in first-seen order.
    static func words(of texts: [String]) -> [String] {
        var out: [String] = []
        for t in texts {
            out += t.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
        }
        return out
    }
}

/// A value behind a lock, for results gathered from concurrent workers.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// The model descriptor `kbindex build` would record for the default model of the store
/// (ModelLoading.descriptor in the CLI): name, dimensions, pooling and the weights' SHA-256.
func defaultModelDescriptor() throws -> ModelDescriptor {
    let dir = try resolveModel(nil)
    let c = try ModelConfig.load(directory: dir)
    let sha = try FileCheckCache(folder: dir).sha256(ofFile: dir.appendingPathComponent("model.safetensors").path)
    return ModelDescriptor(name: c.name, dimensions: c.dimensions, pooling: c.pooling.rawValue,
                           normalized: c.normalize, maxTokens: c.maxSequenceLength, weightsSHA256: sha)
}
