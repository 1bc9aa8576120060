import Foundation
import KBTestSupport
import XCTest

@testable import KBEmbed

/// The built-in encoder against sentence-transformers itself, per pooling and prompt
/// configuration: the tiny random-weight models of Tests/Fixtures/st-models (see its README)
/// with golden token ids and vectors from `encode_query`, `encode_document` and `encode`.
/// Ids must be equal and every value within 1e-5. Then: how sentence-transformers resolves
/// prompts, the chunk limit with a prompt, int8, and the configurations kbindex refuses.
final class SentenceTransformersParityTests: XCTestCase {
    static let folder = Fixtures.root.appendingPathComponent("st-models")
    static let models = ["cls-query-prompt", "mean-e5-prompts", "max-prompts", "mean-unnormalized",
                         "mean-exclude-prompt", "max-exclude-prompt", "cls-default-prompt"]
    static let tolerance: Float = 1e-5

    struct Golden: Decodable {
        struct Role: Decodable {
            let prompt: String
            let prompt_length: Int
            let ids: [[Int32]]
            let embeddings: [[Float]]
        }
        let model: String
        let max_seq_length: Int
        let texts: [String]
        let roles: [String: Role]
    }

    func golden(_ name: String) throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: Self.folder.appendingPathComponent("\(name).golden.json")))
    }

    func maxDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        XCTAssertEqual(a.count, b.count)
        var worst: Float = 0
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.count, y.count)
            for (u, v) in zip(x, y) { worst = max(worst, abs(u - v)) }
        }
        return worst
    }

    func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var ab: Float = 0, aa: Float = 0, bb: Float = 0
        for (x, y) in zip(a, b) { ab += x * y; aa += x * x; bb += y * y }
        return ab / max((aa * bb).squareRoot(), 1e-30)
    }

    // MARK: Exactness

    func testEveryConfigurationEmbedsAsSentenceTransformers() throws {
        var checked = 0
        for name in Self.models {
            let g = try golden(name)
            let e = try Embedder(modelDirectory: try copy(name), threads: 2)
            XCTAssertEqual(e.config.maxSequenceLength, g.max_seq_length, name)
            XCTAssertTrue(g.roles["document"]!.ids.contains { $0.count == g.max_seq_length }, "\(name): no text is truncated")
            for role in TextRole.allCases {
                let r = try XCTUnwrap(g.roles[role.rawValue], "\(name) \(role)")
                XCTAssertEqual(e.prompts.prompt(for: role) ?? "", r.prompt, "\(name) \(role): prompt")
                XCTAssertEqual(e.tokenize(g.texts.map { r.prompt + $0 }), r.ids, "\(name) \(role): token ids")
                if !r.prompt.isEmpty { XCTAssertEqual(e.promptLength(r.prompt), r.prompt_length, "\(name) \(role): prompt_length") }
                let vectors = try e.embed(g.texts, as: role)
                let worst = maxDifference(vectors, r.embeddings)
                XCTAssertLessThanOrEqual(worst, Self.tolerance, "\(name) \(role)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, Self.models.count * 3)
    }

    /// The fixtures tell the configurations apart: pooling the prompt's tokens where the model
    /// leaves them out, or leaving out the prompt, is far outside the tolerance.
    func testTheFixturesDistinguishPromptHandling() throws {
        for name in ["mean-exclude-prompt", "max-exclude-prompt"] {
            let g = try golden(name)
            let e = try Embedder(modelDirectory: try copy(name), threads: 1)
            XCTAssertFalse(e.config.includePrompt)
            let r = g.roles["query"]!
            let included = try e.embed(tokenIDs: r.ids, excludingLeadingTokens: 0)
            XCTAssertGreaterThan(maxDifference(included, r.embeddings), 1e-3, name)
            let excluded = try e.embed(tokenIDs: r.ids, excludingLeadingTokens: r.prompt_length)
            XCTAssertLessThanOrEqual(maxDifference(excluded, r.embeddings), Self.tolerance, name)
        }
        let g = try golden("mean-e5-prompts")
        let e = try Embedder(modelDirectory: try copy("mean-e5-prompts"), threads: 1)
        XCTAssertGreaterThan(maxDifference(try e.embed(g.texts), g.roles["query"]!.embeddings), 1e-3)
    }

    /// `--query-prompt`/`--document-prompt` (the `prompts:` argument) replace the model's own.
    func testOverriddenPromptsReplaceTheModels() throws {
        let dir = try copy("max-prompts")
        let g = try golden("max-prompts")
        let own = try Embedder(modelDirectory: dir, threads: 1)
        XCTAssertEqual(own.prompts, Prompts(query: "query: ", document: "document: "))
        let swapped = try Embedder(modelDirectory: dir, threads: 1, prompts: Prompts(query: "document: ", document: nil))
        XCTAssertLessThanOrEqual(maxDifference(try swapped.embed(g.texts, as: .query), g.roles["document"]!.embeddings), Self.tolerance)
        XCTAssertLessThanOrEqual(maxDifference(try swapped.embed(g.texts, as: .document), g.roles["plain"]!.embeddings), Self.tolerance)
    }

    /// e5's prompt names ("query", "passage"): sentence-transformers' `encode_document` does
    /// not use "passage" (every model starts with an empty "document" prompt), nor does kbindex.
    func testPassagePromptIsNotTheDocumentPrompt() throws {
        let e = try Embedder(modelDirectory: try copy("mean-e5-prompts"), threads: 1)
        XCTAssertEqual(e.prompts, Prompts(query: "query: ", document: nil))
        XCTAssertEqual(try golden("mean-e5-prompts").roles["document"]!.prompt, "")
    }

    /// int8 keeps the pooling and the prompt handling: its vectors stay close to
    /// sentence-transformers' float ones for every configuration and role.
    func testInt8FollowsThePoolingAndPrompts() throws {
        for name in Self.models {
            let g = try golden(name)
            let e = try Embedder(modelDirectory: try copy(name), threads: 1, precision: .int8)
            for role in TextRole.allCases {
                let r = g.roles[role.rawValue]!
                let vectors = try e.embed(g.texts, as: role)
                let worst = zip(vectors, r.embeddings).map { cosine($0, $1) }.min()!
                XCTAssertGreaterThan(worst, 0.995, "\(name) \(role)")
            }
        }
    }

    // MARK: Prompt resolution

    struct PromptCase: Decodable {
        struct Config: Decodable {
            let prompts: [String: String?]
            let default_prompt_name: String?
        }
        let config: Config
        let query: String?
        let document: String?
    }

    /// `config_sentence_transformers.json` resolves as `encode_query`/`encode_document` do,
    /// for every case sentence-transformers answered in prompt_cases.json.
    func testPromptsResolveAsSentenceTransformersResolvesThem() throws {
        struct File: Decodable { let cases: [PromptCase] }
        let cases = try JSONDecoder().decode(File.self, from: Data(contentsOf: Self.folder.appendingPathComponent("prompt_cases.json"))).cases
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        let dir = try copy("mean-unnormalized")
        for c in cases {
            var obj: [String: Any] = ["prompts": c.config.prompts.mapValues { $0 ?? NSNull() as Any }]
            obj["default_prompt_name"] = c.config.default_prompt_name ?? NSNull()
            try write(obj, to: dir.appendingPathComponent(ModelConfig.promptsFileName))
            let config = try ModelConfig.load(directory: dir)
            XCTAssertEqual(config.prompts, Prompts(query: c.query, document: c.document), "\(c.config.prompts) default \(String(describing: c.config.default_prompt_name))")
        }
    }

    // MARK: Chunk limit

    /// A text of `maxTextTokens(for:)` tokens fits with its prompt, uncut, and one more token
    /// would not (for prompts that end a word; one that ends inside a word keeps a margin).
    func testMaxTextTokensLeavesRoomForThePrompt() throws {
        for name in Self.models {
            let e = try Embedder(modelDirectory: try copy(name), threads: 1)
            for role in TextRole.allCases {
                let prompt = e.prompts.prompt(for: role) ?? ""
                let n = e.maxTextTokens(for: role)
                let text = Array(repeating: "a", count: n).joined(separator: " ")
                XCTAssertEqual(e.countTokens(text), n)
                let full = e.tokenizer.encode(prompt + text)
                XCTAssertLessThanOrEqual(full.fullLength, e.config.maxSequenceLength, "\(name) \(role): '\(prompt)' + \(n) tokens is cut")
                if e.tokenizer.endsWord(prompt) {
                    XCTAssertEqual(full.fullLength, e.config.maxSequenceLength, "\(name) \(role): the limit wastes room")
                } else {
                    XCTAssertEqual(n, e.config.maxSequenceLength - 2 - e.countTokens(prompt) - Embedder.promptJoinMargin)
                }
            }
        }
        let e = try Embedder(modelDirectory: try copy("cls-query-prompt"), threads: 1)
        XCTAssertEqual(e.maxTextTokens(for: .plain), 30)
        XCTAssertLessThan(e.maxTextTokens(for: .query), 30)
        XCTAssertEqual(e.maxTextTokens(for: .document), 30)  // its document prompt is empty
    }

    func testEndsWord() throws {
        let e = try Embedder(modelDirectory: try copy("mean-e5-prompts"), threads: 1)
        for p in ["query: ", "query:", "", "x\t", "[SEP]", "東"] { XCTAssertTrue(e.tokenizer.endsWord(p), p) }
        for p in ["passage", "query: a", "é"] { XCTAssertFalse(e.tokenizer.endsWord(p), p) }
    }

    // MARK: Refused configurations

    var made: [URL] = []

    override func tearDown() {
        for d in made { try? FileManager.default.removeItem(at: d) }
        made = []
    }

    /// A temporary copy of the fixture model `name` (loading a model writes its check cache
    /// into the folder: not into the source tree).
    func copy(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-parity-\(UUID().uuidString)")
        made.append(dir)
        try FileManager.default.copyItem(at: Self.folder.appendingPathComponent(name), to: dir)
        return dir
    }

    func write(_ obj: Any, to url: URL) throws {
        try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]).write(to: url)
    }

    func readObject(_ url: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// Loading the copy of `name` changed by `change` throws a `ModelError` naming `file` and
    /// saying every one of `parts`.
    func assertRefused(_ name: String = "mean-e5-prompts", file: String, _ parts: [String],
                       change: (URL) throws -> Void, line: UInt = #line) throws {
        let dir = try copy(name)
        try change(dir)
        do {
            _ = try Embedder(modelDirectory: dir, threads: 1)
            XCTFail("loaded", line: line)
        } catch let error as ModelError {
            let text = error.description
            XCTAssertTrue(text.contains(dir.appendingPathComponent(file).path), "'\(text)' does not name \(file)", line: line)
            for p in parts { XCTAssertTrue(text.contains(p), "'\(text)' lacks '\(p)'", line: line) }
            XCTAssertFalse(error.isDamage, line: line)
        } catch {
            XCTFail("not a ModelError: \(error)", line: line)
        }
    }

    func modules(_ dir: URL) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("modules.json"))) as! [[String: Any]]
    }

    func testUnsupportedModulesAreRefused() throws {
        let st = "sentence_transformers.models."
        try assertRefused(file: "modules.json", ["\(st)Dense", "not supported"]) { dir in
            var m = try modules(dir)
            m.insert(["idx": 2, "name": "2", "path": "2_Dense", "type": "\(st)Dense"], at: 2)
            try write(m, to: dir.appendingPathComponent("modules.json"))
        }
        try assertRefused(file: "modules.json", ["Transformer, Normalize, Pooling", "in that order"]) { dir in
            let m = try modules(dir)
            try write([m[0], m[2], m[1]], to: dir.appendingPathComponent("modules.json"))
        }
        try assertRefused(file: "modules.json", ["[Transformer]"]) { dir in
            try write([try modules(dir)[0]], to: dir.appendingPathComponent("modules.json"))
        }
        try assertRefused(file: "modules.json", ["'0_Transformer/'"]) { dir in
            var m = try modules(dir)
            m[0]["path"] = "0_Transformer"
            try write(m, to: dir.appendingPathComponent("modules.json"))
        }
        try assertRefused(file: "modules.json", ["module 1", "'type'"]) { dir in
            var m = try modules(dir)
            m[1]["type"] = 7
            try write(m, to: dir.appendingPathComponent("modules.json"))
        }
        try assertRefused(file: "modules.json", ["other_library.Pooling", "not supported"]) { dir in
            var m = try modules(dir)
            m[1]["type"] = "other_library.Pooling"
            try write(m, to: dir.appendingPathComponent("modules.json"))
        }
    }

    func testUnsupportedPoolingIsRefused() throws {
        let file = "1_Pooling/config.json"
        func pooling(_ change: @escaping (inout [String: Any]) -> Void) -> (URL) throws -> Void {
            { dir in
                let url = dir.appendingPathComponent(file)
                var p = try self.readObject(url)
                change(&p)
                try self.write(p, to: url)
            }
        }
        try assertRefused(file: file, ["pooling_mode_weightedmean_tokens", "not supported"],
                          change: pooling { $0["pooling_mode_weightedmean_tokens"] = true })
        try assertRefused(file: file, ["pooling_mode_lasttoken"], change: pooling { $0["pooling_mode_mean_tokens"] = false; $0["pooling_mode_lasttoken"] = true })
        try assertRefused(file: file, ["more than one pooling mode"], change: pooling { $0["pooling_mode_max_tokens"] = true })
        try assertRefused(file: file, ["'include_prompt' must be true or false"], change: pooling { $0["include_prompt"] = "no" })
        try assertRefused(file: file, ["'pooling_mode_cls_token' must be true or false"], change: pooling { $0["pooling_mode_cls_token"] = [1] })
        try assertRefused(file: file, ["word_embedding_dimension 64", "hidden_size 32"], change: pooling { $0["word_embedding_dimension"] = 64 })
        // The form sentence-transformers ≥ 5.4 writes: "pooling_mode".
        try assertRefused("max-prompts", file: file, ["weightedmean is not supported"], change: pooling { $0["pooling_mode"] = "weightedmean" })
        try assertRefused("max-prompts", file: file, ["more than one pooling mode"], change: pooling { $0["pooling_mode"] = ["max", "mean"] })
        try assertRefused("max-prompts", file: file, ["'pooling_mode' must be a mode name"], change: pooling { $0["pooling_mode"] = 3 })
        try assertRefused("max-prompts", file: file, ["embedding_dimension 16"], change: pooling { $0["embedding_dimension"] = 16 })
    }

    /// Both forms of the pooling config and of the length limit load as sentence-transformers
    /// reads them (the golden vectors check the rest).
    func testBothFileFormatsLoad() throws {
        let legacy = try ModelConfig.load(directory: try copy("max-exclude-prompt"))
        XCTAssertEqual(legacy.pooling, .max)
        XCTAssertFalse(legacy.includePrompt)
        XCTAssertEqual(legacy.maxSequenceLength, 32)  // sentence_bert_config.json, not tokenizer_config.json's 512
        let current = try ModelConfig.load(directory: try copy("cls-default-prompt"))
        XCTAssertEqual(current.pooling, .cls)
        XCTAssertFalse(current.includePrompt)
        XCTAssertFalse(current.normalize)
        XCTAssertEqual(current.maxSequenceLength, 32)  // tokenizer_config.json's model_max_length
        XCTAssertEqual(current.prompts, Prompts(query: "Represent: ", document: nil))
    }

    /// sentence_bert_config.json's do_lower_case: fine with a lower-casing tokenizer (the
    /// fixtures'), refused with a cased one, whose tokens kbindex would not match.
    func testLowerCasingACasedTokenizerIsRefused() throws {
        let file = "sentence_bert_config.json"
        func lowerCase(_ dir: URL) throws {
            try write(["max_seq_length": 32, "do_lower_case": true], to: dir.appendingPathComponent(file))
        }
        let ok = try copy("mean-e5-prompts")
        try lowerCase(ok)
        XCTAssertTrue(try Embedder(modelDirectory: ok, threads: 1).config.lowercasesInput)
        try assertRefused(file: file, ["do_lower_case", "not supported"]) { dir in
            try lowerCase(dir)
            for name in ["tokenizer_config.json", "tokenizer.json"] {
                let url = dir.appendingPathComponent(name)
                var obj = try readObject(url)
                if name == "tokenizer.json" {
                    var normalizer = obj["normalizer"] as! [String: Any]
                    normalizer["lowercase"] = false
                    obj["normalizer"] = normalizer
                } else {
                    obj["do_lower_case"] = false
                }
                try write(obj, to: url)
            }
        }
        try assertRefused(file: file, ["'do_lower_case' must be true or false"]) { dir in
            try write(["do_lower_case": "yes"], to: dir.appendingPathComponent(file))
        }
    }

    func testInvalidPromptFilesAreRefused() throws {
        let file = ModelConfig.promptsFileName
        func prompts(_ obj: Any) -> (URL) throws -> Void {
            { dir in try self.write(obj, to: dir.appendingPathComponent(file)) }
        }
        try assertRefused(file: file, ["not a JSON object"]) { dir in
            try Data("{\"prompts\": ".utf8).write(to: dir.appendingPathComponent(file))
        }
        try assertRefused(file: file, ["not a JSON object"], change: prompts(["query: "]))
        try assertRefused(file: file, ["'prompts' is not an object"], change: prompts(["prompts": ["query: "]]))
        try assertRefused(file: file, ["prompt 'query' is not a string"], change: prompts(["prompts": ["query": 1]]))
        try assertRefused(file: file, ["default_prompt_name 'retrieval' names no prompt", "'passage', 'query'"],
                          change: prompts(["prompts": ["query": "q: ", "passage": "p: "], "default_prompt_name": "retrieval"]))
        try assertRefused(file: file, ["default_prompt_name 'x' names no prompt (prompts: 'document', 'query')"],
                          change: prompts(["default_prompt_name": "x"]))
        try assertRefused(file: file, ["'default_prompt_name' is not a string"], change: prompts(["prompts": [:], "default_prompt_name": 3]))
        try assertRefused(file: file, ["model_type 'SparseEncoder' is not supported"], change: prompts(["model_type": "SparseEncoder"]))
        // A file with nothing kbindex needs, or null prompts, is fine.
        for ok: [String: Any] in [[:], ["prompts": NSNull(), "default_prompt_name": NSNull()], ["similarity_fn_name": "cosine", "model_type": "SentenceTransformer"]] {
            let dir = try copy("mean-e5-prompts")
            try write(ok, to: dir.appendingPathComponent(file))
            XCTAssertEqual(try ModelConfig.load(directory: dir).prompts, .none)
        }
    }
}
