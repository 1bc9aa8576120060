import Foundation
import KBCore
import KBFormat
import KBObjectStore
import KBRemoteIndex

/// `--index s3://bucket/prefix`: the store from the environment's credentials, the local
/// cache folders, and the advice each failure gets. The behaviour is KBRemoteIndex's; this
/// only connects it to the commands and words its errors for a user.
enum S3IndexOption {
    /// Whether an `--index` value names object storage.
    static func isRemote(_ option: String?) -> Bool { option?.lowercased().hasPrefix("s3://") == true }

    /// The endpoint the environment names ("" for AWS), for the cache folder's name only
    /// (needs no credentials).
    static func endpoint(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        for name in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
            if let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty { return v }
        }
        return ""
    }

    /// The location parsed, as a usage-free `CLIError` when it is not one.
    static func location(_ option: String) throws -> S3Location {
        do { return try S3Location(parsing: option) } catch { throw CLIError(error) }
    }

    /// The cache folders of `option` (no network, no credentials).
    static func cache(_ option: String) throws -> RemoteIndexCache {
        RemoteIndexCache(location: try location(option).description, endpoint: endpoint(), root: RemoteIndexCache.root())
    }

    /// The remote index at `option`, with credentials from the environment.
    static func open(_ option: String) throws -> (index: RemoteIndex, cache: RemoteIndexCache) {
        let location = try location(option)
        let configuration: S3Configuration
        do { configuration = try S3Configuration.fromEnvironment() } catch {
            throw failure(RemoteIndexError.store(error as? ObjectStoreError ?? .missingCredentials("\(error)")), location: location.description)
        }
        let store = S3Store(location, configuration: configuration)
        return (RemoteIndex(store: store), try cache(option))
    }

    /// The size bound of a cache folder (`KBINDEX_CACHE_SIZE`).
    static func sizeBound() throws -> Int64 {
        do { return try RemoteIndexCache.sizeBound() } catch { throw CLIError(error) }
    }

    /// Pulls the current generation of `option` into its readers' mirror and returns the
    /// mirror's path, for a command that then opens it as a local index (query, info, verify,
    /// serve, mcp). A cold start (something downloaded) is noted on stderr unless `quiet`.
    static func pullForReading(_ option: String, quiet: Bool) throws -> URL {
        let (index, cache) = try open(option)
        let bound = try sizeBound()
        let start = Date()
        let result: PullResult
        do { result = try index.pull(into: cache.index, sizeBound: bound) } catch {
            // The store cannot be reached: a generation already in the cache still answers
            // (as serve keeps serving when a poll fails), with a note. Refusals (credentials,
            // a missing bucket, damage) stay errors.
            if case RemoteIndexError.store(let s) = error, s.isUnreachable,
               let cached = try? Manifest.read(from: cache.index.path) {
                note("cannot reach \(index.location) (\(s)); answering from the cached copy of it (built \(cached.createdAt))")
                return cache.index
            }
            throw failure(error, location: index.location)
        }
        guard result.generation != nil else {
            throw CLIError("no index at \(index.location): build one with 'kbindex build FOLDER --index \(index.location)'")
        }
        if !quiet {
            if result.downloadedFiles > 0 {
                note("downloaded \(Format.counted(result.downloadedFiles, "file")) (\(Format.bytes(Int(result.downloadedBytes)))) of \(index.location) in \(Format.duration(Date().timeIntervalSince(start)))\(result.reusedFiles > 0 ? ", \(Format.counted(result.reusedFiles, "file")) already cached" : "") into \(cache.index.path)")
            }
            if result.overSizeBound { note(overBound(result, bound)) }
        }
        return cache.index
    }

    static func overBound(_ r: PullResult, _ bound: Int64) -> String {
        "the index (\(Format.bytes(Int(r.generationBytes)))) is larger than the cache size bound (\(Format.bytes(Int(bound)))); it is kept whole (KBINDEX_CACHE_SIZE sets the bound)"
    }

    /// A remote index failure as a `CLIError` with what to do.
    static func failure(_ error: Error, location: String) -> CLIError {
        guard let e = error as? RemoteIndexError else { return error as? CLIError ?? CLIError(error) }
        switch e {
        case .store(let s):
            switch s {
            case .missingCredentials(let m):
                return CLIError("\(m); for a store other than AWS S3 also set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:9000)")
            case .noSuchBucket:
                return CLIError("\(s): create it first, or check the bucket name in \(location) and AWS_ENDPOINT_URL")
            case .accessDenied:
                return CLIError("\(s): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and the permissions on \(location)")
            case .transport, .throttled:
                return CLIError("\(s) (\(location)): check the network and AWS_ENDPOINT_URL, then run the command again")
            default:
                return CLIError("\(s) (\(location))")
            }
        case .conflict:
            return CLIError("another build committed \(location) first; run the build again: it continues from that index")
        case .damagedObject, .missingObject:
            return CLIError("\(e): nothing damaged was kept; run the command again, and if it fails the same way, 'kbindex build FOLDER --index \(location) --rebuild' writes the index anew")
        case .unstable:
            return CLIError("\(e): run the command again")
        case .manifest, .file:
            return CLIError(e)
        }
    }
}

extension S3IndexOption {
    /// The local index folder for an `--index` value: for s3://…, the readers' mirror after a
    /// pull (`pullForReading`); anything else unchanged.
    static func localIndex(_ option: String?, quiet: Bool = false) throws -> String? {
        guard let option, isRemote(option) else { return option }
        return try pullForReading(option, quiet: quiet).path
    }
}

extension ObjectStoreError {
    /// The store could not be reached or kept throttling: not a refusal.
    var isUnreachable: Bool {
        switch self {
        case .transport, .throttled: true
        default: false
        }
    }
}
