import Foundation
import KBCore
import KBTestSupport
import XCTest

@testable import KBEmbed

/// Damaged model folders: weights that make NaN or infinite vectors, and vocabularies that
/// disagree with config.json or tokenizer.json, are errors naming the model and the file,
/// never a crash and never a vector.
final class DamagedModelTests: XCTestCase {
    var made: [URL] = []

    override func tearDown() {
        for d in made { TinyModel.remove(d) }
        made = []
    }

    func write(_ model: TinyModel) throws -> URL {
        let dir = try model.writeTemporary()
        made.append(dir)
        return dir
    }

    func model(_ defects: TinyModel.Defect...) -> TinyModel {
        var m = TinyModel(seed: 11)
        m.defects = defects
        return m
    }

    /// The `ModelError.nonFiniteVector` that `body` throws (fails the test otherwise).
    func nonFinite(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> (String, ModelError)? {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let e as ModelError {
            guard case .nonFiniteVector = e else { XCTFail("not nonFiniteVector: \(e)", file: file, line: line); return nil }
            XCTAssertTrue(e.isDamage, file: file, line: line)
            return (e.description, e)
        } catch {
            XCTFail("not a ModelError: \(error)", file: file, line: line)
        }
        return nil
    }

    // MARK: Non-finite vectors

    func testNaNInALayerNormIsAnErrorAtLoad() throws {
        let dir = try write(model(.tensorValues("embeddings.LayerNorm.weight", [3: .nan])))
        guard let (text, _) = nonFinite({ _ = try Embedder(modelDirectory: dir, threads: 1) }) else { return }
        XCTAssertTrue(text.contains("model 'tiny-bert' (\(dir.path))"), text)
        XCTAssertTrue(text.contains("tensor 'embeddings.LayerNorm.weight' holds NaN"), text)
    }

    func testNaNInOneEmbeddingRowIsAnErrorWhenThatTokenIsEmbedded() throws {
        // Row 7 is "cat": loading ([CLS] [SEP]) and other texts do not touch it.
        let h = TinyModel(seed: 11).hiddenSize
        let dir = try write(model(.tensorValues("embeddings.word_embeddings.weight", [7 * h + 2: .nan])))
        let e = try Embedder(modelDirectory: dir, threads: 2)
        let fine = try e.embed(["the dog sat on the mat", "hello world"])
        XCTAssertTrue(fine.allSatisfy { $0.allSatisfy(\.isFinite) })

        guard let (one, _) = nonFinite({ _ = try e.embed("the cat") }) else { return }
        XCTAssertTrue(one.contains("for the input; its weights are damaged (tensor 'embeddings.word_embeddings.weight' holds NaN)"), one)
        guard let (batch, _) = nonFinite({ _ = try e.embed(["the dog", "a cat", "hello"]) }) else { return }
        XCTAssertTrue(batch.contains("for input 2 of 3"), batch)
        let ids = e.tokenizer.encode("cats").ids
        XCTAssertTrue(ids.contains(7))
        _ = nonFinite({ _ = try e.embed(tokenIDs: [ids]) })
    }

    func testInfiniteWeightIsAnErrorNamingTheTensor() throws {
        let dir = try write(model(.tensorValues("encoder.layer.1.attention.output.dense.weight", [17: -.infinity])))
        guard let (text, _) = nonFinite({ _ = try Embedder(modelDirectory: dir, threads: 1) }) else { return }
        XCTAssertTrue(text.contains("tensor 'encoder.layer.1.attention.output.dense.weight' holds -inf"), text)
    }

    // MARK: Vocabulary against config.json and tokenizer.json

    func assertInconsistent(_ dir: URL, file: String, _ parts: [String], line: UInt = #line) {
        do {
            _ = try Embedder(modelDirectory: dir, threads: 1)
            XCTFail("loaded", line: line)
        } catch let e as ModelError {
            guard case .inconsistentFiles = e else { XCTFail("\(e)", line: line); return }
            XCTAssertTrue(e.isDamage, line: line)
            XCTAssertTrue(e.description.hasPrefix(dir.appendingPathComponent(file).path + ": "), e.description, line: line)
            for p in parts { XCTAssertTrue(e.description.contains(p), "'\(e.description)' lacks '\(p)'", line: line) }
        } catch {
            XCTFail("not a ModelError: \(error)", line: line)
        }
    }

    func truncateVocabulary(_ dir: URL, toLines n: Int) throws {
        let lines = TinyModel(seed: 11).vocabularyLines.prefix(n)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("vocab.txt"))
    }

    /// tokenizer.json with a WordPiece vocabulary of `tokens` (id = index).
    func writeTokenizerJSON(_ dir: URL, _ tokens: [String]) throws {
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() { vocab[t] = i }
        let obj: [String: Any] = ["version": "1.0", "model": ["type": "WordPiece", "unk_token": "[UNK]", "vocab": vocab]]
        try JSONSerialization.data(withJSONObject: obj).write(to: dir.appendingPathComponent("tokenizer.json"))
    }

    func testTruncatedVocabularyIsRefused() throws {
        let dir = try write(model())
        try truncateVocabulary(dir, toLines: 30)
        assertInconsistent(dir, file: "vocab.txt", ["30 entries, but config.json's vocab_size is 50", "cut short"])
    }

    func testVocabularyLargerThanTheEmbeddingMatrixIsRefused() throws {
        let dir = try write(model())
        let lines = TinyModel(seed: 11).vocabularyLines + ["extra1", "extra2"]
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("vocab.txt"))
        assertInconsistent(dir, file: "vocab.txt", ["52 entries, but config.json's vocab_size is 50"])
        // The tokenizer would hand out id 51 for "extra2": loading refused it, so no crash.
    }

    func testTruncatedVocabularyIsFoundByTokenizerJSON() throws {
        let dir = try write(model())
        try writeTokenizerJSON(dir, TinyModel(seed: 11).vocabularyLines)
        XCTAssertNoThrow(try Embedder(modelDirectory: dir, threads: 1))
        try truncateVocabulary(dir, toLines: 45)
        assertInconsistent(dir, file: "vocab.txt", ["45 distinct entries, but tokenizer.json has 50"])
    }

    func testReorderedVocabularyIsFoundByTokenizerJSON() throws {
        let dir = try write(model())
        var tokens = TinyModel(seed: 11).vocabularyLines
        tokens.swapAt(7, 8)  // "cat" and "dog"
        try writeTokenizerJSON(dir, tokens)
        assertInconsistent(dir, file: "vocab.txt", ["does not match tokenizer.json: 'dog' is id 7 there but on line 9 of vocab.txt"])
    }

    func testPaddedEmbeddingMatrixIsAcceptedWhenTokenizerJSONAgrees() throws {
        // Some models pad the embedding matrix past the vocabulary; tokenizer.json vouches for it.
        let dir = try write(model())
        try truncateVocabulary(dir, toLines: 19)
        XCTAssertThrowsError(try Embedder(modelDirectory: dir, threads: 1))
        try writeTokenizerJSON(dir, Array(TinyModel.vocabulary))
        let e = try Embedder(modelDirectory: dir, threads: 1)
        XCTAssertEqual(e.tokenizer.vocabularySize, 19)
    }

    func testDamagedTokenizerJSONIsRefused() throws {
        let dir = try write(model())
        try Data("{\"model\": {\"vocab\": {".utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        assertInconsistent(dir, file: "tokenizer.json", ["not a JSON object"])
    }

    func testHugeVocabularyFileIsRefusedWithoutReadingIt() throws {
        let dir = try write(model())
        // Sparse: 100 MB that take no disk and, refused by size, are never read.
        let vocab = dir.appendingPathComponent("vocab.txt")
        let h = try FileHandle(forWritingTo: vocab)
        try h.truncate(atOffset: 100 << 20)
        try h.close()
        XCTAssertThrowsError(try Embedder(modelDirectory: dir, threads: 1)) { error in
            XCTAssertEqual((error as? TokenizerError)?.kind, .vocabularyTooLarge)
            XCTAssertTrue("\(error)".contains("\(vocab.path) is 104857600 bytes, too large for a vocabulary"), "\(error)")
        }
    }

    func testSequenceLengthsThatCannotBeAllocatedAreRefused() throws {
        // A length × length attention matrix per worker: 100,000 tokens would need 40 GB.
        var m = model()
        m.maxPositions = 100_000
        m.maxSeqLength = nil  // the limit is then max_position_embeddings
        let dir = try write(m)
        XCTAssertThrowsError(try Embedder(modelDirectory: dir, threads: 1)) { error in
            XCTAssertEqual("\(error)", "\(dir.appendingPathComponent("config.json").path): sequences of 100000 tokens are not supported (at most 8192: attention needs length² memory)")
        }
        m.maxPositions = 9000
        m.maxSeqLength = 512  // sentence_bert_config.json keeps it small: fine
        XCTAssertNoThrow(try Embedder(modelDirectory: try write(m), threads: 1))
    }

    func testTokenizerJSONCheckIsCachedUntilAFileChanges() throws {
        let dir = try write(model())
        let json = dir.appendingPathComponent("tokenizer.json")
        try writeTokenizerJSON(dir, TinyModel(seed: 11).vocabularyLines)
        let cacheFile = dir.appendingPathComponent(FileCheckCache.fileName)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cacheFile.path))
        _ = try Embedder(modelDirectory: dir, threads: 1)
        let cached = try String(contentsOf: cacheFile, encoding: .utf8)
        XCTAssertTrue(cached.contains("tokenizer.json agrees with vocab.txt"), cached)

        // Garbage of the same size written in place, with the old mtime put back: the file
        // looks unchanged, so the second load trusts the cache and does not read it.
        let original = try Data(contentsOf: json)
        let mtime = try FileStatus.of(json.path).mtimeNanoseconds
        let handle = try FileHandle(forWritingTo: json)
        try handle.write(contentsOf: Data(repeating: UInt8(ascii: "x"), count: original.count))
        try handle.close()
        try setModificationTime(json, nanoseconds: mtime)
        XCTAssertNoThrow(try Embedder(modelDirectory: dir, threads: 1))
        XCTAssertEqual(try String(contentsOf: cacheFile, encoding: .utf8), cached)

        // A new mtime: the check runs again and finds the garbage.
        try setModificationTime(json, nanoseconds: mtime + 1_000_000_000)
        assertInconsistent(dir, file: "tokenizer.json", ["not a JSON object"])
    }

    /// Sets a file's mtime to the nanosecond.
    func setModificationTime(_ url: URL, nanoseconds ns: Int64) throws {
        var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2 /* UTIME_OMIT */), timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))]
        XCTAssertEqual(utimensat(AT_FDCWD, url.path, &times, 0), 0)
    }
}
