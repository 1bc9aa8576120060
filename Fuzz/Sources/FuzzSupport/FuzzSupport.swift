// Shared by the fuzz targets: per-process scratch files under /dev/shm (RAM, so a run does not
// wear the disk), and the seed corpora, written by the fuzz binaries themselves when
// KBINDEX_FUZZ_SEEDS is set (see scripts/fuzz.sh), so no second, unsanitized build is needed.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import KBCore
import KBFormat

public enum FuzzFiles {
    /// A per-process path under /dev/shm (falls back to /tmp where there is no /dev/shm).
    public static func scratch(_ name: String) -> String {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        return "\(base)/kbindex-fuzz-\(getpid())-\(name)"
    }

    /// Writes `size` bytes at `data` to `path` (created or truncated). Traps on I/O failure:
    /// that is the harness failing, not the code under test.
    public static func write(_ data: UnsafeRawPointer?, _ size: Int, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("fuzz harness: cannot create \(path): errno \(errno)") }
        var done = 0
        while done < size {
            let n = Glibc.write(fd, data! + done, size - done)
            guard n > 0 else { fatalError("fuzz harness: cannot write \(path): errno \(errno)") }
            done += n
        }
        close(fd)
    }

    public static func write(_ bytes: [UInt8], to path: String) {
        bytes.withUnsafeBytes { write($0.baseAddress, $0.count, to: path) }
    }
}

/// Deterministic pseudo-random numbers for the seeds (SplitMix64).
struct SeedRNG: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

public enum Seeds {
    static func model(dims: Int, name: String = "all-MiniLM-L6-v2") -> ModelDescriptor {
        ModelDescriptor(name: name, dimensions: dims, pooling: "mean", normalized: true, maxTokens: 256,
                        weightsSHA256: String(repeating: "ab", count: 32))
    }

    static let words = ["alpha", "beta", "é", "中文", "🙂", "\n", " ", "# Heading\n", "x", "\u{0301}", "\0", "/"]

    /// One valid segment: `docs` documents, `chunks` chunks, vectors of `dims`, text packed in
    /// blocks of `block` bytes, texts of up to `maxWords` words (some empty).
    static func segment(seed: UInt64, dims: Int, docs: Int, chunks: Int, block: Int, maxWords: Int) -> [UInt8] {
        var rng = SeedRNG(state: seed)
        let w = SegmentWriter(model: model(dims: dims), textBlockSize: block)
        for i in 0..<docs {
            w.addDocument(DocumentRecord(
                path: "docs/\(i)/" + words[Int.random(in: 0..<words.count, using: &rng)] + ".md",
                size: UInt64.random(in: 0...100_000, using: &rng), mtimeNanoseconds: Int64.random(in: -1_000_000...1_700_000_000_000_000_000, using: &rng),
                contentSHA256: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) },
                title: i % 3 == 0 ? "" : "Title \(i)"))
        }
        let headings = ["Guide", "Install", "Linux", "中文"]
        for i in 0..<chunks {
            let n = i % 5 == 4 ? 0 : Int.random(in: 1...maxWords, using: &rng)
            let text = (0..<n).map { _ in words[Int.random(in: 0..<words.count, using: &rng)] }.joined()
            let zero = i % 7 == 6
            let vector = (0..<dims).map { _ in zero ? Float(0) : Float.random(in: -1...1, using: &rng) }
            w.addChunk(ChunkRecord(
                document: UInt32(i % docs), ordinal: UInt32(i / docs), lineStart: UInt32(i + 1), lineEnd: UInt32(i + 3),
                byteStart: UInt64(i * 10), byteEnd: UInt64(i * 10 + 10),
                headingPath: Array(headings.prefix(i % (headings.count + 1)))), text: text, vector: vector)
        }
        return w.encoded()
    }

    /// Valid segments of several shapes: 0 chunks, 1 chunk, several blocks, empty texts,
    /// dimensions 1, 3, 64, 65, 384.
    public static func segments() -> [(String, [UInt8])] {
        [
            ("empty-d3", segment(seed: 1, dims: 3, docs: 1, chunks: 0, block: 32768, maxWords: 4)),
            ("one-chunk-d1", segment(seed: 2, dims: 1, docs: 1, chunks: 1, block: 32768, maxWords: 6)),
            ("spec-like-d3", segment(seed: 3, dims: 3, docs: 1, chunks: 2, block: 32768, maxWords: 8)),
            ("small-d64", segment(seed: 4, dims: 64, docs: 2, chunks: 5, block: 32768, maxWords: 10)),
            ("multiblock-d65", segment(seed: 5, dims: 65, docs: 3, chunks: 12, block: 40, maxWords: 12)),
            ("multiblock-d3", segment(seed: 6, dims: 3, docs: 4, chunks: 30, block: 64, maxWords: 20)),
            ("tinyblocks-d1", segment(seed: 7, dims: 1, docs: 2, chunks: 9, block: 1, maxWords: 3)),
            ("d384", segment(seed: 8, dims: 384, docs: 2, chunks: 3, block: 32768, maxWords: 30)),
            ("longtext-d8", segment(seed: 9, dims: 8, docs: 1, chunks: 4, block: 200, maxWords: 120)),
        ]
    }

    static func manifest(segments: Int, version: Int = 1, dims: Int = 384, name: String = "all-MiniLM-L6-v2") -> [UInt8] {
        let m = Manifest(
            formatVersion: version, model: model(dims: dims, name: name),
            segments: (0..<segments).map { Manifest.Segment(file: "seg-\(String(format: "%06d", $0 + 1)).kbseg", chunks: $0 * 7, documents: $0 + 1, bytes: 1232 + $0 * 64) },
            createdAt: "2025-01-31T12:00:00Z")
        return Array(try! m.encoded())
    }

    /// Valid manifests (0, 1 and 3 segments, other dimensions and names, version 2), each also
    /// without its `"sha256": …}` tail: fuzz-manifest re-seals every input with the right hash
    /// on a second pass, so the tail-less ones reach the JSON decoding.
    public static func manifests() -> [(String, [UInt8])] {
        let full: [(String, [UInt8])] = [
            ("zero", manifest(segments: 0)),
            ("one", manifest(segments: 1, dims: 3)),
            ("three", manifest(segments: 3, name: "bge-small/é 中文")),
            ("v2", manifest(segments: 1, version: 2)),
        ]
        let marker = Array("\"sha256\"".utf8)
        var out = full
        for (name, b) in full {
            var m = b.count - marker.count
            while m >= 0 && !b[m..<m + marker.count].elementsEqual(marker) { m -= 1 }
            if m > 0 { out.append((name + "-body", Array(b[0..<m]))) }
        }
        return out
    }

    /// Writes `seeds` into `dir` (created if needed) as NAME files; then the caller exits.
    public static func write(_ seeds: [(String, [UInt8])], into dir: String) {
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, bytes) in seeds { FuzzFiles.write(bytes, to: dir + "/seed-" + name) }
        print("wrote \(seeds.count) seeds to \(dir)")
    }
}

/// What the readers may throw on bad input: `SegmentError` / `ManifestError` naming the file
/// or folder, or `FileError`. Anything else breaks the readers' contract: trap, so libFuzzer
/// saves the input.
public func checkContract(_ error: Error, names path: String) {
    switch error {
    case let e as SegmentError:
        if !e.description.contains(path) { fatalError("SegmentError does not name the file: \(e)") }
    case let e as ManifestError:
        if !e.description.contains(path) { fatalError("ManifestError does not name the folder: \(e)") }
    case is FileError:
        break
    default:
        fatalError("unexpected error type \(type(of: error)): \(error)")
    }
}

/// Called from each target's LLVMFuzzerInitialize: with KBINDEX_FUZZ_SEEDS=DIR, writes the seeds
/// into DIR and exits instead of fuzzing.
public func writeSeedsIfAsked(_ seeds: () -> [(String, [UInt8])]) {
    guard let dir = ProcessInfo.processInfo.environment["KBINDEX_FUZZ_SEEDS"], !dir.isEmpty else { return }
    Seeds.write(seeds(), into: dir)
    exit(0)
}

/// libFuzzer's entry point for programs that have their own `main`
/// (https://llvm.org/docs/LibFuzzer.html#using-libfuzzer-as-a-library).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// Runs libFuzzer with `callback` (the target's LLVMFuzzerTestOneInput). SwiftPM links every
/// executable target with `main` renamed to `<target>_main` (so tests can link it), which
/// leaves libFuzzer's own `main` unused: each target defines that symbol and calls this.
public func runLibFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt {
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
