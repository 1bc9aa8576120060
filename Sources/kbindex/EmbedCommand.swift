import ArgumentParser
import Foundation
import KBEmbed
import KBModelStore

/// `kbindex embed`: the vector of a text, for debugging and for interop with other tools.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the embedding vector of one or more texts.",
        discussion: """
            Runs the built-in model in-process (no server, no network) and prints each text's \
            vector: the same vectors `kbindex build` stores and `kbindex query` searches with. \
            A text longer than the model's limit (256 tokens for all-MiniLM-L6-v2) is truncated, \
            and the output says so. Pass - to read one text from standard input. \
            --precision int8 runs the encoder's linear layers in int8, as \
            'kbindex build --precision int8' does (the output names the precision). \
            --as query or --as document prepends the model's query or document prompt (its \
            config_sentence_transformers.json), as 'kbindex query' and 'kbindex build' do; by \
            default a text is embedded as given.

            Examples:
              kbindex embed "How do I rotate the logs?"
              kbindex embed --json "one" "two" | jq '.embedding | length'
              cat notes.md | kbindex embed -
              kbindex embed --precision int8 "How do I rotate the logs?"
              kbindex embed --model bge-small-en-v1.5 --as query "log rotation"
              kbindex embed --model e5-small-v2 --as document "Logs rotate daily."
            """
    )

    @Argument(help: "The texts to embed (- reads standard input).")
    var texts: [String]

    @Option(name: .long, help: ArgumentHelp("Model name in the store, or a model folder.", valueName: "name|path"))
    var model: String?

    @Option(parsing: .unconditional, help: "Worker threads (default: every core).")
    var threads: Int?

    @Option(help: ArgumentHelp("Run the encoder in f32 or int8 (default: \(Precision.default)).", valueName: "f32|int8"))
    var precision: Precision = .default

    @Option(name: .customLong("as"), help: ArgumentHelp("Embed the texts as questions (query) or passages (document), with the model's prompt for that role; default: plain, as given.", valueName: "query|document|plain"))
    var role: TextRole = .plain

    @Flag(help: "One JSON object per line: model, precision, dimensions, tokens, truncated, embedding.")
    var json = false

    func validate() throws {
        // Parsed with `.unconditional`: "--threads -1" reaches this check, not "Missing value".
        if let threads, threads < 1 { throw ValidationError("--threads must be a positive number (1 or more), got \(threads)") }
    }

    func run() throws {
        let inputs = texts.map { $0 == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : $0 }
        let embedder = try ModelLoading.load(model, threads: threads, precision: precision)
        let prompt = embedder.prompts.prompt(for: role) ?? ""
        let tokenized = inputs.map { embedder.tokenizer.encode(prompt + $0) }
        // Every vector is computed (and checked finite) before anything is printed.
        let vectors = try ModelLoading.embed(inputs, as: role, with: embedder)
        let cfg = embedder.config
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (i, (tok, vector)) in zip(tokenized, vectors).enumerated() {
            let truncated = tok.fullLength > tok.ids.count
            if json {
                // Floats print in their shortest round-trip form, so the file reads back bit-exact.
                let line = JSONLine(model: cfg.name, precision: embedder.precision.rawValue, dimensions: vector.count,
                                    tokens: tok.ids.count, truncated: truncated, embedding: vector)
                print(String(decoding: try encoder.encode(line), as: UTF8.self))
                continue
            }
            if inputs.count > 1 { print(i == 0 ? "" : "\n", terminator: "") }
            let cut = truncated ? ", truncated from \(tok.fullLength)" : ""
            print("\(cfg.name): \(Format.counted(vector.count, "dimension")), \(Format.counted(tok.ids.count, "token"))\(cut), \(cfg.pooling.rawValue) pooling\(cfg.normalize ? ", normalized" : ""), \(embedder.precision)\(prompt.isEmpty ? "" : ", prompt '\(Format.displayed(prompt))'")")
            print(Self.format(vector))
        }
    }

    /// Eight values a line, fixed width, so columns line up.
    static func format(_ v: [Float]) -> String {
        stride(from: 0, to: v.count, by: 8).map { start in
            v[start..<min(start + 8, v.count)].map { String(format: "%10.6f", $0) }.joined(separator: " ")
        }.joined(separator: "\n")
    }
}

private struct JSONLine: Encodable {
    let model: String
    let precision: String
    let dimensions: Int
    let tokens: Int
    let truncated: Bool
    let embedding: [Float]
}

extension TextRole: ExpressibleByArgument {}
