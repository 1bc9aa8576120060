import Foundation
import KBCore
import KBFormat
import KBObjectStore
import KBSearch

/// One committed generation of a remote index: its manifest, the manifest's exact bytes and
/// the ETag the store gave them (what a conditional write or read takes).
public struct RemoteGeneration: Sendable, Equatable {
    public var manifest: Manifest
    public var data: Data
    public var etag: String
}

/// Progress of a pull's downloads or a push's uploads, over all the files it transfers.
public struct TransferProgress: Sendable, Equatable {
    public var filesDone: Int
    public var files: Int
    public var bytesDone: Int64
    public var bytes: Int64
}

/// What `pull` did.
public struct PullResult: Sendable, Equatable {
    /// The generation the folder now mirrors; nil when there is no index at the location
    /// (the folder is then left as it was).
    public var generation: RemoteGeneration?
    /// Whether `manifest.json` in the folder was replaced (false: it already mirrored the
    /// current generation, or there is none).
    public var changed: Bool
    public var downloadedFiles = 0
    public var downloadedBytes: Int64 = 0
    /// Files the manifest names that were already in the folder.
    public var reusedFiles = 0
    /// Files of older generations removed to keep the folder within its size bound.
    public var evictedFiles = 0
    /// Whether the current generation alone is larger than the size bound (it is kept whole).
    public var overSizeBound = false
    /// Bytes of the files the current generation names.
    public var generationBytes: Int64 = 0

    public var etag: String? { generation?.etag }
}

/// What `push` did.
public struct PushResult: Sendable, Equatable {
    /// Whether a new manifest was committed (false: the local manifest was the base's).
    public var committed: Bool
    /// The ETag of the generation now current (the new one, or the base when nothing changed).
    public var etag: String
    public var uploadedFiles = 0
    public var uploadedBytes: Int64 = 0
    /// Files the base did not name that were already in the store with the same SHA-256 (a
    /// retried push).
    public var alreadyStoredFiles = 0
    /// Unreferenced objects of older generations removed after the commit.
    public var deletedObjects = 0
}

/// An index stored under a prefix of an object store: exactly a local index folder's files as
/// objects `<file name>` (relative to the store's prefix). `manifest.json` is byte-identical to
/// a local one and is the only object ever replaced: it is written last and conditionally
/// (If-Match on the ETag of the generation a writer started from; If-None-Match: * for the
/// first), so of two writers from one generation exactly one commits, and a reader sees one
/// complete generation or the next. Segment (`.kbseg`) and deletion (`.kbdel`) objects are
/// immutable: uploaded only if absent, with user metadata `sha256` (hex SHA-256 of the file),
/// which readers check.
///
/// Readers `pull` a generation into a local mirror folder (verified, then the manifest
/// renamed into place last) and open that folder like any local index; a writer pulls into
/// its staging folder, builds there as locally, and `push`es with the pulled ETag as base.
public struct RemoteIndex: Sendable {
    public let store: any ObjectStore
    /// Downloads or uploads run at once.
    public var parallelism: Int
    /// Unreferenced objects younger than this are left by a push's cleanup (another writer
    /// may be uploading them; readers of the previous generation keep one generation more).
    public var garbageGrace: TimeInterval = 3600

    /// The manifest's key.
    public static let manifestKey = Manifest.fileName
    /// The user metadata key holding an object's hex SHA-256.
    public static let sha256Metadata = "sha256"
    /// A manifest larger than this is refused (a real one is kilobytes).
    static let manifestLimit = 64 << 20
    /// How many times a pull starts over when the manifest is replaced while it downloads.
    static let pullAttempts = 5

    public init(store: any ObjectStore, parallelism: Int = 4) {
        self.store = store
        self.parallelism = max(1, parallelism)
    }

    /// "s3://bucket/prefix".
    public var location: String { store.location }

    // MARK: - Reading the current generation

    /// The current generation, or nil when there is no index yet (no manifest object).
    /// The manifest gets every check `Manifest.read` makes; a damaged one throws
    /// `.manifest(.damaged)`. One GET.
    public func current() throws -> RemoteGeneration? {
        try fetchManifest(ifNoneMatch: nil).generation
    }

    /// GETs the manifest: `.unchanged` when it still has the ETag `ifNoneMatch`.
    private func fetchManifest(ifNoneMatch: String?) throws -> (generation: RemoteGeneration?, unchanged: Bool) {
        let got: (info: ObjectInfo, data: Data)?
        do {
            got = try store.get(Self.manifestKey, limit: Self.manifestLimit, ifNoneMatch: ifNoneMatch)
        } catch ObjectStoreError.notFound {
            return (nil, false)
        } catch let e as ObjectStoreError { throw RemoteIndexError.store(e) }
        guard let got else { return (nil, true) }
        let manifest: Manifest
        do { manifest = try Manifest.decode(Array(got.data), dir: location) } catch let e as ManifestError {
            throw RemoteIndexError.manifest(e)
        }
        // Names a reader will create in its cache folder: only kbindex's own segment and
        // deletion names, each once (a hostile manifest must not place a checkpoint.json or a
        // notes.txt there, nor download one name twice at once).
        var seen: Set<String> = []
        for name in manifest.segments.flatMap({ [$0.file] + ($0.deletions.map { [$0] } ?? []) }) {
            guard IndexFiles.isSegmentOrDeletionName(name) else {
                throw RemoteIndexError.manifest(.damaged(dir: location, reason: "\"\(name)\" is not a segment or deletion file name kbindex writes"))
            }
            guard seen.insert(name).inserted else {
                throw RemoteIndexError.manifest(.damaged(dir: location, reason: "it names \"\(name)\" twice"))
            }
        }
        return (RemoteGeneration(manifest: manifest, data: got.data, etag: got.info.etag), false)
    }

    /// The bytes of a generation's segments as the manifest states them, saturating (a
    /// hostile manifest's huge counts must not overflow). O(segments).
    static func statedBytes(_ m: Manifest) -> Int64 {
        m.segments.reduce(Int64(0)) { sum, s in
            let (v, o) = sum.addingReportingOverflow(Int64(s.bytes))
            return o ? Int64.max : v
        }
    }

    // MARK: - Pull

    /// Makes the local folder `dir` (created if missing) a mirror of the current generation.
    ///
    /// Under the folder's lock (`MirrorLock`; pass `holding` when the caller holds it
    /// already), GETs the manifest with If-None-Match on the ETag recorded by the last pull
    /// (unchanged: one request, nothing else). Otherwise downloads every file the manifest
    /// names that the folder lacks to a temporary name, verifies it (a segment's size is the
    /// manifest's `bytes`; the SHA-256 is the object's `sha256` metadata; a segment opens and
    /// every section matches its checksum; a deletion file decodes), renames it into place,
    /// then writes `manifest.json` atomically last, so a local reader sees the old generation
    /// or the new one. Files already in the folder are reused (hashed once, then remembered
    /// while unchanged). When the manifest is replaced during the pull (a file it names is
    /// gone), the pull starts over with the new one (at most 5 times).
    ///
    /// Afterwards, while the folder is larger than `sizeBound`, removes segment and deletion
    /// files that the current manifest does not name (nor a build checkpoint in the folder),
    /// least recently used first; the current generation is kept whole even when larger.
    ///
    /// With `keepOlderGenerations` false (a writer's staging folder, where files of other
    /// generations are a build's strays), every segment and deletion file the current
    /// manifest does not name is removed, but for a build checkpoint's.
    ///
    /// With no index at the location, returns `generation` nil and leaves the folder as it
    /// is. Throws `RemoteIndexError`; a file that fails verification is removed, and the
    /// folder still mirrors its previous generation.
    public func pull(into dir: URL, sizeBound: Int64 = RemoteIndexCache.defaultSizeBound, keepOlderGenerations: Bool = true,
                     holding: MirrorLock? = nil, progress: (@Sendable (TransferProgress) -> Void)? = nil) throws -> PullResult {
        let lock = try holding ?? MirrorLock.acquire(dir)
        defer { if holding == nil { lock.unlock() } }
        var state = MirrorState.read(in: dir)
        if state.location != location { state = MirrorState(location: location) }
        let manifestPath = dir.appendingPathComponent(Manifest.fileName).path
        let haveManifest = FileManager.default.fileExists(atPath: manifestPath)

        var ifNoneMatch = haveManifest ? state.etag : nil
        var attempt = 0
        while true {
            attempt += 1
            let fetched = try fetchManifest(ifNoneMatch: ifNoneMatch)
            if fetched.unchanged, let etag = state.etag {
                // The folder already mirrors this generation: nothing to download. (Its
                // manifest is read for the result and the size bound, and its files are
                // stat'ed: no request.) A folder that lost its copy (a damaged manifest, a
                // file removed by hand) fetches the generation again.
                guard let m = try? Manifest.read(from: dir.path),
                      IndexFiles.referenced(by: m).allSatisfy({ FileManager.default.fileExists(atPath: dir.appendingPathComponent($0).path) })
                else {
                    ifNoneMatch = nil
                    continue
                }
                let data = (try? FileReader.read(manifestPath, limit: Self.manifestLimit)) ?? Data()
                var result = PullResult(generation: RemoteGeneration(manifest: m, data: data, etag: etag), changed: false)
                result.generationBytes = Self.statedBytes(m)
                let before = state
                evict(in: dir, keeping: IndexFiles.referenced(by: m), sizeBound: sizeBound, keepOlder: keepOlderGenerations, state: &state, result: &result)
                if state != before { try? state.write(in: dir) }
                return result
            }
            guard let gen = fetched.generation else { return PullResult(generation: nil, changed: false) }
            do {
                var result = try mirror(gen, into: dir, state: &state, progress: progress)
                // The manifest last: the commit point of the local mirror.
                let local = try? FileReader.read(manifestPath, limit: Self.manifestLimit)
                if local != gen.data {
                    do { try AtomicFile.write(gen.data, to: manifestPath) } catch { throw RemoteIndexError.file("\(error)") }
                    result.changed = true
                }
                state.etag = gen.etag
                try state.write(in: dir)
                evict(in: dir, keeping: IndexFiles.referenced(by: gen.manifest), sizeBound: sizeBound, keepOlder: keepOlderGenerations, state: &state, result: &result)
                try? state.write(in: dir)
                return result
            } catch let missing as MissingObject {
                // Replaced while we read it? Then start over with the new manifest.
                if attempt >= Self.pullAttempts { throw RemoteIndexError.unstable(location: location, attempts: attempt) }
                let again = try fetchManifest(ifNoneMatch: gen.etag)
                if again.unchanged { throw RemoteIndexError.missingObject(location: location, key: missing.key) }
                ifNoneMatch = nil
                try? state.write(in: dir)  // keep what was verified so far
            }
        }
    }

    private struct MissingObject: Error { let key: String }
    private enum Outcome: Sendable { case uploaded, alreadyThere }

    /// Downloads and verifies the files of `gen` that `dir` lacks. Throws `MissingObject`
    /// when one is not in the store.
    private func mirror(_ gen: RemoteGeneration, into dir: URL, state: inout MirrorState,
                        progress: (@Sendable (TransferProgress) -> Void)?) throws -> PullResult {
        var result = PullResult(generation: gen, changed: false)
        let now = Date()
        var needed: [(name: String, bytes: Int?)] = []
        for s in gen.manifest.segments {
            needed.append((s.file, s.bytes))
            if let d = s.deletions { needed.append((d, nil)) }
        }
        result.generationBytes = Self.statedBytes(gen.manifest)
        var toFetch: [(name: String, bytes: Int?)] = []
        for f in needed {
            let path = dir.appendingPathComponent(f.name).path
            if let sha = state.verifiedSHA256(f.name, in: dir) {
                state.recordVerified(f.name, sha256: sha, in: dir, used: now)
                result.reusedFiles += 1
            } else if FileManager.default.fileExists(atPath: path), let sha = try? verifyExisting(f.name, expectedBytes: f.bytes, in: dir) {
                state.recordVerified(f.name, sha256: sha, in: dir, used: now)
                result.reusedFiles += 1
            } else {
                toFetch.append(f)
            }
        }
        for f in needed where f.bytes == nil {
            result.generationBytes += Int64((try? FileStatus.of(dir.appendingPathComponent(f.name).path).size) ?? 0)
        }
        guard !toFetch.isEmpty else { return result }

        let totalBytes = toFetch.reduce(Int64(0)) { sum, f in let (v, o) = sum.addingReportingOverflow(Int64(f.bytes ?? 0)); return o ? Int64.max : v }
        let tracker = Tracker(files: toFetch.count, bytes: totalBytes, progress: progress)
        let fetchList = toFetch
        let outcomes = parallel(toFetch.count) { i -> Result<(String, Int64), Error> in
            let f = fetchList[i]
            do {
                let (sha, size) = try download(f.name, expectedBytes: f.bytes, into: dir, tracker: tracker)
                tracker.fileDone()
                return .success((sha, size))
            } catch { return .failure(error) }
        }
        var firstError: Error?
        var missing: MissingObject?
        for (f, outcome) in zip(toFetch, outcomes) {
            switch outcome {
            case .success(let (sha, size)):
                state.recordVerified(f.name, sha256: sha, in: dir, used: now)
                result.downloadedFiles += 1
                result.downloadedBytes += size
                if f.bytes == nil { result.generationBytes += size }
            case .failure(let e as MissingObject): missing = missing ?? e
            case .failure(let e): firstError = firstError ?? e
            }
        }
        if let firstError { try? state.write(in: dir); throw firstError }
        if let missing { throw missing }
        return result
    }

    /// Checks a file already in the folder but not recorded (a writer's own file, or a record
    /// lost): its SHA-256 against the object's metadata, and its format. Returns the SHA-256.
    private func verifyExisting(_ name: String, expectedBytes: Int?, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        guard let info = try store.head(name), let expected = info.metadata[Self.sha256Metadata] else { throw MissingObject(key: name) }
        try Self.verify(path: path, name: name, expectedBytes: expectedBytes, expectedSHA256: expected)
        return expected
    }

    /// Downloads `name` to a temporary file in `dir`, verifies it and renames it into place.
    private func download(_ name: String, expectedBytes: Int?, into dir: URL, tracker: Tracker) throws -> (String, Int64) {
        let final = dir.appendingPathComponent(name).path
        let tmp = "\(final).tmp-\(getpid())"
        var info: ObjectInfo
        do {
            info = try store.download(name, to: tmp) { n in tracker.add(name, n) }
        } catch ObjectStoreError.notFound {
            try? FileManager.default.removeItem(atPath: tmp)
            throw MissingObject(key: name)
        } catch let e as ObjectStoreError {
            try? FileManager.default.removeItem(atPath: tmp)
            throw RemoteIndexError.store(e)
        }
        do {
            if info.metadata[Self.sha256Metadata] == nil {
                // Not every store returns user metadata with a GET: ask for it.
                do {
                    if let h = try store.head(name) { info.metadata = h.metadata }
                } catch let e as ObjectStoreError { throw RemoteIndexError.store(e) }
            }
            guard let expected = info.metadata[Self.sha256Metadata] else {
                throw RemoteIndexError.damagedObject(location: location, key: name, reason: "it has no sha256 metadata")
            }
            try Self.verify(path: tmp, name: name, expectedBytes: expectedBytes, expectedSHA256: expected, location: location)
            do {
                try AtomicFile.sync(path: tmp)
                try AtomicFile.rename(tmp, over: final)
            } catch { throw RemoteIndexError.file("\(error)") }
            let size = Int64((try? FileStatus.of(final).size) ?? 0)
            return (expected, size)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
    }

    /// The checks a file must pass to be part of a mirror: size (segments), SHA-256, format.
    static func verify(path: String, name: String, expectedBytes: Int?, expectedSHA256: String, location: String = "") throws {
        func damaged(_ r: String) -> RemoteIndexError { .damagedObject(location: location, key: name, reason: r) }
        let size: Int
        do { size = try FileStatus.of(path).size } catch { throw RemoteIndexError.file("\(error)") }
        if let expectedBytes, size != expectedBytes {
            throw damaged("\(size) bytes, the manifest says \(expectedBytes)")
        }
        let sha: String
        do { sha = try Hashing.sha256Hex(ofFile: path) } catch { throw RemoteIndexError.file("\(error)") }
        guard sha == expectedSHA256.lowercased() else { throw damaged("its SHA-256 is not the one stored with it") }
        if name.hasSuffix(IndexFiles.segmentSuffix) {
            do {
                let seg = try SegmentReader(path: path)
                try seg.verify()
            } catch { throw damaged("\(error)") }
        } else if name.hasSuffix(IndexFiles.deletionSuffix) {
            do { _ = try DeletionSet.read(path: path) } catch { throw damaged("\(error)") }
        }
    }

    /// Removes files of older generations, least recently used first, while `dir` is larger
    /// than `sizeBound` (all of them unless `keepOlder`); never those `keeping` names nor a
    /// build checkpoint's.
    private func evict(in dir: URL, keeping: Set<String>, sizeBound: Int64, keepOlder: Bool, state: inout MirrorState, result: inout PullResult) {
        let keep = keeping.union(BuildCheckpoint.protectedFiles(in: dir))
        let names = (try? DirectoryListing.names(in: dir.path)) ?? []
        var total: Int64 = 0
        var candidates: [(name: String, size: Int64, used: Double)] = []
        for n in names {
            guard let st = try? FileStatus.of(dir.appendingPathComponent(n).path), st.kind == .regular else { continue }
            // A download or write a killed process left (its pid gone): never finished, never
            // used; removed, so it cannot hold the folder over its bound for good.
            if IndexFiles.isTemporaryName(n), let r = n.range(of: ".tmp-", options: .backwards), let pid = Int32(n[r.upperBound...]),
               pid > 0, kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(at: dir.appendingPathComponent(n))
                continue
            }
            total += Int64(st.size)
            let ours = IndexFiles.isSegmentOrDeletionName(n)
            if ours && !keep.contains(n) {
                candidates.append((n, Int64(st.size), state.files[n]?.used ?? Double(st.mtimeNanoseconds) / 1e9))
            }
        }
        // Forget records of files that are gone.
        for n in state.files.keys where !names.contains(n) { state.files[n] = nil }
        candidates.sort { $0.used < $1.used }
        for c in candidates where total > sizeBound || !keepOlder {
            if (try? FileManager.default.removeItem(at: dir.appendingPathComponent(c.name))) != nil {
                total -= c.size
                state.files[c.name] = nil
                result.evictedFiles += 1
            }
        }
        // The generation itself is larger than the bound (it is kept whole).
        result.overSizeBound = total > sizeBound && result.generationBytes > sizeBound
    }

    // MARK: - Push

    /// Commits the index in the local folder `dir` as the next generation after `base` (the
    /// ETag a pull returned; nil when the location had no index yet).
    ///
    /// Uploads every segment and deletion file the local manifest names that the generation
    /// `base` does not (only if absent, with `sha256` metadata; an object already there with
    /// the same SHA-256 is a retried push's and is kept), then writes the local manifest's
    /// exact bytes with If-Match `base` (If-None-Match: * for nil). When another writer
    /// committed first, throws `.conflict` and removes the objects this push uploaded (best
    /// effort). After the commit, removes segment and deletion objects that neither the new
    /// nor the previous manifest names and that are older than `garbageGrace`. A local
    /// manifest equal to the base's commits nothing. Under the folder's lock (`holding`
    /// when the caller holds it). Throws `RemoteIndexError`.
    public func push(from dir: URL, base: String?, holding: MirrorLock? = nil,
                     progress: (@Sendable (TransferProgress) -> Void)? = nil) throws -> PushResult {
        let lock = try holding ?? MirrorLock.acquire(dir)
        defer { if holding == nil { lock.unlock() } }
        var state = MirrorState.read(in: dir)
        if state.location != location { state = MirrorState(location: location) }
        let manifestPath = dir.appendingPathComponent(Manifest.fileName).path
        let local: Manifest
        do { local = try Manifest.read(from: dir.path) } catch let e as ManifestError { throw RemoteIndexError.manifest(e) } catch {
            throw RemoteIndexError.file("\(error)")
        }
        let data: Data
        do { data = try FileReader.read(manifestPath, limit: Self.manifestLimit) } catch { throw RemoteIndexError.file("\(error)") }

        // The base generation, as it is now: if it is no longer current, another writer
        // committed first, and nothing needs uploading to find that out.
        // (A current manifest of exactly our bytes is this push's own earlier commit, whose
        // answer was lost: nothing left to do.)
        let now = try fetchManifest(ifNoneMatch: nil).generation
        if let now, now.data == data {
            state.etag = now.etag
            try? state.write(in: dir)
            return PushResult(committed: false, etag: now.etag)
        }
        guard now?.etag == base else { throw RemoteIndexError.conflict(location: location) }
        let baseFiles = now.map { IndexFiles.referenced(by: $0.manifest) } ?? []
        let newFiles = IndexFiles.referenced(by: local)
        let toUpload = newFiles.subtracting(baseFiles).sorted()

        var result = PushResult(committed: false, etag: base ?? "")
        var hashes: [String: String] = [:]
        var sizes: [String: Int64] = [:]
        for name in toUpload {
            let path = dir.appendingPathComponent(name).path
            guard let st = try? FileStatus.of(path) else { throw RemoteIndexError.file("\(path) is missing: the local index is incomplete") }
            sizes[name] = Int64(st.size)
            if let sha = state.verifiedSHA256(name, in: dir) { hashes[name] = sha; continue }
            do { hashes[name] = try Hashing.sha256Hex(ofFile: path) } catch { throw RemoteIndexError.file("\(error)") }
            state.recordVerified(name, sha256: hashes[name]!, in: dir)
        }
        let tracker = Tracker(files: toUpload.count, bytes: toUpload.reduce(Int64(0)) { $0 + (sizes[$1] ?? 0) }, progress: progress)
        let hashesFinal = hashes
        let outcomes = parallel(toUpload.count) { i -> Result<Outcome, Error> in
            let name = toUpload[i], sha = hashesFinal[name]!
            do {
                do {
                    try store.upload(file: dir.appendingPathComponent(name).path, to: name, condition: .ifAbsent,
                                     metadata: [Self.sha256Metadata: sha]) { n in tracker.add(name, n) }
                    tracker.fileDone()
                    return .success(.uploaded)
                } catch ObjectStoreError.preconditionFailed {
                    // Already there: ours from an earlier try when it has our SHA-256.
                    guard let info = try store.head(name), info.metadata[Self.sha256Metadata] == sha else {
                        throw RemoteIndexError.conflict(location: location)
                    }
                    tracker.fileDone()
                    return .success(.alreadyThere)
                }
            } catch let e as ObjectStoreError { return .failure(RemoteIndexError.store(e)) } catch { return .failure(error) }
        }
        var uploaded: [String] = []
        var firstError: Error?
        for (name, outcome) in zip(toUpload, outcomes) {
            switch outcome {
            case .success(.uploaded):
                uploaded.append(name)
                result.uploadedFiles += 1
                result.uploadedBytes += sizes[name]!
            case .success(.alreadyThere): result.alreadyStoredFiles += 1
            case .failure(let e): firstError = firstError ?? e
            }
        }
        try? state.write(in: dir)
        if let firstError {
            // The manifest is untouched; what was uploaded stays for the next try (which
            // finds it already there) or is removed by a later commit's cleanup.
            throw firstError
        }

        // The commit.
        let committed: ObjectInfo
        do {
            committed = try store.put(data, to: Self.manifestKey, condition: base.map { .ifMatch(etag: $0) } ?? .ifAbsent, metadata: [:])
        } catch ObjectStoreError.preconditionFailed {
            for name in uploaded { try? store.delete(name) }
            throw RemoteIndexError.conflict(location: location)
        } catch let e as ObjectStoreError { throw RemoteIndexError.store(e) }
        result.committed = true
        result.etag = committed.etag
        state.etag = committed.etag
        try? state.write(in: dir)

        result.deletedObjects = collectGarbage(keeping: newFiles.union(baseFiles))
        return result
    }

    /// Deletes segment and deletion objects not in `keeping` and older than `garbageGrace`
    /// (best effort). Returns how many.
    @discardableResult
    public func collectGarbage(keeping: Set<String>) -> Int {
        guard let objects = try? store.list(prefix: "") else { return 0 }
        let cutoff = Date().addingTimeInterval(-garbageGrace)
        var n = 0
        for o in objects where !o.key.contains("/") && IndexFiles.isSegmentOrDeletionName(o.key)
            && !keeping.contains(o.key) {
            guard let modified = o.lastModified, modified < cutoff else { continue }
            if (try? store.delete(o.key)) != nil { n += 1 }
        }
        return n
    }

    // MARK: - Helpers

    /// Runs `body(0..<count)` on up to `parallelism` threads; results in index order.
    private func parallel<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        guard count > 0 else { return [] }
        let results = Box<[T?]>(Array(repeating: nil, count: count))
        let next = Box(0)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: min(parallelism, count)) { _ in
            while true {
                let i: Int = lock.withLock {
                    defer { next.value += 1 }
                    return next.value
                }
                guard i < count else { return }
                let r = body(i)
                lock.withLock { results.value[i] = r }
            }
        }
        return results.value.map { $0! }
    }
}

private final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}

/// Sums the progress of concurrent transfers and reports it, one call at a time.
private final class Tracker: @unchecked Sendable {
    private let lock = NSLock()
    private var state: TransferProgress
    private var perFile: [String: Int64] = [:]
    private let progress: (@Sendable (TransferProgress) -> Void)?

    init(files: Int, bytes: Int64, progress: (@Sendable (TransferProgress) -> Void)?) {
        state = TransferProgress(filesDone: 0, files: files, bytesDone: 0, bytes: bytes)
        self.progress = progress
    }

    /// `name` has transferred `n` bytes so far.
    func add(_ name: String, _ n: Int64) {
        lock.withLock {
            state.bytesDone += n - (perFile[name] ?? 0)
            perFile[name] = n
            progress?(state)
        }
    }

    func fileDone() {
        lock.withLock {
            state.filesDone += 1
            progress?(state)
        }
    }
}
