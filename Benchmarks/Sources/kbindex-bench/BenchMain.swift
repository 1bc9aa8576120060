import ArgumentParser

@main
struct KBIndexBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kbindex-bench",
        abstract: "Measure kbindex against its own baselines, in one run.",
        discussion: """
            Each subcommand measures its baseline (OpenBLAS sgemm rate, memory floor, …) in the
            same run and prints ratios, because absolute numbers on shared machines are noise.
            Record results with their command, machine and date in Benchmarks/RESULTS.md.

            Examples:
              swift run -c release kbindex-bench embed
              swift run -c release kbindex-bench embed --chunks 200 --json
              swift run -c release kbindex-bench serve --chunks 20000 --requests 200
              swift run -c release kbindex-bench extract     # after corpora/pdf-corpus.sh
              swift run -c release kbindex-bench remote --corpus DIR --questions FILE
              swift run -c release kbindex-bench scaleout --corpus DIR --shards 4 --s3-server
            """,
        subcommands: [EmbedBench.self, EmbedMemoryProbe.self, IndexBench.self, UpdateBench.self, SearchBench.self, ServeBench.self, ExtractBench.self, RemoteBench.self, ScaleOutBench.self]
    )
}
