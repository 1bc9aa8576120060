import Foundation
import KBCore

/// Bounds on reading one PDF, DOCX, ODT or EPUB file: a hostile file costs at most these.
public struct ExtractionLimits: Sendable, Equatable {
    /// Seconds of wall clock the extractor process (`pdftotext`) may take for one file; it is
    /// killed after that.
    public var timeLimit: Double = 60
    /// Bytes of address space the extractor process may map (its memory limit).
    public var memoryLimit: Int = 1 << 30
    /// Extracted text beyond this many bytes is cut, with a warning.
    public var maxTextBytes: Int = 64 << 20
    /// Zip containers (DOCX, ODT, EPUB): the most bytes inflated from one file, all parts
    /// together, counted while inflating (the headers' sizes are not trusted).
    public var maxUncompressedBytes: Int = 512 << 20
    /// Zip containers: an entry that inflates to more than this many times its compressed
    /// size is a zip bomb (ordinary XML compresses 5 to 20 times).
    public var maxCompressionRatio: Int = 200

    /// The defaults above.
    public init() {}
}

/// Why a PDF, DOCX, ODT or EPUB file gave no text. One line each, naming neither the file
/// (the caller does) nor what to do about it (the command-line tool does).
public enum ExtractionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Needs a password to open, or forbids copying its text.
    case encrypted
    /// Opened, but has no text layer (image-only or scanned pages).
    case noText
    /// The file is damaged beyond what the extractor recovers; the detail says how.
    case damaged(String)
    /// The extractor ran past `ExtractionLimits.timeLimit` and was killed.
    case timedOut(seconds: Double)
    /// The extractor crashed, was killed (e.g. over its memory limit) or failed otherwise.
    case toolFailed(String)
    /// The extractor program (named) is not installed.
    case toolMissing(String)
    /// A zip container inflates beyond `ExtractionLimits` (total size or ratio).
    case zipBomb(String)
    /// Not the format its name says, a required part missing, or XML that cannot be read.
    case malformed(String)

    public var description: String {
        switch self {
        case .encrypted: return "encrypted (needs a password)"
        case .noText: return "no text layer (image-only or scanned pages)"
        case .damaged(let d): return "damaged: \(d)"
        case .timedOut(let s): return "extraction took longer than \(s.formatted(.number.precision(.fractionLength(0...1)))) s"
        case .toolFailed(let d): return d
        case .toolMissing(let tool): return "\(tool) is not installed"
        case .zipBomb(let d): return "too much to decompress: \(d)"
        case .malformed(let d): return "malformed: \(d)"
        }
    }
}

/// A parsed file and what went wrong on the way without stopping it (invalid UTF-8
/// replaced, headers dropped, a missing EPUB chapter, …), without the file's name.
public struct ParseResult: Sendable, Equatable {
    public var document: ParsedDocument
    public var warnings: [String]

    /// Memberwise.
    public init(document: ParsedDocument, warnings: [String]) {
        self.document = document
        self.warnings = warnings
    }
}

extension DocumentParser {
    /// Why files of `kind` cannot be read on this machine at all (`.toolMissing` when the
    /// extractor program is not installed), or nil. A build asks once per kind, before reading
    /// files it could only fail on. O(PATH).
    public static func unavailable(_ kind: DocumentKind) -> ExtractionError? {
        kind == .pdf && PDFExtractor.Tools.fromEnvironment().pdftotext == nil ? .toolMissing("pdftotext") : nil
    }

    /// Parses a walked file of any kind. Text kinds (markdown, HTML, text, code) are
    /// `parse(_:kind:language:path:)` and never fail. PDF is read by `pdftotext` from
    /// `file.location` (a separate process, under `limits`; `data` is the same bytes, already
    /// read and hashed); DOCX, ODT and EPUB are read from `data` in memory. A file that gives
    /// no text is a failure with its reason; the build goes on without it. Never crashes.
    public static func parse(_ data: Data, of file: SourceFile, limits: ExtractionLimits = ExtractionLimits()) -> Result<ParseResult, ExtractionError> {
        switch file.kind {
        case .markdown, .html, .text, .code:
            let (doc, warnings) = parse(data, kind: file.kind, language: file.language, path: file.relativePath)
            return .success(ParseResult(document: doc, warnings: warnings))
        case .pdf:
            return PDFExtractor.extract(data: data, location: file.location, path: file.relativePath, limits: limits)
        case .docx, .odt, .epub:
            return OfficeExtractor.extract(data: data, kind: file.kind, path: file.relativePath, limits: limits)
        }
    }
}

/// A byte count in the largest binary unit that divides it exactly: "1 GiB", "64 MiB",
/// "1536 KiB", "150 bytes" (a limit in a message reads as it was set). O(1).
func byteSize(_ bytes: Int) -> String {
    if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
    if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
    return "\(bytes) bytes"
}
