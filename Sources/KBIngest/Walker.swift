import Foundation
import KBCore

/// Walks a folder and picks the files to index (see `IngestOptions`, `SkipReason`).
///
/// Rules, in order, for each entry: hidden names (leading '.'), `node_modules` and `.git`
/// are never used; `.gitignore` files at every level (and `.git/info/exclude` at the root)
/// are honoured; then `include`, `exclude`, the file type, the size limit, readability,
/// binary content (NUL in the first 8 KiB) and emptiness (only whitespace).
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

    /// A walker over `root` (not touched until `walk`).
    public init(root: URL, options: IngestOptions) {
        self.root = root
        self.options = options
    }

    /// Errors `walk` throws: only about the root itself.
    public struct RootError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Files to index in a deterministic order (sorted by relative path). Never throws for a
    /// bad file or folder: reports it as an event and goes on. Throws `RootError` only when
    /// root itself is not a readable folder.
    public func walk(events: (WalkEvent) -> Void) throws -> [SourceFile] {
        let rootPath = root.standardizedFileURL.path
        let status: FileStatus
        do { status = try FileStatus.of(rootPath) } catch {
            throw RootError(description: "cannot index \(rootPath): \(error)")
        }
        guard status.kind == .directory else {
            throw RootError(description: "cannot index \(rootPath): not a folder")
        }
        let names: [String]
        do { names = try DirectoryListing.names(in: rootPath) } catch {
            throw RootError(description: "cannot index \(rootPath): \(error)")
        }
        return withoutActuallyEscaping(events) { events in
            walk(rootPath: rootPath, status: status, names: names, events: events)
        }
    }

    private func walk(rootPath: String, status: FileStatus, names: [String], events: @escaping (WalkEvent) -> Void) -> [SourceFile] {
        var state = State(events: events)
        for dir in options.excludedDirectories {
            if let s = try? FileStatus.of(dir) { state.excluded.insert(Identity(s)) }
        }
        state.include = options.include.map(PathPattern.init)
        state.exclude = options.exclude.map(PathPattern.init)
        var stack = GitignoreStack()
        if let text = try? FileReader.read(rootPath + "/.git/info/exclude", limit: 1 << 20) {
            stack.files.append(GitignoreFile(base: "", text: String(decoding: text, as: UTF8.self)))
        }
        walkDirectory(path: rootPath, relative: "", names: names, ancestors: [Identity(status)], gitignore: stack, state: &state)
        return state.files.sorted { Array($0.relativePath.utf8).lexicographicallyPrecedes(Array($1.relativePath.utf8)) }
    }

    private struct Identity: Hashable { let device: UInt64, inode: UInt64
        init(_ s: FileStatus) { device = s.device; inode = s.inode }
    }

    private struct State {
        let events: (WalkEvent) -> Void
        var files: [SourceFile] = []
        var excluded: Set<Identity> = []
        var include: [PathPattern] = []
        var exclude: [PathPattern] = []
    }

    private func walkDirectory(path: String, relative: String, names: [String], ancestors: [Identity],
                               gitignore inherited: GitignoreStack, state: inout State) {
        var gitignore = inherited
        if names.contains(".gitignore") {
            do {
                let data = try FileReader.read(path + "/.gitignore", limit: 1 << 20)
                gitignore.files.append(GitignoreFile(base: relative, text: String(decoding: data, as: UTF8.self)))
            } catch {
                state.events(.warning(path: join(relative, ".gitignore"), message: "cannot read .gitignore: \(error)"))
            }
        }
        for name in names {
            let rel = join(relative, name)
            let full = path + "/" + name
            if name.hasPrefix(".") {
                state.events(.skipped(path: rel, reason: .ignored, detail: "hidden"))
                continue
            }
            if Walker.neverEntered.contains(name) {
                state.events(.skipped(path: rel, reason: .ignored, detail: "\(name) is never entered"))
                continue
            }
            let link: FileStatus
            do { link = try FileStatus.ofLink(full) } catch {
                state.events(.skipped(path: rel, reason: .unreadable, detail: "\(error)"))
                continue
            }
            var status = link
            if link.kind == .symbolicLink {
                guard options.followSymlinks else {
                    state.events(.skipped(path: rel, reason: .ignored, detail: "symbolic link (followSymlinks is off)"))
                    continue
                }
                do { status = try FileStatus.of(full) } catch {
                    // A cycle of links ("a -> b", "b -> a") never reaches a folder, so the
                    // ancestor check below cannot see it: stat reports ELOOP.
                    let loop = (error as? FileError)?.code == ELOOP
                    state.events(.skipped(path: rel, reason: loop ? .symlinkLoop : .unreadable, detail: "\(error)"))
                    continue
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
                let children: [String]
                do { children = try DirectoryListing.names(in: full) } catch {
                    state.events(.skipped(path: rel, reason: .unreadable, detail: "\(error)"))
                    continue
                }
                walkDirectory(path: full, relative: rel, names: children, ancestors: ancestors + [id],
                              gitignore: gitignore, state: &state)
            case .regular:
                if let file = consider(path: full, relative: rel, name: name, status: status, gitignore: gitignore, state: &state) {
                    state.files.append(file)
                }
            case .symbolicLink, .other:
                state.events(.skipped(path: rel, reason: .unsupportedType, detail: "not a regular file or folder"))
            }
        }
    }

    private func consider(path: String, relative rel: String, name: String, status: FileStatus,
                          gitignore: GitignoreStack, state: inout State) -> SourceFile? {
        func skip(_ reason: SkipReason, _ detail: String?) -> SourceFile? {
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
        if status.size > options.maxFileSize {
            return skip(.tooLarge, "\(status.size) bytes, more than \(options.maxFileSize)")
        }
        let head: Data
        do { head = try FileReader.read(path, limit: Walker.sniffSize) } catch {
            return skip(.unreadable, "\(error)")
        }
        if head.isEmpty { return skip(.empty, nil) }
        if head.contains(0) { return skip(.binary, "NUL byte in the first 8 KiB") }
        if head.allSatisfy(Walker.isWhitespace) {
            // Only whitespace so far: look at the rest before calling it empty.
            if status.size <= head.count { return skip(.empty, "only whitespace") }
            if let all = try? FileReader.read(path, limit: options.maxFileSize), all.allSatisfy(Walker.isWhitespace) {
                return skip(.empty, "only whitespace")
            }
        }
        if options.skipMinified && kind == .code, let average = Walker.averageLineLength(head), average > Walker.minifiedLineLength {
            return skip(.minified, "its lines average \(average) bytes (over at most its first 8 KiB); --include-minified indexes it")
        }
        if kind == .text && (name as NSString).pathExtension.isEmpty, head.starts(with: Array("#!".utf8)) {
            let line = String(decoding: head.prefix(while: { $0 != 0x0A }), as: UTF8.self)
            if line.contains("python") { (kind, language) = (.code, "python") }
            else if line.hasSuffix("sh") || line.contains("bash") || line.contains("/sh ") || line.contains("zsh") { (kind, language) = (.code, "shell") }
        }
        return SourceFile(relativePath: rel, url: root.appendingPathComponent(rel), size: status.size,
                          mtimeNanoseconds: status.mtimeNanoseconds, kind: kind, language: language)
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

    private func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : a + "/" + b }
}
