import Foundation
import KBCore

/// How a file is parsed.
public enum DocumentKind: String, Sendable, CaseIterable {
    /// `.md`, `.markdown`, `.mdx`: sections by ATX/setext headings.
    case markdown
    /// `.html`, `.htm`: text out of the markup, sections by h1–h6.
    case html
    /// `.txt`, `.text`, `.rst` and extension-less text files (README, LICENSE, …): paragraphs.
    case text
    /// Source code: sections by top-level declarations (see `SourceFile.language`).
    case code
    /// `.pdf`: text per page through poppler's `pdftotext` (a separate process), sections by
    /// the outline or by font size; chunks are cited by page.
    case pdf
    /// `.docx` (Word): paragraphs of word/document.xml, sections by heading styles.
    case docx
    /// `.odt` (OpenDocument text): paragraphs of content.xml, sections by outline level.
    case odt
    /// `.epub`: the spine's XHTML documents in order, sections by h1–h6.
    case epub

    /// Whether files of this kind are binary containers that an extractor reads (PDF, zip):
    /// the walker does not sniff them for NUL bytes, whitespace or minified lines, and limits
    /// them by `IngestOptions.maxDocumentSize`. Their chunks are cited by page (PDF) or
    /// paragraph, not by line (see `LocationUnit`).
    public var isContainer: Bool {
        switch self {
        case .pdf, .docx, .odt, .epub: return true
        case .markdown, .html, .text, .code: return false
        }
    }

    /// The kind and code language for a file name, from its extension; nil when unsupported.
    /// Extension-less names are `.text` (the walker checks the content for a shell/python shebang).
    public static func classify(fileName: String) -> (kind: DocumentKind, language: String?)? {
        let ext = (fileName as NSString).pathExtension.lowercased()
        if ext.isEmpty || fileName.hasPrefix(".") && !fileName.dropFirst().contains(".") { return (.text, nil) }
        switch ext {
        case "md", "markdown", "mdx": return (.markdown, nil)
        case "html", "htm": return (.html, nil)
        case "txt", "text", "rst": return (.text, nil)
        case "swift": return (.code, "swift")
        case "py": return (.code, "python")
        case "c", "h": return (.code, "c")
        case "cc", "cpp", "hpp", "cxx": return (.code, "cpp")
        case "js", "mjs", "cjs", "jsx": return (.code, "javascript")
        case "ts", "tsx": return (.code, "typescript")
        case "go": return (.code, "go")
        case "rs": return (.code, "rust")
        case "sh", "bash", "zsh": return (.code, "shell")
        case "pdf": return (.pdf, nil)
        case "docx": return (.docx, nil)
        case "odt": return (.odt, nil)
        case "epub": return (.epub, nil)
        default: return nil
        }
    }
}

/// What the walk does: which files, how large, which folders to avoid.
public struct IngestOptions: Sendable {
    /// Globs on the relative path (e.g. "docs/**/*.md", "*.txt"); empty means all supported
    /// files. A glob without '/' matches the file name at any depth, one with '/' the whole
    /// relative path (as in `.gitignore`).
    public var include: [String] = []
    /// Globs (same rules as `include`), applied after `include`; a folder they match, or
    /// whose contents "folder/**" matches, is not entered.
    public var exclude: [String] = []
    /// Text files (markdown, HTML, text, code) larger than this many bytes are skipped
    /// (`SkipReason.tooLarge`).
    public var maxFileSize: Int = 10 << 20
    /// PDF, DOCX, ODT and EPUB files (`DocumentKind.isContainer`) larger than this many bytes
    /// are skipped (`SkipReason.tooLarge`): manuals and books are larger than text files, and
    /// their extraction runs under `ExtractionLimits`.
    public var maxDocumentSize: Int = 256 << 20
    /// Absolute paths of folders never entered (kbindex passes its own index folder).
    /// Compared by device and inode, so another spelling of the same folder is caught too.
    public var excludedDirectories: [String] = []
    /// Skip source files that look minified or generated (`SkipReason.minified`): a code file
    /// whose first 8 KiB have an average line length over `Walker.minifiedLineLength` bytes,
    /// as GitHub Linguist judges minified JavaScript. Such files (a bundled `app.min.js`, a
    /// search index written as one line of JSON) are not prose or readable code, and their
    /// thousands of chunks drown real answers.
    public var skipMinified: Bool = true
    /// Which symbolic links the walk follows (see `SymlinkPolicy`); by default those that
    /// stay inside the walked folder. Loops are detected from the device and inode of each
    /// folder on the current path (and cycles of links from ELOOP) and reported as
    /// `SkipReason.symlinkLoop`; a file reached a second time through a link is reported as
    /// `SkipReason.duplicate` and indexed once.
    public var symlinks: SymlinkPolicy = .insideRoot
    /// A predicate on a file's relative path ('/'-separated, as the index stores it), or nil
    /// for every file: a file it rejects is left out silently, after `include`, `exclude`,
    /// the file type (by name) and the size limit, and before the walk reads any of it (a
    /// shard of a sharded build passes `ShardSpec.contains`, so it reads only its own
    /// files). A rejected file still counts when a file is reached twice through symbolic
    /// links, so each file is taken at the same path as in a walk without the predicate.
    public var keep: (@Sendable (String) -> Bool)?

    /// The defaults: every supported file, 10 MiB limit (256 MiB for PDF and office files),
    /// links followed inside the folder.
    public init() {}
}

/// Which symbolic links a walk follows (as fd and rg: links out of the folder only on request).
public enum SymlinkPolicy: Sendable, Equatable {
    /// No link is followed (`SkipReason.ignored`).
    case never
    /// Links whose target, every link on the way resolved, is inside the walked folder;
    /// the others are `SkipReason.linkOutsideFolder`.
    case insideRoot
    /// Every link, wherever it leads (`kbindex build --follow`).
    case everywhere
}

/// Why the walker left a path out.
public enum SkipReason: String, Sendable, CaseIterable {
    /// Matched a `.gitignore` rule, is hidden (leading '.'), is `node_modules`, did not match
    /// `include`, or matched `exclude`; or a symbolic link when `symlinks` is `.never`.
    case ignored
    /// An extension kbindex does not parse.
    case unsupportedType
    /// A NUL byte in the first 8 KiB.
    case binary
    /// Larger than `IngestOptions.maxFileSize`.
    case tooLarge
    /// The system refused to read the file or list the folder (the detail has its reason),
    /// or a dangling symbolic link.
    case unreadable
    /// A folder that is already on the current path (through a symbolic link), or a cycle
    /// of symbolic links that never resolves (ELOOP).
    case symlinkLoop
    /// Zero bytes, or only whitespace.
    case empty
    /// Source code whose lines average more than `Walker.minifiedLineLength` bytes (see
    /// `IngestOptions.skipMinified`).
    case minified
    /// A symbolic link whose target is outside the walked folder, with
    /// `IngestOptions.symlinks` at `.insideRoot`.
    case linkOutsideFolder
    /// A file already taken under another path: the same file (device and inode) reached
    /// again through a symbolic link, or a different file whose name, not valid UTF-8,
    /// reads the same as another's once decoded (see `SourceFile.relativePath`).
    case duplicate
    /// A PDF, DOCX, ODT or EPUB file that gave no text (`ExtractionError`: encrypted, no
    /// text layer, damaged, too slow, its extractor missing). Reported by the build, not the
    /// walker.
    case notExtracted
}

extension SkipReason: CustomStringConvertible {
    /// The reason in words, for people ("symbolic link loop", not "symlinkLoop").
    public var description: String {
        switch self {
        case .ignored: return "ignored"
        case .unsupportedType: return "unsupported type"
        case .binary: return "binary"
        case .tooLarge: return "too large"
        case .unreadable: return "unreadable"
        case .symlinkLoop: return "symbolic link loop"
        case .empty: return "empty"
        case .minified: return "minified"
        case .linkOutsideFolder: return "link out of the folder"
        case .duplicate: return "reached twice"
        case .notExtracted: return "not extracted"
        }
    }
}

/// One file the walker chose to index.
public struct SourceFile: Sendable, Equatable {
    /// Path relative to the root, '/' separators. A name that is not valid UTF-8 appears
    /// decoded, its bad bytes replaced with U+FFFD (lossy, but the same on every walk, so
    /// incremental builds recognise the file); read the file through `location`, which keeps
    /// the real bytes. Unique among the files of one walk.
    public var relativePath: String
    /// Where to read it: the root joined with the real names (links not resolved).
    public var location: NativePath
    /// Size in bytes when walked.
    public var size: Int
    /// Modification time (of the link target), nanoseconds since the Unix epoch.
    public var mtimeNanoseconds: Int64
    /// How it is parsed.
    public var kind: DocumentKind
    /// For code: "swift", "python", "c", "cpp", "javascript", "typescript", "go", "rust", "shell".
    public var language: String?

    /// `location` as a file URL: exact only when the path is valid UTF-8 (else open `location`).
    public var url: URL { URL(fileURLWithPath: location.description) }

    /// Memberwise.
    public init(relativePath: String, location: NativePath, size: Int, mtimeNanoseconds: Int64, kind: DocumentKind, language: String?) {
        self.relativePath = relativePath
        self.location = location
        self.size = size
        self.mtimeNanoseconds = mtimeNanoseconds
        self.kind = kind
        self.language = language
    }

    /// Memberwise, with the location given as a URL (valid UTF-8 paths only).
    public init(relativePath: String, url: URL, size: Int, mtimeNanoseconds: Int64, kind: DocumentKind, language: String?) {
        self.init(relativePath: relativePath, location: NativePath(url.path), size: size, mtimeNanoseconds: mtimeNanoseconds,
                  kind: kind, language: language)
    }
}

/// Something the walker reports while it goes on.
public enum WalkEvent: Sendable {
    /// A file or folder left out, with the relative path ("" for the root), the reason and
    /// a detail such as the system's error or the rule that matched.
    case skipped(path: String, reason: SkipReason, detail: String?)
    /// A problem that did not stop the file or folder from being used.
    case warning(path: String, message: String)
}
