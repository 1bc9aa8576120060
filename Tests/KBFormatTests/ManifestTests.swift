import Foundation
import KBFormat
import KBTestSupport
import XCTest

final class ManifestTests: TempDirTestCase {
    func manifest(_ n: Int) -> Manifest {
        Manifest(
            model: RandomSegment.model(dims: 384, name: "all-MiniLM-L6-v2"),
            segments: (0..<n).map { .init(file: "seg-\($0).kbseg", chunks: $0 * 10, documents: $0, bytes: $0 * 1000) },
            createdAt: "2025-01-31T12:00:00Z")
    }

    func testRoundTrip() throws {
        for n in [0, 1, 5] {
            try manifest(n).write(to: dir.path)
            XCTAssertEqual(try Manifest.read(from: dir.path), manifest(n))
        }
        let text = try String(contentsOfFile: path(Manifest.fileName), encoding: .utf8)
        XCTAssertTrue(text.contains("\"sha256\": \""), text)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [Manifest.fileName])
    }

    func testDefaultCreatedAtIsISO8601() {
        let m = Manifest(model: RandomSegment.model(dims: 4), segments: [])
        XCTAssertNotNil(ISO8601DateFormatter().date(from: m.createdAt), m.createdAt)
        XCTAssertEqual(m.formatVersion, 2)
    }

    func testMissingManifest() {
        XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
            XCTAssertEqual("\(e)", "no index in \(dir.path)")
        }
    }

    func testDamagedManifestIsDetected() throws {
        try manifest(3).write(to: dir.path)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(Manifest.fileName))))
        var rng = SeededRNG(seed: 3)
        var cases: [[UInt8]] = [Array(good[..<(good.count / 2)]), [], Array("{}".utf8)]
        for _ in 0..<50 {
            var b = good
            let i = Int.random(in: 0..<b.count, using: &rng)
            b[i] = b[i] == UInt8(ascii: "7") ? UInt8(ascii: "8") : UInt8(ascii: "7")
            if b[i] != good[i] { cases.append(b) }
        }
        // A valid JSON edit without updating the hash.
        cases.append(Array(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\"chunks\" : 10", with: "\"chunks\" : 11").utf8))
        for b in cases where b != good {
            try Data(b).write(to: URL(fileURLWithPath: path(Manifest.fileName)))
            XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
                guard case .damaged = e as? ManifestError else { return XCTFail("\(e)") }
                XCTAssertTrue("\(e)".contains(dir.path), "\(e)")
            }
        }
    }

    func testUnsupportedVersion() throws {
        var m = manifest(1)
        m.formatVersion = 7
        try m.write(to: dir.path)
        XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
            XCTAssertEqual(e as? ManifestError, .unsupportedVersion(dir: dir.path, version: 7))
            XCTAssertTrue("\(e)".contains("version 7"), "\(e)")
        }
    }

    func testAtomicReplace() throws {
        try manifest(1).write(to: dir.path)
        // A half-written temporary file next to it does not disturb readers.
        try Data("{\"formatVer".utf8).write(to: URL(fileURLWithPath: path(Manifest.fileName + ".tmp-12345")))
        XCTAssertEqual(try Manifest.read(from: dir.path), manifest(1))
        // Readers racing a writer always see a whole manifest, old or new.
        let d = dir.path
        let a = manifest(1), b = manifest(40)
        let done = DispatchSemaphore(value: 0)
        Thread {
            for i in 0..<200 { try! (i % 2 == 0 ? b : a).write(to: d) }
            done.signal()
        }.start()
        var reads = 0
        while done.wait(timeout: .now()) == .timedOut {
            let m = try Manifest.read(from: d)
            XCTAssertTrue(m == a || m == b)
            reads += 1
        }
        XCTAssertGreaterThan(reads, 0)
        XCTAssertEqual(try Manifest.read(from: d), a)
    }
}

final class ModelDescriptorTests: XCTestCase {
    let mini = ModelDescriptor(name: "all-MiniLM-L6-v2", dimensions: 384, pooling: "mean", normalized: true, maxTokens: 256, weightsSHA256: String(repeating: "a", count: 64))

    func testCompatible() {
        XCTAssertNil(mini.incompatibility(with: mini))
        var other = mini
        other.name = "renamed copy"
        other.maxTokens = 512
        other.weightsSHA256 = other.weightsSHA256?.uppercased()
        XCTAssertNil(mini.incompatibility(with: other))
    }

    func testMessages() {
        var bge = mini
        bge.name = "bge-small"
        bge.weightsSHA256 = String(repeating: "b", count: 64)
        XCTAssertEqual(mini.incompatibility(with: bge), "index was built with all-MiniLM-L6-v2 (384 dims), the query model is bge-small (384 dims, different weights)")
        var big = bge
        big.dimensions = 768
        XCTAssertEqual(mini.incompatibility(with: big), "index was built with all-MiniLM-L6-v2 (384 dims), the query model is bge-small (768 dims, different weights)")
        var cls = mini
        cls.pooling = "cls"
        XCTAssertEqual(mini.incompatibility(with: cls), "index was built with all-MiniLM-L6-v2 (384 dims), the query model is all-MiniLM-L6-v2 (384 dims, cls pooling instead of mean)")
        var raw = mini
        raw.normalized = false
        XCTAssertEqual(mini.incompatibility(with: raw), "index was built with all-MiniLM-L6-v2 (384 dims), the query model is all-MiniLM-L6-v2 (384 dims, not normalized, the index's vectors are)")
    }

    func testCodable() throws {
        XCTAssertEqual(try JSONDecoder().decode(ModelDescriptor.self, from: JSONEncoder().encode(mini)), mini)
    }
}

final class ManifestVersionTests: TempDirTestCase {
    func testVersion1ManifestsStillReadAndVersion2CarriesDeletions() throws {
        let model = RandomSegment.model(dims: 4)
        try Manifest(formatVersion: 1, model: model, segments: [.init(file: "a.kbseg", chunks: 3, documents: 2, bytes: 10)]).write(to: dir.path)
        let v1 = try Manifest.read(from: dir.path)
        XCTAssertEqual(v1.formatVersion, 1)
        XCTAssertNil(v1.segments[0].deletions)
        XCTAssertEqual(v1.segments[0].liveChunks, 3)
        let seg = Manifest.Segment(file: "a.kbseg", chunks: 3, documents: 2, bytes: 10, deletions: "a-del-1.kbdel", deletedDocuments: 1, deletedChunks: 2)
        try Manifest(model: model, segments: [seg]).write(to: dir.path)
        let v2 = try Manifest.read(from: dir.path)
        XCTAssertEqual(v2.formatVersion, 2)
        XCTAssertEqual(v2.segments, [seg])
        XCTAssertEqual(v2.segments[0].liveChunks, 1)
        // A segment without deletions writes no deletion keys at all.
        try Manifest(model: model, segments: [.init(file: "b.kbseg", chunks: 1, documents: 1, bytes: 5)]).write(to: dir.path)
        XCTAssertFalse(try String(contentsOfFile: path(Manifest.fileName), encoding: .utf8).contains("deleted"))
    }

    /// A shard's manifest carries `shard`; an unsharded one has no such member at all (its
    /// bytes are what kbindex wrote before shards existed), and a reader that does not know
    /// the member (kbindex before shards: the synthesized decoder of the fields below) reads
    /// a shard's manifest all the same, as format-spec.md §13.3 step 4 says.
    func testShardMemberIsOptionalAndIgnoredByOlderReaders() throws {
        let model = RandomSegment.model(dims: 4)
        let segs: [Manifest.Segment] = [.init(file: "a.kbseg", chunks: 3, documents: 2, bytes: 10)]
        let plain = Manifest(model: model, segments: segs, createdAt: "2025-01-31T12:00:00Z")
        XCTAssertFalse(String(decoding: try plain.encoded(), as: UTF8.self).contains("shard"))
        struct Before: Decodable { let formatVersion: Int; let model: ModelDescriptor; let segments: [Manifest.Segment]; let createdAt: String }
        var sharded = plain
        sharded.shard = Manifest.Shard(index: 1, count: 4, selection: "0123456789abcdef")
        let bytes = try sharded.encoded()
        XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("\"shard\" : {\n    \"count\" : 4,\n    \"index\" : 1,\n    \"selection\" : \"0123456789abcdef\"\n  },"))
        let old = try JSONDecoder().decode(Before.self, from: bytes)
        XCTAssertEqual(old.segments, segs)
        XCTAssertEqual(old.formatVersion, plain.formatVersion)
        // Without the member, the same object as the unsharded manifest.
        func object(_ d: Data) throws -> NSDictionary {
            let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: d) as? [String: Any])
            return o.filter { $0.key != "shard" && $0.key != "sha256" } as NSDictionary
        }
        XCTAssertEqual(try object(bytes), try object(try plain.encoded()))
        try sharded.write(to: dir.path)
        XCTAssertEqual(try Manifest.read(from: dir.path), sharded)
        for bad in [Manifest.Shard(index: 4, count: 4, selection: "x"), .init(index: -1, count: 4, selection: "x"), .init(index: 0, count: 0, selection: "x"),
                    .init(index: 0, count: 65_537, selection: "x"), .init(index: 0, count: 2, selection: "")] {
            sharded.shard = bad
            try sharded.write(to: dir.path)
            XCTAssertThrowsError(try Manifest.read(from: dir.path)) { error in
                guard case .damaged? = error as? ManifestError else { return XCTFail("\(error)") }
            }
        }
    }

    /// A manifest is checksummed, but one written by hand (or by a buggy tool) must still not
    /// send a reader outside the index folder or past a segment's counts.
    func testNamesOutsideTheFolderAndImpossibleCountsAreDamage() throws {
        let model = RandomSegment.model(dims: 4)
        let bad: [Manifest.Segment] = [
            .init(file: "../../etc/passwd", chunks: 1, documents: 1, bytes: 1),
            .init(file: "/abs.kbseg", chunks: 1, documents: 1, bytes: 1),
            .init(file: "", chunks: 1, documents: 1, bytes: 1),
            .init(file: "a.kbseg", chunks: 1, documents: 1, bytes: 1, deletions: "sub/x.kbdel", deletedDocuments: 0, deletedChunks: 0),
            .init(file: "a.kbseg", chunks: -1, documents: 1, bytes: 1),
            .init(file: "a.kbseg", chunks: 2, documents: 1, bytes: 1, deletions: "x.kbdel", deletedDocuments: 2, deletedChunks: 0),
            .init(file: "a.kbseg", chunks: 2, documents: 1, bytes: 1, deletions: "x.kbdel", deletedDocuments: 1, deletedChunks: 3),
            // Counts no segment can have, whose sums over a manifest would overflow.
            .init(file: "a.kbseg", chunks: 1, documents: 1, bytes: Int.max / 2),
            .init(file: "a.kbseg", chunks: 1 << 41, documents: 1, bytes: 1),
        ]
        for s in bad {
            try Manifest(model: model, segments: [s]).write(to: dir.path)
            XCTAssertThrowsError(try Manifest.read(from: dir.path), "\(s)") { e in
                guard case .damaged = e as? ManifestError else { return XCTFail("\(e)") }
            }
        }
    }
}
