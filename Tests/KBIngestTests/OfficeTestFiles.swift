import Foundation
import XCTest
import ZIPFoundation
@testable import KBIngest

/// DOCX, ODT and EPUB files made in memory from small XML strings (with ZIPFoundation, the
/// library kbindex reads them with, so a zip of its own making is what a writer produces).
enum OfficeFiles {
    /// A zip of `entries` (name, bytes), deflated unless `stored`.
    static func zip(_ entries: [(String, Data)], stored: Bool = false) throws -> Data {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (name, data) in entries {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count),
                                 compressionMethod: stored ? .none : .deflate) { position, size in
                data.subdata(in: Int(position)..<(Int(position) + size))
            }
        }
        guard let bytes = archive.data else { throw CocoaError(.fileWriteUnknown) }
        return bytes
    }

    static func zip(_ entries: [(String, String)]) throws -> Data { try zip(entries.map { ($0.0, Data($0.1.utf8)) }) }

    static let w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

    /// word/document.xml around `body` (w:body's content, with the w: prefix bound).
    static func documentXML(_ body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
        <w:document xmlns:w="\(w)" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" \
        xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"><w:body>\(body)</w:body></w:document>
        """
    }

    /// A paragraph of `text` in style `style` (nil: none).
    static func p(_ text: String, style: String? = nil) -> String {
        let ppr = style.map { "<w:pPr><w:pStyle w:val=\"\($0)\"/></w:pPr>" } ?? ""
        return "<w:p>\(ppr)<w:r><w:t xml:space=\"preserve\">\(text)</w:t></w:r></w:p>"
    }

    static func stylesXML(_ styles: String) -> String {
        "<?xml version=\"1.0\"?><w:styles xmlns:w=\"\(w)\">\(styles)</w:styles>"
    }

    static func coreXML(title: String) -> String {
        """
        <?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" \
        xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>\(title)</dc:title></cp:coreProperties>
        """
    }

    static let rootRels = """
        <?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\
        <Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>\
        <Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>\
        </Relationships>
        """

    /// A .docx of `body` (raw w:body content), with styles.xml and core.xml when given.
    static func docx(body: String, styles: String? = nil, title: String? = nil) throws -> Data {
        var entries: [(String, String)] = [
            ("[Content_Types].xml", "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>"),
            ("_rels/.rels", rootRels),
            ("word/document.xml", documentXML(body)),
        ]
        if let styles { entries.append(("word/styles.xml", stylesXML(styles))) }
        if let title { entries.append(("docProps/core.xml", coreXML(title: title))) }
        return try zip(entries)
    }

    static let odfNamespaces = """
        xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" \
        xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" \
        xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3"
        """

    /// An .odt whose office:text holds `text`.
    static func odt(text: String, title: String? = nil, automaticStyles: String = "") throws -> Data {
        var entries: [(String, String)] = [
            ("mimetype", "application/vnd.oasis.opendocument.text"),
            ("content.xml", "<?xml version=\"1.0\"?><office:document-content \(odfNamespaces)><office:automatic-styles>\(automaticStyles)</office:automatic-styles><office:body><office:text>\(text)</office:text></office:body></office:document-content>"),
        ]
        if let title {
            entries.append(("meta.xml", "<?xml version=\"1.0\"?><office:document-meta \(odfNamespaces)><office:meta><dc:title>\(title)</dc:title></office:meta></office:document-meta>"))
        }
        return try zip(entries)
    }

    /// An XHTML content document with `body`.
    static func xhtml(_ body: String, title: String = "chapter") -> String {
        """
        <?xml version="1.0" encoding="utf-8"?>
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml"><head><title>\(title)</title></head>
        <body>
        \(body)
        </body></html>
        """
    }

    /// An .epub: `chapters` are (manifest id, path under OEBPS/, XHTML), `spine` the ids in
    /// reading order; `extra` more entries; `container: false` leaves out META-INF/container.xml.
    static func epub(title: String?, chapters: [(String, String, String)], spine: [String],
                     container: Bool = true, leaveOut: Set<String> = []) throws -> Data {
        let items = chapters.map { "<item id=\"\($0.0)\" href=\"\($0.1)\" media-type=\"application/xhtml+xml\"/>" }.joined()
        let refs = spine.map { "<itemref idref=\"\($0)\"/>" }.joined()
        let opf = """
            <?xml version="1.0" encoding="UTF-8"?>
            <package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
            <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\(title.map { "<dc:title>\($0)</dc:title>" } ?? "")<dc:identifier id="id">x</dc:identifier></metadata>
            <manifest>\(items)</manifest><spine>\(refs)</spine></package>
            """
        var entries: [(String, String)] = [("mimetype", "application/epub+zip")]
        if container {
            entries.append(("META-INF/container.xml", """
                <?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\
                <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>
                """))
        }
        entries.append(("OEBPS/content.opf", opf))
        for (_, href, html) in chapters where !leaveOut.contains(href) {
            entries.append(("OEBPS/" + (href.removingPercentEncoding ?? href), html))
        }
        return try zip(entries)
    }
}

/// Extracts `data` as a file named `name` (its kind from the extension).
func extract(_ data: Data, _ name: String, limits: ExtractionLimits = ExtractionLimits()) -> Result<ParseResult, ExtractionError> {
    let kind: DocumentKind = name.hasSuffix(".odt") ? .odt : name.hasSuffix(".epub") ? .epub : .docx
    return OfficeExtractor.extract(data: data, kind: kind, path: name, limits: limits)
}

/// The parse of `data`, failing the test (and giving an empty document) when it failed.
func extracted(_ data: Data, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> ParseResult {
    switch extract(data, name) {
    case .success(let r): return r
    case .failure(let e):
        XCTFail("\(name): \(e)", file: file, line: line)
        return ParseResult(document: ParsedDocument(title: "", sections: []), warnings: [])
    }
}

/// The error of a parse that should have failed.
func extractionError(_ data: Data, _ name: String, limits: ExtractionLimits = ExtractionLimits(),
                     file: StaticString = #filePath, line: UInt = #line) -> ExtractionError? {
    switch extract(data, name, limits: limits) {
    case .success(let r):
        XCTFail("\(name) was read: \(r.document.sections.map(\.text))", file: file, line: line)
        return nil
    case .failure(let e): return e
    }
}

extension ParsedDocument {
    /// Section `i`'s text, "<no section i>" when there is none (a failed parse fails the
    /// test's assertions instead of crashing it).
    func text(_ i: Int) -> String { i < sections.count ? sections[i].text : "<no section \(i)>" }
}
