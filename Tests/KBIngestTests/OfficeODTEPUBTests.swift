import Foundation
import KBCore
import XCTest
@testable import KBIngest

final class OfficeODTTests: XCTestCase {
    typealias F = OfficeFiles

    func testOutlineLevelsListsSpansAndTitle() throws {
        let text = """
            <text:p text:style-name="P1">Field Guide</text:p>
            <text:h text:outline-level="1">Birds</text:h>
            <text:p>Birds have <text:span text:style-name="T1">feathers</text:span>.<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation><text:note-body><text:p>FOOTNOTETEXT</text:p></text:note-body></text:note></text:p>
            <text:h text:outline-level="2">Owls</text:h>
            <text:p>Owls hunt<text:s text:c="3"/>at<text:tab/>night.<text:line-break/>Quietly.</text:p>
            <text:list><text:list-item><text:p>Barn owl</text:p></text:list-item><text:list-item><text:p>Snowy owl</text:p></text:list-item></text:list>
            <text:h text:outline-level="3">Calls</text:h>
            <text:p>Hoot.<office:annotation><text:p>COMMENTTEXT</text:p></office:annotation></text:p>
            <text:h text:outline-level="1">Fish</text:h>
            <table:table><table:table-row><table:table-cell><text:p>Carp</text:p></table:table-cell><table:table-cell><text:p>Lakes</text:p></table:table-cell></table:table-row></table:table>
            """
        let styles = "<style:style style:name=\"P1\" style:family=\"paragraph\" style:parent-style-name=\"Title\"/>"
        let r = extracted(try F.odt(text: text, title: "Nature Notes", automaticStyles: styles), "guide.odt")
        XCTAssertEqual(r.warnings, [])
        XCTAssertEqual(r.document.title, "Nature Notes")
        XCTAssertEqual(r.document.unit, .paragraphs)
        let s = r.document.sections
        XCTAssertEqual(s.map(\.headingPath), [
            ["Field Guide", "Birds"], ["Field Guide", "Birds", "Owls"], ["Field Guide", "Birds", "Owls", "Calls"], ["Field Guide", "Fish"],
        ])
        XCTAssertEqual(s.map(\.text), ["Birds have feathers.", "Owls hunt at night.\nQuietly.\n\nBarn owl\n\nSnowy owl", "Hoot.", "Carp | Lakes"])
        XCTAssertEqual(s.map(\.lineStart), [2, 4, 8, 10])
        let all = s.map(\.text).joined()
        XCTAssertFalse(all.contains("FOOTNOTETEXT") || all.contains("COMMENTTEXT"))
    }

    func testTitleFallbackMissingContentAndBrokenXML() throws {
        let noMeta = extracted(try F.odt(text: "<text:p>Intro</text:p><text:h text:outline-level=\"2\">Second level first</text:h><text:p>x</text:p>"), "n.odt")
        XCTAssertEqual(noMeta.document.title, "Second level first")
        XCTAssertEqual(extractionError(try F.zip([("mimetype", "application/vnd.oasis.opendocument.text")]), "e.odt"),
                       .malformed("missing content.xml"))
        let broken = try F.zip([("content.xml", "<?xml version=\"1.0\"?><office:document-content \(F.odfNamespaces)><office:body><office:text>"
                                 + "<text:h text:outline-level=\"1\">Saved</text:h><text:p>Saved text</text:p><text:p>cut here")])
        let r = extracted(broken, "b.odt")
        XCTAssertEqual(r.document.sections.map(\.headingPath), [["Saved"]])
        XCTAssertTrue(r.document.text(0).hasPrefix("Saved text"), r.document.text(0))
        XCTAssertTrue(r.warnings.first?.hasPrefix("content.xml: line 1: ") ?? false, "\(r.warnings)")
        // A password-protected ODT: content.xml is there but encrypted.
        let locked = try F.zip([("content.xml", "\u{1}\u{2}garbage"),
                                ("META-INF/manifest.xml", "<manifest:manifest><manifest:file-entry manifest:full-path=\"content.xml\"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>")])
        XCTAssertEqual(extractionError(locked, "locked.odt"), .encrypted)
    }
}

final class OfficeEPUBTests: XCTestCase {
    typealias F = OfficeFiles

    static let chapters: [(String, String, String)] = [
        ("c1", "text/one.xhtml", F.xhtml("<h1>Chapter One</h1><p>The storm began at dawn.</p><h2>The Harbour</h2><p>Boats were tied up.</p><p>Gulls circled.</p>")),
        ("c2", "text/two.xhtml", F.xhtml("<h1>Chapter Two</h1><p>Morning came quietly.</p>")),
        ("c3", "text/Three%20Part.xhtml", F.xhtml("<p>Continued without a heading.</p><nav><p>NAVTEXT</p></nav>")),
    ]

    func testSpineOrderHeadingsAndTitle() throws {
        // The spine reads two, one, three: that is the reading order, not the manifest's.
        let data = try F.epub(title: "Sea Stories", chapters: Self.chapters, spine: ["c2", "c1", "c3"])
        let r = extracted(data, "book.epub")
        XCTAssertEqual(r.warnings, [])
        XCTAssertEqual(r.document.title, "Sea Stories")
        XCTAssertEqual(r.document.unit, .paragraphs)
        let s = r.document.sections
        XCTAssertEqual(s.map(\.headingPath), [["Chapter Two"], ["Chapter One"], ["Chapter One", "The Harbour"]])
        XCTAssertEqual(s.map(\.text), ["Morning came quietly.", "The storm began at dawn.", "Boats were tied up.\n\nGulls circled.\n\nContinued without a heading."])
        // Paragraphs: "Chapter Two" 1, its text 2, "Chapter One" 3, 4, "The Harbour" 5, 6, 7, 8.
        XCTAssertEqual(s.map(\.lineStart), [1, 3, 5])
        XCTAssertEqual(s.map(\.lineEnd), [2, 4, 8])
    }

    func testMissingChapterIsAWarningAndTheRestIsRead() throws {
        let data = try F.epub(title: "Partial", chapters: Self.chapters, spine: ["c1", "c2", "c3", "ghost"], leaveOut: ["text/two.xhtml"])
        let r = extracted(data, "partial.epub")
        XCTAssertEqual(r.warnings, ["missing chapter OEBPS/text/two.xhtml; skipped", "spine item 'ghost' is not in the manifest; skipped"])
        XCTAssertEqual(r.document.sections.map(\.headingPath), [["Chapter One"], ["Chapter One", "The Harbour"]])
        XCTAssertTrue(r.document.text(1).hasSuffix("Continued without a heading."), r.document.text(1))
    }

    /// 20,000 spine items of unknown ids, 3 missing chapters and a chapter path of 5,000
    /// characters: each kind of problem is one counted warning, naming the first, and the
    /// warnings of one file stay short.
    func testRepeatedSpineProblemsAreCountedAndWarningsBounded() throws {
        let long = String(repeating: "x", count: 5_000) + ".xhtml"
        let chapters = Self.chapters + [("c4", "four.xhtml", ""), ("c5", "five.xhtml", ""), ("c6", long, ""), ("c7", "seven.xhtml", "")]
        let spine = ["c1"] + (0..<20_000).map { "ghost\($0)" } + ["c4", "c5", "c6", "c7"]
        let data = try F.epub(title: "Many", chapters: chapters, spine: spine, leaveOut: ["four.xhtml", "five.xhtml", long, "seven.xhtml"])
        let r = extracted(data, "many.epub")
        XCTAssertEqual(r.document.sections.map(\.headingPath), [["Chapter One"], ["Chapter One", "The Harbour"]])
        XCTAssertEqual(r.warnings.count, 2, "\(r.warnings.map { $0.prefix(200) })")
        XCTAssertEqual(r.warnings.first, "20,000 spine items not in the manifest (the first: 'ghost0'); skipped")
        XCTAssertEqual(r.warnings.last, "4 missing chapters (the first: OEBPS/four.xhtml); skipped")
        XCTAssertLessThan(r.warnings.joined(separator: "; ").utf8.count, 1_000)
        // Spine problems of many kinds: the first 3 kinds, then a count of the rest.
        let capped = OfficeExtractor.bounded(["a", "b", "a", "c", "d", "e", String(repeating: "y", count: 10_000)])
        XCTAssertEqual(capped.count, 4)
        XCTAssertEqual(Array(capped.prefix(3)), ["a", "b", "c"])
        XCTAssertEqual(capped.last, "… and 3 more warnings")
        XCTAssertEqual(OfficeExtractor.bounded([String(repeating: "y", count: 10_000)]).first?.count, OfficeExtractor.maxWarningLength)
    }

    func testNoContainerNoChaptersAndBrokenPackage() throws {
        // Without container.xml, the only .opf is read, with a warning.
        let r = extracted(try F.epub(title: nil, chapters: Self.chapters, spine: ["c2"], container: false), "nc.epub")
        XCTAssertEqual(r.warnings, ["no META-INF/container.xml; read OEBPS/content.opf instead"])
        XCTAssertEqual(r.document.title, "nc.epub")
        XCTAssertEqual(r.document.sections.map(\.text), ["Morning came quietly."])
        // Every chapter missing: nothing to read.
        XCTAssertEqual(extractionError(try F.epub(title: "x", chapters: Self.chapters, spine: ["c1", "c2"], leaveOut: ["text/one.xhtml", "text/two.xhtml"]), "none.epub"),
                       .malformed("none of the 2 chapter(s) in the spine could be read"))
        XCTAssertEqual(extractionError(try F.zip([("mimetype", "application/epub+zip")]), "empty.epub"),
                       .malformed("missing META-INF/container.xml (not an EPUB?)"))
        // A broken OPF after its spine started: the chapters listed so far are read.
        let opf = "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\"><manifest>"
            + "<item id=\"c1\" href=\"one.xhtml\" media-type=\"application/xhtml+xml\"/></manifest><spine><itemref idref=\"c1\"/><itemref"
        let broken = try F.zip([("META-INF/container.xml", "<container xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles><rootfile full-path=\"content.opf\" media-type=\"application/oebps-package+xml\"/></rootfiles></container>"),
                                ("content.opf", opf), ("one.xhtml", F.xhtml("<h1>Only</h1><p>Kept.</p>"))])
        let b = extracted(broken, "broken.epub")
        XCTAssertEqual(b.document.sections.map(\.headingPath), [["Only"]])
        XCTAssertTrue(b.warnings.first?.hasPrefix("content.opf: line 1: ") ?? false, "\(b.warnings)")
    }

    func testEncryptedChapters() throws {
        let encryption = """
            <encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">\
            <enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>\
            <enc:CipherData><enc:CipherReference URI="OEBPS/text/one.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>
            """
        var entries = try F.epubEntries(title: "Locked", chapters: Array(Self.chapters.prefix(1)), spine: ["c1"])
        entries.append(("META-INF/encryption.xml", Data(encryption.utf8)))
        XCTAssertEqual(extractionError(try F.zip(entries), "drm.epub"), .encrypted)
    }
}

extension OfficeFiles {
    /// The entries of `epub(…)` (without mimetype), to add more before zipping.
    static func epubEntries(title: String?, chapters: [(String, String, String)], spine: [String]) throws -> [(String, Data)] {
        let data = try epub(title: title, chapters: chapters, spine: spine)
        let zip = try ZipReader(data, limits: ExtractionLimits())
        return try zip.names.filter { $0 != "mimetype" }.map { ($0, try XCTUnwrap(zip.read($0))) }
    }
}
