import Foundation
import KBCore

/// Checking an installed model's files without loading it: are they the files that were
/// fetched? A flipped byte in the weights otherwise surfaces as NaN vectors, and a cut
/// `vocab.txt` as silently worse search.
extension ModelStore {
    /// The file, in a model folder, that records where `fetch` got the model (`{"repo": "owner/name"}`).
    public static let sourceFileName = ".kbindex-source"

    /// The hub repository the store folder `name` was fetched from, when `fetch` recorded it
    /// (folders installed otherwise, e.g. by scripts/install-model.sh, have no record).
    public func source(of name: String) -> String? {
        let url = directory(for: name).appendingPathComponent(Self.sourceFileName)
        guard let data = FileManager.default.contents(atPath: url.path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return obj["repo"] as? String
    }

    /// The known model whose pinned SHA-256 sums the store folder `name` must match: the
    /// known model of the repository it was fetched from, or, without a record, the known
    /// model of that name. Nil when no pinned sums apply (another model installed under a
    /// known name with `fetch --name` is not held to the known model's sums).
    public func pinnedModel(for name: String) -> KnownModel? {
        let candidate: KnownModel?
        if let repo = source(of: name) {
            candidate = knownModels.first { $0.repo == repo }
        } else {
            candidate = knownModels.first { $0.name == name }
        }
        guard let candidate, candidate.files.contains(where: { $0.sha256 != nil }) else { return nil }
        return candidate
    }

    /// The store name of `folder` when it is a model folder of this store, else nil.
    public func storeName(of folder: URL) -> String? {
        let dir = folder.standardizedFileURL.resolvingSymlinksInPath()
        let name = dir.lastPathComponent
        guard !name.hasPrefix("."), !name.isEmpty,
              directory(for: name).standardizedFileURL.resolvingSymlinksInPath().path == dir.path else { return nil }
        return name
    }

    /// Checks the store folder `name`: every required file is present, every file with a
    /// pinned SHA-256 (see `pinnedModel(for:)`) matches it, and `model.safetensors` is as
    /// long as its header declares.
    ///
    /// Hashes are cached in the folder (`FileCheckCache`, keyed by each file's size, mtime and
    /// inode), so only the first check after a change reads the files: O(model size) then,
    /// O(files) after. A folder that cannot be written is hashed every time.
    /// - Throws: `ModelStoreError.notInstalled` when files are missing, `.damaged` naming the
    ///   model, the file and what is wrong.
    public func check(_ name: String) throws {
        let dir = directory(for: name)
        guard Self.isDirectory(dir.path), Self.missingFiles(in: dir).isEmpty else { throw ModelStoreError.notInstalled(name) }
        let weights = dir.appendingPathComponent("model.safetensors").path
        if let problem = Self.safetensorsProblem(weights) {
            throw ModelStoreError.damaged(model: name, file: "model.safetensors", reason: problem)
        }
        guard let known = pinnedModel(for: name) else { return }
        let cache = FileCheckCache(folder: dir)
        // The weights last: the small files fail fast, and usually all are cached anyway.
        let pinned = known.files.filter { $0.sha256 != nil }.sorted { ($0.path == "model.safetensors" ? 1 : 0) < ($1.path == "model.safetensors" ? 1 : 0) }
        for file in pinned {
            let path = dir.appendingPathComponent(file.path).path
            guard Self.isRegularFile(path) else { continue }  // an absent optional file; required ones were checked
            let actual: String
            do { actual = try cache.sha256(ofFile: path) } catch {
                throw ModelStoreError.damaged(model: name, file: file.path, reason: "cannot read it (\(error))")
            }
            let expected = file.sha256!.lowercased()
            if actual != expected {
                throw ModelStoreError.damaged(model: name, file: file.path,
                                              reason: "its SHA-256 is \(actual), not the pinned \(expected)")
            }
        }
    }

    /// Checks a folder that `resolve` returned: a folder of this store is checked with
    /// `check(_:)`; any other folder has nothing to compare with and passes.
    public func check(folder: URL) throws {
        if let name = storeName(of: folder) { try check(name) }
    }

    /// Why a safetensors file is unusable judged by its header alone, or nil: the 8-byte
    /// header length and the JSON header are readable, and the file is at least as long as
    /// the largest `data_offsets` end the header declares. O(header), the data is not read.
    static func safetensorsProblem(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "cannot open it" }
        defer { try? handle.close() }
        guard let size = fileSize(path) else { return "cannot read its size" }
        guard let prefix = try? handle.read(upToCount: 8), prefix.count == 8 else {
            return "it is \(Self.bytes(size)), too short for a safetensors header (truncated?)"
        }
        var n: UInt64 = 0
        for (i, b) in prefix.enumerated() { n |= UInt64(b) << (8 * UInt64(i)) }
        guard n >= 2, n <= 100_000_000, Int64(n) <= size - 8 else {
            return "it is \(Self.bytes(size)), its header length \(n) does not fit (truncated, or not a safetensors file)"
        }
        guard let headerData = try? handle.read(upToCount: Int(n)), headerData.count == Int(n),
              let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            return "its header is not JSON (not a safetensors file, or damaged)"
        }
        var end: Int64 = 0
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let e = (offsets[1] as? NSNumber)?.int64Value else { return "its header entry '\(name)' lacks data_offsets" }
            // A damaged header can declare any 64-bit offset: compare without adding to it.
            guard e >= 0, e <= Int64.max - 8 - Int64(n) else {
                return "its header entry '\(name)' declares data up to byte \(e), past any file (damaged)"
            }
            end = max(end, e)
        }
        let declared = 8 + Int64(n) + end
        if size < declared {
            return "it is \(Self.bytes(size)) but its header declares \(Self.bytes(declared)) (truncated)"
        }
        return nil
    }

    /// `1234567 bytes`, exact, so two sizes that differ are never printed alike.
    static func bytes(_ n: Int64) -> String { "\(n) bytes" }
}
