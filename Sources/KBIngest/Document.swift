import Foundation
import KBCore

/// One structural unit of a parsed document: a heading's body, a declaration, a paragraph.
public struct Section: Sendable, Equatable {
    /// Headings above and including this unit's, outermost first, e.g. ["Guide", "Install",
    /// "Linux"]; for code [file name, declaration name] ([file name] for the preamble);
    /// empty for text before any heading and for plain-text paragraphs.
    public var headingPath: [String]
    /// The unit's text without markup (and without its own heading line).
    public var text: String
    /// First and last source line of the unit, 1-based inclusive (the heading line included).
    public var lineStart: Int
    public var lineEnd: Int
    /// The unit's bytes in the source file, end exclusive (the heading line included).
    public var byteStart: Int
    public var byteEnd: Int

    /// Where each line of `text` came from; nil means `text` is a verbatim copy of the
    /// source starting at `lineStart`/`byteStart`. Not part of equality.
    var sourceLines: [SourceLine]?

    /// Memberwise; `text` is taken to be a verbatim copy of the source from `lineStart`/`byteStart`.
    public init(headingPath: [String], text: String, lineStart: Int, lineEnd: Int, byteStart: Int, byteEnd: Int) {
        self.headingPath = headingPath
        self.text = text
        self.lineStart = lineStart
        self.lineEnd = lineEnd
        self.byteStart = byteStart
        self.byteEnd = byteEnd
    }

    public static func == (a: Section, b: Section) -> Bool {
        a.headingPath == b.headingPath && a.text == b.text && a.lineStart == b.lineStart && a.lineEnd == b.lineEnd
            && a.byteStart == b.byteStart && a.byteEnd == b.byteEnd
    }
}

/// The source of one line of a section's text.
struct SourceLine: Sendable, Equatable {
    /// 1-based line number in the source where the text line starts, and where it ends
    /// (HTML text can gather several source lines into one).
    var line: Int
    var lastLine: Int
    /// Bytes of the source the text line came from, end exclusive.
    var byteStart: Int
    var byteEnd: Int
    /// The text line's UTF-8 bytes equal the source bytes from `byteStart`, so an offset
    /// inside the line maps to `byteStart + offset`.
    var verbatim: Bool
}

/// A parsed file: its title and its sections in document order.
public struct ParsedDocument: Sendable, Equatable {
    /// Front-matter title, `<title>`, first H1, first line or file name, by kind.
    public var title: String
    public var sections: [Section]
    /// What the sections' `lineStart`/`lineEnd` (and their source lines) count: lines of the
    /// file for text kinds, pages for PDF, paragraphs of the extracted body for DOCX, ODT and
    /// EPUB. Where it is not `.lines`, byte ranges are UTF-8 offsets in the extracted text.
    public var unit: LocationUnit

    /// Memberwise.
    public init(title: String, sections: [Section], unit: LocationUnit = .lines) {
        self.title = title
        self.sections = sections
        self.unit = unit
    }
}

/// Parses file contents by kind.
public enum DocumentParser {
    /// Decodes bytes and parses by kind. Text is UTF-8 (invalid bytes → U+FFFD, with a
    /// warning), or UTF-16/UTF-32 when a byte-order mark says so (see `TextEncoding`; byte
    /// ranges are then those of the UTF-8 text). `path` names the file in titles; the
    /// warnings do not repeat it (the caller names the file once). Never throws, never
    /// crashes on any input.
    public static func parse(_ data: Data, kind: DocumentKind, language: String?, path: String) -> (ParsedDocument, warnings: [String]) {
        let (data, source, warnings) = decode(data)
        let fileName = (path as NSString).lastPathComponent
        let doc: ParsedDocument
        switch kind {
        case .markdown: doc = MarkdownParser.parse(source, fileName: fileName)
        case .html: doc = HTMLParser.parse(data, source: source, fileName: fileName)
        case .text: doc = PlainTextParser.parse(source, fileName: fileName)
        case .code: doc = CodeParser.parse(source, language: language, fileName: fileName)
        case .pdf, .docx, .odt, .epub:
            // Containers go through `parse(_:of:limits:)`; read as bytes they are only text.
            doc = PlainTextParser.parse(source, fileName: fileName)
        }
        return (doc, warnings)
    }

    /// Text bytes as UTF-8 (UTF-16/UTF-32 by byte-order mark transcoded), their lines, and
    /// a warning for each kind of bad sequence replaced with U+FFFD (no file name in them).
    /// O(bytes).
    static func decode(_ data: Data) -> (data: Data, source: SourceText, warnings: [String]) {
        var warnings: [String] = []
        var data = data
        let (utf8, encoding, replaced) = TextEncoding.utf8(data)
        if encoding != .utf8 {
            data = Data(utf8)
            if replaced > 0 { warnings.append("\(replaced) invalid \(encoding.rawValue) sequence(s) replaced with U+FFFD") }
        }
        let source = SourceText(data)
        if source.invalidLines > 0 {
            warnings.append("invalid UTF-8 on \(source.invalidLines) line(s) (first: line \(source.firstInvalidLine)), replaced with U+FFFD")
        }
        return (data, source, warnings)
    }
}

/// A file's lines with their byte positions; each line decoded on its own so byte offsets
/// stay exact even where the UTF-8 is invalid.
struct SourceText {
    struct Line {
        var text: String
        /// 1-based.
        var number: Int
        /// Content bytes (no '\n', no trailing '\r'), end exclusive.
        var byteStart: Int
        var byteEnd: Int
        var valid: Bool
        var source: SourceLine { SourceLine(line: number, lastLine: number, byteStart: byteStart, byteEnd: byteEnd, verbatim: valid) }
    }
    var lines: [Line] = []
    var invalidLines = 0
    var firstInvalidLine = 0
    /// Byte offset where each line starts (for mapping offsets to lines).
    var lineStarts: [Int] = []

    init(_ data: Data) {
        let bytes = [UInt8](data)
        var start = 0
        // A UTF-8 byte-order mark is not text.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        var number = 1
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            if end == bytes.count && start == end && number > 1 { break }
            var contentEnd = end
            if contentEnd > start && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let slice = bytes[start..<contentEnd]
            var valid = true
            let text: String
            if let s = String(validating: slice, as: UTF8.self) { text = s } else {
                valid = false
                text = String(decoding: slice, as: UTF8.self)
                invalidLines += 1
                if firstInvalidLine == 0 { firstInvalidLine = number }
            }
            lineStarts.append(start)
            lines.append(Line(text: text, number: number, byteStart: start, byteEnd: contentEnd, valid: valid))
            number += 1
            start = end + 1
        }
    }

    /// The 1-based line holding byte `offset`.
    func lineNumber(at offset: Int) -> Int {
        var lo = 0, hi = lineStarts.count - 1
        if hi < 0 { return 1 }
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1
    }
}

/// Collects text lines for sections, trimming blank lines at both ends, and emits sections
/// whose ranges span the heading line (if any) and the text.
struct SectionCollector {
    var sections: [Section] = []
    private var path: [String] = []
    private var heading: SourceLine?
    private var lines: [(String, SourceLine)] = []

    /// Ends the current section and starts one under `headingPath`, its heading at `heading`.
    mutating func start(_ headingPath: [String], heading: SourceLine?) {
        flush()
        path = headingPath
        self.heading = heading
    }

    mutating func add(_ text: String, _ source: SourceLine) { lines.append((text, source)) }

    var isEmpty: Bool { lines.allSatisfy { $0.0.allSatisfy(\.isWhitespace) } }

    mutating func flush() {
        defer { lines = []; heading = nil }
        let blank: ((String, SourceLine)) -> Bool = { $0.0.allSatisfy(\.isWhitespace) }
        guard let first = lines.firstIndex(where: { !blank($0) }), let last = lines.lastIndex(where: { !blank($0) }) else {
            return  // a heading with no text of its own: its name lives on in its children's paths
        }
        var body = Array(lines[first...last])
        // Collapse runs of blank lines into one (paragraph boundaries are what matters).
        var kept: [(String, SourceLine)] = []
        for l in body {
            if blank(l) {
                // A blank line's position is that of the text before it (HTML's breaks have none).
                if let prev = kept.last, !blank(prev) {
                    var src = prev.1
                    src.line = src.lastLine; src.byteStart = src.byteEnd; src.verbatim = true
                    kept.append(("", src))
                }
            } else { kept.append(l) }
        }
        body = kept
        let startLine = heading?.line ?? body[0].1.line
        let startByte = heading?.byteStart ?? body[0].1.byteStart
        var s = Section(headingPath: path, text: body.map(\.0).joined(separator: "\n"),
                        lineStart: min(startLine, body[0].1.line), lineEnd: body.map(\.1.lastLine).max()!,
                        byteStart: min(startByte, body[0].1.byteStart), byteEnd: body.map(\.1.byteEnd).max()!)
        s.sourceLines = body.map(\.1)
        sections.append(s)
    }
}
