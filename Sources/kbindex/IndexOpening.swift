import Foundation
import KBModelStore
import KBFormat
import KBRetrieval
import KBSearch

/// How the commands that read an index find and open it, and the advice they give when it
/// is damaged. Library errors describe the problem only; the advice is added here, once.
enum IndexOpening {
    /// The index folder for `--index` (nil: the nearest `.kbindex` in the current folder or
    /// a parent), opened. Errors are one line that says what to do, as `CLIError`.
    static func open(_ option: String?) throws -> IndexDirectory {
        let url = option.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? IndexDirectory.locate(from: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        do {
            return try IndexDirectory(url: url)
        } catch let error as SegmentError {
            throw CLIError(damaged(error, index: url))
        } catch let error as DeletionFileError {
            // A build that cannot open the index writes it anew: no need for --rebuild.
            throw CLIError("\(error): 'kbindex build \(indexedFolder(of: url))' writes the index anew")
        } catch let error as ManifestError {
            throw failure(error, url: url, option: option)
        } catch {
            throw CLIError(error)
        }
    }

    /// A manifest that cannot be read, as a `CLIError` with what to do; for `--index ~/docs`
    /// where ~/docs/.kbindex holds the index, one that names the folder that does.
    static func failure(_ error: ManifestError, url: URL, option: String?) -> CLIError {
        switch error {
        case .missing:
            if let option {
                let inside = url.appendingPathComponent(IndexDirectory.defaultName)
                if FileManager.default.fileExists(atPath: inside.appendingPathComponent(Manifest.fileName).path) {
                    let suggested = option.hasSuffix("/") ? option + IndexDirectory.defaultName : option + "/" + IndexDirectory.defaultName
                    return CLIError("no index in \(url.path), but \(inside.path) is one: use --index \(suggested)")
                }
            }
            return CLIError("\(error): index a folder first with 'kbindex build \(indexedFolder(of: url))'")
        case .damaged:
            return CLIError("\(error): 'kbindex build \(indexedFolder(of: url))' writes the index anew")
        case .unsupportedVersion:
            return CLIError("\(error): rebuild it with 'kbindex build \(indexedFolder(of: url)) --rebuild'")
        }
    }

    /// A retrieval library error (`RetrievalError`, `SegmentError`) met while answering from the
    /// index in `index`, as a `CLIError` with what to do.
    static func failure(_ error: Error, index: URL) -> CLIError {
        switch error {
        case let e as SegmentError: return CLIError(damaged(e, index: index))
        case RetrievalError.damaged(let e, _): return CLIError(damaged(e, index: index))
        case RetrievalError.lexicalUnavailable, is LexicalUnavailable:
            return CLIError("\(error): rebuild the index with 'kbindex build \(indexedFolder(of: index)) --rebuild' for lexical and hybrid search")
        case RetrievalError.model(let message, let folder?, true):
            return CLIError("\(message): \(ModelLoading.repair(folder, store: ModelStore()))")
        default: return CLIError(error)
        }
    }

    /// `error` (a damaged or unreadable segment of the index in `index`) with what to do:
    /// verify for the full check, build to re-embed the documents of the damaged segment.
    static func damaged(_ error: SegmentError, index: URL) -> String {
        switch error {
        case .unsupportedVersion, .unsupportedModelVersion:
            return "\(error): rebuild the index with 'kbindex build --rebuild', or upgrade kbindex"
        default: break
        }
        return "\(error); 'kbindex verify' for the full check; \(repair(index))"
    }

    /// The line `info` and `verify` print for files a killed writer left (`IndexFiles.stray`):
    /// not damage (the index does not name them), but worth saying.
    static func strayLine(_ names: [String]) -> String {
        "stray files: \(names.map(Format.displayed).joined(separator: ", ")), removed by the next 'kbindex build' or 'kbindex compact'"
    }

    /// What repairs a damaged index in `index`: a plain build, which reads the documents of a
    /// damaged segment again and drops it (and writes a new index when it cannot read the
    /// manifest or open a segment at all). Said the same way by query, verify and compact.
    static func repair(_ index: URL) -> String {
        "'kbindex build \(indexedFolder(of: index))' re-embeds the damaged segment's documents"
    }

    /// The arguments of the build that updates the index in `index`: its folder when the
    /// index sits in its default place (`FOLDER/.kbindex`), else "FOLDER --index INDEX".
    static func indexedFolder(of index: URL) -> String {
        guard index.lastPathComponent == IndexDirectory.defaultName else { return "FOLDER --index \(index.path)" }
        return index.deletingLastPathComponent().path
    }
}
