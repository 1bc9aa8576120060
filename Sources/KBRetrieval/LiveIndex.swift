import Foundation
import KBFormat
import KBSearch

/// A served index: its current `Searcher`, replaced when a build or compaction commits a new
/// manifest. Readers take the current searcher and keep it for the whole request, so a
/// reload never changes an answer half-way, and the old generation's segments are unmapped
/// when its last reader lets go (ARC).
final class LiveIndex: @unchecked Sendable {
    let name: String
    let url: URL
    private let lock = NSLock()
    /// Held for a whole check, so two checks never open the same new generation twice.
    private let reloading = NSLock()
    private var searcher: Searcher
    private var signature: ManifestSignature?
    private var lastFailure: String?

    init(name: String, index: IndexDirectory) {
        self.name = name
        self.url = index.url
        self.searcher = Searcher(index: index, name: name, generation: 1)
        self.signature = ManifestSignature(url)
        searcher.warm()
    }

    /// The searcher requests should use now. O(1).
    var current: Searcher { lock.withLock { searcher } }

    /// What happened at a check.
    enum Reload {
        case unchanged
        case reloaded(generation: Int)
        /// The manifest changed but the new index cannot be served; the old one stays.
        case failed(String)
    }

    /// Opens the index again when its manifest was replaced since the last check (another
    /// inode, size or mtime), keeping the old generation when the new one cannot be opened
    /// or was built with a model other than `model`. A failure is reported once per distinct
    /// message and retried at every check. O(1) when unchanged (one `stat`), else an opening.
    /// The new generation is warmed (`Searcher.warm`) before it is served, so no request
    /// pays for its BM25 statistics.
    func reloadIfChanged(model: ModelDescriptor) -> Reload {
        reloading.withLock { check(model: model) }
    }

    private func check(model: ModelDescriptor) -> Reload {
        let now = ManifestSignature(url)
        let (old, previous) = lock.withLock { (signature, searcher) }
        guard let now, now != old else { return .unchanged }
        let failure: String
        do {
            let index = try IndexDirectory(url: url)
            if let reason = index.manifest.model.incompatibility(with: model) {
                failure = "the rebuilt index is not compatible with the served model: \(reason)"
            } else {
                let next = Searcher(index: index, name: name, generation: previous.generation + 1)
                next.warm()
                lock.withLock {
                    searcher = next
                    signature = now
                    lastFailure = nil
                }
                return .reloaded(generation: next.generation)
            }
        } catch {
            failure = "\(error)"
        }
        let isNew = lock.withLock { () -> Bool in
            defer { lastFailure = failure }
            return lastFailure != failure
        }
        return isNew ? .failed(failure) : .unchanged
    }
}

/// What identifies one written manifest: a build or compaction replaces it by renaming a new
/// file over it, so its inode changes even when size and mtime do not.
struct ManifestSignature: Equatable {
    let inode: UInt64
    let size: UInt64
    let modified: Date

    /// The signature of `dir`'s manifest; nil when it cannot be read.
    init?(_ dir: URL) {
        guard let a = try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(Manifest.fileName).path),
              let inode = (a[.systemFileNumber] as? NSNumber)?.uint64Value,
              let size = (a[.size] as? NSNumber)?.uint64Value,
              let modified = a[.modificationDate] as? Date else { return nil }
        self.inode = inode
        self.size = size
        self.modified = modified
    }
}
