import Foundation

/// HTML: a small tolerant tokenizer (no dependencies). Drops script, style, nav, header,
/// footer, noscript, svg, form, template and comments, plus navigation chrome (role
/// "navigation", and Sphinx's `related`, `sphinxsidebar`, `footer` and `headerlink`
/// classes); h1–h6 start sections and build the heading path; block elements become line or
/// paragraph breaks; `<pre>` keeps its whitespace; entities are decoded. Title: `<title>`,
/// else the first h1, else the file name. Survives unclosed tags, stray '<', quoted '>' in
/// attributes, uppercase tags and garbage.
enum HTMLParser {
    static let dropped: Set<String> = ["script", "style", "nav", "header", "footer", "noscript", "svg", "form", "template", "iframe", "object", "select", "button", "math"]
    static let rawText: Set<String> = ["script", "style", "textarea", "title", "xmp"]
    static let void: Set<String> = ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr", "keygen"]
    static let droppedClasses: Set<String> = ["related", "sphinxsidebar", "sphinxsidebarwrapper", "headerlink", "footer", "mobile-nav", "navigation", "breadcrumbs", "toctree-wrapper"]
    static let paragraphBlocks: Set<String> = ["p", "pre", "section", "article", "table", "ul", "ol", "dl", "blockquote", "figure", "hr", "main", "aside", "details", "body", "h1", "h2", "h3", "h4", "h5", "h6"]
    static let lineBlocks: Set<String> = ["div", "li", "tr", "br", "dt", "dd", "caption", "figcaption", "summary", "address", "center", "legend", "fieldset", "thead", "tbody", "tfoot"]

    struct Element { let name: String; let dropping: Bool }

    /// What a parse did, counted so that tests can bound the work hostile input causes
    /// (not its time, which a busy machine varies).
    struct Work {
        /// Open elements looked at while searching the stack for an end tag's element.
        var elementsExamined = 0
    }

    static func parse(_ data: Data, source: SourceText, fileName: String) -> ParsedDocument {
        var work = Work()
        return parse(data, source: source, fileName: fileName, work: &work)
    }

    /// `parse`, adding what it did to `work`. O(bytes): each open element is examined at
    /// most once by the end tag that closes it, and a stray end tag examines none.
    static func parse(_ data: Data, source: SourceText, fileName: String, work: inout Work) -> ParsedDocument {
        let b = [UInt8](data)
        var out = Output(source: source)
        var stack: [Element] = []
        // How many of each element are open, so a stray end tag costs O(1) instead of a scan
        // of the whole stack (thousands of unclosed tags then thousands of stray end tags
        // would otherwise be quadratic).
        var openCount: [String: Int] = [:]
        var dropDepth = 0   // open elements whose content is dropped
        var preDepth = 0
        var title: String?
        var firstH1: String?
        var levels: [(Int, String)] = []
        var heading: (level: Int, text: [UInt8], start: Int)?
        var i = 0
        var textStart = 0

        func emitText(_ from: Int, _ to: Int) {
            guard from < to, dropDepth == 0 else { return }
            let decoded = decodeEntities(b[from..<to])
            if heading != nil { heading!.text.append(contentsOf: decoded); heading!.text.append(0x20); return }
            out.text(decoded, start: from, end: to, pre: preDepth > 0)
        }
        func isLetter(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
        func lower(_ s: ArraySlice<UInt8>) -> String { String(decoding: s.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }, as: UTF8.self) }
        func find(_ needle: [UInt8], from: Int, caseInsensitive: Bool = false) -> Int? {
            guard needle.count > 0, b.count >= needle.count else { return nil }
            var k = from
            while k + needle.count <= b.count {
                var ok = true
                for (j, n) in needle.enumerated() {
                    var c = b[k + j]
                    if caseInsensitive && c >= 0x41 && c <= 0x5A { c += 32 }
                    if c != n { ok = false; break }
                }
                if ok { return k }
                k += 1
            }
            return nil
        }
        func headingLevel(_ name: String) -> Int? {
            guard name.count == 2, name.first == "h", let d = name.last?.wholeNumberValue, (1...6).contains(d) else { return nil }
            return d
        }
        func closeHeading(at end: Int) {
            guard let h = heading else { return }
            heading = nil
            var text = String(decoding: h.text, as: UTF8.self)
            text = text.replacingOccurrences(of: "¶", with: "").replacingOccurrences(of: "\u{00A0}", with: " ")
            text = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            if text.isEmpty { return }
            while let last = levels.last, last.0 >= h.level { levels.removeLast() }
            levels.append((h.level, text))
            if h.level == 1 && firstH1 == nil { firstH1 = text }
            let line = source.lineNumber(at: h.start)
            out.startSection(levels.map(\.1), heading: SourceLine(line: line, lastLine: source.lineNumber(at: max(h.start, end - 1)),
                                                                   byteStart: h.start, byteEnd: end, verbatim: false))
        }
        func popTo(_ name: String, end: Int) {
            guard openCount[name, default: 0] > 0, let idx = stack.lastIndex(where: { work.elementsExamined += 1; return $0.name == name }) else { return }
            while stack.count > idx {
                let e = stack.removeLast()
                openCount[e.name, default: 1] -= 1
                if e.dropping { dropDepth -= 1 }
                if e.name == "pre" { preDepth -= 1 }
                if headingLevel(e.name) != nil { closeHeading(at: end) }
                if paragraphBlocks.contains(e.name) { out.paragraphBreak() } else if lineBlocks.contains(e.name) { out.lineBreak() }
            }
        }

        while i < b.count {
            guard b[i] == 0x3C /* < */ else { i += 1; continue }
            let tagStart = i
            if i + 3 < b.count && b[i + 1] == 0x21 && b[i + 2] == 0x2D && b[i + 3] == 0x2D {   // <!--
                emitText(textStart, i)
                let close = find(Array("-->".utf8), from: i + 4)
                i = close.map { $0 + 3 } ?? b.count
                textStart = i
                continue
            }
            if i + 1 < b.count && (b[i + 1] == 0x21 || b[i + 1] == 0x3F) {   // <! or <?
                emitText(textStart, i)
                var k = i + 2
                while k < b.count && b[k] != 0x3E { k += 1 }
                i = min(k + 1, b.count)
                textStart = i
                continue
            }
            let closing = i + 1 < b.count && b[i + 1] == 0x2F
            let nameStart = closing ? i + 2 : i + 1
            guard nameStart < b.count, isLetter(b[nameStart]) else { i += 1; continue }   // a stray '<' is text
            var k = nameStart
            while k < b.count, isLetter(b[k]) || (b[k] >= 0x30 && b[k] <= 0x39) || b[k] == 0x2D || b[k] == 0x3A { k += 1 }
            let name = lower(b[nameStart..<k])
            // The rest of the tag: attributes up to '>' outside quotes.
            var quote: UInt8 = 0
            let attrStart = k
            while k < b.count {
                let c = b[k]
                if quote != 0 { if c == quote { quote = 0 } }
                else if c == 0x22 || c == 0x27 { quote = c }
                else if c == 0x3E { break }
                k += 1
            }
            let tagEnd = min(k + 1, b.count)
            let selfClosing = k > attrStart && k - 1 < b.count && b[k - 1] == 0x2F
            emitText(textStart, tagStart)
            i = tagEnd
            textStart = i

            if closing {
                popTo(name, end: tagEnd)
                continue
            }
            let attrs = attributes(b[attrStart..<min(k, b.count)])
            if name == "title" || rawText.contains(name) {
                // Raw text up to the matching end tag (whatever it contains).
                let close = find(Array("</\(name)".utf8), from: i, caseInsensitive: true) ?? b.count
                if name == "title" && title == nil {
                    let t = String(decoding: decodeEntities(b[i..<close]), as: UTF8.self)
                        .split(whereSeparator: \.isWhitespace).joined(separator: " ")
                    if !t.isEmpty { title = t }
                } else if name == "textarea" || name == "xmp" {
                    emitText(i, close)
                }
                var e = close
                while e < b.count && b[e] != 0x3E { e += 1 }
                i = min(e + 1, b.count)
                textStart = i
                continue
            }
            if void.contains(name) || selfClosing {
                if name == "br" || name == "hr" { dropDepth == 0 ? (name == "br" ? out.lineBreak() : out.paragraphBreak()) : () }
                continue
            }
            // Implied ends: a new <p>, <li>, <dt>/<dd>, <tr>, <td>/<th> closes an open one of its kind.
            if ["p", "li", "dt", "dd", "tr", "td", "th", "option"].contains(name), let top = stack.last,
               top.name == name || (name == "dd" && top.name == "dt") || (name == "dt" && top.name == "dd") {
                popTo(top.name, end: tagStart)
            }
            if headingLevel(name) != nil, heading != nil { closeHeading(at: tagStart) }
            let classes = Set((attrs["class"] ?? "").split(separator: " ").map(String.init))
            let drop = dropped.contains(name) || attrs["role"] == "navigation" || attrs["role"] == "search"
                || !classes.isDisjoint(with: droppedClasses) || attrs["aria-hidden"] == "true"
            stack.append(Element(name: name, dropping: drop))
            openCount[name, default: 0] += 1
            if drop { dropDepth += 1 }
            if name == "pre" { preDepth += 1 }
            if paragraphBlocks.contains(name) { out.paragraphBreak() } else if lineBlocks.contains(name) { out.lineBreak() }
            else if name == "td" || name == "th" { out.space() }
            if let level = headingLevel(name), dropDepth == 0 { heading = (level, [], tagStart) }
        }
        emitText(textStart, b.count)
        closeHeading(at: b.count)
        let sections = out.finish()
        let t = title ?? firstH1 ?? fileName
        return ParsedDocument(title: t, sections: sections)
    }

    /// `name="value"` pairs (names lowercased; values entity-decoded).
    static func attributes(_ s: ArraySlice<UInt8>) -> [String: String] {
        var out: [String: String] = [:]
        var k = s.startIndex
        let end = s.endIndex
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D || c == 0x0C || c == 0x2F }
        while k < end {
            while k < end && isSpace(s[k]) { k += 1 }
            let ns = k
            while k < end && !isSpace(s[k]) && s[k] != 0x3D { k += 1 }
            guard k > ns else { k += 1; continue }
            let name = String(decoding: s[ns..<k], as: UTF8.self).lowercased()
            while k < end && isSpace(s[k]) && s[k] != 0x2F { k += 1 }
            var value = ""
            if k < end && s[k] == 0x3D {
                k += 1
                while k < end && isSpace(s[k]) && s[k] != 0x2F { k += 1 }
                if k < end && (s[k] == 0x22 || s[k] == 0x27) {
                    let q = s[k]; k += 1
                    let vs = k
                    while k < end && s[k] != q { k += 1 }
                    value = String(decoding: decodeEntities(s[vs..<k]), as: UTF8.self)
                    k += 1
                } else {
                    let vs = k
                    while k < end && !isSpace(s[k]) { k += 1 }
                    value = String(decoding: s[vs..<k], as: UTF8.self)
                }
            }
            out[name] = value
        }
        return out
    }

    static let entities: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{00A0}", "copy": "©", "reg": "®",
        "hellip": "…", "mdash": "—", "ndash": "–", "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”",
        "para": "¶", "sect": "§", "middot": "·", "times": "×", "trade": "™", "laquo": "«", "raquo": "»",
        "bull": "•", "deg": "°", "plusmn": "±", "divide": "÷", "euro": "€", "pound": "£", "yen": "¥", "cent": "¢",
        "larr": "←", "rarr": "→", "uarr": "↑", "darr": "↓", "harr": "↔", "rArr": "⇒", "lArr": "⇐", "le": "≤", "ge": "≥",
        "ne": "≠", "minus": "−", "shy": "\u{00AD}", "zwj": "\u{200D}", "zwnj": "\u{200C}", "thinsp": "\u{2009}",
        "ensp": "\u{2002}", "emsp": "\u{2003}", "sbquo": "‚", "bdquo": "„", "dagger": "†", "Dagger": "‡", "prime": "′",
        "iexcl": "¡", "iquest": "¿", "acute": "´", "micro": "µ", "frac12": "½", "frac14": "¼", "frac34": "¾",
        "eacute": "é", "egrave": "è", "agrave": "à", "aacute": "á", "uuml": "ü", "ouml": "ö", "auml": "ä", "szlig": "ß",
        "ccedil": "ç", "ntilde": "ñ", "Eacute": "É", "Uuml": "Ü", "Ouml": "Ö", "Auml": "Ä", "check": "✓",
    ]

    /// Decodes `&name;`, `&#NNN;` and `&#xHH;` (invalid code points → U+FFFD); leaves unknown ones as they are.
    static func decodeEntities(_ s: ArraySlice<UInt8>) -> [UInt8] {
        guard s.contains(0x26) else { return Array(s) }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var k = s.startIndex
        while k < s.endIndex {
            let c = s[k]
            if c == 0x26 {
                var e = k + 1
                while e < s.endIndex && e - k <= 32 && s[e] != 0x3B && s[e] != 0x26 && s[e] != 0x3C && s[e] > 0x20 { e += 1 }
                if e < s.endIndex && s[e] == 0x3B && e > k + 1 {
                    let body = String(decoding: s[(k + 1)..<e], as: UTF8.self)
                    var replacement: String?
                    if body.hasPrefix("#") {
                        let digits = body.dropFirst()
                        let value: UInt32? = digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
                        if let value {
                            let scalar = value == 0 ? nil : Unicode.Scalar(value)
                            replacement = String(scalar.map(Character.init) ?? "\u{FFFD}")
                        }
                    } else {
                        replacement = entities[body]
                    }
                    if let replacement {
                        out.append(contentsOf: replacement.utf8)
                        k = e + 1
                        continue
                    }
                }
            }
            out.append(c)
            k += 1
        }
        return out
    }

    /// Builds text lines with the source byte range each came from, and sections from them.
    struct Output {
        let source: SourceText
        var collector = SectionCollector()
        var line: [UInt8] = []
        var lineStart = Int.max, lineEnd = 0
        var pendingSpace = false

        init(source: SourceText) { self.source = source }

        mutating func text(_ bytes: [UInt8], start: Int, end: Int, pre: Bool) {
            if pre {
                // Keep whitespace; a newline in the source is a new line of text.
                var segStart = start
                for (n, c) in bytes.enumerated() {
                    if c == 0x0A { flushLine(); segStart = start + min(n + 1, end - start); continue }
                    if c == 0x0D { continue }
                    line.append(c)
                    lineStart = min(lineStart, segStart); lineEnd = max(lineEnd, end)
                }
                return
            }
            for c in bytes {
                let space = c == 0x20 || c == 0x0A || c == 0x09 || c == 0x0D || c == 0x0C
                if space { pendingSpace = true; continue }
                if pendingSpace && !line.isEmpty { line.append(0x20) }
                pendingSpace = false
                line.append(c)
                lineStart = min(lineStart, start); lineEnd = max(lineEnd, end)
            }
        }
        mutating func space() { pendingSpace = true }
        mutating func lineBreak() { flushLine() }
        mutating func paragraphBreak() {
            flushLine()
            collector.add("", SourceLine(line: 0, lastLine: 0, byteStart: 0, byteEnd: 0, verbatim: false))
        }
        mutating func flushLine() {
            pendingSpace = false
            guard !line.isEmpty else { return }
            // Non-breaking spaces read as spaces.
            let text = String(decoding: line, as: UTF8.self).replacingOccurrences(of: "\u{00A0}", with: " ")
            let trimmed = text.allSatisfy(\.isWhitespace) ? "" : text
            if !trimmed.isEmpty {
                let n = source.lineNumber(at: lineStart)
                let endLine = source.lineNumber(at: max(lineStart, lineEnd - 1))
                collector.add(trimmed, SourceLine(line: n, lastLine: endLine, byteStart: lineStart, byteEnd: lineEnd, verbatim: false))
            }
            line = []
            lineStart = .max; lineEnd = 0
        }
        mutating func startSection(_ path: [String], heading: SourceLine) {
            flushLine()
            collector.start(path, heading: heading)
        }
        mutating func finish() -> [Section] {
            flushLine()
            collector.flush()
            return collector.sections
        }
    }
}
