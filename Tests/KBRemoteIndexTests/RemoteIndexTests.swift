import Foundation
import KBCore
import KBFormat
import KBObjectStore
import KBSearch
import KBTestSupport
import XCTest

@testable import KBRemoteIndex

/// A small local index written without a model: segments of random vectors, committed as a
/// build commits them.
final class TestIndex: @unchecked Sendable {
    let dir: URL
    static let model = ModelDescriptor(name: "test", dimensions: 16, pooling: "mean", normalized: true,
                                       maxTokens: 256, weightsSHA256: String(repeating: "ab", count: 32))
    var segments: [Manifest.Segment] = []
    private var counter = 0

    init(dir: URL) throws {
        self.dir = dir
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    /// Adds a segment of `documents` documents (2 chunks each) under a fresh name.
    @discardableResult
    func addSegment(documents: Int = 4, seed: UInt64 = 1) throws -> Manifest.Segment {
        counter += 1
        var rng = SeededRNG(seed: seed &+ UInt64(counter) &* 7919)
        let w = SegmentWriter(model: Self.model)
        for d in 0..<documents {
            w.addDocument(DocumentRecord(path: "doc\(counter)-\(d).md", size: 10, mtimeNanoseconds: 1, contentSHA256: [UInt8](repeating: UInt8(d), count: 32), title: "T\(d)"))
            for c in 0..<2 {
                let v = (0..<16).map { _ in Float.random(in: -1...1, using: &rng) }
                w.addChunk(ChunkRecord(document: UInt32(d), ordinal: UInt32(c), lineStart: 1, lineEnd: 2, byteStart: 0, byteEnd: 9, headingPath: ["H"]),
                           text: "segment \(counter) document \(d) chunk \(c)", vector: v)
            }
        }
        let name = "seg-\(UUID().uuidString).kbseg"
        let entry = Manifest.Segment(file: name, chunks: documents * 2, documents: documents, bytes: try w.write(to: dir.appendingPathComponent(name).path))
        segments.append(entry)
        return entry
    }

    /// Marks document `d` of segment `s` deleted through a new deletion file.
    func delete(document d: Int, ofSegment s: Int) throws {
        var set = try segments[s].deletions.map { try DeletionSet.read(path: dir.appendingPathComponent($0).path) } ?? DeletionSet(documentCount: segments[s].documents)
        set.insert(d)
        let name = "seg-\(UUID().uuidString)-del-1.kbdel"  // named as kbindex names deletion files (cleanup takes only those)
        try set.write(to: dir.appendingPathComponent(name).path)
        segments[s].deletions = name
        segments[s].deletedDocuments = set.count
        segments[s].deletedChunks = set.count * 2
    }

    func commit() throws { try IndexFiles.commit(Manifest(model: Self.model, segments: segments), in: dir) }

    /// Takes the generation in `dir` (a pulled mirror) as this index's state.
    func adopt() throws { segments = try Manifest.read(from: dir.path).segments }
}

final class RemoteIndexTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("kbremote-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func folder(_ name: String) -> URL { root.appendingPathComponent(name) }

    func data(_ url: URL) throws -> Data { try Data(contentsOf: url) }

    /// The segment and deletion files of the folder, sorted.
    func indexFiles(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".kbseg") || $0.hasSuffix(".kbdel") }.sorted()
    }

    /// A first generation of three segments (one with a deletion file), pushed.
    func firstGeneration(_ store: InMemoryObjectStore) throws -> (TestIndex, PushResult) {
        let w = try TestIndex(dir: folder("writer"))
        for s in 0..<3 { try w.addSegment(seed: UInt64(s)) }
        try w.delete(document: 1, ofSegment: 2)
        try w.commit()
        let pushed = try RemoteIndex(store: store).push(from: w.dir, base: nil)
        return (w, pushed)
    }

    // MARK: - Round trip

    func testPushThenPullMirrorsTheIndexByteForByte() throws {
        let store = InMemoryObjectStore()
        XCTAssertNil(try RemoteIndex(store: store).current())
        let (w, pushed) = try firstGeneration(store)
        XCTAssertTrue(pushed.committed)
        XCTAssertEqual(pushed.uploadedFiles, 4)
        XCTAssertEqual(Set(store.keys), Set(indexFiles(w.dir) + ["manifest.json"]))
        for name in indexFiles(w.dir) {
            XCTAssertEqual(store.object(name)?.metadata["sha256"], try Hashing.sha256Hex(ofFile: w.dir.appendingPathComponent(name).path))
        }
        XCTAssertEqual(store.object("manifest.json")?.data, try data(w.dir.appendingPathComponent("manifest.json")))

        let current = try XCTUnwrap(try RemoteIndex(store: store).current())
        XCTAssertEqual(current.etag, pushed.etag)
        XCTAssertEqual(current.manifest, try Manifest.read(from: w.dir.path))

        let mirror = folder("mirror")
        let pulled = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertTrue(pulled.changed)
        XCTAssertEqual(pulled.etag, pushed.etag)
        XCTAssertEqual(pulled.downloadedFiles, 4)
        XCTAssertEqual(pulled.reusedFiles, 0)
        XCTAssertEqual(indexFiles(mirror), indexFiles(w.dir))
        for name in indexFiles(w.dir) + ["manifest.json"] {
            XCTAssertEqual(try data(mirror.appendingPathComponent(name)), try data(w.dir.appendingPathComponent(name)), name)
        }
        let opened = try IndexDirectory(url: mirror)
        XCTAssertEqual(opened.liveDocumentCount, 11)
        // No temporary files are left.
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: mirror.path).contains { $0.contains(".tmp-") })
    }

    func testPullingAnUnchangedGenerationIsOneConditionalRequest() throws {
        let store = InMemoryObjectStore()
        _ = try firstGeneration(store)
        let mirror = folder("mirror")
        _ = try RemoteIndex(store: store).pull(into: mirror)
        store.resetRequests()
        let again = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertFalse(again.changed)
        XCTAssertEqual(again.downloadedFiles, 0)
        XCTAssertEqual(store.requests, ["GET manifest.json"])
        XCTAssertNotNil(again.generation)
    }

    func testAMirrorThatLostAFileOrItsManifestFetchesItAgain() throws {
        let store = InMemoryObjectStore()
        let (w, _) = try firstGeneration(store)
        let mirror = folder("mirror")
        _ = try RemoteIndex(store: store).pull(into: mirror)
        try FileManager.default.removeItem(at: mirror.appendingPathComponent(w.segments[1].file))
        let repaired = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertEqual(repaired.downloadedFiles, 1)
        XCTAssertEqual(repaired.reusedFiles, 3)
        XCTAssertEqual(try IndexDirectory(url: mirror).segments.count, 3)
        try Data("{".utf8).write(to: mirror.appendingPathComponent("manifest.json"))
        let again = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertTrue(again.changed)
        XCTAssertEqual(again.downloadedFiles, 0)
        XCTAssertEqual(try Data(contentsOf: mirror.appendingPathComponent("manifest.json")), try Data(contentsOf: w.dir.appendingPathComponent("manifest.json")))
    }

    func testASecondGenerationDownloadsOnlyItsNewFiles() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        let mirror = folder("mirror")
        _ = try RemoteIndex(store: store).pull(into: mirror)

        try w.addSegment(seed: 9)
        try w.delete(document: 0, ofSegment: 0)
        try w.commit()
        let second = try RemoteIndex(store: store).push(from: w.dir, base: first.etag)
        XCTAssertEqual(second.uploadedFiles, 2)  // the new segment and the new deletion file

        store.resetRequests()
        let pulled = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertTrue(pulled.changed)
        XCTAssertEqual(pulled.downloadedFiles, 2)
        XCTAssertEqual(pulled.reusedFiles, 4)
        XCTAssertEqual(store.requests.filter { $0.hasPrefix("DOWNLOAD") }.count, 2)
        XCTAssertEqual(try data(mirror.appendingPathComponent("manifest.json")), try data(w.dir.appendingPathComponent("manifest.json")))
        XCTAssertEqual(try IndexDirectory(url: mirror).liveDocumentCount, 14)
    }

    func testAPushWithNothingNewCommitsNothing() throws {
        let store = InMemoryObjectStore()
        let (_, first) = try firstGeneration(store)
        let staging = folder("staging")
        let pulled = try RemoteIndex(store: store).pull(into: staging)
        let again = try RemoteIndex(store: store).push(from: staging, base: pulled.etag)
        XCTAssertFalse(again.committed)
        XCTAssertEqual(again.etag, first.etag)
        XCTAssertEqual(again.uploadedFiles, 0)
    }

    /// A writer's staging folder: pull, build on top, push, pull again (its own files are
    /// reused, not downloaded again).
    /// A push whose commit landed but whose answer was lost is retried: the manifest there is
    /// its own, so the retry commits nothing and reports no conflict.
    func testRetryingAPushWhoseCommitLandedIsNotAConflict() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        try w.addSegment(seed: 21)
        try w.commit()
        let lost = Box(false)
        let manifest = try data(w.dir.appendingPathComponent("manifest.json"))
        store.beforeCall = { method, key in
            guard method == "PUT", key == "manifest.json", !lost.value else { return }
            lost.value = true
            _ = try store.put(manifest, to: key, condition: .ifMatch(etag: first.etag), metadata: [:])  // it lands...
            throw ObjectStoreError.transport("connection reset")  // ...and its answer is lost
        }
        XCTAssertThrowsError(try RemoteIndex(store: store).push(from: w.dir, base: first.etag))
        store.beforeCall = nil
        let retried = try RemoteIndex(store: store).push(from: w.dir, base: first.etag)
        XCTAssertFalse(retried.committed)
        XCTAssertEqual(retried.etag, try RemoteIndex(store: store).current()?.etag)
        XCTAssertEqual(store.object("manifest.json")?.data, manifest)
    }

    func testAWriterPullsBuildsAndPushesFromItsStagingFolder() throws {
        let store = InMemoryObjectStore()
        _ = try firstGeneration(store)
        let staging = try TestIndex(dir: folder("staging"))
        let pulled = try RemoteIndex(store: store).pull(into: staging.dir)
        try staging.adopt()
        try staging.addSegment(seed: 42)
        try staging.commit()
        let pushed = try RemoteIndex(store: store).push(from: staging.dir, base: pulled.etag)
        XCTAssertEqual(pushed.uploadedFiles, 1)
        store.resetRequests()
        let again = try RemoteIndex(store: store).pull(into: staging.dir)
        XCTAssertFalse(again.changed)
        XCTAssertEqual(store.requests, ["GET manifest.json"])
    }

    // MARK: - Verification

    func testATamperedObjectIsRefusedAndNotKept() throws {
        let store = InMemoryObjectStore()
        let (w, _) = try firstGeneration(store)
        let victim = w.segments[1].file
        var o = try XCTUnwrap(store.object(victim))
        var bytes = [UInt8](o.data)
        bytes[bytes.count / 2] ^= 0x40
        o.data = Data(bytes)
        store.setObject(victim, o)  // same size, same sha256 metadata

        let mirror = folder("mirror")
        XCTAssertThrowsError(try RemoteIndex(store: store).pull(into: mirror)) { error in
            guard case RemoteIndexError.damagedObject(_, let key, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(key, victim)
            XCTAssertTrue(reason.contains("SHA-256"), reason)
            XCTAssertTrue("\(error)".hasPrefix("s3://test-bucket/idx/\(victim) is damaged"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: mirror.appendingPathComponent(victim).path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: mirror.appendingPathComponent("manifest.json").path))
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: mirror.path).contains { $0.contains(".tmp-") })

        // A shorter object than the manifest says is refused for its size.
        o.data = o.data.prefix(o.data.count - 3)
        store.setObject(victim, o)
        XCTAssertThrowsError(try RemoteIndex(store: store).pull(into: mirror)) { error in
            XCTAssertTrue("\(error)".contains("bytes, the manifest says"), "\(error)")
        }
    }

    func testADamagedRemoteManifestIsAnError() throws {
        let store = InMemoryObjectStore()
        _ = try firstGeneration(store)
        var o = try XCTUnwrap(store.object("manifest.json"))
        o.data = Data(String(decoding: o.data, as: UTF8.self).replacingOccurrences(of: "\"chunks\"", with: "\"chunkz\"").utf8)
        store.setObject("manifest.json", o)
        XCTAssertThrowsError(try RemoteIndex(store: store).current()) { error in
            guard case RemoteIndexError.manifest(.damaged(let dir, _)) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(dir, "s3://test-bucket/idx")
        }
        XCTAssertThrowsError(try RemoteIndex(store: store).pull(into: folder("mirror")))
    }

    func testARemoteManifestNamingForeignOrRepeatedFilesIsRefusedBeforeAnyDownload() throws {
        // A manifest (valid checksum) must not make a reader create a checkpoint.json or any
        // other name in its cache folder, nor download one name twice at once.
        let model = ModelDescriptor(name: "test", dimensions: 16, pooling: "mean", normalized: true,
                                    maxTokens: 256, weightsSHA256: String(repeating: "ab", count: 32))
        for segments in [[Manifest.Segment(file: "checkpoint.json", chunks: 1, documents: 1, bytes: 10)],
                         [Manifest.Segment(file: "seg-a.kbseg", chunks: 1, documents: 1, bytes: 10),
                          Manifest.Segment(file: "seg-a.kbseg", chunks: 1, documents: 1, bytes: 10)]] {
            let store = InMemoryObjectStore()
            _ = try store.put(try Manifest(model: model, segments: segments).encoded(), to: "manifest.json", condition: .always, metadata: [:])
            let mirror = try folder("mirror-\(segments.count)")
            XCTAssertThrowsError(try RemoteIndex(store: store).pull(into: mirror)) { error in
                guard case RemoteIndexError.manifest(.damaged) = error else { return XCTFail("\(error)") }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: mirror.appendingPathComponent("checkpoint.json").path))
        }
    }

    func testAMissingObjectOfAnUnchangedManifestIsAnError() throws {
        let store = InMemoryObjectStore()
        let (w, _) = try firstGeneration(store)
        try store.delete(w.segments[0].file)
        XCTAssertThrowsError(try RemoteIndex(store: store).pull(into: folder("mirror"))) { error in
            XCTAssertEqual(error as? RemoteIndexError, .missingObject(location: "s3://test-bucket/idx", key: w.segments[0].file))
        }
    }

    func testFilesAlreadyInTheFolderAreCheckedOnceThenReused() throws {
        let store = InMemoryObjectStore()
        let (w, _) = try firstGeneration(store)
        let mirror = folder("mirror")
        try FileManager.default.createDirectory(at: mirror, withIntermediateDirectories: true)
        // A good copy of one file (checked against the store's sha256, then kept) and a bad one.
        let good = w.segments[0].file, bad = w.segments[1].file
        try FileManager.default.copyItem(at: w.dir.appendingPathComponent(good), to: mirror.appendingPathComponent(good))
        try Data("junk".utf8).write(to: mirror.appendingPathComponent(bad))
        let pulled = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertEqual(pulled.reusedFiles, 1)
        XCTAssertEqual(pulled.downloadedFiles, 3)
        XCTAssertEqual(try data(mirror.appendingPathComponent(bad)), try data(w.dir.appendingPathComponent(bad)))
    }

    // MARK: - Writers racing

    func testTwoPushesFromOneBaseCommitExactlyOnceAndTheLoserRemovesItsUploads() throws {
        let store = InMemoryObjectStore()
        let (_, first) = try firstGeneration(store)
        let a = try TestIndex(dir: folder("a")), b = try TestIndex(dir: folder("b"))
        for w in [a, b] {
            _ = try RemoteIndex(store: store).pull(into: w.dir)
            try w.adopt()
            try w.addSegment(seed: 77)
            try w.commit()
        }
        let aNew = a.segments.last!.file, bNew = b.segments.last!.file
        // b commits between a's uploads and a's manifest write.
        let once = Box(false)
        store.beforeCall = { method, key in
            guard method == "PUT", key == "manifest.json", !once.value else { return }
            once.value = true
            _ = try RemoteIndex(store: store).push(from: b.dir, base: first.etag)
        }
        XCTAssertThrowsError(try RemoteIndex(store: store).push(from: a.dir, base: first.etag)) { error in
            XCTAssertEqual(error as? RemoteIndexError, .conflict(location: "s3://test-bucket/idx"))
            XCTAssertEqual("\(error)", "another writer committed s3://test-bucket/idx first")
        }
        store.beforeCall = nil
        XCTAssertEqual(store.object("manifest.json")?.data, try data(b.dir.appendingPathComponent("manifest.json")))
        XCTAssertNil(store.object(aNew), "the loser's upload is removed")
        XCTAssertNotNil(store.object(bNew))

        // A push from a stale base fails before uploading anything.
        store.resetRequests()
        XCTAssertThrowsError(try RemoteIndex(store: store).push(from: a.dir, base: first.etag)) { error in
            XCTAssertEqual(error as? RemoteIndexError, .conflict(location: "s3://test-bucket/idx"))
        }
        XCTAssertFalse(store.requests.contains { $0.hasPrefix("UPLOAD") })
        // The first commit of a location that has an index is a conflict too.
        XCTAssertThrowsError(try RemoteIndex(store: store).push(from: a.dir, base: nil))
    }

    func testConcurrentPushesFromOneBase() throws {
        let store = InMemoryObjectStore()
        let (_, first) = try firstGeneration(store)
        var writers: [TestIndex] = []
        for i in 0..<4 {
            let w = try TestIndex(dir: folder("w\(i)"))
            _ = try RemoteIndex(store: store).pull(into: w.dir)
            try w.adopt()
            try w.addSegment(seed: UInt64(100 + i))
            try w.commit()
            writers.append(w)
        }
        let results = Box<[Result<PushResult, Error>?]>(Array(repeating: nil, count: 4))
        let lock = NSLock()
        let dirs = writers.map(\.dir)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let r = Result { try RemoteIndex(store: store).push(from: dirs[i], base: first.etag) }
            lock.withLock { results.value[i] = r }
        }
        let won = results.value.enumerated().filter { if case .success(let p)? = $0.element { return p.committed } else { return false } }
        XCTAssertEqual(won.count, 1)
        for case .failure(let e)? in results.value { XCTAssertEqual(e as? RemoteIndexError, .conflict(location: "s3://test-bucket/idx")) }
        let winner = writers[won[0].offset]
        XCTAssertEqual(store.object("manifest.json")?.data, try data(winner.dir.appendingPathComponent("manifest.json")))
        // Every object the manifest names is there.
        let m = try XCTUnwrap(try RemoteIndex(store: store).current()).manifest
        for name in IndexFiles.referenced(by: m) { XCTAssertNotNil(store.object(name), name) }
    }

    func testAnInterruptedPushLeavesTheIndexUnchangedAndALaterPushSucceeds() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        for s in 0..<3 { try w.addSegment(seed: UInt64(50 + s)) }
        try w.commit()
        let uploads = Box(0)
        store.beforeCall = { method, _ in
            guard method == "UPLOAD" else { return }
            uploads.value += 1
            if uploads.value > 1 { throw ObjectStoreError.transport("connection reset") }
        }
        let index = RemoteIndex(store: store, parallelism: 1)
        XCTAssertThrowsError(try index.push(from: w.dir, base: first.etag)) { error in
            XCTAssertEqual(error as? RemoteIndexError, .store(.transport("connection reset")))
        }
        store.beforeCall = nil
        XCTAssertEqual(try index.current()?.etag, first.etag)
        let retried = try index.push(from: w.dir, base: first.etag)
        XCTAssertTrue(retried.committed)
        XCTAssertEqual(retried.alreadyStoredFiles, 1)
        XCTAssertEqual(retried.uploadedFiles, 2)
        let mirror = folder("mirror")
        _ = try index.pull(into: mirror)
        XCTAssertEqual(try IndexDirectory(url: mirror).segments.count, 6)
    }

    func testAnObjectOfThePushesNameWithOtherContentsIsAConflict() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        let seg = try w.addSegment(seed: 5)
        try w.commit()
        _ = try store.put(Data("other".utf8), to: seg.file, condition: .ifAbsent, metadata: ["sha256": String(repeating: "0", count: 64)])
        XCTAssertThrowsError(try RemoteIndex(store: store).push(from: w.dir, base: first.etag)) { error in
            XCTAssertEqual(error as? RemoteIndexError, .conflict(location: "s3://test-bucket/idx"))
        }
        XCTAssertEqual(try RemoteIndex(store: store).current()?.etag, first.etag)
    }

    // MARK: - Readers during commits

    func testAReaderPullingWhileWritersCommitSeesCompleteGenerations() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        let done = Box(false)
        let writerError = Box<Error?>(nil)
        let writer = Thread {
            var base = first.etag
            do {
                var index = RemoteIndex(store: store)
                index.garbageGrace = 0  // remove replaced files at once: the hardest case for readers
                for i in 0..<12 {
                    // Replace the oldest segment by a new one (a compaction-like change).
                    w.segments.removeFirst()
                    try w.addSegment(seed: UInt64(200 + i))
                    try w.commit()
                    base = try index.push(from: w.dir, base: base).etag
                }
            } catch { writerError.value = error }
            done.value = true
        }
        writer.start()
        let mirror = folder("mirror")
        var generations = Set<String>()
        while !done.value {
            do {
                let r = try RemoteIndex(store: store).pull(into: mirror)
                if let e = r.etag { generations.insert(e) }
            } catch RemoteIndexError.unstable {
                continue  // the writer outran the reader five times: allowed, try again
            }
            // Whatever the folder holds is one complete generation.
            let opened = try IndexDirectory(url: mirror)
            XCTAssertEqual(opened.segments.count, 3)
            XCTAssertTrue(opened.damagedSegments().isEmpty)
        }
        XCTAssertNil(writerError.value)
        let last = try RemoteIndex(store: store).pull(into: mirror)
        XCTAssertEqual(try data(mirror.appendingPathComponent("manifest.json")), try data(w.dir.appendingPathComponent("manifest.json")))
        XCTAssertEqual(last.etag, try RemoteIndex(store: store).current()?.etag)
    }

    /// The manifest is replaced (and the file the pull is about to fetch deleted) after the
    /// pull read it: the pull starts over with the new generation.
    func testAPullWhoseFilesVanishStartsOverWithTheNewGeneration() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        let once = Box(false)
        store.beforeCall = { method, _ in
            guard method == "DOWNLOAD", !once.value else { return }
            once.value = true
            var index = RemoteIndex(store: store)
            index.garbageGrace = 0
            w.segments = [w.segments[2]]
            try w.addSegment(seed: 3)
            try w.commit()
            let second = try index.push(from: w.dir, base: first.etag)
            try w.addSegment(seed: 4)
            try w.commit()
            _ = try index.push(from: w.dir, base: second.etag)  // its cleanup removes the first two segments
        }
        let mirror = folder("mirror")
        let pulled = try RemoteIndex(store: store, parallelism: 1).pull(into: mirror)
        store.beforeCall = nil
        XCTAssertEqual(pulled.etag, try RemoteIndex(store: store).current()?.etag)
        XCTAssertEqual(try data(mirror.appendingPathComponent("manifest.json")), try data(w.dir.appendingPathComponent("manifest.json")))
        XCTAssertEqual(try IndexDirectory(url: mirror).segments.count, 3)
    }

    // MARK: - Cleanup and eviction

    func testACommitRemovesOldUnreferencedObjectsOnly() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        let gen1 = Set(w.segments.map(\.file))
        // Generation 2 drops segment 0; generation 3 drops segment 1.
        w.segments.removeFirst()
        try w.commit()
        let second = try RemoteIndex(store: store).push(from: w.dir, base: first.etag)
        let dropped0 = gen1.subtracting(w.segments.map(\.file)).first!
        XCTAssertNotNil(store.object(dropped0), "the previous generation's readers still need it")
        // An unreferenced upload of a writer at work (recent) and a stale one (old).
        _ = try store.put(Data("x".utf8), to: "seg-inflight.kbseg", condition: .ifAbsent, metadata: [:])
        _ = try store.put(Data("x".utf8), to: "seg-stale.kbseg", condition: .ifAbsent, metadata: [:])
        _ = try store.put(Data("x".utf8), to: "notes.txt", condition: .ifAbsent, metadata: [:])
        store.age("seg-stale.kbseg", by: 7200)
        store.age("notes.txt", by: 7200)
        store.age(dropped0, by: 7200)
        let dropped1 = w.segments.removeFirst().file
        try w.commit()
        store.age(dropped1, by: 7200)
        let third = try RemoteIndex(store: store).push(from: w.dir, base: second.etag)
        XCTAssertEqual(third.deletedObjects, 2)
        XCTAssertNil(store.object(dropped0))
        XCTAssertNil(store.object("seg-stale.kbseg"))
        XCTAssertNotNil(store.object(dropped1), "named by the previous generation")
        XCTAssertNotNil(store.object("seg-inflight.kbseg"))
        XCTAssertNotNil(store.object("notes.txt"))
    }

    func testEvictionKeepsTheCurrentGenerationAndRemovesTheLeastRecentlyUsed() throws {
        let store = InMemoryObjectStore()
        let (w, first) = try firstGeneration(store)
        let mirror = folder("mirror")
        _ = try RemoteIndex(store: store).pull(into: mirror)
        let gen1 = indexFiles(mirror)
        // Generation 2 replaces everything.
        w.segments = []
        for s in 0..<3 { try w.addSegment(seed: UInt64(300 + s)) }
        try w.commit()
        let second = try RemoteIndex(store: store).push(from: w.dir, base: first.etag)
        let unbounded = try RemoteIndex(store: store).pull(into: mirror, sizeBound: 1 << 40)
        XCTAssertEqual(unbounded.evictedFiles, 0)
        XCTAssertEqual(indexFiles(mirror).count, 7)

        // Generation 3 adds one segment; the bound fits generation 3 and one more segment.
        let newest = try w.addSegment(seed: 400)
        try w.commit()
        _ = try RemoteIndex(store: store).push(from: w.dir, base: second.etag)
        let folderBytes = { () -> Int64 in
            (try! FileManager.default.contentsOfDirectory(atPath: mirror.path)).reduce(Int64(0)) {
                $0 + Int64((try? FileStatus.of(mirror.appendingPathComponent($1).path).size) ?? 0)
            }
        }
        let bound = folderBytes() + Int64(newest.bytes) + 2000 - Int64(gen1.count) * 0
        let r = try RemoteIndex(store: store).pull(into: mirror, sizeBound: bound - Int64(w.segments[0].bytes) * 2)
        XCTAssertGreaterThan(r.evictedFiles, 0)
        XCTAssertFalse(r.overSizeBound)
        for s in w.segments { XCTAssertTrue(FileManager.default.fileExists(atPath: mirror.appendingPathComponent(s.file).path)) }
        XCTAssertLessThanOrEqual(folderBytes(), bound - Int64(w.segments[0].bytes) * 2)

        // A bound smaller than the generation keeps the generation whole and says so.
        let tiny = try RemoteIndex(store: store).pull(into: folder("tiny"), sizeBound: 1000)
        XCTAssertTrue(tiny.overSizeBound)
        XCTAssertEqual(try IndexDirectory(url: folder("tiny")).segments.count, 4)
        // Tight bound on the big mirror: every older file goes.
        let tight = try RemoteIndex(store: store).pull(into: mirror, sizeBound: 1)
        XCTAssertTrue(tight.overSizeBound)
        XCTAssertEqual(Set(indexFiles(mirror)), IndexFiles.referenced(by: try Manifest.read(from: mirror.path)))
    }

    func testEvictionKeepsACheckpointsFiles() throws {
        let store = InMemoryObjectStore()
        _ = try firstGeneration(store)
        let staging = try TestIndex(dir: folder("staging"))
        _ = try RemoteIndex(store: store).pull(into: staging.dir)
        try staging.adopt()
        let aside = try staging.addSegment(seed: 8)
        try BuildCheckpoint(model: TestIndex.model, rebuild: false, segments: [aside], documents: 4, chunks: 8).write(to: staging.dir)
        try Data(count: 10).write(to: staging.dir.appendingPathComponent("seg-old.kbseg"))
        let r = try RemoteIndex(store: store).pull(into: staging.dir, sizeBound: 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: staging.dir.appendingPathComponent(aside.file).path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: staging.dir.appendingPathComponent("seg-old.kbseg").path))
        XCTAssertEqual(r.evictedFiles, 1)
    }

    func testAStagingPullKeepsOnlyTheCurrentGenerationAndACheckpointsFiles() throws {
        let store = InMemoryObjectStore()
        let (_, first) = try firstGeneration(store)
        // A writer lost a race: its own segment is committed locally, not remotely.
        let staging = try TestIndex(dir: folder("staging"))
        _ = try RemoteIndex(store: store).pull(into: staging.dir)
        try staging.adopt()
        let lost = try staging.addSegment(seed: 11)
        try staging.commit()
        let aside = try staging.addSegment(seed: 12)
        try BuildCheckpoint(model: TestIndex.model, rebuild: false, segments: [aside], documents: 4, chunks: 8).write(to: staging.dir)
        // Unchanged remotely: the local commit and its files stay (the next push sends them).
        _ = try RemoteIndex(store: store).pull(into: staging.dir, keepOlderGenerations: false)
        XCTAssertTrue(FileManager.default.fileExists(atPath: staging.dir.appendingPathComponent(lost.file).path))
        // Another writer commits: the pull takes its generation, and the lost segment goes.
        let other = try TestIndex(dir: folder("other"))
        _ = try RemoteIndex(store: store).pull(into: other.dir)
        try other.adopt()
        try other.addSegment(seed: 13)
        try other.commit()
        _ = try RemoteIndex(store: store).push(from: other.dir, base: first.etag)
        let r = try RemoteIndex(store: store).pull(into: staging.dir, keepOlderGenerations: false)
        XCTAssertTrue(r.changed)
        XCTAssertFalse(r.overSizeBound)
        XCTAssertFalse(FileManager.default.fileExists(atPath: staging.dir.appendingPathComponent(lost.file).path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: staging.dir.appendingPathComponent(aside.file).path))
        XCTAssertEqual(Set(indexFiles(staging.dir)), IndexFiles.referenced(by: try Manifest.read(from: staging.dir.path)).union([aside.file]))
    }

    // MARK: - Cache folders

    func testCacheFolders() throws {
        XCTAssertEqual(RemoteIndexCache.root(environment: ["KBINDEX_CACHE_DIR": "/tmp/c", "XDG_CACHE_HOME": "/x"]).path, "/tmp/c")
        XCTAssertEqual(RemoteIndexCache.root(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]).path, "/x/kbindex/s3")
        XCTAssertEqual(RemoteIndexCache.root(environment: ["HOME": "/h"]).path, "/h/.cache/kbindex/s3")
        let a = RemoteIndexCache(location: "s3://docs/team/index", endpoint: "http://127.0.0.1:9000", root: URL(fileURLWithPath: "/c"))
        let b = RemoteIndexCache(location: "s3://docs/team/index", endpoint: "", root: URL(fileURLWithPath: "/c"))
        XCTAssertTrue(a.folder.lastPathComponent.hasPrefix("docs-team-index-"), a.folder.path)
        XCTAssertNotEqual(a.folder, b.folder)
        XCTAssertEqual(a.index.lastPathComponent, "index")
        XCTAssertEqual(a.build.lastPathComponent, "build")
        XCTAssertEqual(try RemoteIndexCache.sizeBound(environment: [:]), 20 << 30)
        XCTAssertEqual(try RemoteIndexCache.sizeBound(environment: ["KBINDEX_CACHE_SIZE": "512M"]), 512 << 20)
        XCTAssertEqual(try RemoteIndexCache.sizeBound(environment: ["KBINDEX_CACHE_SIZE": "2GiB"]), 2 << 30)
        XCTAssertEqual(try RemoteIndexCache.sizeBound(environment: ["KBINDEX_CACHE_SIZE": "1000"]), 1000)
        XCTAssertThrowsError(try RemoteIndexCache.sizeBound(environment: ["KBINDEX_CACHE_SIZE": "lots"]))
    }

    func testStoreErrorsSurfaceAsTheyAre() throws {
        let store = InMemoryObjectStore()
        store.beforeCall = { _, _ in throw ObjectStoreError.noSuchBucket(bucket: "test-bucket") }
        XCTAssertThrowsError(try RemoteIndex(store: store).pull(into: folder("m"))) { error in
            XCTAssertEqual(error as? RemoteIndexError, .store(.noSuchBucket(bucket: "test-bucket")))
        }
        store.beforeCall = { _, _ in throw ObjectStoreError.accessDenied(code: "InvalidAccessKeyId", message: "no such key") }
        XCTAssertThrowsError(try RemoteIndex(store: store).current()) { error in
            XCTAssertEqual(error as? RemoteIndexError, .store(.accessDenied(code: "InvalidAccessKeyId", message: "no such key")))
        }
    }
}

final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T {
        get { lock.withLock { v } }
        set { lock.withLock { v = newValue } }
    }
}
