import ArgumentParser
import Dispatch
import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBIngest
import KBModelStore
import KBRetrieval
import KBSearch

/// The embedding options only `build` has: the document prompt and how hard to drive a
/// remote service.
struct DocumentEmbedding: ParsableArguments {
    @Option(name: .customLong("document-prompt"), help: ArgumentHelp("Text prepended to every chunk, replacing the model's or index's document prompt ('' for none); another one than the index's re-embeds every file.", valueName: "text"))
    var documentPrompt: String?

    @Option(name: .customLong("embed-batch-size"), parsing: .unconditional, help: ArgumentHelp("Remote: chunks per request (default: 64).", valueName: "n"))
    var batchSize: Int?

    @Option(name: .customLong("embed-concurrency"), parsing: .unconditional, help: ArgumentHelp("Remote: requests in flight at once (default: 4).", valueName: "n"))
    var concurrency: Int?

    @Option(name: .customLong("embed-retries"), parsing: .unconditional, help: ArgumentHelp("Remote: how often one request is tried again after a 429, a 5xx, a timeout or a dropped connection, waiting longer each time (default: 6).", valueName: "n"))
    var retries: Int?

    func validate() throws {
        if let n = batchSize, !(1...2048).contains(n) { throw ValidationError("--embed-batch-size must be between 1 and 2048, got \(n)") }
        if let n = concurrency, !(1...64).contains(n) { throw ValidationError("--embed-concurrency must be between 1 and 64, got \(n)") }
        if let n = retries, !(0...100).contains(n) { throw ValidationError("--embed-retries must be between 0 and 100, got \(n)") }
    }
}

/// `kbindex build FOLDER`: walk, parse, chunk, embed, and write a new index.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Index a folder of documents (markdown, text, HTML, code, PDF, DOCX, ODT, EPUB).",
        discussion: """
            Walks FOLDER (honouring .gitignore, skipping hidden, binary, oversized and minified \
            files, and following symbolic links only inside FOLDER unless --follow), cuts \
            every document along its structure (headings, paragraphs, declarations) into \
            chunks that fit the model, embeds them with the built-in model, and writes the \
            index: by default FOLDER/.kbindex.

            PDFs are read with poppler's pdftotext (install poppler-utils), each under a time \
            and memory limit, and their hits cite pages; DOCX, ODT and EPUB are read directly \
            and their hits cite paragraphs. An encrypted, scanned or damaged file is one \
            warning, and the build goes on.

            Run it again after the documents change: it re-reads only files whose size or \
            modification time changed, re-embeds only those whose content changed, and marks \
            the old versions of changed and deleted files as deleted. When deleted chunks pass \
            a quarter of the index, or segments pass 16, it compacts the index (see 'kbindex \
            compact'). Each build ends in one atomic switch of the manifest: a failed or \
            killed build leaves the last good index readable, and queries keep working while \
            it runs. A segment whose checksums no longer match (damage on disk) is dropped and \
            its files are read and embedded again.

            A long build saves its progress aside as it goes, between files (every few \
            thousand chunks or 10 seconds, or 5% of the work so far on long builds): Ctrl-C stops it at the next safe point with status 130, \
            and a build killed any other way (a reboot, an out-of-memory kill) loses at most \
            the work since its last save. Running the same command again continues where it \
            stopped ("resuming an interrupted build: …"). Queries keep answering from the \
            last complete index until the build finishes, a --rebuild included. A chunk whose \
            text repeats one embedded earlier in the build (boilerplate, copied files) gets \
            that vector instead of being embedded again.

            The model is the one the index was built with (else \(KnownModel.defaultName)): \
            --model names another local one ('kbindex model fetch'), whose query and document \
            prompts and pooling come from its sentence-transformers files; --embedder openai or \
            ollama embeds with a remote service (--embed-url, --embed-model; the API key from \
            KBINDEX_EMBED_API_KEY, OPENAI_API_KEY or OLLAMA_API_KEY, never stored). The index \
            records the model, prompts and service, so queries embed the same way. A service \
            that fails for good (after retries) stops the build with its error and keeps what \
            was embedded: the next build resumes. Another model or document prompt than the \
            index's re-embeds every file.

            --precision int8 embeds about twice as fast as f32 on CPUs with AVX-512 VNNI \
            (about 1.2 times with AVX2 only), with vectors within about 0.1% cosine of f32 \
            and search quality within about 0.01 (README, "Precision"; Benchmarks/RESULTS.md). The default is the existing index's precision (or that of \
            an interrupted build being continued), else \(Precision.default). Another \
            precision than the index's re-embeds every file; queries embed questions in the \
            index's precision.

            Progress goes to stderr: on a terminal a line redrawn in place (chunks done of the \
            total, chunks per second, time left), otherwise a plain 'progress:' line every few \
            seconds. --verbose lists every file with what happened to it on stdout.

            --shard I/N builds one shard of a large folder: only the files whose path hashes to \
            I of N (a stable rule, format-spec.md §13.7), into their own index, so N processes \
            or machines can embed a folder together; 'kbindex merge' then combines the N \
            indexes into one that answers exactly as a single build. Build each shard with the \
            same file-selection options (--include, --exclude, size limits, --include-minified, \
            --follow) and model. Without --shard, KBINDEX_SHARDS (the shard count) turns sharding \
            on, and the shard comes from JOB_COMPLETION_INDEX (set by Kubernetes in each pod of \
            an Indexed Job), which must then be set too; JOB_COMPLETION_INDEX alone is ignored \
            (other Indexed Jobs set it); --shard wins over them. Run a shard again to \
            update or resume it; an index holding another shard, or none, is refused (--rebuild \
            starts it over).

            --index s3://bucket/prefix keeps the index in S3 or an S3-compatible store \
            (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and \
            AWS_REGION; AWS_ENDPOINT_URL for a store other than AWS): the build downloads the \
            current index into a staging folder in the cache ($KBINDEX_CACHE_DIR, else \
            $XDG_CACHE_HOME/kbindex/s3, else ~/.cache/kbindex/s3), builds there as above, \
            uploads only the new files, and commits only if no other build committed since \
            (else it says so: run it again, it continues from that index).

            Examples:
              kbindex build ~/notes
              kbindex build ~/notes                # again: only what changed
              kbindex build . --include 'docs/**' --exclude '*.min.js'
              kbindex build /usr/share/doc/python3.11/html --index ~/pydocs.kbindex
              kbindex build ~/papers --include '*.pdf' --max-document-size 500
              kbindex build ~/notes --rebuild      # all again (after a model change)
              kbindex build ~/notes --precision int8   # re-embed everything in int8
              kbindex build ~/notes --model bge-small-en-v1.5
              kbindex build ~/notes --embedder ollama --embed-model nomic-embed-text
              kbindex build ~/notes --embedder openai --embed-model text-embedding-3-small
              kbindex build ~/docs --shard 0/4 --index /shards/0   # one of 4 shards
              kbindex merge ~/docs/.kbindex /shards/0 /shards/1 /shards/2 /shards/3
              kbindex build ~/notes --index s3://my-bucket/indexes/notes
            """
    )

    @Argument(help: "The folder to index.")
    var folder: String

    @Option(help: ArgumentHelp("Where to write the index: a folder, or s3://bucket/prefix (default: FOLDER/.kbindex).", valueName: "dir"))
    var index: String?

    @Option(name: .customLong("include"), help: ArgumentHelp("Only index paths matching this glob (repeatable).", valueName: "glob"))
    var include: [String] = []

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Skip paths matching this glob (repeatable).", valueName: "glob"))
    var exclude: [String] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("Skip text files (markdown, HTML, text, code) larger than this many megabytes.", valueName: "MB"))
    var maxFileSize: Double = 10

    @Option(parsing: .unconditional, help: ArgumentHelp("Skip PDF, DOCX, ODT and EPUB files larger than this many megabytes.", valueName: "MB"))
    var maxDocumentSize: Double = 256

    @Option(parsing: .unconditional, help: "Worker threads (default: every core).")
    var threads: Int?

    @Option(help: ArgumentHelp("Embed in f32 or int8 (int8: about twice as fast with AVX-512 VNNI; default: an interrupted build's, else the index's, else \(Precision.default)).", valueName: "f32|int8"))
    var precision: Precision?

    @OptionGroup(title: "Embedding")
    var embedding: EmbedderChoice

    @OptionGroup(title: "Embedding")
    var documents: DocumentEmbedding

    @Flag(help: "No progress line and no per-file warnings; only the summary.")
    var quiet = false

    @Flag(help: "List every file with what happened to it (indexed with its chunk count, unchanged, skipped and why, deleted).")
    var verbose = false

    @Flag(help: ArgumentHelp("Also index source files that look minified or generated (lines averaging over \(Walker.minifiedLineLength) bytes, such as bundled .min.js files or a one-line search index); by default they are skipped."))
    var includeMinified = false

    @Flag(help: ArgumentHelp("Follow symbolic links wherever they lead; by default a link out of FOLDER is skipped (a link inside it is followed, and a file reached twice is indexed once)."))
    var follow = false

    // `.unconditional`, so that "--shard -1/2" reaches the check (not "Missing value").
    @Option(parsing: .unconditional, help: ArgumentHelp("Index only shard I of N (0 ≤ I < N): the files whose path hashes to I; 'kbindex merge' combines the shards (default: shard JOB_COMPLETION_INDEX of KBINDEX_SHARDS when KBINDEX_SHARDS is set; --shard wins over them).", valueName: "I/N"))
    var shard: String?

    @Flag(help: "Re-read and re-embed every file, ignoring the existing index (an interrupted rebuild is continued, not started over).")
    var rebuild = false

    @Flag(help: "Do not compact the index after the update, whatever its deletions and segment count.")
    var noCompact = false

    /// Chunks per segment file before a new one starts (bounds the writer's memory).
    @Option(parsing: .unconditional, help: .hidden)
    var segmentChunks = 200_000

    /// Chunks embedded between two checkpoints (progress saved aside, §13.6).
    @Option(parsing: .unconditional, help: .hidden)
    var checkpointChunks = 4_000

    /// Seconds of embedding between two checkpoints at most, or 5% of the build's time so far
    /// when that is longer (checkpoints are taken between groups of files). A kill loses at
    /// most this much embedding plus the group being embedded: a build of a few minutes or more
    /// killed half-way and resumed costs at most about 1.1× an uninterrupted one, and the
    /// number of checkpoint segments grows with the logarithm of the build's length
    /// (compaction merges them past 16).
    @Option(parsing: .unconditional, help: .hidden)
    var checkpointSeconds: Double = 10

    func validate() throws {
        // The numbers are parsed with `.unconditional`, so that "--threads -1" reaches these
        // checks (the default strategy reads "-1" as a flag and says "Missing value").
        if !(maxFileSize > 0) { throw ValidationError("--max-file-size must be a positive number of megabytes, got \(maxFileSize)") }
        if !(maxDocumentSize > 0) { throw ValidationError("--max-document-size must be a positive number of megabytes, got \(maxDocumentSize)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be a positive number (1 or more), got \(threads)") }
        if segmentChunks < 1 { throw ValidationError("--segment-chunks must be a positive number (1 or more), got \(segmentChunks)") }
        if checkpointChunks < 1 { throw ValidationError("--checkpoint-chunks must be a positive number (1 or more), got \(checkpointChunks)") }
        if !(checkpointSeconds > 0) { throw ValidationError("--checkpoint-seconds must be a positive number, got \(checkpointSeconds)") }
        for g in include + exclude { do { _ = try Glob(validating: g) } catch { throw ValidationError(error.description) } }
        if quiet && verbose { throw ValidationError("--quiet and --verbose cannot be used together") }
        if precision != nil, let e = embedding.embedder, e != .local {
            throw ValidationError("--precision is for the built-in encoder; a \(e.rawValue) service embeds in its own arithmetic")
        }
        _ = try Self.shardSpec(option: shard, environment: ProcessInfo.processInfo.environment)
    }

    /// The shard to build: `--shard` when given, else JOB_COMPLETION_INDEX (which Kubernetes
    /// sets in each pod of an Indexed Job) of KBINDEX_SHARDS when KBINDEX_SHARDS is set (an
    /// empty variable counts as unset), else nil (the whole folder). Only KBINDEX_SHARDS turns
    /// sharding on: Kubernetes sets JOB_COMPLETION_INDEX in every Indexed Job, also one whose
    /// pods build unsharded indexes, so alone it is ignored (`ignoredJobIndex`). Throws
    /// `ValidationError` (a usage error) for a bad value or KBINDEX_SHARDS without
    /// JOB_COMPLETION_INDEX.
    static func shardSpec(option: String?, environment: [String: String]) throws -> ShardSpec? {
        if let option {
            do { return try ShardSpec(parsing: option) } catch { throw ValidationError("--shard: \(error)") }
        }
        let job = environment[jobIndexVariable].flatMap { $0.isEmpty ? nil : $0 }
        let count = environment[shardCountVariable].flatMap { $0.isEmpty ? nil : $0 }
        switch (job, count) {
        case (nil, nil): return nil
        case (let j?, let n?):
            do { return try ShardSpec(parsing: "\(j)/\(n)") } catch {
                throw ValidationError("\(jobIndexVariable)=\(j) and \(shardCountVariable)=\(n) do not name a shard: \(jobIndexVariable) must be between 0 and \(shardCountVariable) − 1, \(shardCountVariable) between 1 and \(ShardSpec.maxCount) (or pass --shard I/N)")
            }
        case (_?, nil):
            return nil
        case (nil, _?):
            throw ValidationError("\(shardCountVariable) is set but \(jobIndexVariable) is not: set \(jobIndexVariable) to this shard's number as well (or pass --shard I/N, or unset \(shardCountVariable) for an unsharded build)")
        }
    }

    /// The note for a build that ignores JOB_COMPLETION_INDEX (set without KBINDEX_SHARDS,
    /// and no --shard), or nil.
    static func ignoredJobIndex(option: String?, environment: [String: String]) -> String? {
        guard option == nil, let j = environment[jobIndexVariable], !j.isEmpty,
              (environment[shardCountVariable] ?? "").isEmpty else { return nil }
        return "\(jobIndexVariable)=\(j) is ignored: \(shardCountVariable) is not set, so this build indexes the whole folder (set \(shardCountVariable) to the number of shards for a sharded build)"
    }

    static let jobIndexVariable = "JOB_COMPLETION_INDEX"
    static let shardCountVariable = "KBINDEX_SHARDS"

    /// What the walk selects, for a build writing its index into `indexURL`.
    func ingestOptions(indexURL: URL) -> IngestOptions {
        var options = IngestOptions()
        options.include = include
        options.exclude = exclude
        // "--max-file-size 1e300" (or inf) means no limit; Int(_:) of it would trap.
        options.maxFileSize = Int(min(maxFileSize * 1_048_576, 0x1p62))
        options.maxDocumentSize = Int(min(maxDocumentSize * 1_048_576, 0x1p62))
        options.skipMinified = !includeMinified
        options.excludedDirectories = [indexURL.path]
        options.symlinks = follow ? .everywhere : .insideRoot
        return options
    }

    /// Refuses a build that would drop another build's documents: shard `wanted` (nil: an
    /// unsharded build) into an index whose manifest `indexed` records another shard, or no
    /// shard while it has documents, or an unsharded build into a shard's index. `--rebuild`
    /// starts the index over and is never refused. The same shard with other file-selection
    /// options is an update, as for an unsharded index: the walk deletes what it no longer
    /// selects, and the new fingerprint is recorded (merge refuses to mix fingerprints).
    static func checkShard(_ wanted: Manifest.Shard?, indexed: Manifest?, indexURL: URL, rebuild: Bool) throws {
        guard !rebuild, let indexed, indexed.shard != wanted else { return }
        if let w = wanted, let have = indexed.shard, w.index == have.index, w.count == have.count { return }
        let liveDocuments = indexed.segments.reduce(0) { $0 + $1.documents - ($1.deletedDocuments ?? 0) }
        let advice = "use another --index for it, or --rebuild to start that index over"
        func describe(_ s: Manifest.Shard) -> String { "shard \(s.index)/\(s.count)" }
        switch (wanted, indexed.shard) {
        case (let w?, let have?):
            throw CLIError("the index in \(indexURL.path) holds \(describe(have)); building \(describe(w)) into it would drop those documents: \(advice)")
        case (let w?, nil):
            guard liveDocuments > 0 else { return }
            throw CLIError("the index in \(indexURL.path) is an unsharded index of \(Format.counted(liveDocuments, "document")); building \(describe(w)) into it would drop the other shards' files: \(advice)")
        case (nil, let have?):
            throw CLIError("the index in \(indexURL.path) holds \(describe(have)) of a sharded build; an unsharded build into it would mix the two: \(advice) (or 'kbindex merge' the shards)")
        case (nil, nil):
            return
        }
    }

    func run() throws {
        if let index, S3IndexOption.isRemote(index) {
            // Pull, this same build into the local staging folder, push (S3Build).
            return try S3Build.run(location: index, quiet: quiet, fresh: rebuild) { staging in
                var local = self
                local.index = staging.path
                try local.runLocal()
            }
        }
        try runLocal()
    }

    /// The build into the local index folder `index` (default FOLDER/.kbindex).
    func runLocal() throws {
        let start = Date()
        let root = URL(fileURLWithPath: folder).standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("\(root.path) is not a folder")
        }
        let indexURL = index.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? root.appendingPathComponent(IndexDirectory.defaultName)
        // A folder with other files would lose those named like kbindex's to the commit's cleanup.
        do { try IndexFiles.checkIndexFolder(indexURL) } catch let e as NotAnIndexFolderError { throw CLIError(e.message(display: Format.displayed)) }
        do {
            try FileManager.default.createDirectory(at: indexURL, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create the index folder \(indexURL.path): \(error.localizedDescription)")
        }
        // One writer at a time per index: a second one would delete the first one's new
        // files. Readers take no lock.
        let lock: FileLock?
        do { lock = try FileLock.tryLock(indexURL.appendingPathComponent(".lock").path) } catch { throw CLIError("\(error)") }
        guard let lock else { throw CLIError("another kbindex build, compact or merge is writing \(indexURL.path); wait for it to finish") }
        defer { lock.unlock() }
        // Ctrl-C and SIGTERM stop the build at the next safe point, which saves its progress.
        Interruption.install()
        defer { Interruption.uninstall() }

        // What an interrupted build saved aside, and the precision to embed in: the one asked
        // for, else that of the build to continue, else the index's.
        var checkpoint = try BuildCheckpointing.found(in: indexURL)
        let indexed = try? Manifest.read(from: indexURL.path)
        let shardSpec: ShardSpec?
        do { shardSpec = try Self.shardSpec(option: shard, environment: ProcessInfo.processInfo.environment) } catch { throw CLIError("\(error)") }
        if !quiet, let ignored = Self.ignoredJobIndex(option: shard, environment: ProcessInfo.processInfo.environment) { note(ignored) }
        let options = ingestOptions(indexURL: indexURL)
        let shardField = shardSpec.map { Manifest.Shard(index: $0.index, count: $0.count, selection: ShardSpec.selectionFingerprint(of: options)) }
        try Self.checkShard(shardField, indexed: indexed, indexURL: indexURL, rebuild: rebuild)
        if let cp = checkpoint, let indexed, cp.isCommitted(by: indexed) {
            BuildCheckpoint.remove(in: indexURL)  // its build committed, then was killed
            checkpoint = nil
        }
        let chosen = precision
            ?? checkpoint.flatMap { Precision(recorded: $0.model.precision) }
            ?? indexed.flatMap { Precision(recorded: $0.model.precision) } ?? .default
        let embedder = try Self.embedder(embedding, documents, threads: threads, precision: chosen, recorded: checkpoint?.model ?? indexed?.model)
        // The chunker needs room for 8 tokens of text besides the prompt, [CLS] and [SEP] (a
        // precondition): a model folder whose config allows fewer is refused here, not crashed on.
        guard embedder.maxTextTokens(for: .document) >= Self.minimumModelTokens - 2 else {
            let folder = (embedder as? Embedder).map { " (\($0.directory.path))" } ?? ""
            throw CLIError("model '\(embedder.name)'\(folder) leaves at most \(Format.counted(embedder.maxTextTokens(for: .document), "token")) of text per input; building an index needs at least \(Self.minimumModelTokens - 2)")
        }
        if precision != nil && embedder.provider != .local {
            throw CLIError("--precision is for the built-in encoder; this index is embedded by a \(embedder.provider.rawValue) service ('--embedder local' builds it anew with the built-in one)")
        }
        let descriptor = try ModelLoading.descriptor(of: embedder)
        let progress = ProgressLine(quiet: quiet)
        defer { progress.stop() }
        let quiet = self.quiet, verbose = self.verbose
        /// `--verbose`: one line on stdout for a file and what happened to it.
        func fate(_ path: String, _ what: String) {
            progress.finish()
            print("\(Format.displayed(path)): \(what)")
        }

        // 0. The interrupted build to continue, if any, and the index to update, if there is
        // one this build can update.
        let resume = BuildCheckpointing.resume(checkpoint, in: indexURL, descriptor: descriptor, rebuild: rebuild, indexed: indexed)
        let aside = resume.aside
        var old: IndexDirectory?
        var damaged: Set<Int> = []  // segments of `old` with a damaged section
        var damagedPaths: Set<String> = []  // their live documents
        if !rebuild && !resume.rebuild && FileManager.default.fileExists(atPath: indexURL.appendingPathComponent(Manifest.fileName).path) {
            do {
                let idx = try IndexDirectory(url: indexURL)
                if idx.manifest.model.sameVectors(as: descriptor) {
                    old = idx
                    // A damaged section (a flipped bit on disk) is invisible to opening; find it
                    // now, so the documents of that segment are read and embedded again (its
                    // other sections cannot be trusted) and the segment is dropped at commit.
                    // Costs one pass over the index's bytes (see IndexDirectory.damagedSegments).
                    for d in idx.damagedSegments() {
                        damaged.insert(d.segment)
                        let docs = idx.liveDocuments(inSegment: d.segment)
                        damagedPaths.formUnion(docs)
                        warn("\(idx.url.appendingPathComponent(idx.manifest.segments[d.segment].file).path): \(d.sections.joined(separator: ", ")) \(d.sections.count == 1 ? "section does" : "sections do") not match \(d.sections.count == 1 ? "its checksum" : "their checksums"); reading its \(Format.counted(docs.count, "document")) again and dropping the segment")
                    }
                } else if idx.manifest.model.incompatibility(with: descriptor) == nil {
                    note("the index was embedded in \(BuildCheckpointing.precision(of: idx.manifest.model)); re-embedding every file in \(BuildCheckpointing.precision(of: descriptor)) (queries use the current index until this build finishes)")
                } else if idx.manifest.model.documentPrompt != descriptor.documentPrompt,
                          idx.manifest.model.incompatibility(with: { var d = descriptor; d.documentPrompt = idx.manifest.model.documentPrompt; return d }()) == nil {
                    let phrase = { (p: String?) in p.map { "the prompt \(InfoCommand.quoted($0))" } ?? "no prompt" }
                    note("the index's documents were embedded with \(phrase(idx.manifest.model.documentPrompt)), this build's with \(phrase(descriptor.documentPrompt)); re-embedding every file")
                } else {
                    note("the index was built with model \(Format.displayed(idx.manifest.model.name)) (\(idx.manifest.model.dimensions) dimensions); re-embedding every file with \(Format.displayed(descriptor.name))")
                }
            } catch {
                warn("the existing index cannot be updated (\(error)); building it anew")
            }
        }
        let known = old.map { KnownDocuments($0, skipping: damaged) } ?? KnownDocuments()
        // The final manifest drops the index's segments when there is no index this build
        // updates (a rebuild, another model or precision, a manifest that cannot be read).
        let rebuilding = old == nil
        let asideKnown = aside.map { KnownDocuments($0) } ?? KnownDocuments()
        if resume.rebuild && !rebuild && FileManager.default.fileExists(atPath: indexURL.appendingPathComponent(Manifest.fileName).path) {
            note("continuing an interrupted rebuild; queries use the current index until it finishes")
        }

        // 1. Walk (the whole folder; a shard reads only its own files, through the walk's
        // `keep` predicate, and reports only the skipped paths that fall in it, so N shards
        // report each skip once).
        var skipped: [SkipReason: Int] = [:]
        var warnings = 0
        var keep: [String] = []  // unreadable paths: their indexed versions stay
        var missingTools: [String: Int] = [:]  // extractor programs not installed, and the files that needed them
        var linksOut = 0
        let files: [SourceFile]
        var walkedCount = 0  // files of every shard (other shards' as selected before reading)
        let others = SendableCounter()
        var walkOptions = options
        if let shardSpec {
            walkOptions.keep = { path in
                if shardSpec.contains(path) { return true }
                others.increment()
                return false
            }
        }
        do {
            let all = try Walker(root: root, options: walkOptions).walk { event in
                switch event {
                case .skipped(let path, let reason, let detail):
                    // Unreadable paths keep their indexed versions in every shard (a folder's
                    // files fall in all shards); the rest concerns only the path's shard.
                    if [.unreadable, .symlinkLoop].contains(reason) { keep.append(path) }
                    guard shardSpec?.contains(path) ?? true else { return }
                    if verbose { fate(path, "skipped (\(reason)\(detail.map { ": \($0)" } ?? ""))") }
                    skipped[reason, default: 0] += 1
                    if [.unreadable, .symlinkLoop].contains(reason) {
                        if !quiet {
                            progress.finish()
                            warn("\(path): skipped (\(reason)\(detail.map { ": \($0)" } ?? ""))")
                        }
                    }
                    if reason == .linkOutsideFolder { linksOut += 1 }
                case .warning(let path, let message):
                    guard shardSpec?.contains(path) ?? true else { return }
                    warnings += 1
                    if !quiet { progress.finish(); warn("\(path): \(message)") }
                }
            }
            walkedCount = all.count + others.value
            files = all
        } catch {
            throw CLIError(error)
        }
        if linksOut > 0 && !quiet {
            note("\(Format.counted(linksOut, "symbolic link")) out of \(root.path) not followed ('kbindex build --follow' follows them)")
        }

        // 2. Which files to read: new ones, and known ones whose size or modification time
        // changed. The others cost nothing more.
        var unchanged = 0
        var toRead: [SourceFile] = []
        var added = 0, changed = 0, repaired = 0
        // Files the interrupted build embedded and that have not changed since: not read.
        var resumedPaths: Set<String> = []
        var resumedChunks = 0
        for f in files {
            if let a = asideKnown[f.relativePath] {
                if a.size == UInt64(f.size) && a.mtimeNanoseconds == f.mtimeNanoseconds {
                    resumedPaths.insert(f.relativePath)
                    resumedChunks += a.chunks
                    if known[f.relativePath] != nil { changed += 1 } else if damagedPaths.contains(f.relativePath) { repaired += 1 } else { added += 1 }
                    if verbose { fate(f.relativePath, "embedded by the interrupted build, \(Format.counted(a.chunks, "chunk"))") }
                } else {
                    toRead.append(f)  // changed since: read again, its aside version is deleted
                }
            } else if let k = known[f.relativePath], k.size == UInt64(f.size), k.mtimeNanoseconds == f.mtimeNanoseconds {
                unchanged += 1
                if verbose { fate(f.relativePath, "unchanged") }
            } else {
                toRead.append(f)
            }
        }
        let totalBytes = toRead.reduce(0) { $0 + $1.size }
        if aside != nil {
            note("resuming an interrupted build: \(Format.counted(resumedChunks, "chunk")) of \(Format.counted(resumedPaths.count, "file")) already embedded")
        }
        // The hash check of `prepare`: against the aside version when there is one.
        let latest = known.overlaid(by: asideKnown)

        // 3. Read, hash, parse, chunk and embed, a group of files at a time so memory stays
        // flat. A file whose content hash is the indexed one is not parsed or embedded.
        let chunker = Chunker(maxTokens: embedder.maxTextTokens(for: .document), overlapTokens: 32,
                              countTokens: { embedder.countTokens($0) })
        // Segments are written as they fill up (each atomically, under a name no manifest
        // lists yet); the manifest written at the end is the commit point.
        let stamp = "\(Self.timestamp())-\(getpid())"
        var writer = SegmentWriter(model: descriptor)
        var writerDocuments = 0
        var segments: [Manifest.Segment] = []
        var checkpointed: Set<String> = []  // new segments a checkpoint names: kept on failure
        func writeSegment() throws {
            guard writer.chunkCount > 0 else { return }
            // A name no file has: a resumed build in the same second under the same process id
            // (pid 1 in a container) must not write over an aside segment.
            var n = segments.count
            var name: String { "seg-\(stamp)-\(n)\(IndexFiles.segmentSuffix)" }
            while FileManager.default.fileExists(atPath: indexURL.appendingPathComponent(name).path) { n += 1 }
            do {
                let bytes = try writer.write(to: indexURL.appendingPathComponent(name).path)
                segments.append(Manifest.Segment(file: name, chunks: writer.chunkCount, documents: writerDocuments, bytes: bytes))
            } catch {
                Self.removeFiles(segments.map(\.file).filter { !checkpointed.contains($0) }, in: indexURL)
                throw CLIError("cannot write the index in \(indexURL.path): \(error)")
            }
            FaultInjection.point("segment-written")
            writer = SegmentWriter(model: descriptor)
            writerDocuments = 0
        }
        var replaced: Set<String> = []  // known paths whose new version replaces the old
        var doneFiles = 0, textBytes = 0, chunkTotal = 0
        var filesSeen = 0  // files of toRead done with, indexed or not
        var prepareTime = 0.0, embedTime = 0.0  // read+parse+chunk, and embed+add, in seconds
        // Every `checkpointChunks` chunks or `checkpointSeconds` of embedding, what is finished
        // becomes a segment aside and the checkpoint lists it (§13.6).
        var sinceCheckpoint = 0
        var lastCheckpoint = Date()
        func saveCheckpoint() throws {
            try writeSegment()
            guard !segments.isEmpty || aside != nil else { return }
            FaultInjection.point("checkpoint-segment-written")
            let cp = BuildCheckpoint(model: descriptor, rebuild: rebuilding, segments: (aside?.manifest.segments ?? []) + segments,
                                     documents: resumedPaths.count + doneFiles, chunks: resumedChunks + chunkTotal)
            do { try cp.write(to: indexURL) } catch { throw CLIError("cannot save the build's progress in \(indexURL.path): \(error)") }
            FaultInjection.point("checkpoint-written")
            checkpointed.formUnion(segments.map(\.file))
            sinceCheckpoint = 0
            lastCheckpoint = Date()
        }
        var reuse = VectorReuse()
        let isCancelled: @Sendable () -> Bool = {
            if Interruption.firstNotice() {
                progress.finish()  // the note gets its own line, not the middle of the progress line
                note("stopping: the running batches finish and what is done is saved (Ctrl-C again stops at once, keeping what was saved before)")
            }
            return Interruption.receivedSignal != nil
        }
        let status = BuildProgress(files: toRead.count, bytes: totalBytes)
        progress.start { status.line() }
        var group: [SourceFile] = []
        var groupBytes = 0
        func flush() throws {
            let t0 = Date()
            status.reading(files: group.count, bytes: groupBytes, name: group.count == 1 ? group[0].relativePath : nil)
            progress.step()
            let prepared = Self.prepare(group, known: latest, chunker: chunker, limits: ExtractionLimits(), threads: embedder.threads)
            let t1 = Date()
            prepareTime += t1.timeIntervalSince(t0)
            defer { embedTime += Date().timeIntervalSince(t1) }
            var all: [String] = []
            for p in prepared {
                var warning = p.warning
                if case .toolMissing(let tool)? = p.notExtracted {
                    // One line for the first file, a count in the summary for the rest.
                    missingTools[tool, default: 0] += 1
                    if missingTools[tool, default: 0] > 1 { warning = nil }
                }
                if let warning { warnings += 1; if !quiet { progress.finish(); warn(warning) } }
                if p.unreadable { skipped[.unreadable, default: 0] += 1; keep.append(p.file.relativePath) }
                if p.notExtracted != nil { skipped[.notExtracted, default: 0] += 1; keep.append(p.file.relativePath) }
                if p.sameContent {
                    // Same content as its aside version: that one stays.
                    if let a = asideKnown[p.file.relativePath] {
                        if resumedPaths.insert(p.file.relativePath).inserted { resumedChunks += a.chunks }
                    } else {
                        unchanged += 1
                    }
                }
                all += p.chunks.map(\.embeddingText)
            }
            status.read(bytes: groupBytes, chunks: all.count, seconds: t1.timeIntervalSince(t0))
            progress.step()
            // One call for the whole group, so the model's batching keeps every worker busy to
            // the end; it reports each finished batch (a few texts), so progress moves inside a
            // big file. A text embedded before in this build gets that vector. A damaged model
            // (NaN) is an error, not a crash; Ctrl-C ends the call after its running batches.
            status.startEmbedding()
            Interruption.point("before-embedding")
            let embedded: [[Float]]
            do {
                embedded = try reuse.vectors(for: all) { texts in
                    status.embedded(chunks: all.count - texts.count)
                    return try embedder.embed(texts, as: .document, progress: { n in
                        status.embedded(chunks: n)
                        progress.step()
                    }, isCancelled: isCancelled)
                }
            } catch let e as CancellationError {
                throw e
            } catch where embedder.provider != .local {
                // A service that failed for good (after its retries): what is finished is saved,
                // so the next build does not ask for it again.
                throw EmbeddingFailed(error: error)
            } catch {
                throw ModelLoading.failure(ModelIdentity.embeddingFailure(error, of: embedder))
            }
            filesSeen += group.count
            status.finished(files: filesSeen)
            progress.step()
            var v = 0
            for p in prepared {
                if verbose {
                    let warned = p.warning == nil ? "" : " (with warnings)"
                    if p.unreadable { fate(p.file.relativePath, "skipped (unreadable)\(known[p.file.relativePath] == nil ? "" : "; its indexed version stays")") }
                    else if let e = p.notExtracted { fate(p.file.relativePath, "skipped (\(e))\(known[p.file.relativePath] == nil ? "" : "; its indexed version stays")") }
                    else if p.sameContent { fate(p.file.relativePath, "unchanged (same content, new modification time)") }
                    else if p.chunks.isEmpty { fate(p.file.relativePath, "skipped (empty: no text to index)\(warned)") }
                    else {
                        let what = known[p.file.relativePath] != nil ? "changed, indexed" : damagedPaths.contains(p.file.relativePath) ? "indexed again (its segment was damaged)" : "indexed"
                        fate(p.file.relativePath, "\(what), \(Format.counted(p.chunks.count, "chunk"))\(warned)")
                    }
                }
                guard !p.unreadable && p.notExtracted == nil && !p.sameContent else { continue }
                // A file without chunks is not indexed: "skipped: empty", not "added" (it is
                // read again by every build, which costs little: it has no text).
                if known[p.file.relativePath] != nil {
                    changed += 1; replaced.insert(p.file.relativePath)
                } else if asideKnown[p.file.relativePath] != nil {
                    replaced.insert(p.file.relativePath)
                    if !p.chunks.isEmpty { if damagedPaths.contains(p.file.relativePath) { repaired += 1 } else { added += 1 } }
                } else if !p.chunks.isEmpty {
                    if damagedPaths.contains(p.file.relativePath) { repaired += 1 } else { added += 1 }
                }
                guard !p.chunks.isEmpty else { skipped[.empty, default: 0] += 1; continue }
                let doc = writer.addDocument(DocumentRecord(
                    path: p.file.relativePath, size: UInt64(p.file.size), mtimeNanoseconds: p.file.mtimeNanoseconds,
                    contentSHA256: p.sha256, title: p.title))
                writerDocuments += 1
                for c in p.chunks {
                    writer.addChunk(ChunkRecord(document: doc, ordinal: UInt32(c.ordinal),
                                                lineStart: UInt32(c.lineStart), lineEnd: UInt32(c.lineEnd),
                                                byteStart: UInt64(c.byteStart), byteEnd: UInt64(c.byteEnd),
                                                headingPath: c.headingPath, unit: c.unit),
                                    text: c.text, vector: embedded[v],
                                    // BM25 sees what the model sees: the heading path and the text.
                                    terms: LexicalTokenizer.counts(c.embeddingText))
                    textBytes += c.text.utf8.count
                    v += 1
                }
                chunkTotal += p.chunks.count
                sinceCheckpoint += p.chunks.count
                doneFiles += 1
                if writer.chunkCount >= segmentChunks { try writeSegment() }
            }
            group.removeAll()
            groupBytes = 0
            // The thresholds grow with the build (5% of the chunks and of the time so far), so a
            // kill loses at most about 5% of a long build, and a build of hours does not end
            // with hundreds of small segments.
            let everyChunks = max(checkpointChunks, (resumedChunks + chunkTotal) / 20)
            let everySeconds = max(checkpointSeconds, Date().timeIntervalSince(start) / 20)
            if sinceCheckpoint >= everyChunks || (sinceCheckpoint > 0 && Date().timeIntervalSince(lastCheckpoint) >= everySeconds) {
                try saveCheckpoint()
            }
            Interruption.point("group-done")
        }
        /// What a stopped build kept, and how to go on.
        func saved() -> String {
            let n = resumedChunks + chunkTotal
            return n > 0 ? "\(Format.counted(n, "chunk")) of \(Format.counted(resumedPaths.count + doneFiles, "file")) saved; run the same command again to resume" : "nothing was embedded yet; the index is unchanged"
        }
        func stopIfInterrupted() throws { if isCancelled() { throw CancellationError() } }
        do {
            for f in toRead {
                group.append(f)
                groupBytes += f.size
                if group.count >= 32 || groupBytes >= 1 << 20 { try stopIfInterrupted(); try flush() }
            }
            if !group.isEmpty { try stopIfInterrupted(); try flush() }
        } catch is CancellationError {
            // Ctrl-C: save what is finished (the interrupted group is not), say how to go on.
            progress.stop()
            try saveCheckpoint()
            FileHandle.standardError.write(Data("interrupted: \(saved())\n".utf8))
            throw ExitCode(128 + (Interruption.receivedSignal ?? SIGINT))
        } catch let failed as EmbeddingFailed {
            // The remote service failed for good: the same, with its error.
            progress.stop()
            try saveCheckpoint()
            throw CLIError("\(ModelIdentity.embeddingFailure(failed.error, of: embedder)); \(saved())")
        }
        try writeSegment()
        progress.stop()

        // 4. Deletions: the old versions of changed files, and files that are gone (or now
        // excluded). Unreadable files keep their indexed version.
        let walked = Set(files.map(\.relativePath))
        func kept(_ path: String) -> Bool { keep.contains { path == $0 || path.hasPrefix($0 + "/") } }
        var deleted = 0
        typealias Deletions = [Int: (set: DeletionSet, chunks: Int)]
        func markDeleted(_ k: KnownDocument, of index: IndexDirectory, in deletions: inout Deletions) {
            let entry = index.manifest.segments[k.segment]
            var d = deletions[k.segment] ?? (index.deletions[k.segment] ?? DeletionSet(documentCount: index.segments[k.segment].documentCount), entry.deletedChunks ?? 0)
            if !d.set.contains(k.document) { d.set.insert(k.document); d.chunks += k.chunks }
            deletions[k.segment] = d
        }
        var deletions: Deletions = [:]
        for (path, versions) in known.byPath {
            let gone = !walked.contains(path) && !kept(path)
            guard gone || replaced.contains(path) || resumedPaths.contains(path) else { continue }
            if gone { deleted += 1; if verbose { fate(path, "deleted from the index (no longer there or no longer included)") } }
            for k in versions { markDeleted(k, of: old!, in: &deletions) }
        }
        // The aside versions that did not stay: only the newest of a file the interrupted
        // build embedded and that has not changed since stays.
        var asideDeletions: Deletions = [:]
        for (path, versions) in asideKnown.byPath {
            for (i, k) in versions.enumerated() where !(resumedPaths.contains(path) && i == versions.count - 1) {
                markDeleted(k, of: aside!, in: &asideDeletions)
            }
        }

        // The documents of damaged segments: those no longer there are deleted with their
        // segment; unreadable ones cannot be read again and are lost with it.
        for path in damagedPaths.sorted() where !walked.contains(path) && known[path] == nil {
            if kept(path) {
                warn("\(path): its indexed version was in the damaged segment and the file cannot be read now; it is no longer in the index")
            } else {
                deleted += 1
                if verbose { fate(path, "deleted from the index (no longer there or no longer included)") }
            }
        }

        // 5. Commit: deletion files, then the manifest (old segments, then the new ones).
        let summary = "files: \(added) added, \(changed) changed, \(deleted) deleted, \(unchanged) unchanged" + (repaired > 0 ? ", \(repaired) indexed again from a damaged segment" : "")
        func printMissingTools() {
            for (tool, n) in missingTools.sorted(by: { $0.key < $1.key }) {
                print("\(Format.counted(n, "file")) not read: \(tool) is not installed\(Self.advice(for: .toolMissing(tool)))")
            }
        }
        func printWarningCount() {
            if warnings > 0 { print("warnings: \(warnings)\(quiet ? " (run without --quiet to see them)" : "")") }
        }
        let shardLine = shardSpec.map { "shard \($0): \(Format.count(files.count)) of \(Format.counted(walkedCount, "file"))" }
        if let old, added + changed + deleted == 0 && segments.isEmpty && aside == nil && damaged.isEmpty && !Self.hasStrayFiles(indexURL, old.manifest)
            && old.manifest.model == descriptor && old.manifest.shard == shardField {
            if let shardLine { print(shardLine) }
            print("index is up to date: \(Format.counted(unchanged, "file")), \(Format.counted(old.liveChunkCount, "chunk")) (\(summary))")
            // Files that failed are read again by every build: say so every time, not only the first.
            let failed = [SkipReason.unreadable, .notExtracted].compactMap { r in skipped[r].flatMap { $0 > 0 ? Self.describe(r, count: $0) : nil } }
            if !failed.isEmpty { print("not indexed: \(failed.joined(separator: ", "))") }
            printMissingTools()
            printWarningCount()
            return
        }
        // Old segments (none for a rebuild), then those the interrupted build saved aside,
        // then the new ones; the checkpoint goes with the switch.
        var entries: [Manifest.Segment] = []
        var written = segments.map(\.file).filter { !checkpointed.contains($0) }
        func withDeletions(_ index: IndexDirectory?, _ deletions: Deletions, skipping: Set<Int> = []) throws {
            for (s, entry) in (index?.manifest.segments ?? []).enumerated() where !skipping.contains(s) {
                guard let d = deletions[s] else { entries.append(entry); continue }
                if d.set.count == d.set.documentCount { continue }  // nothing live: drop the segment
                let base = entry.file.hasSuffix(IndexFiles.segmentSuffix) ? String(entry.file.dropLast(IndexFiles.segmentSuffix.count)) : entry.file
                let name = "\(base)-del-\(stamp)\(IndexFiles.deletionSuffix)"
                try d.set.write(to: indexURL.appendingPathComponent(name).path)
                written.append(name)
                var e = entry
                e.deletions = name
                e.deletedDocuments = d.set.count
                e.deletedChunks = d.chunks
                entries.append(e)
            }
        }
        do {
            try withDeletions(old, deletions, skipping: damaged)
            try withDeletions(aside, asideDeletions)
            FaultInjection.point("deletions-written")
            try IndexFiles.commit(Manifest(model: descriptor, segments: entries + segments, shard: shardField), in: indexURL, endingCheckpoint: true)
        } catch {
            Self.removeFiles(written, in: indexURL)
            throw CLIError("cannot write the index in \(indexURL.path): \(error)")
        }

        // 6. Compaction, when deletions or segments pile up.
        var compacted: String?
        // (Not after Ctrl-C: the index is complete without it.)
        if !noCompact, Interruption.receivedSignal == nil, let m = try? Manifest.read(from: indexURL.path), Compaction.isWorthwhile(m) {
            do {
                compacted = try CompactCommand.compact(indexURL, stamp: stamp + "-c", segmentChunks: segmentChunks)
            } catch {
                warn("compaction failed, the index is complete without it: \(error)")
            }
        }

        // 7. Summary.
        let elapsed = Date().timeIntervalSince(start)
        let skippedText = skipped.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { Self.describe($0.key, count: $0.value) }.joined(separator: ", ")
        if let shardLine { print(shardLine) }
        print("indexed \(Format.counted(doneFiles, "file")) into \(Format.counted(chunkTotal, "chunk")) (\(Format.bytes(textBytes)) of text) in \(Format.duration(elapsed)), \(String(format: "%.0f", Double(chunkTotal) / max(elapsed, 1e-3))) chunks/s")
        print(summary)
        if aside != nil { print("resumed: \(Format.counted(resumedChunks, "chunk")) of \(Format.counted(resumedPaths.count, "file")) were embedded by the interrupted build") }
        if reuse.reused > 0 { print("identical texts: \(Format.counted(reuse.reused, "chunk")) reused an earlier vector") }
        if !skippedText.isEmpty { print("skipped: \(skippedText)") }
        printMissingTools()
        print("time: read, parse and chunk \(Format.duration(prepareTime)), embed \(Format.duration(embedTime)), other \(Format.duration(max(0, elapsed - prepareTime - embedTime)))")
        printWarningCount()
        if let compacted { print(compacted) }
        let now = try? IndexDirectory(url: indexURL)
        print("index: \(indexURL.path) (\(Format.counted(now?.liveChunkCount ?? chunkTotal, "chunk")), \(Format.bytes(now?.bytesOnDisk ?? 0)), model \(descriptor.name))")
    }

    /// The shortest model input `build` accepts: 8 tokens of text (`Chunker`'s minimum) plus
    /// [CLS] and [SEP].
    static let minimumModelTokens = 10

    /// A remote service's error that ended the build after its retries (the build saves what
    /// is finished before it reports it).
    struct EmbeddingFailed: Error { let error: Error }

    /// The embedder a build uses: what the options say, the rest as `recorded` (the interrupted
    /// build's or the index's model) was embedded, else the defaults. A local model the index
    /// recorded that is no longer in the model store gives way to the default model, with a note
    /// (as before builds remembered the model).
    static func embedder(_ choice: EmbedderChoice, _ documents: DocumentEmbedding, threads: Int?,
                         precision: Precision, recorded: ModelDescriptor?) throws -> any TextEmbedder {
        var options = choice.options(threads: threads)
        options.documentPrompt = documents.documentPrompt
        options.batchSize = documents.batchSize
        options.concurrency = documents.concurrency
        options.retries = documents.retries
        options.precision = precision
        var recorded = recorded
        if let r = recorded, ModelIdentity.provider(of: r) == .local, options.provider ?? .local == .local, options.localModel == nil,
           (try? ModelStore().resolve(r.name)) == nil {
            note("the index was built with model \(Format.displayed(r.name)), which is not in the model store; embedding with \(KnownModel.defaultName) (--model names another)")
            recorded = nil
        }
        return try ModelLoading.embedder(options, recorded: recorded)
    }

    /// A file read, parsed and chunked.
    struct Prepared: Sendable {
        var file: SourceFile
        var title = ""
        var sha256: [UInt8] = []
        var chunks: [Chunk] = []
        var warning: String?
        var unreadable = false
        /// Why a PDF or office file gave no text; its indexed version, if any, stays.
        var notExtracted: ExtractionError?
        /// The content hash is the indexed version's: not parsed, nothing to do.
        var sameContent = false

        /// The file gave no text: one warning line with what to do.
        mutating func failed(_ error: ExtractionError) {
            notExtracted = error
            warning = "\(file.relativePath): skipped (\(error)\(BuildCommand.advice(for: error)))"
        }
    }

    /// Reads, hashes, parses and chunks `files` on `threads` workers (the tokenizer does most
    /// of the work). A file whose SHA-256 equals its indexed version's in `known` is not parsed.
    static func prepare(_ files: [SourceFile], known: KnownDocuments, chunker: Chunker, limits: ExtractionLimits,
                        threads: Int) -> [Prepared] {
        var out = files.map { Prepared(file: $0) }
        // A kind whose extractor is missing fails the same way for every file: not read or hashed.
        let unavailable = Dictionary(uniqueKeysWithValues: Set(files.map(\.kind)).compactMap { k in DocumentParser.unavailable(k).map { (k, $0) } })
        let workers = min(threads, max(files.count, 1))
        out.withUnsafeMutableBufferPointer { buf in
            let dst = SendableBuffer(buf)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var i = w
                while i < files.count {
                    let f = files[i]
                    if let error = unavailable[f.kind] {
                        dst.buffer[i].failed(error)
                        i += workers
                        continue
                    }
                    do {
                        let data = try FileReader.read(f.location)
                        let sha = Array(Hashing.sha256Bytes(data))
                        dst.buffer[i].sha256 = sha
                        if let k = known[f.relativePath], k.sha256 == sha {
                            dst.buffer[i].sameContent = true
                        } else {
                            switch DocumentParser.parse(data, of: f, limits: limits) {
                            case .success(let parsed):
                                dst.buffer[i].title = parsed.document.title
                                dst.buffer[i].chunks = chunker.chunks(of: parsed.document)
                                if !parsed.warnings.isEmpty { dst.buffer[i].warning = "\(f.relativePath): \(parsed.warnings.joined(separator: "; "))" }
                            case .failure(let error):
                                dst.buffer[i].failed(error)
                            }
                        }
                    } catch {
                        dst.buffer[i].unreadable = true
                        dst.buffer[i].warning = "\(f.relativePath): skipped (unreadable: \((error as? FileError)?.reason ?? "\(error)"))"
                    }
                    i += workers
                }
            }
        }
        return out
    }

    /// What to do about a file that gave no text, as "; …" to follow the reason ("" when
    /// there is nothing to do but fix the file).
    static func advice(for error: ExtractionError) -> String {
        switch error {
        case .toolMissing("pdftotext"):
            return "; install poppler-utils (scripts/install-deps.sh, or: apt install poppler-utils)"
        case .noText: return "; run OCR on it first, e.g. ocrmypdf in.pdf out.pdf"
        case .encrypted: return "; index a decrypted copy, e.g. qpdf --decrypt --password=PASSWORD in.pdf out.pdf"
        case .timedOut, .toolFailed, .toolMissing, .damaged, .zipBomb, .malformed: return ""
        }
    }

    /// "3 binary", "2 symbolic link loops": the summary's words for `count` files skipped
    /// for `r`, the same words as each file's own line (`SkipReason.description`).
    static func describe(_ r: SkipReason, count n: Int) -> String {
        switch r {
        case .symlinkLoop: return Format.counted(n, "symbolic link loop")
        case .linkOutsideFolder: return Format.counted(n, "link out of the folder", plural: "links out of the folder")
        case .ignored, .unsupportedType, .binary, .tooLarge, .unreadable, .empty, .minified, .duplicate, .notExtracted: return "\(Format.count(n)) \(r.description)"
        }
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd'T'HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }

    /// Deletes the named files of a change that failed before its manifest was committed.
    static func removeFiles(_ names: [String], in dir: URL) {
        for n in names { try? FileManager.default.removeItem(at: dir.appendingPathComponent(n)) }
    }

    /// Whether the index folder holds files a killed build left (temporary files, or segment
    /// and deletion files the manifest does not name): then even a build with no changes
    /// commits, which removes them.
    static func hasStrayFiles(_ dir: URL, _ manifest: Manifest) -> Bool {
        !IndexFiles.unreferenced(in: dir, keeping: IndexFiles.referenced(by: manifest)).isEmpty
    }
}

/// Writes to disjoint indices of a buffer from concurrent workers.
struct SendableBuffer<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}

/// One line on stderr; the message's control characters are escapes (a file name with an
/// ESC or a newline must not colour the terminal or split the line).
func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(Format.displayed(message))\n".utf8))
}

func note(_ message: String) {
    FileHandle.standardError.write(Data("note: \(Format.displayed(message))\n".utf8))
}

/// A count that a `@Sendable` closure may raise.
final class SendableCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
