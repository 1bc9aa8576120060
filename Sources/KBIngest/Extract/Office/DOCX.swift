import Foundation

/// Word (.docx, Office Open XML): word/document.xml's paragraphs, headings from styles.
enum DOCXReader {
    static func read(_ zip: ZipReader, fileName: String, limits: ExtractionLimits) throws(ExtractionError) -> ParseResult {
        var warnings: [String] = []
        // The main part and the properties, from the package relationships (their usual
        // names when those are missing or unreadable).
        var mainPart = "word/document.xml"
        var corePart = "docProps/core.xml"
        if let relsData = try OfficeExtractor.optionalPart("_rels/.rels", in: zip, warnings: &warnings) {
            let rels = RelationshipsHandler()
            if let error = XMLPart.parse(relsData, handler: rels) { warnings.append("_rels/.rels: \(error)") }
            if let t = rels.target("officeDocument") { mainPart = OfficeExtractor.resolve(t, from: "") }
            if let t = rels.target("core-properties") { corePart = OfficeExtractor.resolve(t, from: "") }
        }
        if !zip.contains(mainPart) && zip.contains("word/document.xml") { mainPart = "word/document.xml" }
        guard zip.contains(mainPart) else {
            throw .malformed("missing \(mainPart)\(zip.contains("content.xml") ? " (an OpenDocument file named .docx?)" : "")")
        }
        let mainFolder = OfficeExtractor.folder(of: mainPart)

        // Styles: from the main part's relationships, else word/styles.xml.
        var stylesPart = mainFolder.isEmpty ? "styles.xml" : mainFolder + "/styles.xml"
        let mainRels = (mainFolder.isEmpty ? "" : mainFolder + "/") + "_rels/" + (mainPart as NSString).lastPathComponent + ".rels"
        if let relsData = try OfficeExtractor.optionalPart(mainRels, in: zip, warnings: &warnings) {
            let rels = RelationshipsHandler()
            if let error = XMLPart.parse(relsData, handler: rels) { warnings.append("\(mainRels): \(error)") }
            if let t = rels.target("styles") { stylesPart = OfficeExtractor.resolve(t, from: mainFolder) }
        }
        let styles = StylesHandler()
        if let stylesData = try OfficeExtractor.optionalPart(stylesPart, in: zip, warnings: &warnings) {
            if let error = XMLPart.parse(stylesData, handler: styles) {
                warnings.append("\(stylesPart): \(error); headings from the styles read before it")
            }
        }

        var title: String?
        if let core = try OfficeExtractor.optionalPart(corePart, in: zip, warnings: &warnings) {
            let handler = FirstTextHandler(local: "title", namespace: FirstTextHandler.dublinCore)
            if let error = XMLPart.parse(core, handler: handler), handler.value == nil { warnings.append("\(corePart): \(error)") }
            title = handler.value
        }

        let body = BodyHandler(styles: styles, maxTextBytes: limits.maxTextBytes)
        let document = try OfficeExtractor.requiredPart(mainPart, in: zip)
        return try OfficeExtractor.document(document, part: mainPart, handler: body, title: title, fileName: fileName, warnings: warnings)
    }

    /// WordprocessingML's namespace, transitional or strict.
    static func isWord(_ ns: String) -> Bool {
        ns == "http://schemas.openxmlformats.org/wordprocessingml/2006/main" || ns == "http://purl.oclc.org/ooxml/wordprocessingml/main"
    }

    static func isMath(_ ns: String) -> Bool {
        ns == "http://schemas.openxmlformats.org/officeDocument/2006/math" || ns == "http://purl.oclc.org/ooxml/officeDocument/math"
    }

    // MARK: - Styles

    /// word/styles.xml: each style's name, parent and outline level.
    final class StylesHandler: XMLHandler {
        struct Style {
            var name: String?
            var basedOn: String?
            var outlineLevel: Int?
        }
        private(set) var styles: [String: Style] = [:]
        private var current: String?
        private var cache: [String: Int?] = [:]

        func start(_ name: XMLName, _ attributes: [String: String]) {
            guard DOCXReader.isWord(name.namespace) else { return }
            switch name.local {
            case "style":
                current = attributes["styleId"]
                if let id = current, styles[id] == nil { styles[id] = Style() }
            case "name": if let id = current { styles[id]?.name = attributes["val"] }
            case "basedOn": if let id = current { styles[id]?.basedOn = attributes["val"] }
            case "outlineLvl": if let id = current, let v = attributes["val"].flatMap(Int.init) { styles[id]?.outlineLevel = v }
            default: break
            }
        }
        func end(_ name: XMLName) { if name.local == "style" && DOCXReader.isWord(name.namespace) { current = nil } }
        func text(_ text: String) {}

        /// The heading level of paragraphs in style `id` (0 for a title, 1–9 for headings),
        /// nil for body text. O(depth of the basedOn chain), cached.
        func level(of id: String) -> Int? {
            if let known = cache[id] { return known }
            var seen: Set<String> = []
            var next: String? = id
            var result: Int?
            while let s = next, !seen.contains(s), seen.count < 32 {
                seen.insert(s)
                guard let style = styles[s] else { result = DOCXReader.levelFromName(s); break }
                if let v = style.outlineLevel { result = (0...8).contains(v) ? v + 1 : nil; break }
                if let level = style.name.flatMap(DOCXReader.levelFromName) ?? DOCXReader.levelFromName(s) { result = level; break }
                next = style.basedOn
            }
            cache[id] = result
            return result
        }

        /// Whether `id` is a table-of-contents entry style ("TOC1", "toc 1").
        func isTableOfContents(_ id: String) -> Bool {
            let names = [id, styles[id]?.name ?? ""].map { $0.lowercased().replacingOccurrences(of: " ", with: "") }
            return names.contains { $0.count >= 4 && $0.hasPrefix("toc") && $0.dropFirst(3).allSatisfy(\.isNumber) }
        }
    }

    /// Words for "heading" and "title" in style ids and names of localized Word versions
    /// (ids drop some letters: German "Überschrift1" has the id "berschrift1").
    static let headingWords: Set<String> = [
        "heading", "berschrift", "überschrift", "titre", "titolo", "título", "titulo", "encabezado", "kop", "rubrik",
        "overskrift", "otsikko", "nagłówek", "naglowek", "nadpis", "címsor", "cimsor", "başlık", "baslik", "kopregel",
        "заголовок", "見出し", "标题", "標題", "제목",
    ]
    static let titleWords: Set<String> = ["title", "titel", "titre", "titolo", "título", "titulo", "tytuł", "názov", "表題", "标题", "제목"]

    /// "heading 2" / "Heading2" / "berschrift2" → 2, "Title" → 0, else nil.
    static func levelFromName(_ raw: String) -> Int? {
        let s = raw.lowercased().filter { $0 != " " && $0 != "-" && $0 != "_" }
        let digits = s.reversed().prefix(while: \.isNumber)
        let word = String(s.dropLast(digits.count))
        if digits.isEmpty { return titleWords.contains(word) ? 0 : nil }
        guard digits.count == 1, let n = Int(String(digits)), (1...9).contains(n), headingWords.contains(word) else { return nil }
        return n
    }

    // MARK: - Body

    /// word/document.xml: paragraphs (w:p) of runs (w:r: w:t, w:tab, w:br, w:cr), tables
    /// (w:tbl rows as "a | b" paragraphs), text boxes (paragraphs inside paragraphs, emitted
    /// before the one that holds them).
    final class BodyHandler: BodyHandling {
        struct Paragraph {
            var style: String?
            var outlineLevel: Int?
        }
        let styles: StylesHandler
        var builder: BodyBuilder
        private var open = ParagraphStack<Paragraph>()
        private var textDepth = 0
        private var runDepth = 0
        private var skipDepth = 0

        /// Subtrees whose text is not the document's: alternative renderings (mc:Fallback),
        /// moved-away or deleted text, and old properties of tracked changes.
        static let skipped: Set<String> = ["Fallback", "moveFrom", "del", "pPrChange", "rPrChange", "sectPrChange", "tblPrChange", "trPrChange", "tcPrChange", "numberingChange"]

        /// Done once the text limit is reached.
        var finished: Bool { builder.cut }

        init(styles: StylesHandler, maxTextBytes: Int) {
            self.styles = styles
            self.builder = BodyBuilder(maxTextBytes: maxTextBytes)
        }

        func start(_ name: XMLName, _ attributes: [String: String]) {
            if skipDepth > 0 { skipDepth += 1; return }
            let word = DOCXReader.isWord(name.namespace)
            if Self.skipped.contains(name.local) && (word || name.local == "Fallback") { skipDepth = 1; return }
            if DOCXReader.isMath(name.namespace) {
                if name.local == "t" { textDepth += 1 }
                return
            }
            guard word else { return }
            switch name.local {
            case "p": open.open(Paragraph())
            case "pStyle": open.update { $0.style = attributes["val"] }
            case "outlineLvl": open.update { $0.outlineLevel = attributes["val"].flatMap(Int.init) }
            case "r": runDepth += 1
            case "t": textDepth += 1
            case "tab" where runDepth > 0: open.append(" ")
            case "noBreakHyphen": open.append("-")
            case "br" where runDepth > 0:
                let type = attributes["type"] ?? "textWrapping"
                if type == "textWrapping" { open.newLine() } else { open.append(" ") }
            case "cr" where runDepth > 0: open.newLine()
            case "tr": open.openRow()
            case "tc": open.openCell()
            default: break
            }
        }

        func end(_ name: XMLName) {
            if skipDepth > 0 { skipDepth -= 1; return }
            if DOCXReader.isMath(name.namespace) {
                if name.local == "t" { textDepth = max(0, textDepth - 1) }
                return
            }
            guard DOCXReader.isWord(name.namespace) else { return }
            switch name.local {
            case "p": open.close(into: &builder, role: role)
            case "r": runDepth = max(0, runDepth - 1)
            case "t": textDepth = max(0, textDepth - 1)
            case "tc": open.closeCell(into: &builder)
            case "tr": open.closeRow(into: &builder)
            default: break
            }
        }

        func text(_ text: String) {
            guard skipDepth == 0, textDepth > 0 else { return }
            open.append(text)
        }

        /// A paragraph's role: none for a table-of-contents entry; a heading by its outline
        /// level, else its style's.
        private func role(_ p: Paragraph) -> ParagraphRole {
            if let style = p.style, styles.isTableOfContents(style) { return .skipped }
            var level: Int?
            if let v = p.outlineLevel { level = (0...8).contains(v) ? v + 1 : nil }
            else if let style = p.style { level = styles.level(of: style) }
            return level.map(ParagraphRole.heading) ?? .body
        }

        /// After XML that broke off: the paragraphs still open keep their text.
        func finishOpenParagraphs() { open.closeAll(into: &builder, role: role) }
    }
}
