import Foundation
import KBCore

/// Whether `vocab.txt` is the whole vocabulary the model was trained with. A cut-short
/// vocabulary still tokenizes, into `[UNK]` and wrong pieces, and search quietly gets worse
/// (cosines of 0.13 instead of 0.76 were seen), so it is refused at load.
enum VocabularyCheck {
    /// Checks the tokenizer's `vocab.txt` against `config.json`'s `vocab_size` and, when the
    /// folder has one, against `tokenizer.json`'s WordPiece vocabulary.
    ///
    /// - More entries than `vocab_size`: refused (their ids have no embedding row).
    /// - Fewer: refused, unless `tokenizer.json` lists exactly the same vocabulary (a model
    ///   whose embedding matrix is padded past its vocabulary).
    /// - `tokenizer.json` present: its vocabulary must be vocab.txt's, token for token.
    ///
    /// Cost: O(1) without `tokenizer.json`; with it, parsing it (about 0.1 s for a 30k
    /// vocabulary) the first time, then nothing while both files are unchanged (the result is
    /// cached in the folder, see `FileCheckCache`).
    /// - Throws: `ModelError.inconsistentFiles` naming the file and what disagrees.
    static func check(_ tokenizer: WordPieceTokenizer, modelDirectory dir: URL, vocabSize: Int) throws {
        let vocabPath = dir.appendingPathComponent("vocab.txt").path
        let jsonPath = dir.appendingPathComponent("tokenizer.json").path
        let n = tokenizer.vocabularySize
        if n > vocabSize {
            throw ModelError.inconsistentFiles(file: vocabPath, reason: "\(n) entries, but config.json's vocab_size is \(vocabSize): ids from \(vocabSize) on have no embedding")
        }
        let hasJSON = FileManager.default.fileExists(atPath: jsonPath)
        if hasJSON {
            _ = try FileCheckCache(folder: dir).value("tokenizer.json agrees with vocab.txt", files: [vocabPath, jsonPath]) {
                try compare(tokenizer, tokenizerJSON: jsonPath, vocabPath: vocabPath)
                return "yes"
            }
        }
        if n < vocabSize && !hasJSON {
            throw ModelError.inconsistentFiles(file: vocabPath, reason: "\(n) entries, but config.json's vocab_size is \(vocabSize) (cut short?)")
        }
    }

    /// Compares vocab.txt (id = line, a repeated token keeps its last id) with
    /// tokenizer.json's `model.vocab`. A tokenizer.json without a WordPiece vocabulary has
    /// nothing to compare and passes. O(vocabulary).
    static func compare(_ tokenizer: WordPieceTokenizer, tokenizerJSON path: String, vocabPath: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.unreadable(file: path, reason: "cannot read it")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.inconsistentFiles(file: path, reason: "not a JSON object (damaged?)")
        }
        guard let model = root["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Any] else { return }
        if let type = model["type"] as? String, type != "WordPiece" { return }
        // Keys are compared as UTF-8 bytes: Swift string equality would merge canonically
        // equivalent tokens that the tokenizer keeps apart.
        var expected: [[UInt8]: Int] = [:]
        for id in 0..<tokenizer.vocabularySize {
            expected[Array(tokenizer.token(for: Int32(id))!.utf8)] = id
        }
        if vocab.count != expected.count {
            throw ModelError.inconsistentFiles(file: vocabPath, reason: "\(expected.count) distinct entries, but tokenizer.json has \(vocab.count): one of the two is damaged or cut short")
        }
        var mismatch: (id: Int, token: String)? = nil
        for (token, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue else {
                throw ModelError.inconsistentFiles(file: path, reason: "vocabulary entry '\(token)' has no integer id")
            }
            if expected[Array(token.utf8)] != id, mismatch == nil || id < mismatch!.id { mismatch = (id, token) }
        }
        if let (id, token) = mismatch {
            let line = expected[Array(token.utf8)].map { "on line \($0 + 1) of vocab.txt" } ?? "not in vocab.txt"
            throw ModelError.inconsistentFiles(file: vocabPath, reason: "does not match tokenizer.json: '\(token)' is id \(id) there but \(line)")
        }
    }
}
