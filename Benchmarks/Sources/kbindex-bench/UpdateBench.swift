import ArgumentParser
import Foundation
import KBFormat
import KBSearch

/// `kbindex-bench update`: what an incremental build costs against a full one, on a real
/// corpus, in one run.
///
/// Copies the corpus to a temporary folder, builds it from scratch (the baseline), builds it
/// again with nothing changed (the cost of walking and stat-ing alone), edits a fraction of
/// the indexed files (a paragraph appended to each, chosen by a seeded generator), builds
/// again, and reports each time as a fraction of the full build. All builds are the release
/// `kbindex` as separate processes, as a user runs them.
struct UpdateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Time an incremental kbindex build after editing a fraction of the files, against a full build.",
        discussion: """
            Example (the README's demo corpus, Debian's python3.11-doc):
              swift build -c release   # in the repository root: the kbindex under test
              cd Benchmarks && swift run -c release kbindex-bench update \\
                --corpus /usr/share/doc/python3.11/html --exclude '_sources/**' --exclude 'genindex*'
            """
    )

    @OptionGroup var target: BuildTarget

    @Option(help: "Fraction of the indexed files to edit.")
    var fraction = 0.01

    @Option(help: "Seed for choosing the files to edit.")
    var seed: UInt64 = 1

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func run() throws {
        let exe = try target.executable()
        let corpus = target.corpus, exclude = target.exclude
        let work = URL(fileURLWithPath: NSTemporaryDirectory() + "kbindex-bench-update-\(getpid())")
        defer { try? FileManager.default.removeItem(at: work) }
        let copy = work.appendingPathComponent("corpus"), indexDir = work.appendingPathComponent("index")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: corpus), to: copy)
        let args = ["build", copy.path, "--index", indexDir.path, "--quiet"] + exclude.flatMap { ["--exclude", $0] }
        func build(_ what: String) throws -> (String, Double) {
            let (st, out, t) = try IndexBench.runProcess(exe, args)
            guard st == 0 else { throw ValidationError("kbindex build (\(what)) failed (\(st)):\n\(out)") }
            return (out.trimmingCharacters(in: .whitespacesAndNewlines), t)
        }

        // 1. The baseline: a full build. 2. Nothing changed.
        let (fullOut, full) = try build("full")
        let (noopOut, noop) = try build("unchanged")
        let before = try IndexDirectory(url: indexDir)
        let paths = KnownDocuments(before).byPath.keys.sorted()

        // 3. Edit a fraction of the indexed files: a paragraph appended to each.
        var rng = SplitMix(seed: seed)
        var chosen = Set<String>()
        let want = max(1, Int((Double(paths.count) * fraction).rounded()))
        while chosen.count < want { chosen.insert(paths[Int(rng.next() % UInt64(paths.count))]) }
        for p in chosen.sorted() {
            let h = try FileHandle(forWritingTo: copy.appendingPathComponent(p))
            h.seekToEndOfFile()
            let para = p.hasSuffix(".html") ? "<p>Edited by kbindex-bench: a new paragraph about \(p).</p>\n" : "\n\nEdited by kbindex-bench: a new paragraph about \(p).\n"
            h.write(Data(para.utf8))
            try h.close()
        }
        let (incrOut, incr) = try build("incremental")
        let after = try IndexDirectory(url: indexDir)
        let reembedded = Self.chunksIndexed(incrOut)

        let result: [String: Any] = [
            "machine": machineDescription(), "corpus": corpus, "files": paths.count, "chunks": before.chunkCount,
            "edited_files": chosen.count, "fraction": fraction, "seed": seed,
            "full_s": full, "unchanged_s": noop, "incremental_s": incr,
            "incremental_vs_full": incr / full, "unchanged_vs_full": noop / full,
            "chunks_reembedded": reembedded, "segments_after": after.segments.count,
            "deleted_chunks_after": after.chunkCount - after.liveChunkCount,
        ]
        if json { printJSON(result); return }
        print("machine: \(machineDescription().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        print("full build:\n\(fullOut)\n\nunchanged:\n\(noopOut)\n\nafter editing \(chosen.count) files (\(chosen.sorted().joined(separator: ", "))):\n\(incrOut)")
        printTable("incremental build (\(paths.count) files, \(before.chunkCount) chunks; \(chosen.count) edited = \(fmt(100 * Double(chosen.count) / Double(paths.count)))%)",
                   header: ["build", "seconds", "÷ full build", "chunks embedded"], rows: [
            ["full", fmt(full, 2), "1.000", "\(Self.chunksIndexed(fullOut))"],
            ["nothing changed", fmt(noop, 2), fmt(noop / full, 4), "0"],
            ["\(chosen.count) files edited", fmt(incr, 2), fmt(incr / full, 4), "\(reembedded)"],
        ])
        print("after: \(after.segments.count) segments, \(after.chunkCount - after.liveChunkCount) deleted chunks (dropped by the next compaction)")
    }

    /// The N of "indexed F files into N chunks" in a build's summary (0 when up to date).
    static func chunksIndexed(_ out: String) -> Int {
        guard let r = out.range(of: #"into [0-9,]+ chunks"#, options: .regularExpression) else { return 0 }
        return Int(out[r].dropFirst(5).dropLast(7).replacingOccurrences(of: ",", with: "")) ?? 0
    }
}
