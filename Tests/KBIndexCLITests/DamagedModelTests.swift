import Foundation
import KBTestSupport
import XCTest

/// A damaged model as users meet it: flipped bytes in the weights, weights that make NaN,
/// a cut-short vocabulary, a truncated download. Each is a one-line error naming the model,
/// the file and the fix (exit status 2), never a crash, never a NaN printed, and the index
/// stays as it was.
final class DamagedModelTests: XCTestCase {
    var tmp: URL!
    var store: URL { tmp.appendingPathComponent("store", isDirectory: true) }
    var corpus: URL { tmp.appendingPathComponent("corpus", isDirectory: true) }
    var env: [String: String?] { ["KBINDEX_MODEL_DIR": store.path, "HF_ENDPOINT": nil] }

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kbdamaged-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: store, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    func kb(_ args: [String]) throws -> CLIRunner.Result { try CLIRunner.run(args, environment: env) }

    func put(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: corpus.appendingPathComponent(name))
    }

    /// A tiny model outside the store whose tensor `name` has a NaN at `index`.
    func nanModel(_ name: String, at index: Int) throws -> URL {
        var m = TinyModel(seed: 9)
        m.defects = [.tensorValues(name, [index: .nan])]
        return try m.write(to: tmp.appendingPathComponent("models/tiny-bert"))
    }

    func assertFails(_ r: CLIRunner.Result, _ stderr: String, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.stderr, line: line)
        XCTAssertEqual(r.stdout, "", line: line)
        XCTAssertEqual(r.stderr, stderr, line: line)
    }

    func testAModelTooShortToChunkForIsAnErrorNotAPrecondition() throws {
        // max_seq_length 6 leaves the chunker 4 tokens ([CLS] and [SEP] take 2): Chunker's precondition (>= 8) crashed build.
        var m = TinyModel(seed: 9)
        m.maxSeqLength = 6
        let model = try m.write(to: tmp.appendingPathComponent("models/short-bert"))
        try put("a.md", "# A\n\nSome words to index.\n")
        let r = try kb(["build", corpus.path, "--model", model.path])
        assertFails(r, "error: model 'short-bert' (\(model.path)) leaves at most 4 tokens of text per input; building an index needs at least 8\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.appendingPathComponent(".kbindex/manifest.json").path))
    }

    // MARK: NaN vectors

    func testWeightsThatMakeNaNAreAnErrorForEmbedAndBuild() throws {
        let model = try nanModel("embeddings.LayerNorm.weight", at: 3)
        let message = "error: model 'tiny-bert' (\(model.path)) produced a vector with NaN or infinite values for the input; "
            + "its weights are damaged (tensor 'embeddings.LayerNorm.weight' holds NaN): replace the model folder with a fresh copy of the model\n"
        // Was: "-nan" values with status 0; a Swift EncodingError with --json; a precondition crash (132) in build.
        assertFails(try kb(["embed", "--model", model.path, "hello world"]), message)
        assertFails(try kb(["embed", "--json", "--model", model.path, "hello world"]), message)
        try put("note.md", "# Note\n\nthe dog sat on the mat\n")
        let build = try kb(["build", corpus.path, "--model", model.path])
        XCTAssertEqual(build.status, 2, build.stderr)
        XCTAssertTrue(build.stderr.hasSuffix(message), build.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: corpus.appendingPathComponent(".kbindex/manifest.json").path))
    }

    func testNaNForOneWordFailsQueryEvalAndBuildButKeepsTheIndex() throws {
        // Row 7 of the word embeddings is "cat": only texts with that word give NaN.
        let model = try nanModel("embeddings.word_embeddings.weight", at: 7 * 16 + 5)
        try put("dog.md", "# Dog\n\nthe dog sat on the mat\n")
        let first = try kb(["build", corpus.path, "--model", model.path, "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let index = corpus.appendingPathComponent(".kbindex").path
        let ok = try kb(["query", "--index", index, "--model", model.path, "the dog"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("dog.md"), ok.stdout)

        let message = "error: model 'tiny-bert' (\(model.path)) produced a vector with NaN or infinite values for the input; "
            + "its weights are damaged (tensor 'embeddings.word_embeddings.weight' holds NaN): replace the model folder with a fresh copy of the model\n"
        for mode in ["hybrid", "vector"] {
            assertFails(try kb(["query", "--index", index, "--model", model.path, "--mode", mode, "the cat"]), message)
            assertFails(try kb(["query", "--index", index, "--model", model.path, "--mode", mode, "--json", "the cat"]), message)
        }
        let lexical = try kb(["query", "--index", index, "--model", model.path, "--mode", "lexical", "the dog"])
        XCTAssertEqual(lexical.status, 0, lexical.stderr)

        let questions = tmp.appendingPathComponent("q.tsv")
        try Data("id\tquestion\trelevant_paths\nq1\twhere did the dog sit?\tdog.md\nq2\twhere is the cat?\tdog.md\n".utf8).write(to: questions)
        let eval = try kb(["eval", questions.path, "--index", index, "--model", model.path])
        XCTAssertEqual(eval.status, 2, eval.stderr)
        XCTAssertEqual(eval.stderr, message)

        // A new file with the word: the build stops with the error; the old index still answers.
        try put("cat.md", "# Cat\n\nthe cat sat on the mat\n")
        let second = try kb(["build", corpus.path, "--model", model.path, "--quiet"])
        XCTAssertEqual(second.status, 2, second.stderr)
        XCTAssertTrue(second.stderr.contains("tensor 'embeddings.word_embeddings.weight' holds NaN"), second.stderr)
        XCTAssertFalse(second.stderr.contains("precondition"), second.stderr)
        let after = try kb(["query", "--index", index, "--model", model.path, "the dog"])
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertTrue(after.stdout.contains("dog.md") && !after.stdout.contains("cat.md"), after.stdout)
    }

    // MARK: The default model against its pinned checksums

    /// A copy of the installed all-MiniLM-L6-v2 in `folder`: `copied` files are real copies
    /// (safe to damage), the others symbolic links to the original (only read).
    func copyMiniLM(to folder: URL, copying copied: Set<String>) throws -> URL {
        let original = try InstalledModels.miniLM()
        let fm = FileManager.default
        try fm.createDirectory(at: folder.appendingPathComponent("1_Pooling"), withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"] {
            let src = original.appendingPathComponent(f), dst = folder.appendingPathComponent(f)
            guard fm.fileExists(atPath: src.path) else { continue }
            if copied.contains(f) { try fm.copyItem(at: src, to: dst) } else { try fm.createSymbolicLink(at: dst, withDestinationURL: src) }
        }
        return folder
    }

    func flipBytes(_ url: URL, at offsets: [Int]) throws {
        let h = try FileHandle(forUpdating: url)
        for o in offsets {
            try h.seek(toOffset: UInt64(o))
            let b = try h.read(upToCount: 1)![0]
            try h.seek(toOffset: UInt64(o))
            try h.write(contentsOf: [b ^ 0x5A])
        }
        try h.close()
    }

    let fetchAdvice = "download it again with 'kbindex model fetch all-MiniLM-L6-v2' (or scripts/install-model.sh without hub access)"

    func testFlippedBytesInTheDefaultModelAreCaughtByItsPinnedChecksum() throws {
        let dir = try copyMiniLM(to: store.appendingPathComponent("all-MiniLM-L6-v2"), copying: ["model.safetensors"])
        let intact = try kb(["embed", "hello"])
        XCTAssertEqual(intact.status, 0, intact.stderr)
        // The hash is cached beside the weights: later loads do not read 90 MB again.
        let cache = try String(contentsOf: dir.appendingPathComponent(".kbindex-checks"), encoding: .utf8)
        XCTAssertTrue(cache.contains("53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"), cache)

        let weights = dir.appendingPathComponent("model.safetensors")
        let size = try FileManager.default.attributesOfItem(atPath: weights.path)[.size] as! Int
        try flipBytes(weights, at: [size / 2, size / 2 + 1001, size / 3, size - 77])
        let embed = try kb(["embed", "hello"])
        XCTAssertEqual(embed.status, 2)
        XCTAssertEqual(embed.stdout, "")
        let prefix = "error: model 'all-MiniLM-L6-v2' is damaged: model.safetensors: its SHA-256 is "
        let suffix = ", not the pinned 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db: \(fetchAdvice)\n"
        XCTAssertTrue(embed.stderr.hasPrefix(prefix) && embed.stderr.hasSuffix(suffix), embed.stderr)
        XCTAssertEqual(embed.stderr.split(separator: "\n").count, 1)

        try put("note.md", "# Note\n\nSome text.\n")
        let build = try kb(["build", corpus.path])
        XCTAssertEqual(build.status, 2)
        XCTAssertTrue(build.stderr.hasPrefix(prefix) && build.stderr.hasSuffix(suffix), build.stderr)

        let list = try kb(["model", "list"])
        XCTAssertEqual(list.status, 0)
        XCTAssertEqual(list.stdoutLines.count, 1, list.stdout)
        XCTAssertTrue(list.stdoutLines[0].hasPrefix("all-MiniLM-L6-v2 (default)  "), list.stdout)
        XCTAssertTrue(list.stdoutLines[0].contains(" MB  \(dir.path)  (damaged: model.safetensors: its SHA-256 is "), list.stdout)
        XCTAssertTrue(list.stdoutLines[0].hasSuffix(": \(fetchAdvice))"), list.stdout)
    }

    func testTruncatedVocabularyIsRefused() throws {
        // In the store: the pinned checksum names the file.
        let inStore = try copyMiniLM(to: store.appendingPathComponent("all-MiniLM-L6-v2"), copying: ["vocab.txt"])
        let vocab = try String(contentsOf: inStore.appendingPathComponent("vocab.txt"), encoding: .utf8)
        let cut = vocab.split(separator: "\n", omittingEmptySubsequences: false).prefix(15000).joined(separator: "\n") + "\n"
        try Data(cut.utf8).write(to: inStore.appendingPathComponent("vocab.txt"))
        let r = try kb(["embed", "hello"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("error: model 'all-MiniLM-L6-v2' is damaged: vocab.txt: its SHA-256 is "), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("not the pinned 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3: \(fetchAdvice)\n"), r.stderr)

        // Any folder: vocab.txt against tokenizer.json, then against config.json's vocab_size.
        let folder = try copyMiniLM(to: tmp.appendingPathComponent("my-minilm"), copying: ["vocab.txt", "tokenizer.json"])
        try Data(cut.utf8).write(to: folder.appendingPathComponent("vocab.txt"))
        let vocabPath = folder.appendingPathComponent("vocab.txt").path
        let advice = "replace the model folder with a fresh copy of the model"
        assertFails(try kb(["embed", "--model", folder.path, "hello"]),
                    "error: \(vocabPath): 15000 distinct entries, but tokenizer.json has 30522: one of the two is damaged or cut short: \(advice)\n")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("tokenizer.json"))
        assertFails(try kb(["embed", "--model", folder.path, "hello"]),
                    "error: \(vocabPath): 15000 entries, but config.json's vocab_size is 30522 (cut short?): \(advice)\n")
    }

    // MARK: model list

    func testModelListMarksATruncatedModel() throws {
        // Was: "40.8 MB" like any other model.
        let dir = try copyMiniLM(to: store.appendingPathComponent("all-MiniLM-L6-v2"), copying: [])
        let weights = dir.appendingPathComponent("model.safetensors")
        let full = try Data(contentsOf: weights)
        try FileManager.default.removeItem(at: weights)
        try full.prefix(40_800_000).write(to: weights)
        let tiny = try TinyModel(seed: 9).write(to: store.appendingPathComponent("tiny-bert"))
        let tinyWeights = tiny.appendingPathComponent("model.safetensors")
        let tinyFull = try Data(contentsOf: tinyWeights)
        try tinyFull.prefix(tinyFull.count - 100).write(to: tinyWeights)
        try TinyModel(seed: 9).write(to: store.appendingPathComponent("fine"))

        let list = try kb(["model", "list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertEqual(list.stdoutLines.count, 3, list.stdout)
        XCTAssertTrue(list.stdoutLines[0].hasPrefix("all-MiniLM-L6-v2 (default)  "), list.stdout)
        XCTAssertTrue(list.stdoutLines[0].hasSuffix("  \(dir.path)  (damaged: model.safetensors: it is 40800000 bytes but its header declares \(full.count) bytes (truncated): \(fetchAdvice))"), list.stdout)
        XCTAssertTrue(list.stdoutLines[1].hasPrefix("fine  "), list.stdout)
        XCTAssertTrue(list.stdoutLines[1].hasSuffix("  \(store.appendingPathComponent("fine").path)"), list.stdout)
        XCTAssertTrue(list.stdoutLines[2].hasSuffix("  (damaged: model.safetensors: it is \(tinyFull.count - 100) bytes but its header declares \(tinyFull.count) bytes (truncated): "
            + "download it again with 'kbindex model fetch OWNER/REPO --name tiny-bert' from the hub repository it came from)"), list.stdout)

        // A model fetched from the hub records where from, so the advice names it.
        try Data(#"{"repo": "acme/tiny-bert"}"#.utf8).write(to: tiny.appendingPathComponent(".kbindex-source"))
        let again = try kb(["model", "list"])
        XCTAssertTrue(again.stdoutLines[2].hasSuffix(": download it again with 'kbindex model fetch acme/tiny-bert')"), again.stdout)
        let embed = try kb(["embed", "--model", "tiny-bert", "hello"])
        XCTAssertEqual(embed.status, 2)
        XCTAssertEqual(embed.stderr, "error: model 'tiny-bert' is damaged: model.safetensors: it is \(tinyFull.count - 100) bytes but its header declares \(tinyFull.count) bytes (truncated): download it again with 'kbindex model fetch acme/tiny-bert'\n")
    }
}
