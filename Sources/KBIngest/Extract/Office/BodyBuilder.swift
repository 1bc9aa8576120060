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
        cut ? "extracted text cut at \(byteSize(maxTextBytes)) (after paragraph \(paragraphs))" : nil
    }
}

/// What a closed paragraph becomes.
enum ParagraphRole {
    case body
    /// A heading at this level (as `BodyBuilder.heading`).
    case heading(Int)
    /// Left out (a table-of-contents entry, say).
    case skipped
}

/// The paragraphs, table rows and cells open while an XML body is read (DOCX and ODT share
/// it): they nest (a text box's paragraphs inside a paragraph, a table inside a cell), so
/// each is a stack. A closed paragraph goes into its open cell if there is one, else into
/// the `BodyBuilder` as a heading or a body paragraph; a closed cell's paragraphs join with
/// spaces; a closed row is one paragraph ("a | b"), or a line of the cell holding it.
/// `Info` is what the format keeps per paragraph (its style, its level). Every operation is
/// O(1) amortized, but for the joins, O(their text).
struct ParagraphStack<Info> {
    struct Paragraph {
        var lines: [String] = [""]
        var info: Info
    }
    private var paragraphs: [Paragraph] = []
    private var rows: [[String]] = []
    private var cells: [[String]] = []

    /// No paragraph is open (text outside paragraphs is dropped).
    var isEmpty: Bool { paragraphs.isEmpty }

    mutating func open(_ info: Info) { paragraphs.append(Paragraph(info: info)) }

    /// Changes the innermost open paragraph's info (nothing when none is open).
    mutating func update(_ change: (inout Info) -> Void) {
        guard !paragraphs.isEmpty else { return }
        change(&paragraphs[paragraphs.count - 1].info)
    }

    /// Appends text to the innermost open paragraph's last line.
    mutating func append(_ s: String) {
        guard !paragraphs.isEmpty else { return }
        let p = paragraphs.count - 1
        paragraphs[p].lines[paragraphs[p].lines.count - 1] += s
    }

    /// Starts a new line in the innermost open paragraph.
    mutating func newLine() {
        guard !paragraphs.isEmpty else { return }
        paragraphs[paragraphs.count - 1].lines.append("")
    }

    mutating func openRow() { rows.append([]) }
    mutating func openCell() { cells.append([]) }

    /// Closes the innermost cell: into its row, else (a cell outside any row) a paragraph.
    mutating func closeCell(into builder: inout BodyBuilder) {
        guard let cell = cells.popLast() else { return }
        let text = cell.filter { !$0.isEmpty }.joined(separator: " ")
        if rows.isEmpty { builder.paragraph([text]) } else { rows[rows.count - 1].append(text) }
    }

    /// Closes the innermost row: into the cell holding its table, else a paragraph.
    mutating func closeRow(into builder: inout BodyBuilder) {
        guard let row = rows.popLast() else { return }
        let text = row.filter { !$0.isEmpty }.joined(separator: " | ")
        if cells.isEmpty { builder.paragraph([text]) } else { cells[cells.count - 1].append(text) }
    }

    /// Closes the innermost paragraph; `role` says what it is when it is not in a cell.
    mutating func close(into builder: inout BodyBuilder, role: (Info) -> ParagraphRole) {
        guard let p = paragraphs.popLast() else { return }
        emit(p, into: &builder, role: role)
    }

    /// After XML that broke off: the paragraphs still open keep their text (their tables
    /// are dropped), innermost first.
    mutating func closeAll(into builder: inout BodyBuilder, role: (Info) -> ParagraphRole) {
        while let p = paragraphs.popLast() {
            cells = []; rows = []
            emit(p, into: &builder, role: role)
        }
    }

    private mutating func emit(_ p: Paragraph, into builder: inout BodyBuilder, role: (Info) -> ParagraphRole) {
        if !cells.isEmpty {
            cells[cells.count - 1].append(BodyBuilder.normalize(p.lines.joined(separator: " ")))
            return
        }
        switch role(p.info) {
        case .body: builder.paragraph(p.lines)
        case .heading(let level): builder.heading(p.lines.joined(separator: " "), level: level)
        case .skipped: break
        }
    }
}
