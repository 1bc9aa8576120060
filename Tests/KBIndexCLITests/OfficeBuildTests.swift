import Foundation
import KBTestSupport
import XCTest
import ZIPFoundation

/// `kbindex build` on Word, OpenDocument and EPUB files next to markdown: the good ones are
/// indexed and cited by paragraph, each bad one is one warning line naming it and the
/// reason, and the build succeeds.
final class OfficeBuildTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 15).writeTemporary()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kboffice-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let corpus { try? FileManager.default.removeItem(at: corpus) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func kb(_ args: [String]) throws -> CLIRunner.Result { try CLIRunner.run(args) }

    static func zip(_ entries: [(String, String)]) throws -> Data {
        let archive = try Archive(data: Data(), accessMode: .create)
        for (name, text) in entries {
            let data = Data(text.utf8)
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .deflate) { position, size in
                data.subdata(in: Int(position)..<(Int(position) + size))
            }
        }
        return try XCTUnwrap(archive.data)
    }

    static let w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

    static func docx(_ paragraphs: [(String?, String)]) throws -> Data {
        let body = paragraphs.map { style, text in
            "<w:p>\(style.map { "<w:pPr><w:pStyle w:val=\"\($0)\"/></w:pPr>" } ?? "")<w:r><w:t>\(text)</w:t></w:r></w:p>"
        }.joined()
        return try zip([
            ("word/document.xml", "<?xml version=\"1.0\"?><w:document xmlns:w=\"\(w)\"><w:body>\(body)</w:body></w:document>"),
            ("word/styles.xml", "<?xml version=\"1.0\"?><w:styles xmlns:w=\"\(w)\"><w:style w:type=\"paragraph\" w:styleId=\"Berschrift\">"
                + "<w:name w:val=\"Chapter\"/><w:pPr><w:outlineLvl w:val=\"0\"/></w:pPr></w:style></w:styles>"),
        ])
    }

    func put(_ name: String, _ data: Data) throws {
        let url = corpus.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    struct Hit: Decodable {
        let path: String
        let heading: [String]
        let text: String
        let paragraph_start: Int?
        let paragraph_end: Int?
        let line_start: Int?
    }

    func testGoodOfficeFilesAreIndexedAndBadOnesAreOneWarningEach() throws {
        try put("notes.md", Data("# Notes\n\nThe markdown file mentions gardening.\n".utf8))
        try put("handbook.docx", try Self.docx([
            ("Berschrift", "Deployment"),
            (nil, "Intro paragraph about servers."),
            ("Heading2", "Rollback procedure"),
            (nil, "To undo a release, run the zebracorn rollback script twice."),
        ]))
        let ns = "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\""
        try put("minutes.odt", try Self.zip([("content.xml", "<office:document-content \(ns)><office:body><office:text>"
            + "<text:h text:outline-level=\"1\">Meeting</text:h><text:p>We agreed on the quokkaplan budget.</text:p></office:text></office:body></office:document-content>")]))
        try put("book.epub", try Self.zip([
            ("META-INF/container.xml", "<container xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles><rootfile full-path=\"book.opf\" media-type=\"application/oebps-package+xml\"/></rootfiles></container>"),
            ("book.opf", "<package xmlns=\"http://www.idpf.org/2007/opf\"><metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Tales</dc:title></metadata>"
                + "<manifest><item id=\"a\" href=\"a.xhtml\" media-type=\"application/xhtml+xml\"/></manifest><spine><itemref idref=\"a\"/></spine></package>"),
            ("a.xhtml", "<html><body><h1>Voyage</h1><p>The narwhalship sailed north.</p></body></html>"),
        ]))
        // Bad ones: not a zip, a zip without its document, a zip bomb, broken XML from the start.
        try put("fake.docx", Data("plain text pretending to be Word\n".utf8))
        try put("empty.odt", try Self.zip([("mimetype", "application/vnd.oasis.opendocument.text")]))
        try put("bomb.docx", try Self.zip([("word/document.xml", "<w:document xmlns:w=\"\(Self.w)\"><w:body><w:p><w:r><w:t>"
            + String(repeating: "z", count: 8 << 20) + "</w:t></w:r></w:p></w:body></w:document>")]))
        try put("broken.epub", try Self.zip([("META-INF/container.xml", "<container><rootfiles><rootfile full-path=")]))

        let r = try kb(["build", corpus.path, "--model", model.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("files: 4 added, 0 changed, 0 deleted, 0 unchanged\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("4 not extracted"), r.stdout)
        let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        XCTAssertEqual(warnings.count, 4, r.stderr)
        for (file, reason) in [("fake.docx", "malformed: not a zip archive"), ("empty.odt", "malformed: missing content.xml"),
                               ("bomb.docx", "too much to decompress: word/document.xml inflates to more than 200 times"),
                               ("broken.epub", "malformed: missing META-INF/container.xml")] {
            XCTAssertEqual(warnings.filter { $0.hasPrefix("warning: \(file): skipped (\(reason)") }.count, 1, "\(file): \(r.stderr)")
        }

        func query(_ q: String) throws -> [Hit] {
            let out = try kb(["query", "--index", indexDir.path, "--model", model.path, "--mode", "lexical", "--json", "-k", "3", q])
            XCTAssertEqual(out.status, 0, out.stderr)
            return try out.stdoutLines.map { try JSONDecoder().decode(Hit.self, from: Data($0.utf8)) }
        }
        let docx = try XCTUnwrap(try query("zebracorn rollback").first)
        XCTAssertEqual(docx.path, "handbook.docx")
        XCTAssertEqual(docx.heading, ["Deployment", "Rollback procedure"])
        XCTAssertTrue(docx.text.contains("run the zebracorn rollback script twice"), docx.text)
        // "Rollback procedure" is paragraph 3, its text (the chunk) paragraph 4.
        XCTAssertEqual(docx.paragraph_start, 4)
        XCTAssertEqual(docx.paragraph_end, 4)
        XCTAssertNil(docx.line_start)
        let odt = try XCTUnwrap(try query("quokkaplan").first)
        XCTAssertEqual(odt.path, "minutes.odt")
        XCTAssertEqual(odt.heading, ["Meeting"])
        let epub = try XCTUnwrap(try query("narwhalship").first)
        XCTAssertEqual(epub.path, "book.epub")
        XCTAssertEqual(epub.heading, ["Voyage"])

        // Human output cites the paragraphs.
        let human = try kb(["query", "--index", indexDir.path, "--model", model.path, "--mode", "lexical", "-k", "1", "zebracorn"])
        XCTAssertTrue(human.stdout.contains("handbook.docx, ¶ 4  Deployment › Rollback procedure"), human.stdout)
    }
}
