import Foundation

/// Plain text: one section per paragraph (blank lines between), no heading path.
/// Title: the first non-empty line (trimmed, at most 80 characters), else the file name.
enum PlainTextParser {
    static func parse(_ source: SourceText, fileName: String) -> ParsedDocument {
        var collector = SectionCollector()
        var title: String?
        var inParagraph = false
        for line in source.lines {
            let blank = line.text.allSatisfy(\.isWhitespace)
            if blank {
                if inParagraph { collector.flush(); inParagraph = false }
                continue
            }
            if title == nil { title = String(line.text.trimmingCharacters(in: .whitespaces).prefix(80)) }
            inParagraph = true
            collector.add(line.text, line.source)
        }
        collector.flush()
        return ParsedDocument(title: title ?? fileName, sections: collector.sections)
    }
}
