import ArgumentParser

@main
struct KBIndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kbindex",
        subcommands: [ModelCommand.self]
    )
}
