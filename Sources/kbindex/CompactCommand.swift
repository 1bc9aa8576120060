import ArgumentParser
import Foundation
import KBCore
import KBFormat
import KBSearch

/// `kbindex compact`: merge an index's segments and drop its deleted chunks.
struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Merge an index's segments into fewer and drop deleted chunks.",
        discussion: """
            Every 'kbindex build' after the first writes the changed files as a new segment \
            and marks their old chunks deleted. Compaction copies the live chunks into new \
            segments (nothing is re-embedded; vector scores stay exactly the same) and \
            switches the manifest atomically. Segments whose lexical index an older kbindex \
            wrote are indexed anew (CJK text, full case folding), which changes their BM25 \
            scores. Queries keep working while it runs. 'kbindex build' compacts \
            on its own when a quarter of the chunks are deleted or there are more than 16 \
            segments.

            Examples:
              kbindex compact                       # the nearest .kbindex
              kbindex compact --index ~/pydocs.kbindex
            """
    )

    @Option(help: ArgumentHelp("The index folder (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    /// Chunks per segment file before a new one starts.
    @Option(parsing: .unconditional, help: .hidden)
    var segmentChunks = 200_000

    func validate() throws {
        // Compaction.compact requires at least 1 (a precondition): refuse it here, as build does.
        if segmentChunks < 1 { throw ValidationError("--segment-chunks must be a positive number (1 or more), got \(segmentChunks)") }
    }

    func run() throws {
        if S3IndexOption.isRemote(index) {
            throw CLIError("compact works on a local index folder; 'kbindex build FOLDER --index \(index ?? "")' compacts an index in object storage when it is worthwhile")
        }
        let url = try IndexOpening.open(index).url  // a clear error when there is no readable index
        let lock: FileLock?
        do { lock = try FileLock.tryLock(url.appendingPathComponent(".lock").path) } catch { throw CLIError("\(error)") }
        guard let lock else { throw CLIError("another kbindex build, compact or merge is writing \(url.path); wait for it to finish") }
        defer { lock.unlock() }
        do {
            print(try Self.compact(url, stamp: "\(BuildCommand.timestamp())-\(getpid())-c", segmentChunks: segmentChunks))
        } catch let e as CLIError {
            throw e
        } catch let e as SegmentError {
            throw CLIError("\(e); nothing was changed; \(IndexOpening.repair(url))")
        } catch {
            throw CLIError(error)
        }
    }

    /// Compacts the index in `url` and commits it; returns the summary line.
    /// Precondition: the caller holds the index's write lock.
    static func compact(_ url: URL, stamp: String, segmentChunks: Int) throws -> String {
        let idx = try IndexDirectory(url: url)
        let before = (segments: idx.segments.count, bytes: idx.bytesOnDisk, deleted: idx.chunkCount - idx.liveChunkCount)
        let manifest = try Compaction.compact(idx, stamp: stamp, segmentChunks: segmentChunks)
        FaultInjection.point("compacted-segments-written")
        do {
            try IndexFiles.commit(manifest, in: url)
        } catch {
            BuildCommand.removeFiles(manifest.segments.map(\.file), in: url)
            throw error
        }
        let after = try IndexDirectory(url: url)
        return "compacted: \(Format.counted(before.segments, "segment")) → \(after.segments.count), \(Format.counted(before.deleted, "deleted chunk")) dropped, \(Format.bytes(before.bytes)) → \(Format.bytes(after.bytesOnDisk))"
    }
}
