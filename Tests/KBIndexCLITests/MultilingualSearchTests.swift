import Foundation
import KBCore
import KBTestSupport
import XCTest

/// `kbindex build` and `query` on Chinese, Japanese, Korean and mixed-script text, and on
/// code: BM25 finds CJK passages through character bigrams (format-spec.md §8.11, tokenizer
/// version 1), folds case fully, and still splits identifiers.
final class MultilingualSearchTests: XCTestCase {
    var corpus: URL!
    private var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }
    private var index: URL { corpus.appendingPathComponent(".kbindex") }

    static let files: [String: String] = [
        "ja/tokyo.md": "# 東京の天気\n\n東京は今日は晴れです。明日の天気は雨の予報です。\n",
        "ja/osaka.md": "# 大阪\n\n大阪はたこ焼きが有名です。今日は曇りです。\n",
        "ja/kyoto.md": "# 京都のお寺\n\n京都には古いお寺がたくさんあります。\n",
        "zh/beijing.md": "# 北京\n\n北京今天天气很好，气温二十度。\n",
        "zh/shanghai.md": "# 上海\n\n上海是中国最大的城市，有很多高楼。\n",
        "ko/seoul.md": "# 서울\n\n서울의 날씨는 오늘 맑습니다. 내일은 비가 옵니다.\n",
        "ko/busan.md": "# 부산\n\n부산은 바다가 아름다운 항구 도시입니다.\n",
        "de/strasse.md": "# Straßenbahn\n\nDie Straße ist lang, die Bahn fährt jede Stunde.\n",
        "mixed.md": "# Tokyoタワー\n\nTokyoタワーの高さは333メートルです。東京2024年の観光案内。\n",
        "code/server.py": "class HTTPServer:\n    def handle_request(self):\n        return parseJSONBody(self.rfile)\n",
        "notes.txt": "Buy bread and milk on the way home.\n",
    ]

    override func setUpWithError() throws {
        _ = try InstalledModels.miniLM()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbmulti-\(UUID().uuidString)")
        for (path, text) in Self.files {
            let url = corpus.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let r = try CLIRunner.run(["build", corpus.path, "--quiet"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    override func tearDownWithError() throws { if let corpus { try? FileManager.default.removeItem(at: corpus) } }

    struct Hit: Decodable { let rank: Int; let score: Double; let path: String; let bm25_score: Double?; let vector_score: Double? }

    func query(_ args: [String], status: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> [Hit] {
        let r = try CLIRunner.run(["query", "--index", index.path, "--json"] + args, environment: env)
        XCTAssertEqual(r.status, status, r.stderr, file: file, line: line)
        return try r.stdoutLines.map { try JSONDecoder().decode(Hit.self, from: Data($0.utf8)) }
    }

    /// Each question's passage is the first hit in lexical mode, and in the top 3 in hybrid
    /// mode (where the English model's cosine has the larger share).
    func testCJKQuestionsFindTheirPassagesInLexicalAndHybridMode() throws {
        let questions: [(String, String)] = [
            ("東京の天気", "ja/tokyo.md"), ("京都のお寺はどこ", "ja/kyoto.md"), ("たこ焼き", "ja/osaka.md"),
            ("北京天气", "zh/beijing.md"), ("中国最大的城市", "zh/shanghai.md"),
            ("서울 날씨", "ko/seoul.md"), ("아름다운 항구", "ko/busan.md"),
            ("タワーの高さ", "mixed.md"), ("東京2024", "mixed.md"),
        ]
        for (q, want) in questions {
            let lexical = try query(["--mode", "lexical", "-k", "5", q])
            XCTAssertEqual(lexical.first?.path, want, "lexical: \(q) → \(lexical.map(\.path))")
            XCTAssertTrue(lexical.allSatisfy { ($0.bm25_score ?? 0) > 0 }, q)
            let hybrid = try query(["-k", "3", q])
            XCTAssertTrue(hybrid.contains { $0.path == want }, "hybrid: \(q) → \(hybrid.map(\.path))")
        }
        // Only passages sharing a bigram with the question: all of 東京の天気's in Tokyo's
        // chunk, 東京 in the mixed one (東京2024年); Beijing's 天气 is another character.
        XCTAssertEqual(Set(try query(["--mode", "lexical", "東京の天気"]).map(\.path)), ["ja/tokyo.md", "mixed.md"])
    }

    /// Full case folding (ß = ss) and identifier parts in code, through the command line.
    func testCaseFoldingAndIdentifierSplitting() throws {
        for q in ["STRASSE", "strasse", "Straße"] {
            XCTAssertEqual(try query(["--mode", "lexical", q]).map(\.path), ["de/strasse.md"], q)
        }
        XCTAssertEqual(try query(["--mode", "lexical", "-k", "1", "parse json body"]).first?.path, "code/server.py")
        XCTAssertEqual(try query(["--mode", "lexical", "-k", "1", "http server handle request"]).first?.path, "code/server.py")
        XCTAssertEqual(try query(["--mode", "lexical", "-k", "1", "handle_request"]).first?.path, "code/server.py")
        XCTAssertEqual(try query(["-k", "1", "parseJSONBody"]).first?.path, "code/server.py")
    }

    /// The directory entries of the index's segments, each with its file bytes.
    func segments() throws -> [(url: URL, bytes: [UInt8])] {
        try FileManager.default.contentsOfDirectory(at: index, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "kbseg" }
            .map { ($0, [UInt8](try Data(contentsOf: $0))) }
    }

    /// Rewrites segment bytes after a change to the directory: the header CRC in the footer.
    func reseal(_ b: inout [UInt8]) {
        let n = Int(b[16]) | Int(b[17]) << 8
        let crc = CRC32C.checksum(Array(b[0..<(64 + 32 * n)]))
        for k in 0..<4 { b[b.count - 16 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
    }

    /// A segment whose LEXICAL says tokenizer version 0 is searched with version-0 query
    /// terms: "Straße" is then `straße`, which the section (cut by version 1) does not hold,
    /// while "STRASSE" (`strasse` under both) still finds it.
    func testASegmentIsSearchedWithItsOwnTokenizerVersion() throws {
        XCTAssertEqual(try query(["--mode", "lexical", "Straße"]).map(\.path), ["de/strasse.md"])
        for (url, var b) in try segments() {
            for i in 0..<Int(b[16]) where b[64 + 32 * i] == 10 {
                let e = 64 + 32 * i
                let at = (0..<8).reduce(0) { $0 | Int(b[e + 8 + $1]) << (8 * $1) }
                let length = (0..<8).reduce(0) { $0 | Int(b[e + 16 + $1]) << (8 * $1) }
                XCTAssertEqual(Array(b[at + 4..<at + 8]), [16, 0, 1, 0], "block size 16, tokenizer 1")
                b[at + 6] = 0
                let crc = CRC32C.checksum(Array(b[at..<at + length]))
                for k in 0..<4 { b[e + 4 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
            }
            reseal(&b)
            try Data(b).write(to: url)
        }
        XCTAssertEqual(try query(["--mode", "lexical", "Straße"], status: 1).map(\.path), [])
        XCTAssertEqual(try query(["--mode", "lexical", "STRASSE"]).map(\.path), ["de/strasse.md"])
        // Version 0 cut a CJK run as one word: the question is one term no chunk has.
        XCTAssertEqual(try query(["--mode", "lexical", "東京の天気"], status: 1).map(\.path), [])
        let verify = try CLIRunner.run(["verify", "--index", index.path], environment: env)
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        // Compaction re-tokenizes with the current version: nothing re-embedded, both found again.
        let compact = try CLIRunner.run(["compact", "--index", index.path], environment: env)
        XCTAssertEqual(compact.status, 0, compact.stderr)
        for (url, b) in try segments() {
            for i in 0..<Int(b[16]) where b[64 + 32 * i] == 10 {
                let at = (0..<8).reduce(0) { $0 | Int(b[64 + 32 * i + 8 + $1]) << (8 * $1) }
                XCTAssertEqual(Array(b[at + 4..<at + 8]), [16, 0, 1, 0], url.path)
            }
        }
        XCTAssertEqual(try query(["--mode", "lexical", "Straße"]).map(\.path), ["de/strasse.md"])
        XCTAssertEqual(Set(try query(["--mode", "lexical", "東京の天気"]).map(\.path)), ["ja/tokyo.md", "mixed.md"])
    }

    /// format-spec.md §16: on an index whose segments have no LEXICAL section (built before
    /// BM25 existed), a query without --mode falls back to vector search with a note, while an
    /// explicit lexical or hybrid mode is an error that says what to do.
    func testAnIndexWithoutLexicalFallsBackByDefaultAndRefusesAnExplicitMode() throws {
        for (url, var b) in try segments() {
            for i in 0..<Int(b[16]) where b[64 + 32 * i] == 10 { b[64 + 32 * i] = 42 }  // an unknown kind: skipped
            reseal(&b)
            try Data(b).write(to: url)
        }
        let fallback = try CLIRunner.run(["query", "--index", index.path, "--json", "-k", "2", "東京の天気"], environment: env)
        XCTAssertEqual(fallback.status, 0, fallback.stderr)
        XCTAssertEqual(fallback.stderr, "note: this index has no lexical section (built before BM25 search): vector search only; 'kbindex build --rebuild' adds it\n")
        let hits = try fallback.stdoutLines.map { try JSONDecoder().decode(Hit.self, from: Data($0.utf8)) }
        XCTAssertEqual(hits.count, 2)
        XCTAssertTrue(hits.allSatisfy { $0.bm25_score == nil && $0.vector_score != nil })
        for mode in ["lexical", "hybrid"] {
            let r = try CLIRunner.run(["query", "--index", index.path, "--mode", mode, "東京の天気"], environment: env)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stdout, "")
            XCTAssertEqual(r.stderr, "error: the index has no lexical section (it was built before BM25 search): only vector search: "
                           + "rebuild the index with 'kbindex build \(corpus.path) --rebuild' for lexical and hybrid search\n")
        }
        XCTAssertEqual(try query(["--mode", "vector", "-k", "1", "東京の天気"]).count, 1)
    }
}
