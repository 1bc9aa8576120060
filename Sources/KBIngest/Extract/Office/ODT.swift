import Foundation

/// OpenDocument text (.odt): content.xml's text:h (with text:outline-level) and text:p.
enum ODTReader {
    static func read(_ zip: ZipReader, fileName: String, limits: ExtractionLimits) throws(ExtractionError) -> ParseResult {
        var warnings: [String] = []
        guard zip.contains("content.xml") else {
            throw .malformed("missing content.xml\(zip.contains("word/document.xml") ? " (a Word file named .odt?)" : "")")
        }
        // A password-protected file keeps its manifest readable and its content encrypted.
        if let manifest = try OfficeExtractor.optionalPart("META-INF/manifest.xml", in: zip, warnings: &warnings),
           manifest.range(of: Data("encryption-data".utf8)) != nil {
            throw .encrypted
        }
        var title: String?
        if let meta = try OfficeExtractor.optionalPart("meta.xml", in: zip, warnings: &warnings) {
            let handler = FirstTextHandler(local: "title", namespace: FirstTextHandler.dublinCore)
            if let error = XMLPart.parse(meta, handler: handler), handler.value == nil { warnings.append("meta.xml: \(error)") }
            title = handler.value
        }
        let body = BodyHandler(maxTextBytes: limits.maxTextBytes)
        let content = try OfficeExtractor.requiredPart("content.xml", in: zip)
        return try OfficeExtractor.document(content, part: "content.xml", handler: body, title: title, fileName: fileName, warnings: warnings)
    }

    static func ns(_ ns: String, _ kind: String) -> Bool { ns == "urn:oasis:names:tc:opendocument:xmlns:\(kind):1.0" }

    /// "Heading_20_2" / "Heading 2" → 2, "Title" → 0 (style names encode spaces as _20_).
    static func levelFromStyleName(_ name: String) -> Int? {
        let n = name.replacingOccurrences(of: "_20_", with: " ")
        if n == "Title" { return 0 }
        if n.hasPrefix("Heading "), let v = Int(n.dropFirst(8)), (1...10).contains(v) { return v }
        return nil
    }

    /// content.xml: paragraphs and headings (possibly inside lists, tables, sections and
    /// text boxes), spans, links, text:s (spaces), text:tab and text:line-break.
    final class BodyHandler: BodyHandling {
        var builder: BodyBuilder
        /// Open paragraphs with their heading level (nil: a body paragraph).
        private var open = ParagraphStack<Int?>()
        private var skipDepth = 0
        /// Automatic paragraph styles (content.xml) → their parent style.
        private var parents: [String: String] = [:]
        private var automaticStyles = false

        /// Subtrees whose text is not the body's: notes, comments, tracked changes, indexes
        /// (their entries repeat the headings), drawing titles and descriptions.
        static let skippedText: Set<String> = ["note", "tracked-changes", "table-of-content", "illustration-index", "table-index",
                                               "object-index", "user-index", "alphabetical-index", "bibliography"]

        /// Done once the text limit is reached.
        var finished: Bool { builder.cut }

        init(maxTextBytes: Int) { builder = BodyBuilder(maxTextBytes: maxTextBytes) }

        func start(_ name: XMLName, _ attributes: [String: String]) {
            if skipDepth > 0 { skipDepth += 1; return }
            if ODTReader.ns(name.namespace, "text") {
                switch name.local {
                case _ where Self.skippedText.contains(name.local): skipDepth = 1
                case "h":
                    let level = attributes["outline-level"].flatMap(Int.init) ?? 1
                    open.open(max(1, level))
                case "p":
                    open.open(attributes["style-name"].flatMap(titleLevel))
                case "s": open.append(String(repeating: " ", count: min(max(attributes["c"].flatMap(Int.init) ?? 1, 1), 64)))
                case "tab": open.append(" ")
                case "line-break": open.newLine()
                default: break
                }
            } else if ODTReader.ns(name.namespace, "office") {
                if name.local == "annotation" { skipDepth = 1 }
                if name.local == "automatic-styles" { automaticStyles = true }
            } else if ODTReader.ns(name.namespace, "table") {
                if name.local == "table-row" { open.openRow() }
                if name.local == "table-cell" { open.openCell() }
            } else if ODTReader.ns(name.namespace, "svg-compatible") {
                if name.local == "title" || name.local == "desc" { skipDepth = 1 }
            } else if ODTReader.ns(name.namespace, "style"), automaticStyles, name.local == "style",
                      let n = attributes["name"], let parent = attributes["parent-style-name"] {
                parents[n] = parent
            }
        }

        func end(_ name: XMLName) {
            if skipDepth > 0 { skipDepth -= 1; return }
            if ODTReader.ns(name.namespace, "text"), name.local == "h" || name.local == "p" {
                open.close(into: &builder, role: Self.role)
            } else if ODTReader.ns(name.namespace, "table") {
                if name.local == "table-cell" { open.closeCell(into: &builder) }
                if name.local == "table-row" { open.closeRow(into: &builder) }
            } else if ODTReader.ns(name.namespace, "office"), name.local == "automatic-styles" {
                automaticStyles = false
            }
        }

        func text(_ text: String) {
            guard skipDepth == 0 else { return }
            open.append(text)
        }

        /// A paragraph style's heading level through its automatic style's parent: 0 for
        /// "Title", n for "Heading n" (a text:p so styled is a heading too).
        private func titleLevel(_ style: String) -> Int? {
            var s = style
            var steps = 0
            while steps < 8 {
                if let level = ODTReader.levelFromStyleName(s) { return level }
                guard let parent = parents[s] else { return nil }
                s = parent
                steps += 1
            }
            return nil
        }

        private static func role(_ level: Int?) -> ParagraphRole { level.map(ParagraphRole.heading) ?? .body }

        /// After XML that broke off: the paragraphs still open keep their text.
        func finishOpenParagraphs() { open.closeAll(into: &builder, role: Self.role) }
    }
}
