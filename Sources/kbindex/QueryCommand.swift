import ArgumentParser
import Foundation
import KBEmbed
import KBFormat
import KBIngest
import KBSearch

/// `kbindex query "question"`: embed the question and print the best chunks.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Find the passages that best answer a question.",
        discussion: """
            Embeds the question with the model the index was built with, scores every chunk \
            exactly, and prints the best: rank, score (cosine similarity, -1…1), \
            path:lines, heading path, and the text (trimmed; whole with --full). Without \
            --index, kbindex looks for .kbindex in the current folder and its parents.

            Examples:
              kbindex query "how do I rotate the logs?"
              kbindex query -k 10 --path 'library/*' "read a file line by line"
              kbindex query --json --full "deadline for the report" | jq -r .text
            """
    )

    @Argument(help: "The question (any text).")
    var question: String

    @Option(name: .short, help: "How many passages to print.")
    var k = 5

    @Option(help: ArgumentHelp("The index folder (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    @Option(help: ArgumentHelp("Only documents whose path matches this glob (repeatable).", valueName: "glob"))
    var path: [String] = []

    @Option(help: ArgumentHelp("Model name or folder (default: the model the index was built with).", valueName: "name|path"))
    var model: String?

    @Flag(help: "Print whole chunks instead of trimming them.")
    var full = false

    @Flag(help: "One JSON object per hit: rank, score, path, lines, heading, text.")
    var json = false

    func validate() throws {
        if k < 1 { throw ValidationError("-k must be at least 1") }
    }

    func run() throws {
        let idx = try IndexOpening.open(index)
        let built = idx.manifest.model
        let embedder = try ModelLoading.load(model, preferred: built.name)
        let descriptor = try ModelLoading.descriptor(of: embedder)
        if let reason = built.incompatibility(with: descriptor) {
            throw CLIError("\(reason): query with the model the index was built with (--model), or rebuild the index with 'kbindex build'")
        }
        let vector = embedder.embed(question)
        let globs = path.map { Glob($0) }
        let filter: ((SegmentReader, Int) -> Bool)? = globs.isEmpty ? nil : { seg, doc in
            let p = seg.document(doc).path
            return globs.contains { $0.matches(p) }
        }
        let hits = Search.topK(vector, k: k, in: idx, documentFilter: filter)
        if hits.isEmpty, !json {
            print(idx.chunkCount == 0 ? "the index is empty" : "no chunk matches --path \(path.joined(separator: " "))")
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (rank, hit) in hits.enumerated() {
            let seg = idx.segments[hit.segment]
            let chunk = seg.chunk(hit.chunk)
            let doc = seg.document(Int(chunk.document))
            let text: String
            do { text = try seg.text(ofChunk: hit.chunk) } catch { throw CLIError(error) }
            if json {
                let line = JSONHit(rank: rank + 1, score: hit.score, path: doc.path, title: doc.title,
                                   line_start: Int(chunk.lineStart), line_end: Int(chunk.lineEnd),
                                   heading: chunk.headingPath, text: full ? text : Self.trim(text, to: 600))
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
                continue
            }
            let heading = chunk.headingPath.joined(separator: " › ")
            print("\(rank + 1). \(String(format: "%.3f", hit.score))  \(doc.path):\(chunk.lineStart)-\(chunk.lineEnd)\(heading.isEmpty ? "" : "  \(heading)")")
            let body = full ? text : Self.trim(text, to: 400)
            for l in body.split(separator: "\n", omittingEmptySubsequences: true) { print("   \(l)") }
            if rank + 1 < hits.count { print("") }
        }
    }

    /// At most `limit` characters, cut at a word boundary, with "…" when cut.
    static func trim(_ text: String, to limit: Int) -> String {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.count > limit else { return t }
        var cut = String(t.prefix(limit))
        if let space = cut.lastIndex(where: { $0 == " " || $0 == "\n" }), cut.distance(from: cut.startIndex, to: space) > limit / 2 {
            cut = String(cut[..<space])
        }
        return cut + " …"
    }
}

private struct JSONHit: Encodable {
    let rank: Int
    let score: Float
    let path: String
    let title: String
    let line_start: Int
    let line_end: Int
    let heading: [String]
    let text: String
}
