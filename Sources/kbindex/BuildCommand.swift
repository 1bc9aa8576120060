import ArgumentParser
import Dispatch
import Foundation
import KBCore
import KBEmbed
import KBFormat
import KBIngest
import KBSearch

/// `kbindex build FOLDER`: walk, parse, chunk, embed, and write a new index.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Index a folder of documents (markdown, text, HTML, source code).",
        discussion: """
            Walks FOLDER (honouring .gitignore, skipping hidden, binary and oversized files), \
            cuts every document along its structure (headings, paragraphs, declarations) into \
            chunks that fit the model, embeds them with the built-in model, and writes the \
            index: by default FOLDER/.kbindex. The new index replaces the old one only when it \
            is complete; a failed or killed build leaves the last good index readable.

            Examples:
              kbindex build ~/notes
              kbindex build . --include 'docs/**' --exclude '*.min.js'
              kbindex build /usr/share/doc/python3.11/html --index ~/pydocs.kbindex
            """
    )

    @Argument(help: "The folder to index.")
    var folder: String

    @Option(help: ArgumentHelp("Where to write the index (default: FOLDER/.kbindex).", valueName: "dir"))
    var index: String?

    @Option(name: .customLong("include"), help: ArgumentHelp("Only index paths matching this glob (repeatable).", valueName: "glob"))
    var include: [String] = []

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Skip paths matching this glob (repeatable).", valueName: "glob"))
    var exclude: [String] = []

    @Option(help: ArgumentHelp("Skip files larger than this many megabytes.", valueName: "MB"))
    var maxFileSize: Double = 10

    @Option(help: ArgumentHelp("Model name in the store, or a model folder.", valueName: "name|path"))
    var model: String?

    @Option(help: "Worker threads (default: every core).")
    var threads: Int?

    @Flag(help: "No progress line and no per-file warnings; only the summary.")
    var quiet = false

    /// Chunks per segment file before a new one starts (bounds the writer's memory).
    @Option(help: .hidden)
    var segmentChunks = 200_000

    func validate() throws {
        if maxFileSize <= 0 { throw ValidationError("--max-file-size must be positive") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if segmentChunks < 1 { throw ValidationError("--segment-chunks must be at least 1") }
    }

    func run() throws {
        let start = Date()
        let root = URL(fileURLWithPath: folder).standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir), isDir.boolValue else {
            throw CLIError("\(root.path) is not a folder")
        }
        let indexURL = index.map { URL(fileURLWithPath: $0).standardizedFileURL } ?? root.appendingPathComponent(IndexDirectory.defaultName)
        do {
            try FileManager.default.createDirectory(at: indexURL, withIntermediateDirectories: true)
        } catch {
            throw CLIError("cannot create the index folder \(indexURL.path): \(error.localizedDescription)")
        }
        // One build at a time per index: a second one would delete the first one's new segments.
        let lock: FileLock?
        do { lock = try FileLock.tryLock(indexURL.appendingPathComponent(".lock").path) } catch { throw CLIError("\(error)") }
        guard let lock else { throw CLIError("another kbindex build is writing \(indexURL.path); wait for it to finish") }
        defer { lock.unlock() }

        let embedder = try ModelLoading.load(model, threads: threads)
        let descriptor = try ModelLoading.descriptor(of: embedder)
        let progress = ProgressLine(quiet: quiet)

        // 1. Walk.
        var options = IngestOptions()
        options.include = include
        options.exclude = exclude
        options.maxFileSize = Int(maxFileSize * 1_048_576)
        options.excludedDirectories = [indexURL.path]
        var skipped: [SkipReason: Int] = [:]
        var warnings = 0
        let quiet = self.quiet
        let files: [SourceFile]
        do {
            files = try Walker(root: root, options: options).walk { event in
                switch event {
                case .skipped(let path, let reason, let detail):
                    skipped[reason, default: 0] += 1
                    if !quiet, [.unreadable, .symlinkLoop].contains(reason) {
                        progress.finish()
                        warn("\(path): skipped (\(reason.rawValue)\(detail.map { ": \($0)" } ?? ""))")
                    }
                case .warning(let path, let message):
                    warnings += 1
                    if !quiet { progress.finish(); warn("\(path): \(message)") }
                }
            }
        } catch {
            throw CLIError(error)
        }
        let totalBytes = files.reduce(0) { $0 + $1.size }

        // 2. Parse, chunk and embed, a group of files at a time so memory stays flat.
        let tokenizer = embedder.tokenizer
        let chunker = Chunker(maxTokens: embedder.config.maxSequenceLength - 2, overlapTokens: 32,
                              countTokens: { tokenizer.tokenIDs($0).count })
        // Segments are written as they fill up (each atomically, under a name no manifest
        // lists yet); the manifest written at the end is the commit point.
        let stamp = "\(Self.timestamp())-\(getpid())"
        var writer = SegmentWriter(model: descriptor)
        var writerDocuments = 0
        var segments: [Manifest.Segment] = []
        func writeSegment() throws {
            guard writer.chunkCount > 0 else { return }
            let name = "seg-\(stamp)-\(segments.count).kbseg"
            do {
                let bytes = try writer.write(to: indexURL.appendingPathComponent(name).path)
                segments.append(Manifest.Segment(file: name, chunks: writer.chunkCount, documents: writerDocuments, bytes: bytes))
            } catch {
                Self.removeSegments(segments.map(\.file), in: indexURL)
                throw CLIError("cannot write the index in \(indexURL.path): \(error)")
            }
            writer = SegmentWriter(model: descriptor)
            writerDocuments = 0
        }
        var doneBytes = 0, doneFiles = 0, textBytes = 0, chunkTotal = 0
        var prepareTime = 0.0, embedTime = 0.0  // read+parse+chunk, and embed+add, in seconds
        let embedStart = Date()
        var group: [SourceFile] = []
        var groupBytes = 0
        func flush() throws {
            let t0 = Date()
            let prepared = Self.prepare(group, chunker: chunker, threads: embedder.threads)
            let t1 = Date()
            prepareTime += t1.timeIntervalSince(t0)
            defer { embedTime += Date().timeIntervalSince(t1) }
            var texts: [String] = []
            for p in prepared {
                if let w = p.warning { warnings += 1; if !quiet { progress.finish(); warn(w) } }
                if p.unreadable { skipped[.unreadable, default: 0] += 1 }
                texts += p.chunks.map(\.embeddingText)
            }
            let vectors = embedder.embed(texts)
            var v = 0
            for p in prepared where !p.unreadable {
                guard !p.chunks.isEmpty else { skipped[.empty, default: 0] += 1; continue }
                let doc = writer.addDocument(DocumentRecord(
                    path: p.file.relativePath, size: UInt64(p.file.size), mtimeNanoseconds: p.file.mtimeNanoseconds,
                    contentSHA256: p.sha256, title: p.title))
                writerDocuments += 1
                for c in p.chunks {
                    writer.addChunk(ChunkRecord(document: doc, ordinal: UInt32(c.ordinal),
                                                lineStart: UInt32(c.lineStart), lineEnd: UInt32(c.lineEnd),
                                                byteStart: UInt64(c.byteStart), byteEnd: UInt64(c.byteEnd),
                                                headingPath: c.headingPath),
                                    text: c.text, vector: vectors[v])
                    textBytes += c.text.utf8.count
                    v += 1
                }
                chunkTotal += p.chunks.count
                doneFiles += 1
                if writer.chunkCount >= segmentChunks { try writeSegment() }
            }
            doneBytes += groupBytes
            group.removeAll()
            groupBytes = 0
            let elapsed = Date().timeIntervalSince(embedStart)
            let rate = Double(chunkTotal) / max(elapsed, 1e-3)
            let eta = doneBytes > 0 ? elapsed * Double(totalBytes - doneBytes) / Double(doneBytes) : 0
            progress.update("files \(Format.count(doneFiles))/\(Format.count(files.count)) · chunks \(Format.count(chunkTotal)) · \(String(format: "%.0f", rate)) chunks/s · ETA \(Format.duration(eta))")
        }
        for f in files {
            group.append(f)
            groupBytes += f.size
            if group.count >= 32 || groupBytes >= 1 << 20 { try flush() }
        }
        if !group.isEmpty { try flush() }
        try writeSegment()
        progress.finish()

        // 3. The manifest (the commit point), then drop the segments it no longer lists.
        let manifest = Manifest(formatVersion: 1, model: descriptor, segments: segments,
                                createdAt: ISO8601DateFormatter().string(from: Date()))
        do {
            try manifest.write(to: indexURL.path)
        } catch {
            Self.removeSegments(segments.map(\.file), in: indexURL)
            throw CLIError("cannot write the index manifest in \(indexURL.path): \(error)")
        }
        Self.removeUnreferencedSegments(in: indexURL, keeping: Set(segments.map(\.file)))

        // 4. Summary.
        let elapsed = Date().timeIntervalSince(start)
        let skippedText = skipped.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.value) \(Self.describe($0.key))" }.joined(separator: ", ")
        let onDisk = segments.reduce(0) { $0 + $1.bytes }
        print("indexed \(Format.count(doneFiles)) files into \(Format.count(chunkTotal)) chunks (\(Format.bytes(textBytes)) of text) in \(Format.duration(elapsed)), \(String(format: "%.0f", Double(chunkTotal) / max(elapsed, 1e-3))) chunks/s")
        if !skippedText.isEmpty { print("skipped: \(skippedText)") }
        print("time: read, parse and chunk \(Format.duration(prepareTime)), embed \(Format.duration(embedTime)), other \(Format.duration(max(0, elapsed - prepareTime - embedTime)))")
        if warnings > 0 { print("warnings: \(warnings)\(quiet ? " (run without --quiet to see them)" : "")") }
        print("index: \(indexURL.path) (\(Format.bytes(onDisk)), model \(descriptor.name))")
    }

    /// A file read, parsed and chunked.
    struct Prepared: Sendable {
        var file: SourceFile
        var title = ""
        var sha256: [UInt8] = []
        var chunks: [Chunk] = []
        var warning: String?
        var unreadable = false
    }

    /// Reads, parses and chunks `files` on `threads` workers (the tokenizer does most of the work).
    static func prepare(_ files: [SourceFile], chunker: Chunker, threads: Int) -> [Prepared] {
        var out = files.map { Prepared(file: $0) }
        out.withUnsafeMutableBufferPointer { buf in
            let dst = SendableBuffer(buf)
            DispatchQueue.concurrentPerform(iterations: min(threads, max(files.count, 1))) { w in
                var i = w
                while i < files.count {
                    let f = files[i]
                    do {
                        let data = try FileReader.read(f.url.path)
                        let (doc, warnings) = DocumentParser.parse(data, kind: f.kind, language: f.language, path: f.relativePath)
                        dst.buffer[i].title = doc.title
                        dst.buffer[i].sha256 = Array(Hashing.sha256Bytes(data))
                        dst.buffer[i].chunks = chunker.chunks(of: doc)
                        if !warnings.isEmpty { dst.buffer[i].warning = "\(f.relativePath): \(warnings.joined(separator: "; "))" }
                    } catch {
                        dst.buffer[i].unreadable = true
                        dst.buffer[i].warning = "\(f.relativePath): skipped (unreadable: \(error))"
                    }
                    i += min(threads, max(files.count, 1))
                }
            }
        }
        return out
    }

    static func describe(_ r: SkipReason) -> String {
        switch r {
        case .ignored: return "ignored"
        case .unsupportedType: return "unsupported type"
        case .binary: return "binary"
        case .tooLarge: return "too large"
        case .unreadable: return "unreadable"
        case .symlinkLoop: return "symlink loop"
        case .empty: return "empty"
        }
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd'T'HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }

    /// Deletes the named segment files (a build that failed before its manifest was written).
    static func removeSegments(_ names: [String], in dir: URL) {
        for n in names { try? FileManager.default.removeItem(at: dir.appendingPathComponent(n)) }
    }

    /// Deletes `*.kbseg` files the manifest no longer lists, and temporary files a killed build left.
    static func removeUnreferencedSegments(in dir: URL, keeping: Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for name in names where (name.hasSuffix(".kbseg") && !keeping.contains(name)) || name.contains(".tmp-") {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(name))
        }
    }
}

/// Writes to disjoint indices of a buffer from concurrent workers.
struct SendableBuffer<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}
