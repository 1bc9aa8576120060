#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import KBCore
import KBHTTP

/// A model folder found in the store.
public struct InstalledModel: Sendable, Equatable {
    /// The folder name (`all-MiniLM-L6-v2`).
    public let name: String
    /// The folder.
    public let path: URL
    /// Total size of the model's files in the folder, in bytes.
    public let size: Int64
    /// True when every required file (`KnownModel.requiredFiles`) is present.
    public var isComplete: Bool { missingFiles.isEmpty }
    /// Required files that are absent.
    public let missingFiles: [String]
}

/// The local store of embedding models: one folder per model under `root`, each in the
/// Hugging Face layout (`config.json`, `model.safetensors`, `vocab.txt`, ...).
///
/// ```swift
/// let store = ModelStore()                       // $KBINDEX_MODEL_DIR or ~/.cache/kbindex/models
/// let folder = try store.resolve(nil)            // the default model, or ModelStoreError.notInstalled
/// try store.fetch("all-MiniLM-L6-v2")            // download, verify, install atomically
/// ```
///
/// Fetching stages files in `root/.NAME.partial/` and renames that folder to `root/NAME`
/// only when every file is verified, so `root/NAME` is either absent or complete.
public struct ModelStore: Sendable {
    /// The folder holding one subfolder per model.
    public let root: URL
    /// The models fetchable by short name (and whose pinned hashes apply).
    public let knownModels: [KnownModel]
    /// The model `resolve(nil)` returns.
    public let defaultModelName: String
    /// The HTTP client used by `fetch`.
    public var client: HTTPClient

    /// The public hub.
    public static let huggingFaceEndpoint = URL(string: "https://huggingface.co")!

    /// - Parameters:
    ///   - root: the store folder; defaults to `defaultRoot()`.
    ///   - knownModels: the short-name table; defaults to `KnownModel.builtIn`.
    public init(
        root: URL = ModelStore.defaultRoot(),
        knownModels: [KnownModel] = KnownModel.builtIn,
        defaultModelName: String = KnownModel.defaultName,
        client: HTTPClient = HTTPClient()
    ) {
        self.root = root
        self.knownModels = knownModels
        self.defaultModelName = defaultModelName
        self.client = client
    }

    /// The store folder: `$KBINDEX_MODEL_DIR` if set, else `$XDG_CACHE_HOME/kbindex/models`
    /// if set, else `~/.cache/kbindex/models` (`$HOME`, else the user's home folder).
    public static func defaultRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["KBINDEX_MODEL_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir, isDirectory: true)
        }
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty {
            return URL(fileURLWithPath: cache, isDirectory: true).appendingPathComponent("kbindex/models", isDirectory: true)
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache/kbindex/models", isDirectory: true)
    }

    /// The hub to fetch from: `$HF_ENDPOINT` if set, else `https://huggingface.co`.
    public static func defaultEndpoint(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let e = environment["HF_ENDPOINT"], !e.isEmpty, let url = URL(string: e) { return url }
        return huggingFaceEndpoint
    }

    /// `root/name` (whether or not it exists).
    public func directory(for name: String) -> URL {
        root.appendingPathComponent(name, isDirectory: true)
    }

    /// The known model called `name`, or whose hub id is `name`.
    public func knownModel(named name: String) -> KnownModel? {
        knownModels.first { $0.name == name } ?? knownModels.first { $0.repo == name }
    }

    /// Required files missing from a model folder (all of them when it does not exist).
    public static func missingFiles(in folder: URL) -> [String] {
        KnownModel.requiredFiles.filter { !isRegularFile(folder.appendingPathComponent($0).path) }
    }

    /// True when `root/name` holds every required file.
    public func isInstalled(_ name: String) -> Bool {
        Self.isDirectory(directory(for: name).path) && Self.missingFiles(in: directory(for: name)).isEmpty
    }

    /// The model folders in the store, by name. Hidden entries (staging folders of
    /// fetches in progress or interrupted) are left out; incomplete folders are listed
    /// with `isComplete == false`.
    public func installedModels() -> [InstalledModel] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && Self.isDirectory(directory(for: $0).path) }.sorted().map { name in
            let dir = directory(for: name)
            return InstalledModel(name: name, path: dir, size: Self.totalSize(of: dir.path), missingFiles: Self.missingFiles(in: dir))
        }
    }

    /// The folder of the model that `--model` names.
    ///
    /// - nil: the default model in the store.
    /// - a value containing `/`, or naming an existing folder: that folder (a hub id such as
    ///   `sentence-transformers/all-MiniLM-L6-v2` that is not a folder is looked up in the
    ///   store by its name).
    /// - anything else: the model of that name in the store.
    ///
    /// - Throws: `ModelStoreError.notInstalled(name)` when the store has no complete model of
    ///   that name; `.notAFolder(path)` for a path that is not a folder.
    public func resolve(_ modelOption: String?) throws -> URL {
        guard let option = modelOption, !option.isEmpty else {
            return try installed(defaultModelName)
        }
        let expanded = (option as NSString).expandingTildeInPath
        if option.contains("/") || Self.isDirectory(expanded) {
            let folder = URL(fileURLWithPath: expanded, isDirectory: true).standardizedFileURL
            if Self.isDirectory(folder.path) { return folder }
            let parts = option.split(separator: "/", omittingEmptySubsequences: false)
            if parts.count == 2, !option.hasPrefix("."), !option.hasPrefix("~"), parts.allSatisfy({ !$0.isEmpty }) {
                return try installed(knownModel(named: option)?.name ?? String(parts[1]))
            }
            throw ModelStoreError.notAFolder(folder.path)
        }
        return try installed(option)
    }

    private func installed(_ name: String) throws -> URL {
        guard isInstalled(name) else { throw ModelStoreError.notInstalled(name) }
        return directory(for: name)
    }

    // MARK: - file helpers

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    static func totalSize(of folder: String) -> Int64 {
        guard let e = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var total: Int64 = 0
        while let rel = e.nextObject() as? String {
            let p = (folder as NSString).appendingPathComponent(rel)
            // kbindex's own bookkeeping (the check cache, the source record) is not the model.
            if [FileCheckCache.fileName, sourceFileName].contains((rel as NSString).lastPathComponent) { continue }
            if isRegularFile(p) { total += fileSize(p) ?? 0 }
        }
        return total
    }
}
