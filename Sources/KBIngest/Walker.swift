import Foundation
import KBCore

/// Walks a folder and picks the files to index (see `IngestOptions`, `SkipReason`).
///
/// Rules, in order, for each entry: hidden names (leading '.'), `node_modules` and `.git`
/// are never used; `.gitignore` files at every level (and `.git/info/exclude` at the root)
/// are honoured; symbolic links are followed as `IngestOptions.symlinks` says; then
/// `include`, `exclude`, the file type, the size limit, readability, binary content (NUL in
/// the first 8 KiB, after decoding UTF-16/UTF-32 when a byte-order mark announces it) and
/// emptiness (only whitespace). Names are kept as the system's bytes, so a name that is not
/// valid UTF-8 is read like any other (see `SourceFile.relativePath`). A file reached twice
/// through a symbolic link is taken once, under the path without a link if there is one
/// (hard links are separate files to the walk: each is taken).
public struct Walker: Sendable {
    /// The folder walked.
    public let root: URL
    /// The options in force.
    public let options: IngestOptions

    private static let neverEntered: Set<String> = ["node_modules", ".git"]
    private static let sniffSize = 8 << 10
    /// Average line length (bytes, over the first 8 KiB) above which a code file counts as
    /// minified: GitHub Linguist's threshold for minified JavaScript and CSS.
    public static let minifiedLineLength = 110

    /// The version of the rules by which a walk selects files (.gitignore handling, hidden
    /// and never-entered names, glob semantics, the checks on a file's type and content,
    /// `minifiedLineLength`, links). Raise it with any change to them that can select other
    /// files for the same folder and options: it is part of a shard's selection fingerprint
    /// (`ShardSpec.selectionFingerprint`), so shards walked by two rule sets are not merged.
    public static let rulesVersion = 1

    /// A walker over `root` (not touched until `walk`).
    public init(root: URL, options: IngestOptions) {
        self.root = root
        self.options = options
    }

    /// The error `walk` throws (kept under its old name).
    public typealias RootError = IngestError

    /// Files to index in a deterministic order (sorted by relative path). Never throws for a
    /// bad file or folder: reports it as an event and goes on. Throws `IngestError` only when
    /// root itself is not a readable folder, or when an `include`/`exclude` glob is invalid
    /// (`Glob(validating:)`).
    public func walk(events: (WalkEvent) -> Void) throws(IngestError) -> [SourceFile] {
        let include = try options.include.map { g throws(IngestError) in try PathPattern(validating: g) }
        let exclude = try options.exclude.map { g throws(IngestError) in try PathPattern(validating: g) }
        let rootPath = root.standardizedFileURL.path
        let rootBytes = NativePath(rootPath)
        let status: FileStatus
        do { status = try FileStatus.of(rootBytes) } catch {
            throw IngestError("cannot index \(rootPath): \(error)")
        }
        guard status.kind == .directory else {
            throw IngestError("cannot index \(rootPath): not a folder")
        }
        let names: [[UInt8]]
        let realRoot: NativePath
        do {
            names = try DirectoryListing.entries(in: rootBytes)
            realRoot = try rootBytes.resolved()
        } catch {
            throw IngestError("cannot index \(rootPath): \(error)")
        }
        return withoutActuallyEscaping(events) { events in
            var state = State(events: events, realRoot: realRoot)
            state.include = include
            state.exclude = exclude
            return walk(root: rootBytes, status: status, names: names, state: &state)
        }
    }

    private func walk(root rootPath: NativePath, status: FileStatus, names: [[UInt8]], state: inout State) -> [SourceFile] {
        for dir in options.excludedDirectories {
            if let s = try? FileStatus.of(dir) { state.excluded.insert(Identity(s)) }
        }
        var stack = GitignoreStack()
        if let text = try? FileReader.read(rootPath.appending(Array(".git/info/exclude".utf8)), limit: 1 << 20) {
            stack.files.append(GitignoreFile(base: "", text: String(decoding: text, as: UTF8.self)))
        }
        walkDirectory(path: rootPath, relative: "", names: names, ancestors: [Identity(status)], viaLink: false,
                      gitignore: stack, state: &state)
        return Walker.takeOnce(state.found, events: state.events)
    }

    private struct Identity: Hashable { let device: UInt64, inode: UInt64
        init(_ s: FileStatus) { device = s.device; inode = s.inode }
    }

    /// A file the walk accepted, before duplicates are removed.
    private struct Found {
        var file: SourceFile
        var identity: Identity
        /// Reached through a symbolic link (the entry itself or a folder on its path).
        var viaLink: Bool
        /// Selected by `IngestOptions.keep` (else found only so that a file reached twice is
        /// taken once as without the predicate, then dropped silently: never read).
        var kept = true
    }

    private struct State {
        let events: (WalkEvent) -> Void
        /// The root with every link resolved: where `.insideRoot` links must stay.
        let realRoot: NativePath
        var found: [Found] = []
        /// Folders entered through a symbolic link: each at most once, so that links fanning
        /// out to the same folders (a → b twice, b → c twice, …) cannot make the walk
        /// exponential. With its own path, a folder is walked at most twice.
        var enteredThroughLinks: Set<Identity> = []
        var excluded: Set<Identity> = []
        var include: [PathPattern] = []
        var exclude: [PathPattern] = []
    }

    /// The files of `found` sorted by relative path (then by real path bytes), each taken
    /// once: a file (device and inode) reached through a symbolic link and also otherwise is
    /// taken where no link led; reached only through links, at its first path. Of files
    /// whose relative paths read the same (names that are not UTF-8), the first by bytes.
    /// The others are reported as `SkipReason.duplicate`. O(n log n).
    private static func takeOnce(_ found: [Found], events: (WalkEvent) -> Void) -> [SourceFile] {
        let sorted = found.map { (path: Array($0.file.relativePath.utf8), found: $0) }.sorted { a, b in
            a.path == b.path ? a.found.file.location.bytes.lexicographicallyPrecedes(b.found.file.location.bytes)
                : a.path.lexicographicallyPrecedes(b.path)
        }.map(\.found)
        // Per identity reached through a link: the path that keeps it.
        var keeper: [Identity: String] = [:]
        let linked = Set(sorted.filter(\.viaLink).map(\.identity))
        for f in sorted where linked.contains(f.identity) && !f.viaLink && keeper[f.identity] == nil {
            keeper[f.identity] = f.file.relativePath
        }
        for f in sorted where linked.contains(f.identity) && keeper[f.identity] == nil {
            keeper[f.identity] = f.file.relativePath
        }
        var out: [SourceFile] = []
        var taken: Set<String> = []
        for f in sorted {
            if let k = keeper[f.identity], f.viaLink, k != f.file.relativePath {
                events(.skipped(path: f.file.relativePath, reason: .duplicate, detail: "the same file as \(k), reached through a symbolic link"))
                continue
            }
            guard taken.insert(f.file.relativePath).inserted else {
                events(.skipped(path: f.file.relativePath, reason: .duplicate,
                                detail: "its name is not valid UTF-8 and reads the same as another file's once decoded"))
                continue
            }
            if f.kept { out.append(f.file) }
        }
        return out
    }

    private func walkDirectory(path: NativePath, relative: String, names: [[UInt8]], ancestors: [Identity], viaLink: Bool,
                               gitignore inherited: GitignoreStack, state: inout State) {
        var gitignore = inherited
        let gitignoreName = Array(".gitignore".utf8)
        if names.contains(gitignoreName) {
            do {
                let data = try FileReader.read(path.appending(gitignoreName), limit: 1 << 20)
                gitignore.files.append(GitignoreFile(base: relative, text: String(decoding: data, as: UTF8.self)))
            } catch {
                state.events(.warning(path: join(relative, ".gitignore"), message: Walker.why(error)))
            }
        }
        for nameBytes in names {
            // Rules and globs see the name as text (lossy for a name that is not UTF-8);
            // the file is opened by its bytes.
            let name = String(decoding: nameBytes, as: UTF8.self)
            let rel = join(relative, name)
            let full = path.appending(nameBytes)
            if nameBytes.first == UInt8(ascii: ".") {
                state.events(.skipped(path: rel, reason: .ignored, detail: "hidden"))
                continue
            }
            if Walker.neverEntered.contains(name) {
                state.events(.skipped(path: rel, reason: .ignored, detail: "\(name) is never entered"))
                continue
            }
            let link: FileStatus
            do { link = try FileStatus.ofLink(full) } catch {
                state.events(.skipped(path: rel, reason: .unreadable, detail: Walker.why(error)))
                continue
            }
            var status = link
            let isLink = link.kind == .symbolicLink
            if isLink {
                guard options.symlinks != .never else {
                    state.events(.skipped(path: rel, reason: .ignored, detail: "symbolic link (links are not followed)"))
                    continue
                }
                do { status = try FileStatus.of(full) } catch {
                    // A cycle of links ("a -> b", "b -> a") never reaches a folder, so the
                    // ancestor check below cannot see it: stat reports ELOOP.
                    let loop = (error as? FileError)?.code == ELOOP
                    state.events(.skipped(path: rel, reason: loop ? .symlinkLoop : .unreadable, detail: Walker.why(error)))
                    continue
                }
                if options.symlinks == .insideRoot {
                    let target: NativePath
                    do { target = try full.resolved() } catch {
                        state.events(.skipped(path: rel, reason: .unreadable, detail: Walker.why(error)))
                        continue
                    }
                    guard target.isInside(state.realRoot) else {
                        state.events(.skipped(path: rel, reason: .linkOutsideFolder, detail: "symbolic link to \(target), outside the folder"))
                        continue
                    }
                }
            }
            switch status.kind {
            case .directory:
                if gitignore.isIgnored(rel, isDirectory: true) {
                    state.events(.skipped(path: rel, reason: .ignored, detail: ".gitignore"))
                    continue
                }
                if state.exclude.contains(where: { $0.coversDirectory(rel) }) {
                    state.events(.skipped(path: rel, reason: .ignored, detail: "exclude"))
                    continue
                }
                let id = Identity(status)
                if state.excluded.contains(id) {
                    state.events(.skipped(path: rel, reason: .ignored, detail: "excluded folder"))
                    continue
                }
                if ancestors.contains(id) {
                    state.events(.skipped(path: rel, reason: .symlinkLoop, detail: "leads back to a folder on its own path"))
                    continue
                }
                if viaLink || isLink, !state.enteredThroughLinks.insert(id).inserted {
                    state.events(.skipped(path: rel, reason: .duplicate, detail: "a folder already walked through another symbolic link"))
                    continue
                }
                let children: [[UInt8]]
                do { children = try DirectoryListing.entries(in: full) } catch {
                    state.events(.skipped(path: rel, reason: .unreadable, detail: Walker.why(error)))
                    continue
                }
                walkDirectory(path: full, relative: rel, names: children, ancestors: ancestors + [id], viaLink: viaLink || isLink,
                              gitignore: gitignore, state: &state)
            case .regular:
                if let (file, kept) = consider(path: full, relative: rel, name: name, status: status, gitignore: gitignore, state: &state) {
                    state.found.append(Found(file: file, identity: Identity(status), viaLink: viaLink || isLink, kept: kept))
                }
            case .symbolicLink, .other:
                state.events(.skipped(path: rel, reason: .unsupportedType, detail: "not a regular file or folder"))
            }
        }
    }

    private func consider(path: NativePath, relative rel: String, name: String, status: FileStatus,
                          gitignore: GitignoreStack, state: inout State) -> (SourceFile, kept: Bool)? {
        func skip(_ reason: SkipReason, _ detail: String?) -> (SourceFile, kept: Bool)? {
            state.events(.skipped(path: rel, reason: reason, detail: detail))
            return nil
        }
        if gitignore.isIgnored(rel, isDirectory: false) { return skip(.ignored, ".gitignore") }
        if !state.include.isEmpty && !state.include.contains(where: { $0.matches(rel) }) {
            return skip(.ignored, "not matched by include")
        }
        if let p = state.exclude.first(where: { $0.matches(rel) }) { return skip(.ignored, "exclude \(p.glob.pattern)") }
        guard var (kind, language) = DocumentKind.classify(fileName: name) else {
            return skip(.unsupportedType, nil)
        }
        let limit = kind.isContainer ? options.maxDocumentSize : options.maxFileSize
        if status.size > limit {
            return skip(.tooLarge, "\(status.size) bytes, more than \(limit)")
        }
        if let keep = options.keep, !keep(rel) {
            // Not this walk's (another shard's): never read. Found all the same, so that links
            // to it are judged as in an unfiltered walk.
            return (SourceFile(relativePath: rel, location: path, size: status.size,
                               mtimeNanoseconds: status.mtimeNanoseconds, kind: kind, language: language), false)
        }
        let raw: Data
        do { raw = try FileReader.read(path, limit: Walker.sniffSize) } catch {
            return skip(.unreadable, Walker.why(error))
        }
        if raw.isEmpty { return skip(.empty, nil) }
        if kind.isContainer {
            // Binary by nature: what is inside is the extractor's to judge.
            return (SourceFile(relativePath: rel, location: path, size: status.size,
                               mtimeNanoseconds: status.mtimeNanoseconds, kind: kind, language: nil), true)
        }
        // UTF-16 and UTF-32 text (announced by a byte-order mark) is full of NUL bytes:
        // sniff its characters, not its bytes.
        let (head, encoding, _) = TextEncoding.utf8(raw, truncated: raw.count < status.size)
        if head.contains(0) {
            return skip(.binary, encoding == .utf8 ? "NUL byte in the first 8 KiB" : "NUL character in the first 8 KiB (read as \(encoding.rawValue))")
        }
        if head.allSatisfy(Walker.isWhitespace) {
            // Only whitespace so far: look at the rest before calling it empty.
            if status.size <= raw.count { return skip(.empty, "only whitespace") }
            if let all = try? FileReader.read(path, limit: options.maxFileSize), TextEncoding.utf8(all).utf8.allSatisfy(Walker.isWhitespace) {
                return skip(.empty, "only whitespace")
            }
        }
        if options.skipMinified && kind == .code, let average = Walker.averageLineLength(Data(head)), average > Walker.minifiedLineLength {
            return skip(.minified, "its lines average \(average) bytes (over at most its first 8 KiB); --include-minified indexes it")
        }
        if kind == .text && (name as NSString).pathExtension.isEmpty, head.starts(with: Array("#!".utf8)) {
            let line = String(decoding: head.prefix(while: { $0 != 0x0A }), as: UTF8.self)
            if line.contains("python") { (kind, language) = (.code, "python") }
            else if line.hasSuffix("sh") || line.contains("bash") || line.contains("/sh ") || line.contains("zsh") { (kind, language) = (.code, "shell") }
        }
        return (SourceFile(relativePath: rel, location: path, size: status.size,
                           mtimeNanoseconds: status.mtimeNanoseconds, kind: kind, language: language), true)
    }

    /// The mean length in bytes of the lines of `head` (a final line without its newline
    /// counts as a line), or nil for an empty buffer. O(head).
    static func averageLineLength(_ head: Data) -> Int? {
        guard !head.isEmpty else { return nil }
        let newlines = head.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        let lines = newlines + (head.last == 0x0A ? 0 : 1)
        return (head.count - newlines) / max(lines, 1)
    }

    private static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 || b == 0x0B || b == 0x0C }

    /// What went wrong, without the path: every event already names the file, and a
    /// `FileError` would name it again (absolute). O(1).
    static func why(_ error: Error) -> String { (error as? FileError)?.reason ?? "\(error)" }

    private func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "/" + b }
}

/// The one error type of KBIngest: a walk that cannot start (its root is not a readable
/// folder) or a glob that does not parse. `description` is one line naming what is wrong.
public struct IngestError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    /// An error reading `description`.
    public init(_ description: String) { self.description = description }
}
