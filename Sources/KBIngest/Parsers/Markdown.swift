import Foundation

/// Markdown: ATX (`#`…`######`) and setext (`===`, `---` underlines) headings build the
/// heading path; fenced code blocks (``` and ~~~) stay as text and a '#' inside them is not
/// a heading; YAML front matter is dropped, its `title:` kept. Links and images keep only
/// their text. Title: front-matter title, else the first H1, else the file name.
enum MarkdownParser {
    static func parse(_ source: SourceText, fileName: String) -> ParsedDocument {
        let lines = source.lines
        var i = 0
        var title: String?
        // Front matter: '---' on the first line, up to the next '---' or '...'.
        if let first = lines.first, first.text.trimmingCharacters(in: .whitespaces) == "---" {
            if let close = lines.dropFirst().firstIndex(where: { ["---", "..."].contains($0.text.trimmingCharacters(in: .whitespaces)) }) {
                for l in lines[1..<close] {
                    let t = l.text.trimmingCharacters(in: .whitespaces)
                    if t.lowercased().hasPrefix("title:") {
                        var v = t.dropFirst(6).trimmingCharacters(in: .whitespaces)
                        if v.count >= 2, let f = v.first, f == v.last, f == "\"" || f == "'" { v = String(v.dropFirst().dropLast()) }
                        if !v.isEmpty { title = v }
                    }
                }
                i = close + 1
            }
        }
        var collector = SectionCollector()
        var levels: [(Int, String)] = []
        var fence: (Character, Int)?
        var firstH1: String?

        func heading(_ level: Int, _ text: String, _ at: SourceLine) {
            while let last = levels.last, last.0 >= level { levels.removeLast() }
            // An empty heading ("#") ends the sections above its level but names nothing.
            if !text.isEmpty { levels.append((level, text)) }
            if level == 1 && firstH1 == nil { firstH1 = text }
            collector.start(levels.map(\.1), heading: at)
        }

        while i < lines.count {
            let line = lines[i]
            let text = line.text
            let indent = text.prefix(while: { $0 == " " }).count
            let body = text.dropFirst(min(indent, 3))
            if let (ch, n) = fence {
                collector.add(text, line.source)
                if indent < 4 {
                    let run = body.prefix(while: { $0 == ch }).count
                    if run >= n && body.dropFirst(run).allSatisfy(\.isWhitespace) { fence = nil }
                }
                i += 1
                continue
            }
            if indent < 4, let ch = body.first, ch == "`" || ch == "~" {
                let run = body.prefix(while: { $0 == ch }).count
                if run >= 3 && !(ch == "`" && body.dropFirst(run).contains("`")) {
                    fence = (ch, run)
                    collector.add(text, line.source)
                    i += 1
                    continue
                }
            }
            if indent < 4, let (level, h) = atxHeading(body) {
                heading(level, h, line.source)
                i += 1
                continue
            }
            // Setext: a text line directly under a blank line (or a heading), underlined.
            if indent < 4, i + 1 < lines.count, !text.allSatisfy(\.isWhitespace), !body.hasPrefix(">"),
               let level = setextLevel(lines[i + 1].text),
               i == 0 || lines[i - 1].text.allSatisfy(\.isWhitespace) || atxHeading(lines[i - 1].text.drop(while: { $0 == " " })) != nil {
                heading(level, clean(text.trimmingCharacters(in: .whitespaces)), line.source)
                i += 2
                continue
            }
            let cleaned = clean(text)
            var src = line.source
            if cleaned != text { src.verbatim = false }
            collector.add(cleaned, src)
            i += 1
        }
        collector.flush()
        let t = title ?? firstH1 ?? fileName
        return ParsedDocument(title: t.isEmpty ? fileName : t, sections: collector.sections)
    }

    /// `# Title ##` → (1, "Title").
    static func atxHeading(_ s: Substring) -> (Int, String)? {
        let n = s.prefix(while: { $0 == "#" }).count
        guard n >= 1 && n <= 6 else { return nil }
        let rest = s.dropFirst(n)
        guard rest.isEmpty || rest.first == " " || rest.first == "\t" else { return nil }
        var t = rest.trimmingCharacters(in: .whitespaces)
        // A closing run of '#' (after a space) is not part of the heading.
        let closing = t.reversed().prefix(while: { $0 == "#" }).count
        if closing > 0 {
            let before = t.dropLast(closing)
            if before.isEmpty || before.last == " " { t = before.trimmingCharacters(in: .whitespaces) }
        }
        return (n, clean(t))
    }

    static func setextLevel(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard s.prefix(while: { $0 == " " }).count < 4, let c = t.first, c == "=" || c == "-" else { return nil }
        guard t.allSatisfy({ $0 == c }) else { return nil }
        return c == "=" ? 1 : 2
    }

    private static let link = try! NSRegularExpression(pattern: #"!?\[([^\]\n]*)\]\([^)\s]*(?:\s+"[^"]*")?\)"#)

    /// Links and images keep their text: `[text](url)` → `text`, `![alt](src)` → `alt`.
    static func clean(_ s: String) -> String {
        guard s.contains("](") else { return s }
        let ns = s as NSString
        return link.stringByReplacingMatches(in: s, range: NSRange(location: 0, length: ns.length), withTemplate: "$1")
    }
}
