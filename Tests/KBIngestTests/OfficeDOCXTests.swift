import Foundation
import KBCore
import XCTest
@testable import KBIngest

final class OfficeDOCXTests: XCTestCase {
    typealias F = OfficeFiles

    /// Built-in heading styles by name, a custom style whose outline level comes from
    /// styles.xml, one based on a heading, the Title style, and a localized style id that
    /// styles.xml does not define (German Word's "berschrift2").
    static let styles = """
        <w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/></w:style>
        <w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="Kapitel"><w:name w:val="Kapitel"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="MyHeading"><w:name w:val="My Heading"/><w:basedOn w:val="Kapitel"/></w:style>
        <w:style w:type="paragraph" w:styleId="Quote"><w:name w:val="Quote"/><w:basedOn w:val="Normal"/></w:style>
        <w:style w:type="paragraph" w:styleId="Loop"><w:name w:val="Loop"/><w:basedOn w:val="Loop"/></w:style>
        """

    func testHeadingsFromStyles() throws {
        let body = [
            F.p("Annual Report", style: "Title"),
            F.p("Getting started", style: "Heading1"),
            F.p("Read this first."),
            F.p("Installing the tool", style: "Kapitel"),
            F.p("Run the installer.", style: "Quote"),
            F.p("Linux notes", style: "berschrift3"),
            F.p("Use the package.", style: "Loop"),
            F.p("Upgrading", style: "MyHeading"),
            F.p("Replace the old version."),
            "<w:p><w:pPr><w:outlineLvl w:val=\"0\"/></w:pPr><w:r><w:t>Appendix</w:t></w:r></w:p>",
            F.p("Extra material."),
        ].joined()
        let r = extracted(try F.docx(body: body, styles: Self.styles, title: "The Core Title"), "report.docx")
        XCTAssertEqual(r.warnings, [])
        XCTAssertEqual(r.document.title, "The Core Title")
        XCTAssertEqual(r.document.unit, .paragraphs)
        let s = r.document.sections
        XCTAssertEqual(s.map(\.headingPath), [
            ["Annual Report", "Getting started"],
            ["Annual Report", "Getting started", "Installing the tool"],
            ["Annual Report", "Getting started", "Installing the tool", "Linux notes"],
            ["Annual Report", "Getting started", "Upgrading"],
            ["Annual Report", "Appendix"],
        ])
        XCTAssertEqual(s.map(\.text), ["Read this first.", "Run the installer.", "Use the package.", "Replace the old version.", "Extra material."])
        // Paragraph numbers: the title is 1, "Getting started" 2, its text 3, …
        XCTAssertEqual(s.map(\.lineStart), [2, 4, 6, 8, 10])
        XCTAssertEqual(s.map(\.lineEnd), [3, 5, 7, 9, 11])
    }

    func testTitleFallsBackToFirstHeadingThenFileName() throws {
        let withHeading = extracted(try F.docx(body: F.p("Intro text") + F.p("Real Heading", style: "Heading1"), styles: Self.styles), "dir/a.docx")
        XCTAssertEqual(withHeading.document.title, "Real Heading")
        // No styles.xml at all: "Heading2" is still read as a heading by its id.
        let noStyles = extracted(try F.docx(body: F.p("Setup", style: "Heading2") + F.p("Body")), "dir/b.docx")
        XCTAssertEqual(noStyles.document.title, "Setup")
        XCTAssertEqual(noStyles.document.sections.map(\.headingPath), [["Setup"]])
        let plain = extracted(try F.docx(body: F.p("Just a note.")), "dir/notes.docx")
        XCTAssertEqual(plain.document.title, "notes.docx")
        XCTAssertEqual(plain.document.sections.map(\.text), ["Just a note."])
    }

    func testRunsTabsBreaksTablesAndSkippedMarkup() throws {
        let body = """
            <w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>\
            <w:r><w:t>Hello</w:t></w:r><w:r><w:tab/><w:t>world</w:t><w:br/><w:t>second line</w:t></w:r>\
            <w:del w:id="1"><w:r><w:delText>DELETED</w:delText></w:r></w:del>\
            <w:r><w:t xml:space="preserve"> and </w:t></w:r><w:hyperlink><w:r><w:t>a link</w:t></w:r></w:hyperlink></w:p>\
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>Option</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Default</w:t></w:r></w:p></w:tc></w:tr>\
            <w:tr><w:tc><w:p><w:r><w:t>--threads</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>all</w:t></w:r></w:p><w:p><w:r><w:t>cores</w:t></w:r></w:p></w:tc></w:tr></w:tbl>\
            <w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p><w:r><w:t>Boxed text</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice>\
            <mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>FALLBACKCOPY</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r>\
            <w:r><w:t>Around the box</w:t></w:r></w:p>\
            <w:p><w:r><w:t>E = </w:t></w:r><m:oMath><m:r><m:t>mc2</m:t></m:r></m:oMath></w:p>
            """
        let r = extracted(try F.docx(body: body), "t.docx")
        XCTAssertEqual(r.document.sections.count, 1)
        XCTAssertEqual(r.document.text(0), """
            Hello world
            second line and a link

            Option | Default

            --threads | all cores

            Boxed text

            Around the box

            E = mc2
            """)
        // A paragraph of two lines is one paragraph: 6 paragraphs in all.
        XCTAssertEqual(r.document.sections.first?.lineEnd, 6)
    }

    func testChunksCarryParagraphRanges() throws {
        let body = F.p("Guide", style: "Heading1") + (1...30).map { F.p("Paragraph number \($0) talks about topic \($0) at some length.") }.joined()
        let r = extracted(try F.docx(body: body), "g.docx")
        let chunks = Chunker(maxTokens: 64, overlapTokens: 0, countTokens: MiniLM.count).chunks(of: r.document)
        XCTAssertGreaterThan(chunks.count, 2)
        XCTAssertTrue(chunks.allSatisfy { $0.unit == .paragraphs && $0.headingPath == ["Guide"] })
        // The chunk holding paragraph 17's text ("number 16") says paragraph 17.
        let c = try XCTUnwrap(chunks.first { $0.text.contains("Paragraph number 16 ") })
        XCTAssertTrue((c.lineStart...c.lineEnd).contains(17), "\(c.lineStart)-\(c.lineEnd)")
        XCTAssertEqual(chunks.last?.lineEnd, 31)
    }

    func testMalformedXMLKeepsTheTextBeforeIt() throws {
        var xml = F.documentXML(F.p("Kept heading", style: "Heading1") + F.p("Kept text.") + "<w:p><w:r><w:t>Broken</w:r></w:p>" + F.p("LOST"))
        let r = extracted(try F.zip([("word/document.xml", xml)]), "m.docx")
        XCTAssertEqual(r.document.sections.map(\.headingPath), [["Kept heading"]])
        XCTAssertTrue(r.document.text(0).hasPrefix("Kept text."), r.document.text(0))
        XCTAssertFalse(r.document.sections.map(\.text).joined().contains("LOST"))
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue((r.warnings.first ?? "").hasPrefix("word/document.xml: line "), (r.warnings.first ?? ""))
        XCTAssertTrue((r.warnings.first ?? "").contains("mismatched end tag"), (r.warnings.first ?? ""))
        // Nothing readable at all: malformed.
        xml = "<?xml version=\"1.0\"?><w:document xmlns:w=\"\(F.w)\"><w:body><w:p"
        let e = extractionError(try F.zip([("word/document.xml", xml)]), "m2.docx")
        guard case .malformed(let detail)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(detail.hasPrefix("word/document.xml: line 1: "), detail)
        // A damaged styles.xml is a warning; the body is still read.
        let styled = try F.zip([("word/document.xml", F.documentXML(F.p("H", style: "Heading1") + F.p("t"))),
                                ("word/styles.xml", "<w:styles xmlns:w=\"\(F.w)\"><w:style")])
        let s = extracted(styled, "s.docx")
        XCTAssertEqual(s.document.sections.map(\.headingPath), [["H"]])
        XCTAssertTrue(s.warnings.first?.hasPrefix("word/styles.xml: line 1: ") ?? false, "\(s.warnings)")
    }

    func testMissingPartNotAZipAndOldWordFiles() throws {
        XCTAssertEqual(extractionError(try F.zip([("docProps/core.xml", F.coreXML(title: "x"))]), "a.docx"),
                       .malformed("missing word/document.xml"))
        XCTAssertEqual(extractionError(Data("this is just text, named .docx\n".utf8), "b.docx"), .malformed("not a zip archive"))
        XCTAssertEqual(extractionError(Data(), "empty.docx"), .malformed("not a zip archive"))
        var ole = Data([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) + Data(count: 600)
        XCTAssertEqual(extractionError(ole, "old.docx"), .malformed("an OLE compound file (an old binary .doc?), not a zip archive"))
        ole.append(Data("EncryptedPackage".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
        XCTAssertEqual(extractionError(ole, "locked.docx"), .encrypted)
        // A zip cut short: its directory is gone.
        let whole = try F.docx(body: F.p("text"))
        XCTAssertEqual(extractionError(whole.prefix(whole.count / 2), "cut.docx"), .malformed("zip archive without its central directory (truncated?)"))
    }

    /// Billion laughs: ten levels of ten references would expand to 10^9 "lol"s. The part is
    /// refused on sight of its entity declarations, before any parsing.
    func testEntityExpansionAndExternalEntitiesAreRefused() throws {
        var laughs = "<?xml version=\"1.0\"?><!DOCTYPE w:document [<!ENTITY lol \"lol\">"
        var previous = "lol"
        for i in 1...9 {
            laughs += "<!ENTITY lol\(i) \"" + String(repeating: "&\(previous);", count: 10) + "\">"
            previous = "lol\(i)"
        }
        laughs += "]><w:document xmlns:w=\"\(F.w)\"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
        let e = extractionError(try F.zip([("word/document.xml", laughs)]), "laughs.docx")
        XCTAssertEqual(e, .malformed("word/document.xml: declares XML entities (<!ENTITY), which are not expanded"))

        // The same in UTF-16 (either byte order, with its byte-order mark) and UTF-32.
        let utf16 = laughs.replacingOccurrences(of: "<?xml version=\"1.0\"?>", with: "<?xml version=\"1.0\" encoding=\"UTF-16\"?>")
        for (bom, bigEndian) in [([0xFF, 0xFE] as [UInt8], false), ([0xFE, 0xFF], true)] {
            let units = utf16.utf16.flatMap { bigEndian ? [UInt8($0 >> 8), UInt8($0 & 0xFF)] : [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            let part = Data(bom + units)
            XCTAssertEqual(extractionError(try F.zip([("word/document.xml", part)]), "laughs16.docx"),
                           .malformed("word/document.xml: declares XML entities (<!ENTITY), which are not expanded"))
        }
        let utf32 = Data([0xFF, 0xFE, 0, 0] + laughs.unicodeScalars.flatMap { s in (0..<4).map { UInt8((s.value >> (8 * $0)) & 0xFF) } })
        XCTAssertEqual(extractionError(try F.zip([("word/document.xml", utf32)]), "laughs32.docx"),
                       .malformed("word/document.xml: is in UTF-32, which is not read"))
        // An encoding that hides the declaration from a byte scan (UTF-7 spells '<' "+ADw-").
        let utf7 = "<?xml version=\"1.0\" encoding=\"UTF-7\"?>+ADw-w:document xmlns:w=+ACI-\(F.w)+ACI-/+AD4-"
        XCTAssertEqual(extractionError(try F.zip([("word/document.xml", utf7)]), "utf7.docx"),
                       .malformed("word/document.xml: declares the encoding 'UTF-7', which is not read (UTF-8, UTF-16, ASCII, ISO-8859 and windows-125x are)"))

        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("kbxxe-\(UUID().uuidString).txt")
        try Data("SECRETFILECONTENT".utf8).write(to: secret)
        defer { try? FileManager.default.removeItem(at: secret) }
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY xxe SYSTEM \"\(secret.absoluteString)\">]>"
            + "<w:document xmlns:w=\"\(F.w)\"><w:body><w:p><w:r><w:t>before &xxe; after</w:t></w:r></w:p></w:body></w:document>"
        XCTAssertEqual(extractionError(try F.zip([("word/document.xml", xxe)]), "xxe.docx"),
                       .malformed("word/document.xml: declares XML entities (<!ENTITY), which are not expanded"))
        // Without that check, FoundationXML loads no external entity and stops the expansion
        // (libxml2's entity-loop guard) instead of producing gigabytes.
        final class Collect: XMLHandler {
            var text = ""
            func start(_ name: XMLName, _ attributes: [String: String]) {}
            func end(_ name: XMLName) {}
            func text(_ t: String) { text += t }
        }
        let c = Collect()
        XCTAssertNotNil(XMLPart.parse(Data(laughs.utf8), handler: c, refuseEntities: false))
        XCTAssertLessThan(c.text.utf8.count, 1 << 20)
        c.text = ""
        _ = XMLPart.parse(Data(xxe.utf8), handler: c, refuseEntities: false)
        XCTAssertFalse(c.text.contains("SECRET"))
    }

    /// The paragraph, row and cell stacks DOCX and ODT share: a closed paragraph goes into
    /// its cell, a table inside a cell becomes that cell's text, rows are "a | b", roles
    /// make headings or leave paragraphs out, and paragraphs left open keep their text.
    func testParagraphStackNestsTablesAndKeepsOpenParagraphs() {
        var builder = BodyBuilder(maxTextBytes: 1 << 20)
        var stack = ParagraphStack<ParagraphRole>()
        func paragraph(_ text: String, _ role: ParagraphRole = .body) {
            stack.open(role); stack.append(text); stack.close(into: &builder) { $0 }
        }
        paragraph("Title", .heading(1))
        stack.openRow(); stack.openCell(); paragraph("a")
        stack.openRow(); stack.openCell(); paragraph("b"); stack.closeCell(into: &builder); stack.closeRow(into: &builder)
        stack.closeCell(into: &builder)
        stack.openCell(); paragraph("c"); stack.closeCell(into: &builder); stack.closeRow(into: &builder)
        paragraph("TOCENTRY", .skipped)
        stack.open(.body); stack.append("x"); stack.newLine(); stack.append("y")
        stack.openRow(); stack.openCell(); stack.open(.heading(2)); stack.append("inner")
        stack.closeAll(into: &builder) { $0 }
        XCTAssertTrue(stack.isEmpty)
        let sections = builder.finish()
        XCTAssertEqual(sections.map(\.headingPath), [["Title"], ["Title", "inner"]])
        XCTAssertEqual(sections.map(\.text), ["a b | c", "x\ny"])
    }

    func testTextPastTheLimitIsCutWithAWarning() throws {
        // Broken markup far past the limit is never parsed: reading stops at the limit.
        let body = F.p("Long", style: "Heading1") + (1...100).map { F.p("Paragraph \($0) of a long document.") }.joined()
            + "<w:p><w:r><w:t>never reached</w:r></w:p>"
        var limits = ExtractionLimits()
        limits.maxTextBytes = 1000
        guard case .success(let r) = extract(try F.docx(body: body), "long.docx", limits: limits) else { return XCTFail("not read") }
        let text = r.document.sections.map(\.text).joined(separator: "\n\n")
        XCTAssertLessThanOrEqual(text.utf8.count, 1000)
        XCTAssertTrue(text.contains("Paragraph 20 of a long document."), text)
        XCTAssertFalse(text.contains("Paragraph 100 "), text)
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue((r.warnings.first ?? "").hasPrefix("extracted text cut at 1000 bytes (after paragraph "), "\(r.warnings)")
    }

    /// 20,000 nested elements before the text: no crash, no runaway stack; the parser's
    /// depth limit makes it malformed XML (or, where there is none, the text is read).
    func testDeepNestingNeverCrashes() throws {
        let open = String(repeating: "<w:sdt><w:sdtContent>", count: 20_000)
        let close = String(repeating: "</w:sdtContent></w:sdt>", count: 20_000)
        let data = try F.zip([("word/document.xml", F.documentXML(F.p("Before the nest.") + open + F.p("Deep inside.") + close))])
        switch extract(data, "deep.docx") {
        case .success(let r):
            XCTAssertEqual(r.document.text(0).components(separatedBy: "\n\n").first, "Before the nest.")
            if r.document.text(0).contains("Deep inside.") { XCTAssertEqual(r.warnings, []) }
            else { XCTAssertTrue((r.warnings.first ?? "").hasPrefix("word/document.xml: line 1: "), "\(r.warnings)") }
        case .failure(let e):
            XCTFail("\(e)")
        }
    }

    /// The build parses files on several threads: FoundationXML (libxml2) must give each the
    /// same result as alone.
    func testConcurrentExtractionsAgree() throws {
        let files = try (0..<8).map { i in
            try F.docx(body: F.p("Part \(i)", style: "Heading1") + (0..<200).map { F.p("Text \(i).\($0) here.") }.joined(), styles: Self.styles)
        }
        let alone = files.map { extracted($0, "c.docx") }
        let results = Locked([ParseResult?](repeating: nil, count: 64))
        DispatchQueue.concurrentPerform(iterations: 64) { k in
            if case .success(let r) = extract(files[k % 8], "c.docx") { results.update { $0[k] = r } }
        }
        let got = results.value
        for k in 0..<64 { XCTAssertEqual(got[k], alone[k % 8], "run \(k)") }
        XCTAssertEqual(alone[3].document.sections.first?.headingPath, ["Part 3"])
    }
}

/// A value shared between threads under a lock.
final class Locked<T>: @unchecked Sendable {
    private var stored: T
    private let lock = NSLock()
    init(_ value: T) { stored = value }
    var value: T { lock.lock(); defer { lock.unlock() }; return stored }
    func update(_ f: (inout T) -> Void) { lock.lock(); defer { lock.unlock() }; f(&stored) }
}
