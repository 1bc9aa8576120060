import ArgumentParser
import Foundation
import KBRetrieval

@main
struct KBIndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kbindex",
        abstract: "A local knowledge-base index for retrieval-augmented generation.",
        discussion: """
            kbindex indexes a folder of documents (markdown, text, HTML, code, PDF, Word, OpenDocument, EPUB) and \
            answers questions from it with the passages that match best. Its embedding model \
            runs in-process and offline (all-MiniLM-L6-v2 by default).

            Get started:
              scripts/install-model.sh      # or: kbindex model fetch
              kbindex build ~/notes         # writes ~/notes/.kbindex
              cd ~/notes
              kbindex query "How do I rotate the logs?"

            Models live in $KBINDEX_MODEL_DIR, else $XDG_CACHE_HOME/kbindex/models, else \
            ~/.cache/kbindex/models.

            Exit status, as rg and grep use it: 0 done (query: something matched); 1 query \
            found nothing (--path selected no document, or the index is empty); 2 an error, \
            explained in one line on stderr; 64 a usage error (a bad option or value, an empty \
            question, no subcommand).
            """,
        version: KBIndexVersion.string,
        subcommands: [BuildCommand.self, QueryCommand.self, EvalCommand.self, InfoCommand.self, VerifyCommand.self, CompactCommand.self, MergeCommand.self, EmbedCommand.self, ModelCommand.self, ServeCommand.self, MCPCommand.self]
    )

    /// The exit status of a command that failed (`CLIError`, or any error that is not a usage
    /// error): 2, as rg and grep use it, so that a script can tell "nothing found" (1) from
    /// "could not answer".
    static let errorStatus: Int32 = 2
    /// EX_USAGE (sysexits.h), what swift-argument-parser returns for a usage error.
    static let usageStatus: Int32 = 64

    /// Runs the command. A `CLIError` prints as one line on stderr with exit status 2;
    /// `NothingFound` prints its message on stderr with status 1; usage errors exit 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            // `kbindex` or `kbindex model` without a subcommand has nothing to do: its help
            // goes to stderr with status 64 (a script that forgot the subcommand must not
            // read "success"). `--help` still prints it on stdout with status 0.
            let type = Swift.type(of: command)
            if !type.configuration.subcommands.isEmpty {
                FileHandle.standardError.write(Data((helpMessage(for: type) + "\n").utf8))
                Foundation.exit(usageStatus)
            }
            try command.run()
        } catch let error as CLIError {
            // Messages name files and quote arguments: escaped, as warnings are.
            FileHandle.standardError.write(Data("error: \(Format.displayed(error.message))\n".utf8))
            Foundation.exit(errorStatus)
        } catch let nothing as NothingFound {
            FileHandle.standardError.write(Data("\(Format.displayed(nothing.message))\n".utf8))
            Foundation.exit(1)
        } catch {
            // swift-argument-parser's own statuses (0 for --help, 64 for a usage error, an
            // explicit ExitCode) stay; any other error is a failure: status 2, not 1.
            if !(error is ExitCode), exitCode(for: error) == .failure {
                FileHandle.standardError.write(Data("error: \(Format.displayed(fullMessage(for: error)))\n".utf8))
                Foundation.exit(errorStatus)
            }
            exit(withError: error)
        }
    }
}

/// An error shown to the user as one line on stderr, exit status 2, without
/// swift-argument-parser's usage text (which would bury the message).
struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ error: Error) { message = "\(error)" }
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Not an error: the command ran and found nothing (`query` with a --path that selects no
/// document, or an empty index). Exit status 1, as rg and grep use it; the message goes to
/// stderr so that stdout (and --json output) stays empty.
struct NothingFound: Error {
    let message: String
}
