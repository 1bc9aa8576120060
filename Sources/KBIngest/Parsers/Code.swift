import Foundation

/// Source code: one section per top-level declaration (line heuristics per language, at
/// column 0), comments and decorators directly above a declaration going with it; what
/// comes before the first declaration (imports, licence, comments) is the preamble.
/// Heading path: [file name, declaration name], [file name] for the preamble. Title: file name.
enum CodeParser {
    private static let patterns: [String: [NSRegularExpression]] = {
        func r(_ s: [String]) -> [NSRegularExpression] { s.map { try! NSRegularExpression(pattern: $0) } }
        // A definition, not a prototype: no ';' after the '(' unless a '{' opens a body on the
        // same line ("int f(void) { return 0; }").
        let cFamilyFunction = #"^(?!(?:if|else|for|while|switch|return|do|typedef|using|case|goto|sizeof)\b)[A-Za-z_][\w\s\*&:<>,]*?[\s\*&]([A-Za-z_~][\w:~]*(?:operator\S*)?)\s*\((?:[^;]*|.*\{.*)$"#
        return [
            "swift": r([#"^(?:@[\w.]+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|open|package|final|static|indirect|nonisolated|nonisolated\(unsafe\)|dynamic|required|convenience|override|mutating|async)\s+)*(?:func|class|struct|enum|extension|protocol|actor|typealias|macro|init|let|var)\s*([A-Za-z_`][\w.`]*|[^\s(<]+)"#]),
            "python": r([#"^(?:async\s+)?def\s+(\w+)"#, #"^class\s+(\w+)"#]),
            "c": r([#"^(?:typedef\s+)?(?:struct|enum|union)\s+(\w+)[^;]*$"#, cFamilyFunction]),
            "cpp": r([#"^(?:template\s*<.*>\s*)?(?:class|struct|enum(?:\s+class)?|union|namespace)\s+(\w+)[^;]*$"#, cFamilyFunction]),
            "go": r([#"^func\s+(?:\([^)]*\)\s*)?(\w+)"#, #"^type\s+(\w+)"#, #"^(?:var|const)\s+\(?\s*(\w*)"#]),
            "rust": r([#"^(?:pub(?:\([^)]*\))?\s+)?(?:(?:async|const|unsafe|extern\s+"[^"]*")\s+)*(?:fn|struct|enum|trait|mod|type|union|static|const)\s+(\w+)"#,
                       #"^(?:unsafe\s+)?impl\b(?:<[^{]*?>)?\s*([^{]+?)\s*(?:\{|$)"#, #"^macro_rules!\s*(\w+)"#]),
            "javascript": r([#"^(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(\w+)"#, #"^(?:export\s+)?(?:default\s+)?class\s+(\w+)"#,
                             #"^(?:export\s+)?(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>|class\b)"#]),
            "typescript": r([#"^(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:async\s+)?function\s*\*?\s*(\w+)"#,
                             #"^(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?class\s+(\w+)"#,
                             #"^(?:export\s+)?(?:declare\s+)?(?:interface|type|enum|namespace|module)\s+(\w+)"#,
                             #"^(?:export\s+)?(?:const|let|var)\s+(\w+)\s*(?::[^=]*)?=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]*)?=>|\w+\s*=>|class\b)"#]),
            "shell": r([#"^function\s+([\w:.-]+)"#, #"^([\w:.-]+)\s*\(\s*\)"#]),
        ]
    }()

    /// C and C++ with the return type on a line of its own (GNU and BSD style):
    /// "static int" then "name(args)" at column 0.
    private static let returnTypeLine = try! NSRegularExpression(
        pattern: #"^(?!(?:if|else|for|while|switch|return|do|case|goto|typedef|using|struct|enum|union|class|namespace|public|private|protected|extern|template)\b)[A-Za-z_][\w\s\*&:<>,]*$"#)
    private static let nameAndParen = try! NSRegularExpression(
        pattern: #"^([A-Za-z_~][\w:~]*)\s*\((?:[^;]*|.*\{.*)$"#)

    /// The name of a function whose return type is all of `previous` and whose name starts `line`.
    static func splitDeclaration(previous: String, line: String) -> String? {
        guard let p = previous.first, !p.isWhitespace else { return nil }
        let pns = previous as NSString, lns = line as NSString
        guard returnTypeLine.firstMatch(in: previous, range: NSRange(location: 0, length: pns.length)) != nil,
              let m = nameAndParen.firstMatch(in: line, range: NSRange(location: 0, length: lns.length)) else { return nil }
        return lns.substring(with: m.range(at: 1))
    }

    /// Updates `open` (the delimiter of the multi-line string literal open at the start of the
    /// line, nil outside one) over `line`: Python's triple quotes, Swift's `"""`.
    static func trackMultilineStrings(_ line: String, language: String, open: inout String?) {
        let delimiters = language == "python" ? [#"""""#, "'''"] : [#"""""#]
        var rest = Substring(line)
        while true {
            if let q = open {
                guard let r = rest.range(of: q) else { return }
                open = nil
                rest = rest[r.upperBound...]
            } else {
                var first: (range: Range<Substring.Index>, delimiter: String)?
                for d in delimiters {
                    if let r = rest.range(of: d), first.map({ r.lowerBound < $0.range.lowerBound }) ?? true { first = (r, d) }
                }
                guard let first else { return }
                open = first.delimiter
                rest = rest[first.range.upperBound...]
            }
        }
    }

    /// The declaration name a line starts, if it starts one.

    static func declaration(_ line: String, language: String) -> String? {
        guard let first = line.first, !first.isWhitespace, let regexes = patterns[language] else { return nil }
        let ns = line as NSString
        for re in regexes {
            if let m = re.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) {
                let r = m.range(at: 1)
                let name = r.location == NSNotFound ? "" : ns.substring(with: r).trimmingCharacters(in: .whitespaces)
                return name.isEmpty ? String(line.prefix(60)) : name
            }
        }
        return nil
    }

    static func isCommentOrDecorator(_ line: String, language: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { return false }
        switch language {
        case "python": return t.hasPrefix("#") || (line.hasPrefix("@"))
        case "shell": return t.hasPrefix("#") && !t.hasPrefix("#!")
        case "swift": return t.hasPrefix("//") || t.hasPrefix("/*") || t.hasPrefix("*") || line.hasPrefix("@")
        case "rust": return t.hasPrefix("//") || t.hasPrefix("#[") || t.hasPrefix("/*") || t.hasPrefix("*")
        default: return t.hasPrefix("//") || t.hasPrefix("/*") || t.hasPrefix("*") || t.hasPrefix("@") || t.hasPrefix("template")
        }
    }

    static func parse(_ source: SourceText, language: String?, fileName: String) -> ParsedDocument {
        let lines = source.lines
        let lang = language ?? ""
        // Where each declaration starts, pulled up over its comments and decorators.
        var starts: [(Int, String)] = []
        var i = 0
        var inBlockComment = false
        var openString: String?
        while i < lines.count {
            let text = lines[i].text
            // The inside of a multi-line string is not code ("class of…" in a docstring).
            if lang == "python" || lang == "swift" {
                let inside = openString != nil
                trackMultilineStrings(text, language: lang, open: &openString)
                if inside { i += 1; continue }
            }
            // Skip the inside of C-style block comments (a "func" in a comment is not a declaration).
            if lang != "python" && lang != "shell" {
                if inBlockComment { if text.contains("*/") { inBlockComment = false }; i += 1; continue }
                if text.hasPrefix("/*") && !text.contains("*/") { inBlockComment = true; i += 1; continue }
            }
            var found = declaration(text, language: lang).map { (i, $0) }
            if found == nil, lang == "c" || lang == "cpp", i > 0,
               let name = splitDeclaration(previous: lines[i - 1].text, line: text) {
                found = (i - 1, name)
            }
            if let (at, name) = found {
                var s = at
                while s > 0, isCommentOrDecorator(lines[s - 1].text, language: lang) { s -= 1 }
                // Comments above a declaration never reach back into the previous one.
                if let last = starts.last, s <= last.0 { s = at }
                // A return-type line that already starts a declaration is not a second one.
                if let last = starts.last, last.0 >= at { i += 1; continue }
                starts.append((s, name))
            }
            i += 1
        }
        var collector = SectionCollector()
        var next = 0
        collector.start([fileName], heading: nil)
        for (n, line) in lines.enumerated() {
            if next < starts.count && starts[next].0 == n {
                collector.start([fileName, starts[next].1], heading: nil)
                next += 1
            }
            collector.add(line.text, line.source)
        }
        collector.flush()
        return ParsedDocument(title: fileName, sections: collector.sections)
    }
}
