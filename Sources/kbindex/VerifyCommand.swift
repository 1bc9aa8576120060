import ArgumentParser
import Foundation
import KBCore
import KBFormat
import KBSearch

/// `kbindex verify`: check every checksum of an index and report every damaged file.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every file and section of an index against its checksum.",
        discussion: """
            Reads the whole index: the manifest, every segment (header, directory, every \
            section's CRC32C, every record's bounds) and every deletion file. Prints one \
            'damaged:' line on stderr for each problem found, not just the first, and exits \
            with status 2 if there is any. 'kbindex build' of the indexed folder then repairs \
            the index: it embeds the documents of a damaged segment again and drops the \
            segment (and writes a new index if it cannot read the manifest).

            Examples:
              kbindex verify
              kbindex verify --index ~/pydocs.kbindex
            """
    )

    @Option(help: ArgumentHelp("The index folder, or s3://bucket/prefix (default: the nearest .kbindex).", valueName: "dir"))
    var index: String?

    func run() throws {
        let index = try S3IndexOption.localIndex(self.index)  // s3://…: the local mirror, pulled (each file checked as it came)
        let url = index.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? IndexDirectory.locate(from: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        let manifest: Manifest
        do { manifest = try Manifest.read(from: url.path) } catch let error as ManifestError {
            throw IndexOpening.failure(error, url: url, option: index)  // names ~/docs/.kbindex for --index ~/docs
        } catch { throw CLIError(error) }
        var problems: [String] = []
        var sections = 0, chunks = 0
        for entry in manifest.segments {
            let path = url.appendingPathComponent(entry.file).path
            do {
                let seg = try SegmentReader(path: path)
                let damaged = seg.damagedSections()
                problems += damaged.map { "segment \(path): section \($0) does not match its checksum" }
                if seg.chunkCount != entry.chunks || seg.documentCount != entry.documents {
                    problems.append("segment \(path) has \(Format.counted(seg.documentCount, "document")) and \(Format.counted(seg.chunkCount, "chunk")), the manifest says \(entry.documents) and \(entry.chunks)")
                }
                if damaged.isEmpty {
                    // Every text block decompresses (the checksums already vouch for the bytes),
                    // each once.
                    for b in 0..<seg.textBlockCount {
                        do { _ = try seg.textBlock(b) } catch { problems.append("\(error)"); break }
                    }
                }
                sections += SectionKind.required.count + (seg.lexical == nil ? 0 : 1)
                chunks += seg.chunkCount
                if let name = entry.deletions {
                    let set = try DeletionSet.read(path: url.appendingPathComponent(name).path)
                    if set.documentCount != seg.documentCount || set.count != entry.deletedDocuments {
                        problems.append("deletion file \(url.appendingPathComponent(name).path) does not match its segment or the manifest")
                    }
                }
            } catch {
                problems.append("\(error)")
            }
        }
        for p in problems { FileHandle.standardError.write(Data("damaged: \(Format.displayed(p))\n".utf8)) }
        let stray = IndexFiles.stray(in: url, manifest: manifest)
        if !problems.isEmpty {
            if !stray.isEmpty { print(IndexOpening.strayLine(stray)) }
            throw CLIError("\(Format.counted(problems.count, "problem")) in \(url.path): \(IndexOpening.repair(url))")
        }
        let deletionFiles = manifest.segments.compactMap(\.deletions).count
        print("ok: \(url.path): manifest, \(Format.counted(manifest.segments.count, "segment")) (\(Format.counted(sections, "section")), \(Format.counted(chunks, "chunk"))) and \(Format.counted(deletionFiles, "deletion file")) match their checksums")
        if !stray.isEmpty { print(IndexOpening.strayLine(stray)) }
        if let cp = BuildCheckpoint.pending(in: url, manifest: manifest) { print(BuildCheckpointing.pendingLine(cp)) }
    }
}
