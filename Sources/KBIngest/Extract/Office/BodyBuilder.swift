import Foundation

/// Builds the sections of an extracted document from its paragraphs in reading order.
///
/// The extracted text (what byte ranges count in) is the paragraphs joined by a blank line
/// ("\n\n"), each paragraph's lines by "\n"; headings are paragraphs too. Paragraph k
/// (1-based) is "line" k of every `SourceLine`, so a chunk's line range is its paragraph
/// range (`LocationUnit.paragraphs`). Whitespace inside a line is collapsed to single
/// spaces; empty paragraphs are skipped (they are not counted).
struct BodyBuilder {
    private var collector = SectionCollector()
    /// Open headings, outermost first: (level, text).
    private var levels: [(level: Int, text: String)] = []
    private(set) var paragraphs = 0
    /// UTF-8 length of the extracted text so far.
    private(set) var textBytes = 0
    private(set) var firstHeading: String?
    /// Extracted text past this many bytes is dropped (`cut` tells).
    let maxTextBytes: Int
    private(set) var cut = false

    init(maxTextBytes: Int) { self.maxTextBytes = maxTextBytes }

    /// "a  b\tc " → "a b c".
    static func normalize(_ s: String) -> String {
        s.split(whereSeparator: { $0.isWhitespace || $0 == "\u{00A0}" }).joined(separator: " ")
    }

    /// Starts a section under a heading of `level` (smaller is outer; any Int), closing open
    /// headings at that level or deeper. An empty heading is ignored.
    mutating func heading(_ text: String, level: Int) {
        let text = Self.normalize(text)
        guard !text.isEmpty, let source = place([text]).first else { return }
        while let last = levels.last, last.level >= level { levels.removeLast() }
        levels.append((level, text))
        if firstHeading == nil { firstHeading = text }
        collector.start(levels.map(\.text), heading: source)
    }

    /// The current heading path.
    var headingPath: [String] { levels.map(\.text) }

    /// Adds a paragraph of one or more lines (a line break inside it starts a new line).
    mutating func paragraph(_ lines: [String]) {
        let lines = lines.map(Self.normalize).filter { !$0.isEmpty }
        guard !lines.isEmpty else { return }
        let sources = place(lines)
        for (line, source) in zip(lines, sources) { collector.add(line, source) }
        if !sources.isEmpty { collector.add("", SourceLine(line: paragraphs, lastLine: paragraphs, byteStart: textBytes, byteEnd: textBytes, verbatim: false)) }
    }

    /// Counts a paragraph of `lines` into the extracted text and gives each line its source;
    /// none (and `cut` set) once the text limit is passed.
    private mutating func place(_ lines: [String]) -> [SourceLine] {
        guard !cut else { return [] }
        let length = lines.reduce(0) { $0 + $1.utf8.count } + lines.count - 1
        let separator = paragraphs > 0 ? 2 : 0
        guard textBytes + separator + length <= maxTextBytes else { cut = true; return [] }
        paragraphs += 1
        textBytes += separator
        var out: [SourceLine] = []
        for (k, line) in lines.enumerated() {
            if k > 0 { textBytes += 1 }
            let n = line.utf8.count
            out.append(SourceLine(line: paragraphs, lastLine: paragraphs, byteStart: textBytes, byteEnd: textBytes + n, verbatim: false))
            textBytes += n
        }
        return out
    }

    /// The sections (call once, at the end).
    mutating func finish() -> [Section] {
        collector.flush()
        return collector.sections
    }

    /// The warning for a cut text, if it was cut.
    var cutWarning: String? {
        cut ? "extracted text cut at \(ZipReader.size(maxTextBytes)) (after paragraph \(paragraphs))" : nil
    }
}
