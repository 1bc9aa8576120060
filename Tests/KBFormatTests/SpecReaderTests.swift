import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

/// Checks format-spec.md against the code: segments written by `SegmentWriter` are read by
/// `Tests/SpecReader/read_segment.py`, a reader written from the spec alone (Python standard
/// library + `lz4.block`), and everything it reports must equal what was written and what
/// `SegmentReader` reads. Damaged copies must be rejected by both readers for the same reason.
///
/// Needs `python3` with the `lz4` module in `<repo>/.pydeps` (scripts/test.sh installs it).
/// Without them these tests fail; they never skip.
final class SpecReaderTests: TempDirTestCase {
    /// The repository root: this file is <root>/Tests/KBFormatTests/SpecReaderTests.swift.
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let script = repoRoot.appendingPathComponent("Tests/SpecReader/read_segment.py").path
    static let setupHint = "run scripts/test.sh, which installs the Python lz4 module into \(repoRoot.appendingPathComponent(".pydeps").path)"

    struct PythonRun {
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `python3 ARGS` with PYTHONPATH=<repo>/.pydeps; stdout and stderr go through files, so a
    /// large JSON dump cannot fill a pipe and block the child.
    func python(_ args: [String]) throws -> PythonRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        var env = ProcessInfo.processInfo.environment
        let deps = Self.repoRoot.appendingPathComponent(".pydeps").path
        env["PYTHONPATH"] = [deps, env["PYTHONPATH"] ?? ""].filter { !$0.isEmpty }.joined(separator: ":")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        p.environment = env
        let id = UUID().uuidString
        let outPath = path("py-\(id).out"), errPath = path("py-\(id).err")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw SetupError(description: "cannot run python3 (\(error)): \(Self.setupHint)") }
        p.waitUntilExit()
        try out.close()
        try err.close()
        return PythonRun(
            status: p.terminationStatus, stdout: try Data(contentsOf: URL(fileURLWithPath: outPath)),
            stderr: try String(contentsOfFile: errPath, encoding: .utf8))
    }

    /// Throws (so the test fails, never skips) when python3 or its lz4 module is missing.
    func requirePython() throws {
        let r = try python(["-c", "import sys, lz4.block; assert sys.version_info >= (3, 8)"])
        guard r.status == 0 else {
            let why = r.status == 127 ? "python3 is not on PATH" : "python3 cannot import lz4.block (\(r.stderr.split(separator: "\n").last ?? ""))"
            throw SetupError(description: "\(why): \(Self.setupHint)")
        }
    }

    // MARK: The spec reader's JSON (keys converted from snake_case)

    struct Dump: Decodable {
        struct Header: Decodable {
            let version: Int, flags: Int, sectionCount: Int, dimensions: Int, documentCount: Int, chunkCount: Int
            let rowStride: Int, textBlockSize: Int, textBlockCount: Int, fileSize: Int
        }
        struct Document: Decodable {
            let path: String, title: String, size: UInt64, mtimeNs: Int64, contentSha256: String
        }
        struct Chunk: Decodable {
            let document: UInt32, ordinal: UInt32, lineStart: UInt32, lineEnd: UInt32, byteStart: UInt64, byteEnd: UInt64
            let headingPath: [String]
            let textBlock: UInt32, textOffset: UInt32, textLength: UInt32
            let unit: String
            let text: String
            let scale: Double, sum: Int32
            let vector: [Double]
        }
        let header: Header
        let model: ModelDescriptor
        let documents: [Document]
        let chunks: [Chunk]
        struct Lexical: Decodable {
            let tokenizer: Int
            let chunkLengths: [Int]
            /// [term, [[chunk, tf], …]] in dictionary order (a list, not an object: Swift
            /// dictionaries would merge canonically equivalent terms).
            let terms: [Term]
            struct Term: Decodable {
                let term: String, entries: [[Int]]
                init(from d: Decoder) throws {
                    var c = try d.unkeyedContainer()
                    term = try c.decode(String.self)
                    entries = try c.decode([[Int]].self)
                }
            }
        }
        let lexical: Lexical?
    }

    // MARK: Random segments

    static let pieces: [String] = [
        "the ", "index ", "segment ", "chunk. ", "中文", "日本語のテキスト", "한국어 ", "🙂", "👩‍👩‍👧", "🏳️‍🌈", "é", "e\u{301}",
        "\u{0}", "\"quoted\"", "\\", "\n", "\t", "\r\n", "\u{2028}", "\u{FEFF}", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "العربية", "Ω", "{\"json\": [1, 2]}",
        "</script>", "/path/to/file.md", "\u{7F}", "ß",
    ]

    static func text(_ rng: inout SeededRNG, bytes: Int) -> String {
        var s = ""
        while s.utf8.count < bytes { s += pieces.randomElement(using: &rng)! }
        return s
    }

    struct Input {
        var model: ModelDescriptor
        var blockSize: Int
        var documents: [DocumentRecord] = []
        var chunks: [(record: ChunkRecord, text: String, vector: [Float])] = []

        func write(to p: String) throws {
            let w = SegmentWriter(model: model, textBlockSize: blockSize)
            for d in documents { w.addDocument(d) }
            for c in chunks { w.addChunk(c.record, text: c.text, vector: c.vector) }
            _ = try w.write(to: p)
        }
    }

    /// Several documents; chunks with empty, short unicode and long (over a block) texts,
    /// heading paths (including "é" and its canonically equivalent "e\u{301}", and ""), and
    /// vectors of every magnitude, some all zero.
    static func input(seed: UInt64, dims: Int, documents nd: Int, chunks nc: Int, blockSize: Int) -> Input {
        var rng = SeededRNG(seed: seed)
        var input = Input(
            model: ModelDescriptor(
                name: "spec-model-" + text(&rng, bytes: 6), dimensions: dims, pooling: ["mean", "cls", "max"].randomElement(using: &rng)!,
                normalized: Bool.random(using: &rng), maxTokens: Int.random(in: 1...8192, using: &rng),
                weightsSHA256: (0..<32).map { _ in String(format: "%02X", UInt8.random(in: 0...255, using: &rng)) }.joined(),
                // Both precisions (§8.3): the key absent for float32, "int8" for every other seed.
                precision: seed % 2 == 0 ? "int8" : nil),
            blockSize: blockSize)
        for i in 0..<nd {
            input.documents.append(DocumentRecord(
                path: "docs/\(i)/" + text(&rng, bytes: Int.random(in: 0...20, using: &rng)) + ".md",
                size: i == 0 ? UInt64.max : UInt64.random(in: 0...UInt64.max, using: &rng),
                mtimeNanoseconds: i == 0 ? Int64.min : i == 1 ? Int64.max : Int64.random(in: Int64.min...Int64.max, using: &rng),
                contentSHA256: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) },
                title: i == 1 ? "" : text(&rng, bytes: Int.random(in: 0...30, using: &rng))))
        }
        let headings = ["é", "e\u{301}", "", "Guide", "安装", "🙂 Emoji", "Install / Linux"] + (0..<4).map { _ in text(&rng, bytes: 12) }
        var ordinals = [UInt32](repeating: 0, count: nd)
        for i in 0..<nc {
            let text: String
            switch i % 10 {
            case 0, 5: text = ""
            case 3: text = Self.text(&rng, bytes: Int.random(in: blockSize...3 * blockSize, using: &rng))  // a block of its own
            default: text = Self.text(&rng, bytes: Int.random(in: 1...blockSize / 3, using: &rng))
            }
            let magnitude: Float = [1, 1e-3, 1e3, 1e-30, 0].randomElement(using: &rng)!
            let vector = (0..<dims).map { _ in Float.random(in: -1...1, using: &rng) * magnitude }
            let doc = UInt32.random(in: 0..<UInt32(nd), using: &rng)
            let rec = ChunkRecord(
                document: doc, ordinal: ordinals[Int(doc)], lineStart: UInt32.random(in: 1...UInt32.max, using: &rng),
                lineEnd: UInt32.random(in: 1...UInt32.max, using: &rng), byteStart: UInt64.random(in: 0...UInt64.max, using: &rng),
                byteEnd: i == 1 ? UInt64.max : UInt64.random(in: 0...UInt64.max, using: &rng),
                headingPath: (0..<Int.random(in: 0...4, using: &rng)).map { _ in headings.randomElement(using: &rng)! },
                unit: LocationUnit.allCases[i % LocationUnit.allCases.count])
            ordinals[Int(doc)] += 1
            input.chunks.append((rec, text, vector))
        }
        return input
    }

    // MARK: Tests

    func compare(_ input: Input, file: StaticString = #filePath, line: UInt = #line) throws {
        let p = path("seg-\(UUID().uuidString).kbseg")
        try input.write(to: p)
        let r = try SegmentReader(path: p)
        try r.verify()
        XCTAssertGreaterThan(r.textBlockCount, 2, "the test should span several text blocks", file: file, line: line)

        let run = try python([Self.script, p, "--json"])
        XCTAssertEqual(run.status, 0, "read_segment.py rejected a valid segment: \(run.stderr)", file: file, line: line)
        guard run.status == 0 else { return }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let dump = try dec.decode(Dump.self, from: run.stdout)
        compareLexical(dump, input, file: file, line: line)

        // Header and model.
        let h = dump.header
        XCTAssertEqual(h.version, Int(SegmentFormat.version(for: input.model)), file: file, line: line)
        XCTAssertEqual(h.flags, 0, file: file, line: line)
        XCTAssertEqual(h.sectionCount, 10, file: file, line: line)
        XCTAssertEqual(h.dimensions, input.model.dimensions, file: file, line: line)
        XCTAssertEqual(h.rowStride, r.rowStride, file: file, line: line)
        XCTAssertEqual(h.rowStride, (input.model.dimensions + 63) / 64 * 64, file: file, line: line)
        XCTAssertEqual(h.documentCount, input.documents.count, file: file, line: line)
        XCTAssertEqual(h.chunkCount, input.chunks.count, file: file, line: line)
        XCTAssertEqual(h.textBlockSize, input.blockSize, file: file, line: line)
        XCTAssertEqual(h.textBlockCount, r.textBlockCount, file: file, line: line)
        XCTAssertEqual(h.fileSize, r.fileSize, file: file, line: line)
        XCTAssertEqual(dump.model, input.model, file: file, line: line)
        XCTAssertEqual(Array(dump.model.name.utf8), Array(input.model.name.utf8), file: file, line: line)
        XCTAssertEqual(dump.model.weightsSHA256, input.model.weightsSHA256, file: file, line: line)
        XCTAssertEqual(r.model, input.model, file: file, line: line)

        // Documents: every field, strings byte for byte (String == would accept any
        // canonically equivalent string).
        XCTAssertEqual(dump.documents.count, input.documents.count, file: file, line: line)
        for (i, (d, want)) in zip(dump.documents, input.documents).enumerated() {
            let mine = r.document(i)
            XCTAssertEqual(Array(d.path.utf8), Array(want.path.utf8), "document \(i) path", file: file, line: line)
            XCTAssertEqual(Array(d.title.utf8), Array(want.title.utf8), "document \(i) title", file: file, line: line)
            XCTAssertEqual(Array(mine.path.utf8), Array(want.path.utf8), "document \(i) path (Swift reader)", file: file, line: line)
            XCTAssertEqual(Array(mine.title.utf8), Array(want.title.utf8), "document \(i) title (Swift reader)", file: file, line: line)
            XCTAssertEqual(d.size, want.size, "document \(i)", file: file, line: line)
            XCTAssertEqual(d.mtimeNs, want.mtimeNanoseconds, "document \(i)", file: file, line: line)
            XCTAssertEqual(d.contentSha256, want.contentSHA256.map { String(format: "%02x", $0) }.joined(), "document \(i)", file: file, line: line)
            XCTAssertEqual(mine, want, file: file, line: line)
        }

        // Chunks: every field, heading paths and text byte for byte, vectors against dequantized(i).
        XCTAssertEqual(dump.chunks.count, input.chunks.count, file: file, line: line)
        for (i, (c, want)) in zip(dump.chunks, input.chunks).enumerated() {
            let w = want.record
            XCTAssertEqual(c.document, w.document, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(c.ordinal, w.ordinal, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(c.lineStart, w.lineStart, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(c.lineEnd, w.lineEnd, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(c.byteStart, w.byteStart, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(c.byteEnd, w.byteEnd, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(c.unit, ["lines", "pages", "paragraphs"][Int(w.unit.rawValue)], "chunk \(i) unit", file: file, line: line)
            XCTAssertEqual(c.headingPath.map { Array($0.utf8) }, w.headingPath.map { Array($0.utf8) }, "chunk \(i) headings", file: file, line: line)
            XCTAssertEqual(r.chunk(i).headingPath.map { Array($0.utf8) }, w.headingPath.map { Array($0.utf8) }, "chunk \(i) headings (Swift reader)", file: file, line: line)
            XCTAssertEqual(Int(c.textLength), want.text.utf8.count, "chunk \(i)", file: file, line: line)
            XCTAssertEqual(Array(c.text.utf8), Array(want.text.utf8), "chunk \(i) text", file: file, line: line)
            XCTAssertEqual(Array(try r.text(ofChunk: i).utf8), Array(want.text.utf8), "chunk \(i) text (Swift reader)", file: file, line: line)
            if !want.text.isEmpty { XCTAssertLessThan(Int(c.textBlock), r.textBlockCount, "chunk \(i)", file: file, line: line) }

            XCTAssertEqual(Float(c.scale), r.scale(ofChunk: i), "chunk \(i) scale", file: file, line: line)
            XCTAssertEqual(c.sum, r.sum(ofChunk: i), "chunk \(i) sum", file: file, line: line)
            let deq = r.dequantized(i)
            XCTAssertEqual(c.vector.count, deq.count, "chunk \(i)", file: file, line: line)
            for (j, (py, sw)) in zip(c.vector, deq).enumerated() where abs(py - Double(sw)) > 1e-6 * abs(Double(sw)) {
                XCTFail("chunk \(i) value \(j): read_segment.py \(py), SegmentReader \(sw)", file: file, line: line)
                break
            }
        }
    }

    /// The LEXICAL section as read_segment.py decodes it equals each chunk's term counts.
    func compareLexical(_ dump: Dump, _ input: Input, file: StaticString = #filePath, line: UInt = #line) {
        guard let lex = dump.lexical else { return XCTFail("read_segment.py found no LEXICAL section", file: file, line: line) }
        // Keyed by UTF-8 bytes: String keys would merge canonically equivalent terms.
        var fromPostings = [[[UInt8]: Int]](repeating: [:], count: input.chunks.count)
        for t in lex.terms { for e in t.entries { fromPostings[e[0]][Array(t.term.utf8)] = e[1] } }
        XCTAssertEqual(lex.tokenizer, LexicalTokenizer.currentVersion, file: file, line: line)
        let order = lex.terms.map { Array($0.term.utf8) }
        XCTAssertEqual(order, order.sorted { $0.lexicographicallyPrecedes($1) }, "terms in byte order", file: file, line: line)
        for (i, c) in input.chunks.enumerated() {
            let want = Dictionary(LexicalTokenizer.counts(c.text).map { ($0.term, Int($0.tf)) }, uniquingKeysWith: +)
            XCTAssertEqual(fromPostings[i], want, "chunk \(i) terms", file: file, line: line)
            XCTAssertEqual(lex.chunkLengths[i], want.values.reduce(0, +), "chunk \(i) length", file: file, line: line)
        }
    }

    func testSpecReaderReadsWhatTheWriterWrote() throws {
        try requirePython()
        try compare(Self.input(seed: 1, dims: 100, documents: 5, chunks: 60, blockSize: SegmentFormat.textBlockSize))
    }

    func testSpecReaderWithSmallBlocksAndOddDimensions() throws {
        try requirePython()
        try compare(Self.input(seed: 2, dims: 385, documents: 7, chunks: 90, blockSize: 1024))
        try compare(Self.input(seed: 3, dims: 1, documents: 2, chunks: 40, blockSize: 4096))
        try compare(Self.input(seed: 4, dims: 63, documents: 1, chunks: 30, blockSize: 300))
    }

    /// Version-2 segments (format-spec.md §4, §8.3.2): a local model with prompts (unicode,
    /// quotes and slashes in them) and remote models; both readers read the same descriptor.
    func testSpecReaderReadsVersion2Segments() throws {
        try requirePython()
        var input = Self.input(seed: 6, dims: 70, documents: 3, chunks: 40, blockSize: 2048)
        let w = input.model.weightsSHA256!
        let models: [ModelDescriptor] = [
            .local(name: "e5-small-v2", dimensions: 70, pooling: "mean", normalized: true, maxTokens: 512, weightsSHA256: w,
                   queryPrompt: "query: ", documentPrompt: "passage: \"/\\ 中文 🙂\n"),
            .local(name: "bge", dimensions: 70, pooling: "cls", normalized: false, maxTokens: 512, weightsSHA256: w, precision: "int8",
                   queryPrompt: "Represent this sentence for searching relevant passages: "),
            .remote(provider: "openai", url: "https://api.openai.com/v1", model: "text-embedding-3-small", dimensions: 70,
                    normalized: true, maxTokens: 8191),
            .remote(provider: "ollama", url: "http://127.0.0.1:11434", model: "nomic-embed-text", dimensions: 70, normalized: true,
                    maxTokens: 8192, queryPrompt: "search_query: ", documentPrompt: "search_document: "),
            .remote(provider: "a-later-provider", url: "http://h/", model: "m", dimensions: 70, normalized: true, maxTokens: 1),
        ]
        for m in models {
            XCTAssertEqual(m.version, 2)
            input.model = m
            try compare(input)
            let p = path("summary.kbseg")
            try input.write(to: p)
            let run = try python([Self.script, p])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertTrue(String(decoding: run.stdout, as: UTF8.self).contains("format version 2"), "\(m)")
        }
    }

    /// Descriptors that break §8.3's rules: both readers refuse them, with the same kind of error
    /// (a later descriptor version is unsupported, not damage).
    func testSpecReaderAgreesOnModelDescriptorRules() throws {
        try requirePython()
        let base = Self.input(seed: 7, dims: 8, documents: 1, chunks: 3, blockSize: 1024)
        let w = base.model.weightsSHA256!
        let local = ModelDescriptor.local(name: "l", dimensions: 8, pooling: "mean", normalized: true, maxTokens: 5, weightsSHA256: w,
                                          documentPrompt: "passage: ")
        let remote = ModelDescriptor.remote(provider: "openai", url: "http://h/v1", model: "m", dimensions: 8, normalized: true, maxTokens: 5)
        var cases: [(String, ModelDescriptor, UInt64?, String)] = []
        var m = remote; m.version = 5
        cases.append(("descriptor version 5", m, nil, "unsupported_version"))
        m = local; m.version = 0
        cases.append(("descriptor version 0", m, 2, "unsupported_version"))
        cases.append(("a version-2 descriptor in a version-1 segment", local, 1, "corrupt"))
        m = remote; m.url = nil
        cases.append(("remote without url", m, nil, "corrupt"))
        m = remote; m.model = ""
        cases.append(("remote with an empty model", m, nil, "corrupt"))
        m = remote; m.pooling = "mean"
        cases.append(("remote with pooling", m, nil, "corrupt"))
        m = local; m.url = "http://h"
        cases.append(("local with url", m, nil, "corrupt"))
        m = local; m.weightsSHA256 = nil
        cases.append(("local without weights", m, nil, "corrupt"))
        m = local; m.provider = ""
        cases.append(("empty provider", m, nil, "corrupt"))
        m = local; m.provider = nil
        cases.append(("no provider", m, nil, "corrupt"))
        m = remote; m.version = nil
        cases.append(("a remote descriptor without version (version 1 without pooling)", m, nil, "corrupt"))

        let p = path("rules.kbseg")
        for (what, model, header, kind) in cases {
            var input = base
            input.model = model
            try input.write(to: p)
            if let header {
                var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
                MalformedSegmentTests.setLE(&b, 8, 4, header)
                MalformedSegmentTests.reseal(&b)
                try Data(b).write(to: URL(fileURLWithPath: p))
            }
            let run = try python([Self.script, p, "--json"])
            XCTAssertEqual(run.status, 1, "\(what): read_segment.py exit status \(run.status), stderr \(run.stderr)")
            guard let swift = swiftError(p) else { XCTFail("\(what): SegmentReader accepted it"); continue }
            XCTAssertEqual(Self.kind(swift), kind, "\(what): \(swift)")
            XCTAssertTrue(run.stderr.contains(": \(kind): "), "\(what): Swift says \(swift), read_segment.py says \(run.stderr)")
        }
    }

    /// The Swift reader's error for a file: open, read every text, verify.
    func swiftError(_ p: String) -> SegmentError? {
        do {
            let r = try SegmentReader(path: p)
            try r.verify()
            for i in 0..<r.chunkCount { _ = try r.text(ofChunk: i) }
            return nil
        } catch {
            return error as? SegmentError
        }
    }

    /// The spec reader's error kind, matching `SegmentError`'s case names.
    static func kind(_ e: SegmentError) -> String {
        switch e {
        case .truncated: "truncated"
        case .badMagic: "bad_magic"
        case .unsupportedVersion, .unsupportedModelVersion: "unsupported_version"
        case .checksumMismatch(_, let section): "checksum_mismatch: the \(section) checksum"
        case .outOfBounds: "out_of_bounds"
        case .corrupt: "corrupt"
        }
    }

    func testSpecReaderRejectsTruncatedAndDamagedCopies() throws {
        try requirePython()
        let original = path("original.kbseg")
        try Self.input(seed: 5, dims: 70, documents: 3, chunks: 40, blockSize: 2048).write(to: original)
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: original)))
        let damaged = path("damaged.kbseg")

        func expectRejected(_ bytes: [UInt8], _ what: String, kind wanted: String? = nil) throws {
            try Data(bytes).write(to: URL(fileURLWithPath: damaged))
            let run = try python([Self.script, damaged, "--json"])
            XCTAssertEqual(run.status, 1, "\(what): read_segment.py exit status \(run.status), stderr \(run.stderr)")
            XCTAssertTrue(run.stdout.isEmpty, "\(what): read_segment.py printed JSON for a damaged file")
            XCTAssertTrue(run.stderr.hasPrefix("error: \(damaged): "), "\(what): \(run.stderr)")
            guard let swift = swiftError(damaged) else { return XCTFail("\(what): SegmentReader accepted it") }
            // Both readers follow format-spec.md §10 in the same order, so they fail the same check.
            XCTAssertTrue(run.stderr.contains(Self.kind(swift)), "\(what): Swift says \(swift), read_segment.py says \(run.stderr)")
            if let wanted { XCTAssertTrue(run.stderr.contains(wanted), "\(what): \(run.stderr)") }
        }

        // The untouched file is valid.
        let ok = try python([Self.script, original])
        XCTAssertEqual(ok.status, 0, ok.stderr)

        // Truncated copies.
        for cut in [good.count - 1, good.count - 16, good.count / 2, 100, 79] {
            try expectRejected(Array(good[..<cut]), "cut at \(cut)", kind: "truncated")
        }
        try expectRejected([], "empty file", kind: "truncated")

        // One flipped byte in each section (first, middle and last byte).
        let n = Int(good[16])
        var sections = 0
        for i in 0..<n {
            let e = 64 + 32 * i
            let le = { (at: Int, size: Int) in good[at..<at + size].reversed().reduce(0) { $0 << 8 | Int($1) } }
            let kind = SectionKind(rawValue: UInt32(le(e, 4)))!
            let off = le(e + 8, 8), len = le(e + 16, 8)
            guard len > 0 else { continue }
            sections += 1
            for at in Set([off, off + len / 2, off + len - 1]) {
                var b = good
                b[at] ^= 0x20
                try expectRejected(b, "\(kind.name) byte \(at)")
            }
            // Bytes that no open-time check reads can only be caught by the section checksum.
            if kind == .vectors || kind == .text || kind == .strings {
                var b = good
                b[off + len / 2] ^= 0x01
                try expectRejected(b, "\(kind.name) middle bit", kind: "the \(kind.name) checksum does not match")
            }
        }
        XCTAssertEqual(sections, 10)

        // Header, directory and footer damage; a wrong magic; a future version.
        for at in [12, 20, 33, 64 + 8, 64 + 32 * 8 + 16, good.count - 16, good.count - 12, good.count - 1] {
            var b = good
            b[at] ^= 0x01
            try expectRejected(b, "header/footer byte \(at)")
        }
        var b = good
        b[0] = UInt8(ascii: "X")
        try expectRejected(b, "bad magic", kind: "bad_magic")
        b = good
        b[8] = 3
        try expectRejected(b, "version 3", kind: "unsupported_version")
    }

    /// format-spec.md §10 #10/§16: a directory entry of an unknown kind is skipped, so a later
    /// writer can add an optional section. Both readers must open such a file and read the same
    /// contents from it.
    /// A segment whose LEXICAL entry carries an unknown kind (42): both readers skip it, so
    /// the segment reads as one written before the LEXICAL section existed.
    func testUnknownSectionKindIsIgnoredByBothReaders() throws {
        try requirePython()
        let input = Self.input(seed: 6, dims: 10, documents: 2, chunks: 12, blockSize: 512)
        let p = path("plain.kbseg")
        try input.write(to: p)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        func setLE(_ at: Int, _ size: Int, _ v: UInt64) { for k in 0..<size { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) } }
        let n = Int(b[16])
        XCTAssertEqual(n, 10)
        let entry = try XCTUnwrap((0..<n).map { 64 + 32 * $0 }.first { b[$0] == 10 })
        setLE(entry, 4, 42)
        setLE(b.count - 16, 4, UInt64(CRC32C.checksum(Array(b[0..<(64 + 32 * n)]))))
        let q = path("unknown-section.kbseg")
        try Data(b).write(to: URL(fileURLWithPath: q))

        let r = try SegmentReader(path: q)
        try r.verify()
        XCTAssertNil(r.lexical)
        XCTAssertEqual(r.chunkCount, input.chunks.count)
        for (i, c) in input.chunks.enumerated() { XCTAssertEqual(Array(try r.text(ofChunk: i).utf8), Array(c.text.utf8)) }
        let run = try python([Self.script, q, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        let dump = try dec.decode(Dump.self, from: run.stdout)
        XCTAssertEqual(dump.header.sectionCount, 10)
        XCTAssertNil(dump.lexical)
        XCTAssertEqual(dump.chunks.map { Array($0.text.utf8) }, input.chunks.map { Array($0.text.utf8) })
        XCTAssertEqual(dump.documents.count, input.documents.count)
    }

    func testMissingLZ4ModuleIsReportedWithTheSetUpCommand() throws {
        try requirePython()
        // Without .pydeps on the path (and with user site-packages off) the reader must say
        // how to install lz4 rather than crash; if lz4 is installed system-wide, it just works.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["-u", "PYTHONPATH", "python3", "-s", Self.script, "/nonexistent.kbseg"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let msg = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus == 3 {
            XCTAssertTrue(msg.contains("scripts/test.sh"), msg)
        } else {
            XCTAssertEqual(p.terminationStatus, 1, msg)
            XCTAssertTrue(msg.contains("io:"), msg)
        }
    }

    /// Deletion files (format-spec.md §13.4): the Python reader decodes what DeletionSet
    /// writes, and rejects what it rejects.
    func testSpecReaderReadsDeletionFiles() throws {
        try requirePython()
        struct Decoded: Decodable { let document_count: Int; let deleted_count: Int; let deleted: [Int] }
        var rng = SeededRNG(seed: 11)
        for n in [0, 1, 8, 13, 200] {
            var set = DeletionSet(documentCount: n)
            for _ in 0..<(n / 2) { set.insert(Int.random(in: 0..<n, using: &rng)) }
            let p = path("d\(n).kbdel")
            try set.write(to: p)
            let run = try python([Self.script, p, "--json"])
            XCTAssertEqual(run.status, 0, run.stderr)
            let d = try JSONDecoder().decode(Decoded.self, from: run.stdout)
            XCTAssertEqual(d.document_count, n)
            XCTAssertEqual(d.deleted_count, set.count)
            XCTAssertEqual(d.deleted, (0..<n).filter(set.contains))
        }
        var set = DeletionSet(documentCount: 13)
        set.insert(4)
        let good = set.encoded()
        let p = path("bad.kbdel")
        for (what, bytes) in [("truncated", Array(good.dropLast())), ("flipped", good.enumerated().map { $0.offset == 24 ? $0.element ^ 1 : $0.element })] {
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            let run = try python([Self.script, p, "--json"])
            XCTAssertEqual(run.status, 1, "\(what): \(run.stderr)")
            XCTAssertThrowsError(try DeletionSet.read(path: p), what)
        }
    }
}
