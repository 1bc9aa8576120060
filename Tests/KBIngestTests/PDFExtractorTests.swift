import Foundation
import XCTest
import KBCore
import KBTestSupport
@testable import KBIngest

/// The PDF extractor on the PDFs of Tests/Fixtures/pdf (made by make-fixtures.sh): structure,
/// clean-up and page locations. Needs poppler-utils (pdftotext, pdftohtml).
final class PDFExtractorTests: XCTestCase {
    static let dir = Fixtures.root.appendingPathComponent("pdf")

    override func setUpWithError() throws {
        try XCTSkipIf(Subprocess.locate("pdftotext") == nil, "pdftotext is not installed (apt install poppler-utils)")
    }

    func extract(_ name: String, limits: ExtractionLimits = ExtractionLimits(), url: URL? = nil) -> Result<ParseResult, ExtractionError> {
        let url = url ?? Self.dir.appendingPathComponent(name)
        return PDFExtractor.extract(data: Data(), location: NativePath(url.path), path: "docs/\(name)", limits: limits)
    }

    func document(_ name: String) throws -> ParseResult {
        switch extract(name) {
        case .success(let r): return r
        case .failure(let e): XCTFail("\(name): \(e)"); throw e
        }
    }

    func section(_ doc: ParsedDocument, _ path: [String], file: StaticString = #filePath, line: UInt = #line) -> Section? {
        let s = doc.sections.first { $0.headingPath == path }
        if s == nil { XCTFail("no section \(path) in \(doc.sections.map(\.headingPath))", file: file, line: line) }
        return s
    }

    /// The first and last page of the paragraph holding `text`.
    func pages(of text: String, in doc: ParsedDocument, file: StaticString = #filePath, line: UInt = #line) -> ClosedRange<Int>? {
        for s in doc.sections {
            let lines = s.text.components(separatedBy: "\n")
            guard let sources = s.sourceLines, sources.count == lines.count else { continue }
            if let i = lines.firstIndex(where: { $0.contains(text) }) { return sources[i].line...sources[i].lastLine }
        }
        XCTFail("no paragraph holds \"\(text)\"", file: file, line: line)
        return nil
    }

    func testOutlineGivesNestedHeadingsOnTheirPages() throws {
        let r = try document("outline.pdf")
        let doc = r.document
        XCTAssertEqual(r.warnings, [])
        XCTAssertEqual(doc.title, "Outline Fixture Manual")
        XCTAssertEqual(doc.unit, .pages)
        XCTAssertEqual(doc.sections.map(\.headingPath), [["1 Installation"], ["1 Installation", "1.1 Linux"], ["2 Configuration"],
                                                         ["2 Configuration", "2.1 Network settings"], ["Appendix"]])
        let install = section(doc, ["1 Installation"])
        XCTAssertEqual(install?.text, "Installing the frobnicator needs a working compiler and about two hundred megabytes of disk space for the toolchain.")
        XCTAssertEqual(install.map { $0.lineStart...$0.lineEnd }, 1...1)
        let linux = section(doc, ["1 Installation", "1.1 Linux"])
        XCTAssertTrue(linux?.text.contains("zebrafish library") ?? false)
        XCTAssertEqual(linux.map { $0.lineStart...$0.lineEnd }, 2...2)
        // The bookmark in the middle of page 3 splits the page: the heading line is not text.
        let config = section(doc, ["2 Configuration"])
        XCTAssertEqual(config?.text, "The configuration file lives in the home folder and is read once at start-up; later edits need a restart.")
        let network = section(doc, ["2 Configuration", "2.1 Network settings"])
        XCTAssertEqual(network?.text, "The proxy setting takes a host and a port separated by a colon, and the quokka timeout is given in seconds.")
        XCTAssertEqual(network.map { $0.lineStart...$0.lineEnd }, 3...3)
        XCTAssertEqual(section(doc, ["Appendix"]).map { $0.lineStart...$0.lineEnd }, 4...4)
    }

    func testFontSizeGivesHeadingsWithoutAnOutline() throws {
        let doc = try document("fontsize.pdf").document
        // No Info title: the first heading.
        XCTAssertEqual(doc.title, "Gardening Basics")
        XCTAssertEqual(doc.sections.map(\.headingPath), [["Gardening Basics"], ["Gardening Basics", "Watering"], ["Gardening Basics", "Pruning"],
                                                         ["Pests"], ["Pests", "Slugs"]])
        // XML escapes in pdftotext's output come back as the characters.
        XCTAssertTrue(section(doc, ["Gardening Basics"])?.text.hasSuffix("Escaped text: a <b> & c > d stays literal.") ?? false)
        // Large type that ends like a sentence is body text of its section.
        XCTAssertTrue(section(doc, ["Gardening Basics", "Watering"])?.text.contains("\n\nBig type that ends like a sentence is not a heading.") ?? false)
        XCTAssertEqual(section(doc, ["Pests", "Slugs"]).map { $0.lineStart...$0.lineEnd }, 2...2)
        XCTAssertEqual(section(doc, ["Pests", "Slugs"])?.text, "Slugs feed at night, so a beer trap checked each morning catches most.")
    }

    func testRunningHeadersAndPageNumbersAreDroppedAndHyphensJoined() throws {
        let doc = try document("headers.pdf").document
        XCTAssertEqual(doc.title, "Quarterly Report")
        let text = doc.sections.map(\.text).joined(separator: "\n\n")
        XCTAssertFalse(text.contains("ACME"), text)
        XCTAssertFalse(text.contains("Page 3 of 5"), text)
        XCTAssertFalse(text.components(separatedBy: "\n").contains { !$0.isEmpty && $0.trimmingCharacters(in: .whitespaces).allSatisfy(\.isNumber) }, text)
        // A word split at a line end is joined; a hyphenated word written elsewhere keeps its hyphen.
        XCTAssertTrue(text.contains("Document retrieval improved once the archive was scanned"), text)
        XCTAssertTrue(text.contains("the pallets were consolidated into fewer trucks from a well-known haulier."), text)
        // The paragraph that runs over the page break is one paragraph on pages 2–3.
        XCTAssertTrue(text.contains("basement storage room and then moved the remaining boxes"), text)
        XCTAssertEqual(pages(of: "basement storage room and then moved", in: doc), 2...3)
        XCTAssertEqual(pages(of: "pelican project", in: doc), 5...5)
        XCTAssertEqual(pages(of: "northern region", in: doc), 1...1)
    }

    func testColumnsAreReadOneAfterTheOther() throws {
        let doc = try document("columns.pdf").document
        let text = doc.sections.map(\.text).joined(separator: "\n\n")
        XCTAssertEqual(doc.sections.map(\.headingPath), [["Field Notes"]])
        XCTAssertTrue(text.contains("Left column opens with the heron survey along the river, counting eleven nests near the old mill weir."), text)
        XCTAssertTrue(text.contains("Right column covers the badger setts in the beech wood, where fresh digging showed four active holes."), text)
        let heron = try XCTUnwrap(text.range(of: "heron")), badger = try XCTUnwrap(text.range(of: "badger"))
        XCTAssertLessThan(heron.lowerBound, badger.lowerBound)
    }

    func testChunksCitePages() throws {
        let doc = try document("headers.pdf").document
        let chunks = Chunker(maxTokens: 20, overlapTokens: 0, countTokens: MiniLM.count).chunks(of: doc)
        XCTAssertTrue(chunks.allSatisfy { $0.unit == .pages })
        let spanning = try XCTUnwrap(chunks.first { $0.text.contains("storage room and then moved") })
        XCTAssertEqual(spanning.lineStart...spanning.lineEnd, 2...3)
        // Pieces of paragraphs are packed: a chunk with the end of page 4 and page 5 says 4–5.
        let last = try XCTUnwrap(chunks.last)
        XCTAssertTrue(last.text.hasSuffix("the pelican project."), last.text)
        XCTAssertEqual(last.lineStart...last.lineEnd, 4...5)
        let first = try XCTUnwrap(chunks.first)
        XCTAssertTrue(first.text.hasPrefix("The first quarter"), first.text)
        XCTAssertEqual(first.lineStart...first.lineEnd, 1...1)
    }

    // MARK: Hostile PDFs

    func testEncryptedIsEncrypted() {
        XCTAssertEqual(extract("encrypted.pdf").failure, .encrypted)
    }

    func testImageOnlyHasNoText() {
        XCTAssertEqual(extract("image-only.pdf").failure, .noText)
    }

    func testTruncatedIsDamaged() throws {
        let data = try Data(contentsOf: Self.dir.appendingPathComponent("headers.pdf"))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kbpdf-\(UUID().uuidString).pdf")
        try data.prefix(data.count / 2).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try XCTUnwrap(extract("truncated.pdf", url: url).failure)
        guard case .damaged(let detail) = error else { return XCTFail("\(error)") }
        XCTAssertEqual(detail, "couldn't read xref table")
        XCTAssertEqual(error.description, "damaged: couldn't read xref table")
    }

    func testADamagedStreamGivesTheRestWithOneWarning() throws {
        // Garbage in the middle of the first page's compressed content stream: that page is lost.
        var bytes = [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent("headers.pdf")))
        let stream = Array("stream".utf8)
        let at = try XCTUnwrap((1500..<bytes.count).first { bytes[$0..<($0 + stream.count)].elementsEqual(stream) })
        bytes.replaceSubrange((at + 20)..<(at + 28), with: Array("\0garbage".utf8))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kbpdf-\(UUID().uuidString).pdf")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        guard case .success(let r) = extract("damaged.pdf", url: url) else { return XCTFail() }
        XCTAssertEqual(r.warnings.count, 1, "\(r.warnings)")
        XCTAssertTrue(r.warnings.first?.hasPrefix("pdftotext reported ") ?? false, "\(r.warnings)")
        XCTAssertTrue(r.warnings.first?.contains("(first: unexpected end of file in flate stream); the text may be incomplete") ?? false, "\(r.warnings)")
        let text = r.document.sections.map(\.text).joined()
        XCTAssertTrue(text.contains("Document retrieval improved") && text.contains("pelican"), text)
        XCTAssertFalse(text.contains("northern region"), text)
    }

    func testNotAPDFIsDamagedAndAMissingFileTooWithOneLine() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kbpdf-\(UUID().uuidString).pdf")
        try Data("this is not a PDF\n".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        guard case .damaged(let detail)? = extract("junk.pdf", url: url).failure else { return XCTFail() }
        XCTAssertFalse(detail.contains("\n"))
        guard case .damaged(let gone)? = extract("gone.pdf", url: url.appendingPathExtension("gone")).failure else { return XCTFail() }
        XCTAssertTrue(gone.contains("couldn't open file"), gone)
    }

    func testTextOverTheLimitIsCutWithAWarning() throws {
        var limits = ExtractionLimits()
        limits.maxTextBytes = 150
        guard case .success(let r) = extract("headers.pdf", limits: limits) else { return XCTFail() }
        let text = r.document.sections.map(\.text).joined()
        XCTAssertTrue(text.contains("northern region"))
        XCTAssertFalse(text.contains("pelican"))
        XCTAssertEqual(r.warnings.count, 1)
        XCTAssertTrue(r.warnings.first?.hasPrefix("text cut at page ") ?? false, "\(r.warnings)")
    }
}

extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e }; return nil }
}
