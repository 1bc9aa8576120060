import ArgumentParser
import Foundation
import KBCore
import KBFormat
import KBSearch

/// `kbindex merge OUT SHARD_INDEX...`: combine the indexes of a sharded build into one.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the indexes of a sharded build into one index.",
        discussion: """
            A large folder can be embedded by N processes or machines at once: each runs \
            'kbindex build FOLDER --shard I/N' (I = 0 … N−1) and indexes only the files whose \
            path hashes to shard I, into its own index. 'kbindex merge' combines the N shard \
            indexes into OUT without re-embedding anything: their segment files are hard-linked \
            into OUT when it is on the same file system (no space, no time), else copied, and \
            one manifest lists them. The merged index answers exactly as a single build of the \
            whole folder would (same chunks, same scores, same order).

            The shards must all be there (0 … N−1, each once), built with the same model, the \
            same shard count and the same file-selection options, and finished (a shard whose \
            build was interrupted is refused: run its build again). A SHARD_INDEX may be an \
            index folder or the folder it indexes. OUT must not hold an index unless --replace \
            (after rebuilding some shards): the old index is then replaced atomically, and \
            queries keep working meanwhile.

            On Kubernetes: an Indexed Job with N completions runs 'kbindex build' in each pod \
            with KBINDEX_SHARDS=N (Kubernetes sets JOB_COMPLETION_INDEX); a second Job runs \
            'kbindex merge' once they have all succeeded.

            Examples:
              kbindex build ~/docs --shard 0/2 --index /shards/0
              kbindex build ~/docs --shard 1/2 --index /shards/1
              kbindex merge ~/docs/.kbindex /shards/0 /shards/1
              kbindex merge --replace ~/docs/.kbindex /shards/*
            """
    )

    @Argument(help: ArgumentHelp("The index folder to write, or s3://bucket/prefix.", valueName: "out"))
    var output: String

    @Argument(help: ArgumentHelp("The shard indexes, in any order (index folders, the folders they index, or s3://bucket/prefix).", valueName: "shard-index"))
    var shards: [String] = []

    @Flag(help: "Replace the index OUT already holds.")
    var replace = false

    @Flag(help: "Print nothing when the merge succeeds.")
    var quiet = false

    func validate() throws {
        if shards.isEmpty { throw ValidationError("name the shard indexes to merge after OUT, e.g. 'kbindex merge OUT /shards/0 /shards/1'") }
    }

    /// The local index folder a shard argument names: the folder itself, or its `.kbindex`
    /// when it is an indexed folder. (Every way to name a shard's index is turned into a
    /// local folder here, and only here.)
    static func shardIndexFolder(_ argument: String, quiet: Bool = false) throws -> URL {
        // s3://bucket/prefix: the shard's current generation, pulled into its local mirror.
        if S3IndexOption.isRemote(argument) { return try S3IndexOption.pullForReading(argument, quiet: quiet) }
        return IndexDirectory.resolve(URL(fileURLWithPath: argument).standardizedFileURL)
    }

    func run() throws {
        if S3IndexOption.isRemote(output) {
            // Merge into the local staging folder of OUT (pulled first unless --replace, which
            // replaces the index without downloading it), then push it as OUT's next generation (S3Build).
            return try S3Build.run(location: output, quiet: quiet, summary: !quiet, fresh: replace) { staging in
                if !replace && FileManager.default.fileExists(atPath: staging.appendingPathComponent(Manifest.fileName).path) {
                    throw CLIError("\(output) already holds an index; pass --replace to replace it, or choose another OUT")
                }
                var local = self
                local.output = staging.path
                try local.runLocal()
            }
        }
        try runLocal()
    }

    /// The merge into the local folder `output`.
    func runLocal() throws {
        let start = Date()
        let out = URL(fileURLWithPath: output).standardizedFileURL
        var opened: [IndexDirectory] = []
        // Each local shard's write lock, held through the merge: a shard being built (or
        // compacted) is refused with a clear message, and none can start while its files
        // are linked or copied (its cleanup would remove them under the merge).
        var locks: [FileLock] = []
        var locked: Set<String> = []  // a shard named twice is locked once (and refused by the checks)
        defer { for l in locks { l.unlock() } }
        for argument in shards {
            let url = try Self.shardIndexFolder(argument, quiet: quiet)
            if !S3IndexOption.isRemote(argument), locked.insert(url.resolvingSymlinksInPath().path).inserted,
               let lock = try Self.lockShard(url) { locks.append(lock) }
            do {
                opened.append(try IndexDirectory(url: url))
            } catch let e as ManifestError {
                if case .missing = e { throw CLIError("no index in \(url.path): build that shard first with 'kbindex build FOLDER --shard I/N --index \(url.path)'") }
                throw IndexOpening.failure(e, url: url, option: argument)
            } catch let e as SegmentError {
                throw CLIError("\(e); build that shard again ('kbindex build FOLDER --shard I/N --index \(url.path)')")
            } catch {
                throw CLIError("\(error); build that shard again ('kbindex build FOLDER --shard I/N --index \(url.path)')")
            }
        }
        let stats: IndexMerge.Stats
        do {
            stats = try IndexMerge.merge(opened, into: out, replace: replace)
        } catch let e as NotAnIndexFolderError {
            throw CLIError(e.message(display: Format.displayed))
        } catch let e as MergeError {
            throw CLIError("\(e)\(Self.advice(for: e))")
        } catch let e as SegmentError {
            throw CLIError("\(e); nothing was merged; build that shard again with the same command to re-embed the damaged segment's documents")
        } catch {
            throw CLIError("cannot merge into \(out.path): \(error)")
        }
        guard !quiet else { return }
        print("merged \(Format.counted(stats.shards, "shard")) (\(Format.counted(stats.segments, "segment")), \(Format.counted(stats.chunks, "chunk")), \(Format.counted(stats.documents, "document"))) into \(out.path) in \(Format.duration(Date().timeIntervalSince(start))): \(Format.bytes(stats.bytesLinked)) linked, \(Format.bytes(stats.bytesCopied)) copied")
    }

    /// Takes the write lock of the shard index folder `url` without waiting, or nil when the
    /// folder has no lock file (no build ever wrote there) or it cannot be opened for
    /// writing (a read-only folder: nobody builds there either). Throws `CLIError` when a
    /// build, compact or merge holds it.
    static func lockShard(_ url: URL) throws -> FileLock? {
        let path = url.appendingPathComponent(IndexFiles.lockFileName).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let attempt: FileLock?
        do { attempt = try FileLock.tryLock(path) } catch { return nil }
        if let lock = attempt { return lock }
        let which = ((try? Manifest.read(from: url.path))?.shard).map { "shard \($0.index)" } ?? "a shard"
        throw CLIError("\(which) is being built in \(url.path) (another kbindex build, compact or merge is writing it); wait for it to finish, then merge")
    }

    /// What to do about a refused merge, as "; …" or ": …" to follow its message.
    static func advice(for error: MergeError) -> String {
        switch error {
        case .noShards: return ""
        case .modelMismatch: return "; build every shard with the same model and precision (--model, --precision, --embedder), e.g. again with --rebuild"
        case .notAShard: return "; name only indexes written by 'kbindex build FOLDER --shard I/N'"
        case .countMismatch: return "; merge the shards of one sharded build (the same N in --shard I/N or KBINDEX_SHARDS)"
        case .selectionMismatch: return "; build every shard with the same --include, --exclude, --max-file-size, --max-document-size, --include-minified and --follow"
        case .incomplete: return "; name every shard's index exactly once (build the missing ones with 'kbindex build FOLDER --shard I/N')"
        case .interrupted: return "; run that shard's build again to finish it, then merge"
        case .duplicateDocument: return "; the shards do not come from one sharded build of one folder: build them again with --rebuild"
        case .outputExists: return "; pass --replace to replace it, or choose another OUT"
        case .outputIsShard: return "; choose another OUT"
        case .outputLocked: return "; wait for it to finish"
        }
    }
}
