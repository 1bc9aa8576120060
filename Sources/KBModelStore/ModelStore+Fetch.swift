#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import KBCore
import KBHTTP

/// What happened to one file during `ModelStore.fetch`.
public enum FetchOutcome: Sendable, Equatable {
    /// Downloaded and matched its checksum; `method` says which one ("pinned sha256",
    /// "sha256 from X-Linked-Etag", "git blob sha1 from ETag").
    case verified(method: String)
    /// Downloaded, but the server gave no usable checksum and none is pinned.
    case notVerified
    /// Already downloaded and verified by an earlier, interrupted fetch.
    case reused
    /// An optional file the hub does not have (404).
    case absent
}

/// Progress of `ModelStore.fetch`, reported on the calling thread.
public enum FetchEvent: Sendable, Equatable {
    /// A file's download begins.
    case started(file: String, url: URL)
    /// Bytes received so far for `file`, and its total when known.
    case progress(file: String, received: Int64, total: Int64?)
    /// A file is done (or skipped).
    case finished(file: String, outcome: FetchOutcome)
}

extension ModelStore {
    /// Downloads a model from the hub, verifies every file and installs it at
    /// `root/NAME` atomically.
    ///
    /// - Parameters:
    ///   - model: a short name from `knownModels` (`all-MiniLM-L6-v2`) or a hub id
    ///     (`owner/repo`; a known model's hub id gets its pinned hashes).
    ///   - endpoint: the hub, `https://huggingface.co` by default (`$HF_ENDPOINT`).
    ///     Files are fetched from `{endpoint}/{repo}/resolve/main/{file}`.
    ///   - nameOverride: the folder name to install as (default: the known name, else
    ///     the repo part of the hub id).
    ///   - progress: receives `FetchEvent`s.
    /// - Returns: the installed folder, `root/NAME`.
    /// - Throws: `ModelStoreError`: `.hubUnreachable` (with advice for offline machines),
    ///   `.downloadFailed`, `.checksumMismatch` (naming the file and both hashes), ...
    ///   On error `root/NAME` is untouched; verified files stay in `root/.NAME.partial/`
    ///   and a rerun reuses them.
    @discardableResult
    public func fetch(
        _ model: String,
        endpoint: URL = ModelStore.defaultEndpoint(),
        as nameOverride: String? = nil,
        progress: ((FetchEvent) -> Void)? = nil
    ) throws -> URL {
        var spec: KnownModel
        if let known = knownModel(named: model) {
            spec = known
        } else if Self.isHubID(model) {
            spec = .hub(repo: model)
        } else {
            throw ModelStoreError.unknownModel(model, known: knownModels.map(\.name))
        }
        if let nameOverride { spec = KnownModel(name: nameOverride, repo: spec.repo, files: spec.files) }
        guard Self.isValidName(spec.name) else { throw ModelStoreError.invalidName(spec.name) }

        let fm = FileManager.default
        let staging = root.appendingPathComponent(".\(spec.name).partial", isDirectory: true)
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.fileSystem("cannot create \(staging.path): \(error.localizedDescription)")
        }

        do {
            for file in spec.files {
                try fetchFile(file, repo: spec.repo, endpoint: endpoint, staging: staging, progress: progress)
            }
        } catch {
            // Keep verified files for the rerun, but do not litter the store with an
            // empty staging folder (e.g. when the hub was unreachable).
            if Self.totalFiles(in: staging.path) == 0 { try? fm.removeItem(at: staging) }
            throw error
        }
        let missing = Self.missingFiles(in: staging)
        guard missing.isEmpty else {
            // Only possible with a custom file table that omits a required file.
            throw ModelStoreError.downloadFailed(file: missing[0], detail: "not in the file list of \(spec.repo)")
        }
        // Where the files came from: decides which pinned sums `check` holds them to, and
        // what to fetch to repair them.
        do {
            let source = try JSONSerialization.data(withJSONObject: ["repo": spec.repo], options: [.sortedKeys])
            try AtomicFile.write(source, to: staging.appendingPathComponent(Self.sourceFileName).path)
        } catch {
            throw ModelStoreError.fileSystem("cannot write \(staging.appendingPathComponent(Self.sourceFileName).path): \(error)")
        }
        return try install(staging: staging, name: spec.name)
    }

    /// Downloads one file into `staging/FILE` via `FILE.part`, unless a verified copy is
    /// already there.
    private func fetchFile(
        _ file: ModelFile, repo: String, endpoint: URL, staging: URL, progress: ((FetchEvent) -> Void)?
    ) throws {
        let dest = staging.appendingPathComponent(file.path)
        let part = dest.path + ".part"
        if Self.isRegularFile(dest.path) {
            // Files reach their final name only after verification; re-check pinned ones
            // (cheap) in case the pin changed since.
            if let pinned = file.sha256, (try? Hashing.sha256Hex(ofFile: dest.path)) != pinned {
                unlink(dest.path)
            } else {
                progress?(.finished(file: file.path, outcome: .reused))
                return
            }
        }
        try? FileManager.default.createDirectory(at: dest.deletingLastPathComponent(), withIntermediateDirectories: true)

        let url = Self.resolveURL(endpoint: endpoint, repo: repo, file: file.path)
        progress?(.started(file: file.path, url: url))
        let response: HTTPResponse
        do {
            response = try client.download(url: url, to: part) { received, total in
                progress?(.progress(file: file.path, received: received, total: total))
            }
        } catch let error as HTTPError {
            unlink(part)
            if case .status(404, _) = error, !file.required {
                progress?(.finished(file: file.path, outcome: .absent))
                return
            }
            if case let .couldNotConnect(_, detail) = error {
                throw ModelStoreError.hubUnreachable(endpoint: Self.displayEndpoint(endpoint), detail: detail)
            }
            throw ModelStoreError.downloadFailed(file: file.path, detail: error.description)
        }

        if let linkedSize = response.firstHeader("X-Linked-Size").flatMap({ Int64($0) }), linkedSize != response.bodyBytes {
            unlink(part)
            throw ModelStoreError.downloadFailed(
                file: file.path, detail: "got \(response.bodyBytes) bytes, the hub announced \(linkedSize)")
        }

        let outcome: FetchOutcome
        if let (algorithm, method, expected) = Self.expectedChecksum(file: file, response: response) {
            let actual: String
            do {
                if algorithm == "sha256" {
                    actual = try Hashing.sha256Hex(ofFile: part)
                } else {
                    let mapped = try MappedFile(path: part)
                    actual = withExtendedLifetime(mapped) { Hashing.gitBlobSHA1Hex(mapped.bytes) }
                }
            } catch {
                unlink(part)
                throw ModelStoreError.fileSystem("\(error)")
            }
            guard actual == expected else {
                unlink(part)
                throw ModelStoreError.checksumMismatch(file: file.path, algorithm: algorithm, expected: expected, actual: actual)
            }
            outcome = .verified(method: method)
        } else {
            outcome = .notVerified
        }
        do {
            try AtomicFile.sync(path: part)
            try AtomicFile.rename(part, over: dest.path)
        } catch {
            unlink(part)
            throw ModelStoreError.fileSystem("\(error)")
        }
        progress?(.finished(file: file.path, outcome: outcome))
    }

    /// Moves the complete staging folder to `root/NAME`, replacing an older copy.
    private func install(staging: URL, name: String) throws -> URL {
        let final = directory(for: name)
        var old: String? = nil
        if FileManager.default.fileExists(atPath: final.path) {
            let aside = root.appendingPathComponent(".\(name).old-\(getpid())").path
            try? FileManager.default.removeItem(atPath: aside)
            do { try AtomicFile.rename(final.path, over: aside) } catch { throw ModelStoreError.fileSystem("\(error)") }
            old = aside
        }
        do {
            try AtomicFile.rename(staging.path, over: final.path)
        } catch {
            if let old { _ = Glibc.rename(old, final.path) }
            throw ModelStoreError.fileSystem("\(error)")
        }
        if let old { try? FileManager.default.removeItem(atPath: old) }
        return final
    }

    /// `{endpoint}/{repo}/resolve/main/{file}`.
    public static func resolveURL(endpoint: URL, repo: String, file: String) -> URL {
        var base = endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        return URL(string: "\(base)/\(repo)/resolve/main/\(file)")!
    }

    /// The checksum a download must match: the pinned SHA-256, else the hub's
    /// `X-Linked-Etag` (SHA-256 of an LFS file), else an `ETag` that is a git blob SHA-1
    /// (or a SHA-256). Returns (algorithm, how it was found, hex) or nil.
    static func expectedChecksum(file: ModelFile, response: HTTPResponse) -> (String, String, String)? {
        if let pinned = file.sha256 { return ("sha256", "pinned sha256", pinned.lowercased()) }
        if let linked = response.firstHeader("X-Linked-Etag").map(cleanETag), isHex(linked, count: 64) {
            return ("sha256", "sha256 from X-Linked-Etag", linked)
        }
        for hop in response.hops {
            guard let etag = hop.headers["ETag"].map(cleanETag) else { continue }
            if isHex(etag, count: 40) { return ("git-blob-sha1", "git blob sha1 from ETag", etag) }
            if isHex(etag, count: 64) { return ("sha256", "sha256 from ETag", etag) }
        }
        return nil
    }

    static func cleanETag(_ raw: String) -> String {
        var s = raw.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("W/") { s.removeFirst(2) }
        return s.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
    }

    static func isHex(_ s: String, count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// `owner/repo` with both parts non-empty and no further slashes.
    static func isHubID(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && !$0.hasPrefix(".") }
    }

    static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && !s.hasPrefix(".") && !s.contains("/") && s.utf8.allSatisfy { $0 > 32 && $0 != 127 }
    }

    static func totalFiles(in folder: String) -> Int {
        guard let e = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var n = 0
        while let rel = e.nextObject() as? String {
            if isRegularFile((folder as NSString).appendingPathComponent(rel)) { n += 1 }
        }
        return n
    }

    static func displayEndpoint(_ endpoint: URL) -> String {
        var s = endpoint.absoluteString
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
