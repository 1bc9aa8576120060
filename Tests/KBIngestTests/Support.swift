import Foundation
import XCTest
import KBEmbed
import KBTestSupport
@testable import KBIngest

/// The MiniLM tokenizer built from the vocabulary and configs in Tests/Fixtures/minilm-config
/// (no weights needed), and token counting as kbindex does it: content tokens only.
enum MiniLM {
    static let tokenizer: WordPieceTokenizer = {
        do {
            return try WordPieceTokenizer(modelDirectory: Fixtures.root.appendingPathComponent("minilm-config"), maxLength: 256)
        } catch {
            fatalError("cannot load the MiniLM tokenizer fixture: \(error)")
        }
    }()

    static let count: @Sendable (String) -> Int = { tokenizer.tokenIDs($0).count }
}

/// Parses `text` as a file named `path`.
func parse(_ text: String, _ kind: DocumentKind, language: String? = nil, path: String = "doc") -> ParsedDocument {
    DocumentParser.parse(Data(text.utf8), kind: kind, language: language, path: path).0
}

/// A source split into lines and bytes once, for looking up many ranges.
struct SourceIndex {
    let lines: [Substring]
    let bytes: [UInt8]

    init(_ source: String) {
        lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        bytes = Array(source.utf8)
    }

    /// The text of 1-based inclusive lines `from...to`.
    func lines(_ from: Int, _ to: Int) -> String {
        guard from >= 1, to <= lines.count, from <= to else { return "<lines \(from)-\(to) out of 1-\(lines.count)>" }
        return lines[(from - 1)..<to].joined(separator: "\n")
    }

    /// The text of bytes `from..<to` (invalid UTF-8 repaired).
    func bytes(_ from: Int, _ to: Int) -> String {
        guard 0 <= from, from <= to, to <= bytes.count else { return "<bytes \(from)..<\(to) out of 0..<\(bytes.count)>" }
        return String(decoding: bytes[from..<to], as: UTF8.self)
    }
}

/// The source text of 1-based inclusive lines `from...to`.
func sourceLines(_ source: String, _ from: Int, _ to: Int) -> String { SourceIndex(source).lines(from, to) }

/// The source text of bytes `from..<to` (invalid UTF-8 repaired).
func sourceBytes(_ source: String, _ from: Int, _ to: Int) -> String { SourceIndex(source).bytes(from, to) }

/// Runs of letters and digits: what must survive any markup around a word.
func alphanumericWords(_ s: String) -> [String] {
    s.split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
}

/// A scratch folder under the system's temporary folder, removed (permissions restored) on `remove()`.
final class ScratchFolder {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("kbingest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    @discardableResult
    func write(_ relative: String, _ text: String) throws -> URL { try write(relative, Data(text.utf8)) }

    @discardableResult
    func write(_ relative: String, _ data: Data) throws -> URL {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
        return file
    }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(at: url.appendingPathComponent(relative), withIntermediateDirectories: true)
    }

    /// A symbolic link at `relative` whose target is `target`, written as given (relative or absolute).
    func symlink(_ relative: String, to target: String) throws {
        let link = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        guard Glibc.symlink(target, link.path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    func chmod(_ relative: String, _ mode: mode_t) {
        _ = Glibc.chmod(url.appendingPathComponent(relative).path, mode)
    }

    func remove() {
        // Give back permissions taken away by a test, then delete.
        if let e = FileManager.default.enumerator(atPath: path) {
            while let rel = e.nextObject() as? String { _ = Glibc.chmod(path + "/" + rel, 0o755) }
        }
        try? FileManager.default.removeItem(at: url)
    }
}

/// What a walk returned and reported.
struct WalkResult {
    var files: [SourceFile]
    var skipped: [String: (reason: SkipReason, detail: String?)] = [:]
    var warnings: [(path: String, message: String)] = []

    var paths: [String] { files.map(\.relativePath) }
    func reason(_ path: String) -> SkipReason? { skipped[path]?.reason }
    func file(_ path: String) -> SourceFile? { files.first { $0.relativePath == path } }
}

func walk(_ folder: ScratchFolder, _ configure: (inout IngestOptions) -> Void = { _ in }) throws -> WalkResult {
    var options = IngestOptions()
    configure(&options)
    var skipped: [String: (reason: SkipReason, detail: String?)] = [:]
    var warnings: [(path: String, message: String)] = []
    let files = try Walker(root: folder.url, options: options).walk { event in
        switch event {
        case let .skipped(path, reason, detail): skipped[path] = (reason, detail)
        case let .warning(path, message): warnings.append((path, message))
        }
    }
    return WalkResult(files: files, skipped: skipped, warnings: warnings)
}
