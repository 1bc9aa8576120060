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
            path, line_start, line_end, heading, score, rank}]}, text being the start of \
            the passage; fetch (id, neighbours, index) returns the whole passage with its \
            metadata; status describes the served indexes and the model.

            Without --index, kbindex serves the nearest .kbindex of the current folder. \
            Several indexes: repeat --index NAME=DIR; a search names one (index), and result \
            ids then start with "NAME:". An index rebuilt while served is picked up within a \
            second. For HTTP clients, 'kbindex serve' has the same tools at /mcp.

            Examples:
              kbindex mcp --index ~/notes/.kbindex
              kbindex mcp --index notes=~/notes --index docs=~/pydocs.kbindex
              claude mcp add kbindex -- kbindex mcp --index ~/notes/.kbindex
            """
    )

    @Option(help: ArgumentHelp("An index folder, or NAME=DIR to name it (repeatable; default: the nearest .kbindex). The name is what the index tool argument takes; a bare DIR is named after its folder.", valueName: "dir|name=dir"))
    var index: [String] = []

    @Option(help: ArgumentHelp("Model name or folder (default: the model the indexes were built with).", valueName: "name|path"))
    var model: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads scanning an index (default: every core).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be a positive number (1 or more), got \(threads)") }
        _ = try Self.indexes(index)
    }

    func run() throws {
        let indexes = try Self.indexes(index)
        var options = ServiceOptions()
        options.model = model
        options.threads = threads
        let service: RetrievalService
        do {
            service = try RetrievalService(indexes: indexes, options: options)
        } catch let error as RetrievalError {
            throw CLIError(Self.advice(for: error))
        } catch {
            throw CLIError(error)
        }
        note("serving \(Format.counted(indexes.count, "index", plural: "indexes")) (\(indexes.map(\.name).joined(separator: ", "))) over MCP on stdin/stdout")
        let failure = Self.block {
            await withTaskGroup(of: Void.self, returning: (any Error)?.self) { group in
                group.addTask { await service.runReloader() }
                defer { group.cancelAll() }
                do { try await MCPStdio.run(service: service) } catch { return error }
                return nil
            }
        }
        if let failure { throw CLIError("the MCP connection failed: \(failure)") }
    }

    /// The indexes to serve: each `--index` value as (name, folder), NAME=DIR or DIR named after
    /// the indexed folder; none: the nearest .kbindex. The same rules as `serve` (names are
    /// letters, digits, '.', '_', '-'), usage errors for an empty folder or a name used twice.
    static func indexes(_ options: [String]) throws -> [(name: String, url: URL)] {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        if options.isEmpty {
            let url = IndexDirectory.locate(from: cwd)
            return [(name(of: url), url)]
        }
        var out: [(name: String, url: URL)] = []
        for option in options {
            var name: String?, path = option
            if let eq = option.firstIndex(of: "="), isName(String(option[..<eq])) {
                name = String(option[..<eq])
                path = String(option[option.index(after: eq)...])
            }
            if path.isEmpty { throw ValidationError("--index \(option): give a folder after '='") }
            let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath, relativeTo: cwd).standardizedFileURL
            let n = name ?? self.name(of: url)
            if out.contains(where: { $0.name == n }) {
                throw ValidationError("two indexes are named '\(n)': name them with --index NAME=DIR")
            }
            out.append((n, url))
        }
        return out
    }

    /// Index names: letters, digits, '.', '_', '-'.
    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }
    }

    /// The default name of the index in `url`: the indexed folder's name (".kbindex"'s parent,
    /// or the folder itself), made a valid name.
    static func name(of url: URL) -> String {
        let folder = url.lastPathComponent == IndexDirectory.defaultName ? url.deletingLastPathComponent() : url
        let raw = folder.lastPathComponent
        let cleaned = String(raw.unicodeScalars.map { isName(String($0)) ? Character($0) : "-" })
        return isName(cleaned) ? cleaned : "index"
    }

    /// A `RetrievalError` from opening the indexes, with what to do (as `serve` says it).
    static func advice(for error: RetrievalError) -> String {
        switch error {
        case .openFailed(let url, _):
            return "\(error): build it with 'kbindex build \(url.lastPathComponent == IndexDirectory.defaultName ? url.deletingLastPathComponent().path : "FOLDER --index " + url.path)', or give --index"
        case .incompatibleModel:
            return "\(error): serve indexes built with the same model together, or rebuild one with 'kbindex build --rebuild'"
        case .model(let message, let folder?, true):
            return "\(message): \(ModelLoading.repair(folder, store: ModelStore()))"
        case .model:
            return "\(error): 'kbindex model fetch' installs the default model"
        default:
            return "\(error)"
        }
    }

    /// Runs `work` on the concurrency pool and waits for it on this (synchronous) thread.
    static func block<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        Task {
            box.value = await work()
            done.signal()
        }
        done.wait()
        return box.value!
    }
}

/// The result of `MCPCommand.block`, written by one task before the semaphore is signalled and
/// read after the wait (the semaphore orders the two).
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
