import Foundation
import KBFormat
import KBObjectStore

/// Why an operation on an index in object storage failed. `description` is one line that
/// names the object or folder; it never carries a credential and gives no advice (the CLI
/// adds that).
public enum RemoteIndexError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The object store refused or failed a call (credentials, a missing bucket, the network).
    case store(ObjectStoreError)
    /// The manifest (remote, or the local one a push reads) cannot be used.
    case manifest(ManifestError)
    /// Another writer committed a new generation at `location` after the one this push is
    /// based on (or an object of this push's name with other contents is already there).
    case conflict(location: String)
    /// A downloaded object failed verification (size, SHA-256, segment or deletion checks);
    /// it was not kept.
    case damagedObject(location: String, key: String, reason: String)
    /// The manifest at `location` names `key`, which is not in the store, and the manifest
    /// did not change (a damaged remote index).
    case missingObject(location: String, key: String)
    /// The manifest changed `attempts` times while a pull was downloading its files.
    case unstable(location: String, attempts: Int)
    /// A local file could not be read or written.
    case file(String)

    public var description: String {
        switch self {
        case .store(let e): "\(e)"
        case .manifest(let e): "\(e)"
        case .conflict(let l): "another writer committed \(l) first"
        case .damagedObject(let l, let k, let r): "\(l)/\(k) is damaged (\(r))"
        case .missingObject(let l, let k): "the index at \(l) names \(k), which is not in the store"
        case .unstable(let l, let n): "the index at \(l) changed \(n) times while it was being downloaded"
        case .file(let s): s
        }
    }
}
