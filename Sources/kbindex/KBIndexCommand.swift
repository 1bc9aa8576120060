import ArgumentParser
import Foundation

@main
struct KBIndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kbindex",
        abstract: "A local knowledge-base index for retrieval-augmented generation.",
        discussion: """
            kbindex indexes a folder of documents (markdown, text, HTML, source code) and \
            answers questions from it with the passages that match best. Its embedding model \
            runs in-process and offline (all-MiniLM-L6-v2 by default).

            Get started:
              scripts/install-model.sh           # or: kbindex model fetch
              kbindex build ~/notes              # writes ~/notes/.kbindex
              cd ~/notes && kbindex query "How do I rotate the logs?"

            Models live in $KBINDEX_MODEL_DIR, else $XDG_CACHE_HOME/kbindex/models, else
            ~/.cache/kbindex/models.
            """,
        version: "0.1.0",
        subcommands: [BuildCommand.self, QueryCommand.self, EvalCommand.self, InfoCommand.self, VerifyCommand.self, CompactCommand.self, EmbedCommand.self, ModelCommand.self]
    )

    /// Runs the command; a `CLIError` prints as one line on stderr with exit status 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// An error shown to the user as one line on stderr, exit status 1, without
/// swift-argument-parser's usage text (which would bury the message).
struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ error: Error) { message = "\(error)" }
    init(_ message: String) { self.message = message }
    var description: String { message }
}
