import ArgumentParser
import Foundation
import KBModelStore
import KBRetrieval
import KBSearch
import KBServer

/// `kbindex mcp`: the index's search as MCP tools over standard input and output, for agents
/// and chat clients that start a local MCP server (Claude Desktop, Claude Code, Cursor...).
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve an index to MCP clients over standard input and output.",
        discussion: """
            Speaks the Model Context Protocol on stdin/stdout (JSON-RPC, one message a \
            line) until stdin closes, then exits 0; notes and logs go to stderr. An MCP \
            client (Claude Desktop, Claude Code, Cursor...) starts it and calls its tools: \
            search (query, k, mode, path, index) returns {"results": [{id, title, text, \
            path, line_start, line_end, heading, score, rank}]} (page, page_end for a PDF; \
            paragraph_start, paragraph_end for DOCX, ODT, EPUB), text being the start of \
            the passage; fetch (id, neighbours, index) returns the whole passage with its \
            metadata; status describes the served indexes and the model.

            Without --index, kbindex serves the nearest .kbindex of the current folder. \
            Several indexes: repeat --index NAME=DIR; a search names one (index), and result \
            ids then start with "NAME:". An index rebuilt while served is picked up within a \
            second. Questions are embedded in the precision the first index was built in \
            (f32 or int8) unless --precision says. For HTTP clients, 'kbindex serve' has the \
            same tools at /mcp.

            Examples:
              kbindex mcp --index ~/notes/.kbindex
              kbindex mcp --index notes=~/notes --index docs=~/pydocs.kbindex
              claude mcp add kbindex -- kbindex mcp --index ~/notes/.kbindex
            """
    )

    @OptionGroup var served: ServedIndexOptions

    func run() throws {
        let service = try served.service()
        try served.startRemotePolling { line in
            FileHandle.standardError.write(Data("kbindex: \(Format.displayed(line))\n".utf8))
        }
        let indexes = service.indexNames
        note("serving \(Format.counted(indexes.count, "index", plural: "indexes")) (\(indexes.joined(separator: ", "))) over MCP on stdin/stdout")
        let failure = ServedIndexOptions.block {
            await withTaskGroup(of: Void.self, returning: (any Error)?.self) { group in
                group.addTask { await service.runReloader() }
                defer { group.cancelAll() }
                do { try await MCPStdio.run(service: service) } catch { return error }
                return nil
            }
        }
        if let failure { throw CLIError("the MCP connection failed: \(failure)") }
    }
}
