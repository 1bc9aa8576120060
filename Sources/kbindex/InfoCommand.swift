import ArgumentParser
import Foundation
import KBFormat
import KBKernels
import KBSearch

/// `kbindex info`: what an index holds.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show an index's segments, documents, chunks, size and model.",
        discussion: """
            Examples:
              kbindex info                     # the nearest .kbindex
              kbindex info --index ~/pydocs.kbindex
            """
    )

    @Option(help: ArgumentHelp("The index folder, or s3://bucket/prefix (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    @Flag(help: "Also check every section's checksum (reads the whole index; 'kbindex verify' reports every problem).")
    var verify = false

    func run() throws {
        let index = try S3IndexOption.localIndex(self.index)  // s3://…: the local mirror, pulled
        let idx = try IndexOpening.open(index)
        let m = idx.manifest.model
        print("index:     \(idx.url.path)")
        print("built:     \(idx.manifest.createdAt)")
        print("model:     \(Self.describe(m))")
        if m.queryPrompt != nil || m.documentPrompt != nil {
            print("prompts:   query \(Self.quoted(m.queryPrompt)), document \(Self.quoted(m.documentPrompt))")
        }
        if let s = idx.manifest.shard {
            print("shard:     \(s.index)/\(s.count) of a sharded build (selection \(Format.displayed(s.selection))); 'kbindex merge' combines the shards")
        }
        print("segments:  \(idx.segments.count)")
        let deletedDocs = idx.documentCount - idx.liveDocumentCount, deletedChunks = idx.chunkCount - idx.liveChunkCount
        print("documents: \(Format.count(idx.liveDocumentCount))\(deletedDocs > 0 ? " (and \(Format.count(deletedDocs)) deleted)" : "")")
        print("chunks:    \(Format.count(idx.liveChunkCount))\(deletedChunks > 0 ? " (and \(Format.count(deletedChunks)) deleted, which 'kbindex compact' drops)" : "")")
        print("on disk:   \(Format.bytes(idx.bytesOnDisk))")
        let lexicalBytes = idx.segments.reduce(0) { $0 + $1.sectionLength(.lexical) }
        if LexicalSearch.isAvailable(in: idx) {
            let terms = idx.segments.reduce(0) { $0 + ($1.lexical?.termCount ?? 0) }
            print("lexical:   BM25 over \(Format.count(terms)) terms (summed over segments), \(Format.bytes(lexicalBytes)); query modes hybrid, vector, lexical")
        } else {
            print("lexical:   none (built before BM25 search; 'kbindex build --rebuild' adds it): vector search only")
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        // The paths depend only on the kernel and the dimensions (checked: a damaged manifest's
        // count must not reach the kernels' preconditions).
        let dims = idx.manifest.model.dimensions
        let paths = (1...131_072).contains(dims) ? DotKernel.active.scanPaths(dimensions: dims) : nil
        let pathText = paths.map { ": \($0.single) for one question, \($0.batch) for batches" } ?? ""
        print("scan:      \(DotKernel.active) kernel on \(cores) \(cores == 1 ? "core" : "cores")\(pathText) (KBINDEX_KERNEL=\(DotKernel.supported.map(\.description).joined(separator: "|")) forces one)")
        let stray = IndexFiles.stray(in: idx.url, manifest: idx.manifest)
        if !stray.isEmpty {
            print(IndexOpening.strayLine(stray))
        }
        if let cp = BuildCheckpoint.pending(in: idx.url, manifest: idx.manifest) {
            print("pending:   \(BuildCheckpointing.pendingLine(cp))")
        }
        if verify {
            for s in idx.segments {
                do { try s.verify() } catch let error as SegmentError {
                    throw CLIError(IndexOpening.damaged(error, index: idx.url))  // the library text has no advice
                } catch { throw CLIError(error) }
            }
            print("verified:  every section's checksum matches")
        } else {
            // Opening checked headers, directories and record bounds; a flipped bit in the
            // vectors or text shows only when every byte is read.
            print("checked:   headers and record bounds; 'kbindex verify' also checks every section's checksum (reads \(Format.bytes(idx.bytesOnDisk)))")
        }
    }

    /// The model line of `info`: a local model's shape and precision, or a remote one's
    /// provider and URL. Every value comes from a file, so it is escaped.
    static func describe(_ m: ModelDescriptor) -> String {
        let name = Format.displayed(m.name)
        if m.isRemote {
            return "\(name) via \(Format.displayed(m.provider ?? "?")) at \(Format.displayed(m.url ?? "?")), \(m.dimensions) dimensions\(m.normalized ? ", normalized" : ""), chunks of at most \(m.maxTokens) tokens (estimated)"
        }
        return "\(name), \(m.dimensions) dimensions, \(Format.displayed(m.pooling ?? "?")) pooling\(m.normalized ? ", normalized" : ""), \(m.maxTokens) tokens max, embedded in \(BuildCheckpointing.precision(of: m))"
    }

    /// A prompt for `info`: quoted and escaped, or "none".
    static func quoted(_ prompt: String?) -> String { prompt.map { "'\(Format.displayed($0))'" } ?? "none" }
}
