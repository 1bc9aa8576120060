import Foundation
import KBObjectStore
import KBRemoteIndex

/// `kbindex build FOLDER --index s3://bucket/prefix`: the normal build, run on a local
/// staging folder that mirrors the remote index. Under the staging folder's lock, pulls the
/// current generation into it, runs the build there (incremental, with its checkpoints and
/// compaction, exactly as for a local folder), then pushes the result with the pulled
/// generation as base: only new files are uploaded, and the manifest is committed only if
/// no other build committed since. The staging folder persists in the cache, so an
/// interrupted build resumes from its checkpoint, and a push that failed is retried by the
/// next build.
enum S3Build {
    /// Runs `build` on the staging folder of `option` between a pull and a push; prints
    /// what was uploaded unless `summary` is false. With `fresh` (a `--rebuild`, a merge
    /// `--replace`: the current generation is replaced, not updated) nothing is downloaded:
    /// only the manifest's ETag is read, as the base of the conditional commit, so a damaged
    /// or huge current generation is no obstacle to writing a new one.
    static func run(location option: String, quiet: Bool, summary: Bool = true, fresh: Bool = false, build: (URL) throws -> Void) throws {
        let (remote, cache) = try S3IndexOption.open(option)
        let location = remote.location
        let staging = cache.build
        let lock: MirrorLock?
        do { lock = try MirrorLock.tryAcquire(staging) } catch { throw S3IndexOption.failure(error, location: location) }
        guard let lock else {
            throw CLIError("another kbindex build on this machine is writing \(location) (staging folder \(staging.path)); wait for it to finish")
        }
        defer { lock.unlock() }

        let bound = try S3IndexOption.sizeBound()
        let start = Date()
        var base: String?
        if fresh {
            do {
                base = try remote.store.head(RemoteIndex.manifestKey)?.etag
            } catch let e as ObjectStoreError {
                throw S3IndexOption.failure(RemoteIndexError.store(e), location: location)
            }
        } else {
            let pulled: PullResult
            do {
                pulled = try transfer("downloading \(location)", quiet: quiet) { progress in
                    // Files of other generations in the staging folder (a lost race's, an older
                    // generation's) would be a build's strays: only the current one is kept.
                    try remote.pull(into: staging, sizeBound: bound, keepOlderGenerations: false, holding: lock, progress: progress)
                }
            } catch { throw S3IndexOption.failure(error, location: location) }
            if !quiet && pulled.downloadedFiles > 0 {
                note("downloaded \(Format.counted(pulled.downloadedFiles, "file")) (\(Format.bytes(Int(pulled.downloadedBytes)))) of \(location) in \(Format.duration(Date().timeIntervalSince(start))) to build on")
            }
            base = pulled.etag
        }

        try build(staging)

        let pushStart = Date()
        let pushed: PushResult
        do {
            pushed = try transfer("uploading to \(location)", quiet: quiet) { progress in
                try remote.push(from: staging, base: base, holding: lock, progress: progress)
            }
        } catch { throw S3IndexOption.failure(error, location: location) }
        guard summary else { return }
        if pushed.committed {
            let again = pushed.alreadyStoredFiles > 0 ? ", \(Format.counted(pushed.alreadyStoredFiles, "file")) already there from an earlier try" : ""
            print("uploaded \(Format.counted(pushed.uploadedFiles, "file")) (\(Format.bytes(Int(pushed.uploadedBytes)))) to \(location) in \(Format.duration(Date().timeIntervalSince(pushStart)))\(again); committed the new index there")
        } else {
            print("\(location) is up to date: nothing to upload")
        }
    }

    /// Runs a pull or push with a progress line on stderr (files and bytes done).
    private static func transfer<T>(_ what: String, quiet: Bool, _ body: (@escaping @Sendable (TransferProgress) -> Void) throws -> T) throws -> T {
        let line = ProgressLine(quiet: quiet)
        let latest = LatestProgress()
        line.start {
            guard let p = latest.value, p.files > 0 else { return nil }
            return "\(what): \(p.filesDone)/\(Format.counted(p.files, "file")), \(Format.bytes(Int(p.bytesDone))) of \(Format.bytes(Int(p.bytes)))"
        }
        defer { line.stop() }
        return try body { p in
            latest.value = p
            line.step()
        }
    }
}

private final class LatestProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var v: TransferProgress?
    var value: TransferProgress? {
        get { lock.withLock { v } }
        set { lock.withLock { v = newValue } }
    }
}
