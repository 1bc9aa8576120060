import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

/// The model descriptor's two versions (format-spec.md §8.3): exact encodings, the header and
/// manifest versions they come with, validation at read, and compatibility (§8.3.3).
final class ModelDescriptorVersionTests: TempDirTestCase {
    static let weights = String(repeating: "ab", count: 32)

    static let v1 = ModelDescriptor(name: "all-MiniLM-L6-v2", dimensions: 3, pooling: "mean", normalized: true, maxTokens: 256,
                                    weightsSHA256: weights)
    static let e5 = ModelDescriptor.local(name: "e5-small-v2", dimensions: 3, pooling: "mean", normalized: true, maxTokens: 512,
                                          weightsSHA256: weights, queryPrompt: "query: ", documentPrompt: "passage: ")
    static let bge = ModelDescriptor.local(name: "bge-small-en-v1.5", dimensions: 3, pooling: "cls", normalized: true, maxTokens: 512,
                                           weightsSHA256: weights, precision: "int8",
                                           queryPrompt: "Represent this sentence for searching relevant passages: ")
    static let openai = ModelDescriptor.remote(provider: "openai", url: "https://api.openai.com/v1", model: "text-embedding-3-small",
                                               dimensions: 3, normalized: true, maxTokens: 8191)
    static let ollama = ModelDescriptor.remote(provider: "ollama", url: "http://127.0.0.1:11434", model: "nomic-embed-text",
                                               dimensions: 3, normalized: true, maxTokens: 8192, documentPrompt: "search_document: ")

    func json(_ d: ModelDescriptor) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(d), as: UTF8.self)
    }

    func decode(_ json: String) throws -> ModelDescriptor {
        try JSONDecoder().decode(ModelDescriptor.self, from: Data(json.utf8))
    }

    /// A one-chunk segment written with `model`: its path and bytes.
    func segment(_ model: ModelDescriptor, name: String = "seg.kbseg") throws -> (path: String, bytes: [UInt8]) {
        let w = SegmentWriter(model: model)
        w.addDocument(DocumentRecord(path: "a.md", size: 5, mtimeNanoseconds: 0, contentSHA256: [UInt8](repeating: 1, count: 32), title: "A"))
        w.addChunk(ChunkRecord(document: 0, ordinal: 0, lineStart: 1, lineEnd: 1, byteStart: 0, byteEnd: 5, headingPath: []),
                   text: "hello", vector: [Float](repeating: 0.5, count: model.dimensions))
        let p = path(name)
        _ = try w.write(to: p)
        return (p, [UInt8](try Data(contentsOf: URL(fileURLWithPath: p))))
    }

    // MARK: Encoding and versions

    func testVersion1IsByteIdenticalToBefore() throws {
        // §8.3.1's encoding, as kbindex wrote it before version 2 existed.
        let before = #"{"dimensions":3,"maxTokens":256,"name":"all-MiniLM-L6-v2","normalized":true,"pooling":"mean","weightsSHA256":""# + Self.weights + #""}"#
        XCTAssertEqual(try json(Self.v1), before)
        // `local` without prompts (or with empty ones) is version 1, equal to the old initializer's.
        for (q, p) in [(nil, nil), ("", ""), ("", nil)] as [(String?, String?)] {
            let d = ModelDescriptor.local(name: "all-MiniLM-L6-v2", dimensions: 3, pooling: "mean", normalized: true, maxTokens: 256,
                                          weightsSHA256: Self.weights, queryPrompt: q, documentPrompt: p)
            XCTAssertEqual(d, Self.v1)
            XCTAssertNil(d.version)
            XCTAssertFalse(d.isRemote)
            XCTAssertEqual(try json(d), before)
        }
        // A version-1 segment: header version 1; a version-1 manifest model: formatVersion 2.
        let (p, bytes) = try segment(Self.v1)
        XCTAssertEqual(bytes[8..<12], [1, 0, 0, 0])
        XCTAssertEqual(try SegmentReader(path: p).model, Self.v1)
        XCTAssertEqual(Manifest(model: Self.v1, segments: []).formatVersion, 2)
        XCTAssertEqual(SegmentFormat.version(for: Self.v1), 1)
    }

    /// §15's worked example (with the LEXICAL section kbindex now writes) and a version-1 model:
    /// the whole file is what kbindex wrote before version 2 existed. (When this test was
    /// written, `kbindex build` of one folder by the kbindex before version 2 and by this one
    /// gave identical segment files; the only writer change is the header version, 1 here.
    /// The hash pins the output from now on.)
    func testAVersion1SegmentIsByteIdenticalToBefore() throws {
        let bytes = try workedExample(Self.v1)
        XCTAssertEqual(bytes[8], 1)
        XCTAssertEqual("\(bytes.count) \(Hashing.sha256Hex(Data(bytes)))", "1360 194cc9a6e8ebdb67795d1df01d0330030a9d27fb5b685485d853f8b9816b821e")
    }

    /// §15: the worked example with a version-2 descriptor differs only where the spec says.
    func testAVersion2SegmentDiffersOnlyInVersionAndModel() throws {
        let old = try workedExample(Self.v1), new = try workedExample(Self.e5)
        XCTAssertEqual(new[8..<12], [2, 0, 0, 0])
        XCTAssertEqual(old[12..<56], new[12..<56])
        let n = Int(old[16])
        var modelOffset = 0
        for i in 0..<n {
            let e = 64 + 32 * i
            if old[e] == UInt8(SectionKind.model.rawValue) {
                modelOffset = Int(MalformedSegmentTests.le(old, e + 8, 8))
                XCTAssertEqual(old[e + 8..<e + 16], new[e + 8..<e + 16], "MODEL offset")
            } else {
                XCTAssertEqual(old[e..<e + 32], new[e..<e + 32], "directory entry \(i)")
            }
        }
        XCTAssertEqual(Int(MalformedSegmentTests.le(old, 56, 8)), old.count)
        XCTAssertEqual(Int(MalformedSegmentTests.le(new, 56, 8)), new.count)
        XCTAssertEqual(old[(64 + 32 * n)..<modelOffset], new[(64 + 32 * n)..<modelOffset], "every section before MODEL")
        XCTAssertEqual(String(decoding: new[modelOffset...].prefix { $0 != 0 }, as: UTF8.self), try json(Self.e5))
    }

    func workedExample(_ model: ModelDescriptor) throws -> [UInt8] {
        let w = SegmentWriter(model: model)
        w.addDocument(DocumentRecord(path: "guide/install.md", size: 120, mtimeNanoseconds: 1_700_000_000_000_000_000,
                                     contentSHA256: [UInt8](repeating: 0x11, count: 32), title: "Install"))
        w.addChunk(ChunkRecord(document: 0, ordinal: 0, lineStart: 1, lineEnd: 3, byteStart: 0, byteEnd: 60, headingPath: ["Install"]),
                   text: "# Install\nRun make.\n", vector: [0.6, -0.8, 0])
        w.addChunk(ChunkRecord(document: 0, ordinal: 1, lineStart: 4, lineEnd: 5, byteStart: 60, byteEnd: 120, headingPath: ["Install", "Linux"]),
                   text: "Use apt.\n", vector: [0.1, 0.2, 0.3])
        let p = path("worked-\(UUID().uuidString).kbseg")
        _ = try w.write(to: p)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
    }

    func testVersion2EncodingsAreTheSpecsExamples() throws {
        var e5 = Self.e5
        e5.dimensions = 384
        XCTAssertEqual(try json(e5), #"{"dimensions":384,"documentPrompt":"passage: ","maxTokens":512,"name":"e5-small-v2","normalized":true,"pooling":"mean","provider":"local","queryPrompt":"query: ","version":2,"weightsSHA256":""# + Self.weights + #""}"#)
        var ollama = Self.ollama
        ollama.dimensions = 768
        ollama.documentPrompt = nil
        XCTAssertEqual(try json(ollama), #"{"dimensions":768,"maxTokens":8192,"model":"nomic-embed-text","name":"nomic-embed-text","normalized":true,"provider":"ollama","url":"http:\/\/127.0.0.1:11434","version":2}"#)
        // §15's remote example, in a segment and pretty-printed in its manifest.
        XCTAssertEqual(try json(Self.openai), #"{"dimensions":3,"maxTokens":8191,"model":"text-embedding-3-small","name":"text-embedding-3-small","normalized":true,"provider":"openai","url":"https:\/\/api.openai.com\/v1","version":2}"#)
        let manifest = String(decoding: try Manifest(model: Self.openai, segments: []).encoded(), as: UTF8.self)
        XCTAssertTrue(manifest.contains("""
              "formatVersion" : 3,
              "model" : {
                "dimensions" : 3,
                "maxTokens" : 8191,
                "model" : "text-embedding-3-small",
                "name" : "text-embedding-3-small",
                "normalized" : true,
                "provider" : "openai",
                "url" : "https://api.openai.com/v1",
                "version" : 2
              },
            """), manifest)
        XCTAssertTrue(Self.openai.isRemote)
        XCTAssertFalse(Self.e5.isRemote)
        XCTAssertNil(Self.openai.pooling)
        XCTAssertNil(Self.openai.weightsSHA256)
    }

    func testEveryVersionRoundTripsThroughSegmentsManifestsAndTheSpecReaderShape() throws {
        let all: [(ModelDescriptor, UInt8, Int)] = [
            (Self.v1, 1, 2), (Self.e5, 2, 3), (Self.bge, 2, 3), (Self.openai, 2, 3), (Self.ollama, 2, 3),
        ]
        for (i, (d, header, manifestVersion)) in all.enumerated() {
            let (p, bytes) = try segment(d, name: "seg-\(i).kbseg")
            XCTAssertEqual(bytes[8], header, "\(d.name)")
            let r = try SegmentReader(path: p)
            try r.verify()
            XCTAssertEqual(r.model, d)

            let sub = dir.appendingPathComponent("m\(i)")
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            try Manifest(model: d, segments: [.init(file: "seg.kbseg", chunks: 1, documents: 1, bytes: bytes.count)]).write(to: sub.path)
            let text = try String(contentsOf: sub.appendingPathComponent(Manifest.fileName), encoding: .utf8)
            XCTAssertTrue(text.contains("\"formatVersion\" : \(manifestVersion),"), text)
            let m = try Manifest.read(from: sub.path)
            XCTAssertEqual(m.model, d)
            XCTAssertEqual(m.formatVersion, manifestVersion)
            // Written as §13.2 says: no API key, the URL as given.
            if let url = d.url { XCTAssertTrue(text.contains("\"url\" : \"\(url)\""), text) }
        }
    }

    func testAManifestWhoseModelWasReplacedIsWrittenWithTheVersionItNeeds() throws {
        var m = Manifest(model: Self.v1, segments: [])
        XCTAssertEqual(m.formatVersion, 2)
        m.model = Self.openai
        try m.write(to: dir.path)
        XCTAssertEqual(try Manifest.read(from: dir.path).formatVersion, 3)
        // A version-1 manifest (tests write them as old kbindex versions did) stays version 1.
        try Manifest(formatVersion: 1, model: Self.v1, segments: []).write(to: dir.path)
        XCTAssertEqual(try Manifest.read(from: dir.path).formatVersion, 1)
    }

    // MARK: Validation

    enum Expected: Equatable { case ok, invalid(String), unsupported(Int) }

    func outcome(_ json: String) -> Expected {
        do { _ = try decode(json); return .ok } catch let e as ModelDescriptorError {
            switch e {
            case .invalid(let why): return .invalid(why)
            case .unsupportedVersion(let v): return .unsupported(v)
            }
        } catch { return .invalid("not JSON: \(error)") }
    }

    func testVersion1Validation() throws {
        let keys: [(String, String)] = [("name", #""m""#), ("dimensions", "3"), ("pooling", #""mean""#), ("normalized", "true"),
                                        ("maxTokens", "256"), ("weightsSHA256", "\"\(Self.weights)\"")]
        func object(_ pairs: [(String, String)]) -> String { "{" + pairs.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}" }
        XCTAssertEqual(outcome(object(keys)), .ok)
        for (i, (key, _)) in keys.enumerated() {
            var missing = keys
            missing.remove(at: i)
            XCTAssertEqual(outcome(object(missing)), .invalid("it has no \"\(key)\""), key)
            var null = keys
            null[i].1 = "null"
            XCTAssertEqual(outcome(object(null)), .invalid("it has no \"\(key)\""), key)
        }
        for (key, bad, what) in [("dimensions", #""3""#, "an integer"), ("normalized", "1", "a boolean"), ("pooling", "5", "a string"),
                                 ("name", "[]", "a string"), ("weightsSHA256", "{}", "a string"), ("maxTokens", "true", "an integer")] {
            var wrong = keys
            wrong[wrong.firstIndex { $0.0 == key }!].1 = bad
            XCTAssertEqual(outcome(object(wrong)), .invalid("\"\(key)\" is not \(what)"), "\(key) = \(bad)")
        }
        XCTAssertEqual(outcome(object(keys + [("precision", "8")])), .invalid("\"precision\" is not a string"))
        XCTAssertEqual(outcome("[1, 2]"), .invalid("it is not a JSON object"))
        XCTAssertEqual(outcome("\"model\""), .invalid("it is not a JSON object"))

        // `version` absent, null or 1: version 1, whose readers ignore version 2's keys (even mistyped).
        for version in ["null", "1"] {
            let d = try decode(object(keys + [("version", version)]))
            XCTAssertNil(d.version)
        }
        let ignored = try decode(object(keys + [("provider", "5"), ("queryPrompt", #""query: ""#), ("url", "[]")]))
        XCTAssertNil(ignored.provider)
        XCTAssertNil(ignored.queryPrompt)
        XCTAssertNil(ignored.url)
        XCTAssertEqual(ignored, try decode(object(keys)))

        // Another version: unsupported (a later kbindex's), not damage; not an integer: damage.
        for v in [0, 3, 7, -1, 1 << 40] { XCTAssertEqual(outcome(object(keys + [("version", "\(v)")])), .unsupported(v)) }
        XCTAssertEqual(outcome(object(keys + [("version", #""2""#)])), .invalid("\"version\" is not an integer"))
        XCTAssertEqual(ModelDescriptorError.unsupportedVersion(3).description, "the model descriptor has version 3; this kbindex reads versions 1 and 2")
    }

    func testVersion2Validation() throws {
        func object(_ pairs: [(String, String?)]) -> String {
            "{" + pairs.compactMap { k, v in v.map { "\"\(k)\":\($0)" } }.joined(separator: ",") + "}"
        }
        let common: [(String, String?)] = [("version", "2"), ("name", #""m""#), ("dimensions", "3"), ("normalized", "true"), ("maxTokens", "512")]
        let local = common + [("provider", #""local""#), ("pooling", #""cls""#), ("weightsSHA256", "\"\(Self.weights)\"")]
        let remote = common + [("provider", #""openai""#), ("model", #""text-embedding-3-small""#), ("url", #""http:\/\/h:1\/v1""#)]
        func with(_ base: [(String, String?)], _ key: String, _ value: String?) -> String {
            var b = base
            if let i = b.firstIndex(where: { $0.0 == key }) { b[i].1 = value } else { b.append((key, value)) }
            return object(b)
        }
        XCTAssertEqual(outcome(object(local)), .ok)
        XCTAssertEqual(outcome(object(remote)), .ok)
        XCTAssertEqual(try decode(object(remote)).url, "http://h:1/v1")

        for key in ["name", "dimensions", "normalized", "maxTokens", "provider"] {
            XCTAssertEqual(outcome(with(local, key, nil)), .invalid("it has no \"\(key)\""), key)
            XCTAssertEqual(outcome(with(remote, key, "null")), .invalid("it has no \"\(key)\""), key)
        }
        XCTAssertEqual(outcome(with(local, "provider", #""""#)), .invalid("\"provider\" is empty"))
        XCTAssertEqual(outcome(with(local, "provider", "1")), .invalid("\"provider\" is not a string"))
        // Local: pooling and weights required, model and url absent (null counts as absent).
        XCTAssertEqual(outcome(with(local, "pooling", nil)), .invalid("it has no \"pooling\""))
        XCTAssertEqual(outcome(with(local, "weightsSHA256", nil)), .invalid("it has no \"weightsSHA256\""))
        XCTAssertEqual(outcome(with(local, "url", #""http:\/\/h""#)), .invalid("\"url\" is not allowed for a local model"))
        XCTAssertEqual(outcome(with(local, "model", #""m""#)), .invalid("\"model\" is not allowed for a local model"))
        XCTAssertEqual(outcome(with(local, "model", "null")), .ok)
        // Remote: model and url required and not empty; pooling and weights absent.
        XCTAssertEqual(outcome(with(remote, "model", nil)), .invalid("it has no \"model\""))
        XCTAssertEqual(outcome(with(remote, "url", nil)), .invalid("it has no \"url\""))
        XCTAssertEqual(outcome(with(remote, "model", #""""#)), .invalid("\"model\" is empty"))
        XCTAssertEqual(outcome(with(remote, "url", #""""#)), .invalid("\"url\" is empty"))
        XCTAssertEqual(outcome(with(remote, "url", "5")), .invalid("\"url\" is not a string"))
        XCTAssertEqual(outcome(with(remote, "pooling", #""mean""#)), .invalid("\"pooling\" is not allowed for a remote model"))
        XCTAssertEqual(outcome(with(remote, "weightsSHA256", "\"\(Self.weights)\"")), .invalid("\"weightsSHA256\" is not allowed for a remote model"))
        XCTAssertEqual(outcome(with(remote, "pooling", "null")), .ok)
        // Prompts: optional strings, "" = none.
        XCTAssertEqual(outcome(with(local, "queryPrompt", "5")), .invalid("\"queryPrompt\" is not a string"))
        XCTAssertEqual(outcome(with(remote, "documentPrompt", "[]")), .invalid("\"documentPrompt\" is not a string"))
        XCTAssertNil(try decode(with(local, "documentPrompt", #""""#)).documentPrompt)
        XCTAssertEqual(try decode(with(local, "documentPrompt", #""passage: ""#)).documentPrompt, "passage: ")
        // A provider this kbindex does not know: readable (as a remote model), not embeddable here.
        let later = try decode(with(remote, "provider", #""cohere""#))
        XCTAssertTrue(later.isRemote)
        XCTAssertFalse(ModelDescriptor.knownProviders.contains(later.provider!))
        XCTAssertEqual(outcome(with(local, "provider", #""cohere""#)), .invalid("it has no \"model\""))
        // A version-2 local descriptor without prompts means what the version-1 one does.
        let plain = try decode(object(local))
        XCTAssertEqual(plain.version, 2)
        XCTAssertNil(plain.incompatibility(with: ModelDescriptor(name: "x", dimensions: 3, pooling: "cls", normalized: true, maxTokens: 1,
                                                                 weightsSHA256: Self.weights.uppercased())))
    }

    // MARK: Segments and manifests that carry a descriptor of the wrong version

    func testSegmentVersionsAndModelVersions() throws {
        // A version-2 MODEL in a version-1 segment (header changed, checksums resealed): damage.
        var (p, b) = try segment(Self.e5)
        XCTAssertEqual(b[8], 2)
        MalformedSegmentTests.setLE(&b, 8, 4, 1)
        MalformedSegmentTests.reseal(&b)
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SegmentReader(path: p)) { e in
            XCTAssertEqual(e as? SegmentError, .corrupt(file: p, reason: "a version-1 segment has a version-2 MODEL section"))
        }
        // A version-1 MODEL in a version-2 segment: fine.
        (p, b) = try segment(Self.v1)
        MalformedSegmentTests.setLE(&b, 8, 4, 2)
        MalformedSegmentTests.reseal(&b)
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertEqual(try SegmentReader(path: p).model, Self.v1)
        // A later descriptor version: unsupported, in either segment version.
        var later = Self.openai
        later.version = 3
        for header: UInt64 in [1, 2] {
            (p, b) = try segment(later)
            MalformedSegmentTests.setLE(&b, 8, 4, header)
            MalformedSegmentTests.reseal(&b)
            try Data(b).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try SegmentReader(path: p)) { e in
                XCTAssertEqual(e as? SegmentError, .unsupportedModelVersion(file: p, version: 3))
                XCTAssertEqual("\(e)", "segment \(p) has a model descriptor of version 3; this kbindex reads versions 1 and 2")
            }
        }
        // A damaged descriptor names what is wrong.
        var broken = Self.openai
        broken.url = nil
        (p, b) = try segment(broken)
        XCTAssertThrowsError(try SegmentReader(path: p)) { e in
            XCTAssertEqual(e as? SegmentError, .corrupt(file: p, reason: "the MODEL section is not a valid model descriptor: it has no \"url\""))
        }
        // A later segment version.
        (p, b) = try segment(Self.v1)
        MalformedSegmentTests.setLE(&b, 8, 4, 3)
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try SegmentReader(path: p)) { e in
            XCTAssertEqual("\(e)", "segment \(p) has format version 3; this kbindex reads versions 1 and 2")
        }
    }

    func testManifestVersionsAndModelVersions() throws {
        func put(_ m: Manifest) throws {
            try ChecksummedJSON.encode(m).write(to: URL(fileURLWithPath: path(Manifest.fileName)))
        }
        // A version-2 descriptor in a formatVersion-2 manifest (as an old writer never makes it): damage.
        try put(Manifest(formatVersion: 2, model: Self.e5, segments: []))
        XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
            XCTAssertEqual(e as? ManifestError, .damaged(dir: dir.path, reason: "a version-2 model descriptor in a manifest of format version 2"))
        }
        // A version-1 descriptor in a formatVersion-3 manifest: fine.
        try put(Manifest(formatVersion: 3, model: Self.v1, segments: []))
        XCTAssertEqual(try Manifest.read(from: dir.path).model, Self.v1)
        // A descriptor version this kbindex does not know.
        var later = Self.openai
        later.version = 9
        try put(Manifest(formatVersion: 3, model: later, segments: []))
        XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
            XCTAssertEqual(e as? ManifestError, .damaged(dir: dir.path, reason: "the model descriptor has version 9; this kbindex reads versions 1 and 2"))
        }
        // A damaged descriptor.
        var broken = Self.e5
        broken.weightsSHA256 = nil
        try put(Manifest(formatVersion: 3, model: broken, segments: []))
        XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
            XCTAssertEqual(e as? ManifestError, .damaged(dir: dir.path, reason: "the model descriptor is invalid: it has no \"weightsSHA256\""))
        }
        // A later manifest version.
        try put(Manifest(formatVersion: 4, model: Self.v1, segments: []))
        XCTAssertThrowsError(try Manifest.read(from: dir.path)) { e in
            XCTAssertEqual("\(e)", "the index in \(dir.path) has format version 4; this kbindex reads versions 1, 2 and 3")
        }
    }

    // MARK: Compatibility (§8.3.3)

    func testLocalCompatibility() {
        // Version 1 and a version-2 local descriptor of the same weights and no document prompt.
        let queryOnly = ModelDescriptor.local(name: "other name", dimensions: 3, pooling: "mean", normalized: true, maxTokens: 9,
                                              weightsSHA256: Self.weights.uppercased(), queryPrompt: "q: ")
        XCTAssertEqual(queryOnly.version, 2)
        XCTAssertNil(Self.v1.incompatibility(with: queryOnly))
        XCTAssertNil(queryOnly.incompatibility(with: Self.v1))
        XCTAssertTrue(Self.v1.sameVectors(as: queryOnly))

        // The document prompt is part of the vectors.
        var e5bare = Self.e5
        e5bare.documentPrompt = nil
        XCTAssertEqual(Self.e5.incompatibility(with: e5bare),
                       "index was built with e5-small-v2 (3 dims), the query model is e5-small-v2 (3 dims, the index's documents were embedded with the prompt 'passage: ', the query model's with none)")
        XCTAssertEqual(Self.v1.incompatibility(with: Self.e5),
                       "index was built with all-MiniLM-L6-v2 (3 dims), the query model is e5-small-v2 (3 dims, the index's documents were embedded with none, the query model's with the prompt 'passage: ')")
        var otherQuery = Self.e5
        otherQuery.queryPrompt = "question: "
        XCTAssertNil(Self.e5.incompatibility(with: otherQuery))

        // Weights, pooling, normalization as before (the messages of ManifestTests are unchanged).
        XCTAssertEqual(Self.bge.incompatibility(with: Self.v1),
                       "index was built with bge-small-en-v1.5 (3 dims), the query model is all-MiniLM-L6-v2 (3 dims, mean pooling instead of cls)")
        var otherWeights = Self.v1
        otherWeights.weightsSHA256 = String(repeating: "cd", count: 32)
        XCTAssertEqual(Self.v1.incompatibility(with: otherWeights),
                       "index was built with all-MiniLM-L6-v2 (3 dims), the query model is all-MiniLM-L6-v2 (3 dims, different weights)")

        // Precision: compatible, not the same vectors.
        var int8 = Self.v1
        int8.precision = "int8"
        XCTAssertNil(Self.v1.incompatibility(with: int8))
        XCTAssertFalse(Self.v1.sameVectors(as: int8))
        XCTAssertTrue(int8.sameVectors(as: int8))
    }

    func testRemoteCompatibility() {
        // The same model through another provider or URL: compatible, the same vectors.
        let proxied = ModelDescriptor.remote(provider: "ollama", url: "http://proxy:8080", model: "text-embedding-3-small",
                                             dimensions: 3, normalized: true, maxTokens: 1, queryPrompt: "q: ")
        XCTAssertNil(Self.openai.incompatibility(with: proxied))
        XCTAssertTrue(Self.openai.sameVectors(as: proxied))

        var otherModel = Self.openai
        otherModel.model = "text-embedding-3-large"
        otherModel.name = "text-embedding-3-large"
        otherModel.dimensions = 4
        XCTAssertEqual(Self.openai.incompatibility(with: otherModel),
                       "index was built with openai model text-embedding-3-small (3 dims) at https://api.openai.com/v1, the query model is openai model text-embedding-3-large (4 dims, a different model)")
        var prompted = Self.openai
        prompted.documentPrompt = "passage: "
        XCTAssertEqual(Self.openai.incompatibility(with: prompted),
                       "index was built with openai model text-embedding-3-small (3 dims) at https://api.openai.com/v1, the query model is openai model text-embedding-3-small (3 dims, the index's documents were embedded with none, the query model's with the prompt 'passage: ')")
        var unnormalized = Self.openai
        unnormalized.normalized = false
        XCTAssertNotNil(Self.openai.incompatibility(with: unnormalized))
        XCTAssertNil(Self.ollama.incompatibility(with: Self.ollama))
    }

    func testLocalAndRemoteAreNeverCompatible() {
        // Not even with the same name and dimensions.
        let remoteMini = ModelDescriptor.remote(provider: "openai", url: "http://127.0.0.1:8080/v1", model: "all-MiniLM-L6-v2",
                                                dimensions: 3, normalized: true, maxTokens: 256)
        XCTAssertEqual(Self.v1.incompatibility(with: remoteMini),
                       "index was built with the local model all-MiniLM-L6-v2 (3 dims), the query model is openai model all-MiniLM-L6-v2 (3 dims) at http://127.0.0.1:8080/v1")
        XCTAssertEqual(remoteMini.incompatibility(with: Self.v1),
                       "index was built with openai model all-MiniLM-L6-v2 (3 dims) at http://127.0.0.1:8080/v1, the query model is the local model all-MiniLM-L6-v2 (3 dims)")
        XCTAssertFalse(Self.v1.sameVectors(as: remoteMini))
        XCTAssertNotNil(Self.e5.incompatibility(with: Self.ollama))
    }
}
