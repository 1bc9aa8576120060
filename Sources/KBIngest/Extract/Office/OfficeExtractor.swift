import Foundation
import KBCore

/// DOCX, ODT and EPUB text out of their zip containers, read in memory (see `ZipReader` for
/// the limits on inflating and `XMLPart` for the XML rules).
///
/// The body becomes paragraphs in reading order (`BodyBuilder`): `ParsedDocument.unit` is
/// `.paragraphs`, line numbers are 1-based paragraph numbers of the extracted body (a heading
/// counts as one) and byte ranges are offsets in the extracted text. Headings:
///   - DOCX: a paragraph's outline level (w:outlineLvl), else its style's, resolved through
///     word/styles.xml (an explicit outline level, the built-in names "heading 1"…"heading 9"
///     and "Title", then the style it is based on), else the style id read as a heading name
///     in several languages ("Heading2", "berschrift2", "Titre2", …);
///   - ODT: text:h and its text:outline-level; a paragraph styled "Title";
///   - EPUB: h1–h6 of each spine document, through the HTML parser.
/// Table rows are one paragraph each ("cell | cell"); list items are paragraphs. Left out:
/// footnotes, endnotes, comments, headers and footers, tracked deletions, tables of contents
/// (DOCX paragraphs in "TOC n" styles, ODT index elements), and DrawingML text outside text
/// boxes.
///
/// Failures (`ExtractionError`): not a zip or a required part missing or unreadable →
/// `.malformed`; over the inflating limits → `.zipBomb`; a password-protected file (an
/// encrypted OOXML package, an ODT with encrypted content, an EPUB whose every chapter is
/// encrypted) → `.encrypted`. Damage in an optional part, or XML that breaks off after some
/// text was read, is a warning and the text read so far is kept.
enum OfficeExtractor {
    /// Reads one file's bytes. `path` names the file (its last component is the fallback
    /// title). O(inflated bytes). Never crashes.
    static func extract(data: Data, kind: DocumentKind, path: String, limits: ExtractionLimits) -> Result<ParseResult, ExtractionError> {
        let fileName = (path as NSString).lastPathComponent
        do throws(ExtractionError) {
            if data.starts(with: [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
                // An OLE compound file: how Office stores a password-protected DOCX (an
                // "EncryptedPackage" stream inside), or an old binary .doc renamed.
                let marker = Data("EncryptedPackage".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
                if data.range(of: marker) != nil { throw .encrypted }
                throw .malformed("an OLE compound file (an old binary .doc?), not a zip archive")
            }
            let zip = try ZipReader(data, limits: limits)
            var result: ParseResult
            switch kind {
            case .docx: result = try DOCXReader.read(zip, fileName: fileName, limits: limits)
            case .odt: result = try ODTReader.read(zip, fileName: fileName, limits: limits)
            case .epub: result = try EPUBReader.read(zip, fileName: fileName, limits: limits)
            default: throw .malformed("not a DOCX, ODT or EPUB file")
            }
            result.document.unit = .paragraphs
            result.warnings = bounded(result.warnings)
            return .success(result)
        } catch {
            return .failure(error)
        }
    }

    /// At most this many distinct warnings are kept for one file, the rest counted.
    static let maxWarnings = 3
    /// A longer warning (one naming a long zip path, say) is cut to this many characters.
    static let maxWarningLength = 300

    /// `warnings` with duplicates dropped, each cut to `maxWarningLength` characters, the
    /// first `maxWarnings` kept and the rest counted in a last "… and N more warnings".
    /// O(total length).
    static func bounded(_ warnings: [String]) -> [String] {
        var seen: Set<String> = []
        var kept: [String] = []
        var more = 0
        for w in warnings {
            let w = w.count > maxWarningLength ? String(w.prefix(maxWarningLength - 1)) + "…" : w
            guard seen.insert(w).inserted else { continue }
            if kept.count < maxWarnings { kept.append(w) } else { more += 1 }
        }
        if more > 0 { kept.append("… and \(more) more warning\(more == 1 ? "" : "s")") }
        return kept
    }

    /// "1234567" → "1,234,567".
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (k, c) in digits.enumerated() {
            if k > 0 && (digits.count - k) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// Reads an optional part: nil when absent; a damaged part (bad checksum, bad data) is a
    /// warning and nil; a zip bomb or encryption is thrown.
    static func optionalPart(_ name: String, in zip: ZipReader, warnings: inout [String]) throws(ExtractionError) -> Data? {
        do {
            return try zip.read(name)
        } catch {
            if case .malformed(let detail) = error {
                warnings.append("\(detail); left out")
                return nil
            }
            throw error
        }
    }

    /// Parses the body part `name` (DOCX word/document.xml, ODT content.xml) with `handler` and
    /// makes the document, titled `title`, else its first heading, else `fileName`. Malformed
    /// XML keeps the paragraphs before the error with a warning; with none before it, the file
    /// is `.malformed`. A text cut at the limit is a warning.
    static func document<Handler: BodyHandling>(_ data: Data, part name: String, handler: Handler, title: String?, fileName: String,
                                                warnings: [String]) throws(ExtractionError) -> ParseResult {
        var warnings = warnings
        if let error = XMLPart.parse(data, handler: handler) {
            handler.finishOpenParagraphs()
            guard handler.builder.paragraphs > 0 else { throw .malformed("\(name): \(error)") }
            warnings.append("\(name): \(error); kept the \(handler.builder.paragraphs) paragraph(s) before it")
        }
        if let cut = handler.builder.cutWarning { warnings.append(cut) }
        let sections = handler.builder.finish()
        let doc = ParsedDocument(title: title ?? handler.builder.firstHeading ?? fileName, sections: sections, unit: .paragraphs)
        return ParseResult(document: doc, warnings: warnings)
    }

    /// Reads a required part, `.malformed("missing …")` when absent.
    static func requiredPart(_ name: String, in zip: ZipReader) throws(ExtractionError) -> Data {
        guard let data = try zip.read(name) else { throw .malformed("missing \(name)") }
        return data
    }

    /// The zip path of `href` (percent-encoded, maybe with a fragment) relative to the folder
    /// `base` ("" for the root; "/x" is from the root); "." and ".." resolved, never above the
    /// root.
    static func resolve(_ href: String, from base: String) -> String {
        var h = href
        if let hash = h.firstIndex(of: "#") { h = String(h[..<hash]) }
        h = h.removingPercentEncoding ?? h
        var parts: [Substring] = h.hasPrefix("/") ? [] : base.split(separator: "/")
        for p in h.split(separator: "/") {
            if p == "." || p.isEmpty { continue }
            if p == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(p)
        }
        return parts.joined(separator: "/")
    }

    /// The folder part of a zip path ("word/document.xml" → "word", "a.xml" → "").
    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }
}

/// The text of the first element with a given name and namespace (e.g. dc:title), spaces
/// collapsed; nil when there is none or it is blank.
final class FirstTextHandler: XMLHandler {
    let local: String
    let namespace: (String) -> Bool
    private var depth = 0
    private var buffer = ""
    private(set) var value: String?

    init(local: String, namespace: @escaping (String) -> Bool) {
        self.local = local
        self.namespace = namespace
    }

    func start(_ name: XMLName, _ attributes: [String: String]) {
        if name.local == local && namespace(name.namespace) && value == nil { depth += 1 }
        else if depth > 0 { depth += 1 }
    }

    func end(_ name: XMLName) {
        guard depth > 0 else { return }
        depth -= 1
        if depth == 0 {
            let t = BodyBuilder.normalize(buffer)
            if !t.isEmpty { value = t }
            buffer = ""
        }
    }

    func text(_ text: String) { if depth > 0 { buffer += text } }

    /// Dublin Core's namespace ("http://purl.org/dc/elements/1.1/").
    static func dublinCore(_ ns: String) -> Bool { ns.hasPrefix("http://purl.org/dc/elements/") }
}

/// Problems that may repeat once per item (a spine of 200,000 unknown ids), one warning per
/// kind: alone, its own message; repeated, "N <kind> (the first: <first>); skipped". Kinds
/// keep the order they first appeared in. O(1) per problem.
struct RepeatedWarnings {
    private var kinds: [(kind: String, count: Int, first: String, alone: String)] = []
    private var index: [String: Int] = [:]

    /// Records one problem of `kind` ("missing chapters"); `first` names this case, `alone`
    /// is the whole warning should it be the only one of its kind.
    mutating func add(_ kind: String, first: String, alone: String) {
        if let i = index[kind] { kinds[i].count += 1; return }
        index[kind] = kinds.count
        kinds.append((kind, 1, first, alone))
    }

    var warnings: [String] {
        kinds.map { $0.count == 1 ? $0.alone : "\(OfficeExtractor.grouped($0.count)) \($0.kind) (the first: \($0.first)); skipped" }
    }
}

/// Package relationships (_rels/*.rels): (type, target) pairs.
final class RelationshipsHandler: XMLHandler {
    private(set) var relationships: [(type: String, target: String, external: Bool)] = []

    func start(_ name: XMLName, _ attributes: [String: String]) {
        guard name.local == "Relationship", let type = attributes["Type"], let target = attributes["Target"] else { return }
        relationships.append((type, target, attributes["TargetMode"] == "External"))
    }
    func end(_ name: XMLName) {}
    func text(_ text: String) {}

    /// The first internal target whose type ends with "/" + `kind`.
    func target(_ kind: String) -> String? {
        relationships.first { !$0.external && $0.type.hasSuffix("/" + kind) }?.target
    }
}
