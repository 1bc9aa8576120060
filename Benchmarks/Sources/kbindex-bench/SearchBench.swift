import ArgumentParser
import Foundation

struct SearchBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Exact top-k search against the memory floor and peers.")

    @Option(help: "A document folder whose chunks give the real embeddings (e.g. /usr/share/doc/python3.11/html).")
    var realCorpus: String?

    @Option(help: "Globs excluded from --real-corpus (repeatable).")
    var exclude: [String] = []

    @Flag(help: "Only embed (and cache) the real vectors, then stop.")
    var prepareOnly = false

    func run() throws {
        let cache = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.cache").standardizedFileURL
        if let realCorpus {
            let v = try VectorSet.real(corpus: realCorpus, exclude: exclude, questions: IndexBench.questions, queryCount: 200,
                                       cache: cache, threads: nil, log: { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) })
            print("real: \(v.rows) rows, \(v.queryCount) queries, dims \(v.dims)")
        }
    }
}
