import Foundation
import XCTest
import KBCore
import KBTestSupport
@testable import KBIngest

/// The fence around the PDF tools, proved with fake tools (shell scripts) that hang, allocate
/// without end, print without end or fill standard error: each costs its limit and is one
/// error, never a hang of the build or a crash. No test measures time: they assert the error.
final class PDFLimitsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbpdf-tools-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    /// An executable script `name` with `body`.
    func tool(_ name: String, _ body: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(("#!/bin/bash\n" + body + "\n").utf8).write(to: url)
        chmod(url.path, 0o755)
        return url.path
    }

    func extract(_ pdftotext: String?, limits: ExtractionLimits) -> Result<ParseResult, ExtractionError> {
        PDFExtractor.extract(location: NativePath(dir.appendingPathComponent("any.pdf").path), path: "any.pdf", limits: limits,
                             tools: PDFExtractor.Tools(pdftotext: pdftotext, pdftohtml: nil))
    }

    func testAToolThatHangsIsKilledAtTheTimeLimit() throws {
        // It and a child both hold the pipes: the whole process group is killed. Were the kill
        // broken, they would exit 0 after 20 s with no output: "no pages", a failure, not a stall.
        let hang = try tool("hang", "sleep 20 & sleep 20")
        var limits = ExtractionLimits()
        limits.timeLimit = 0.5
        XCTAssertEqual(extract(hang, limits: limits).failure, .timedOut(seconds: 0.5))
        XCTAssertEqual(ExtractionError.timedOut(seconds: 0.5).description, "extraction took longer than 0.5 s")
    }

    func testAToolOverTheMemoryLimitFailsAndOneUnderItDoesNot() throws {
        // Builds a 100 MB string in bash.
        let greedy = try tool("greedy", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}")
        var limits = ExtractionLimits()
        limits.memoryLimit = 64 << 20
        XCTAssertEqual(extract(greedy, limits: limits).failure, .toolFailed("pdftotext failed: out of memory (limit 64 MiB)"))
        // The same tool with room enough gets to print (not a PDF layout: no pages).
        limits.memoryLimit = 4 << 30
        XCTAssertEqual(extract(greedy, limits: limits).failure, .damaged("no pages"))
    }

    func testAToolThatPrintsWithoutEndIsCut() throws {
        let chatty = try tool("chatty", "yes '<page height=\"100\">'")
        var limits = ExtractionLimits()
        limits.maxTextBytes = 1000
        XCTAssertEqual(extract(chatty, limits: limits).failure, .toolFailed("pdftotext failed: its output for the first page is too large"))
    }

    func testOutputCutAfterWholePagesKeepsThemWithAWarning() throws {
        let page = #"<page height=\"800\"><flow><block><line yMin=\"300\" yMax=\"310\"><word yMin=\"300\" yMax=\"310\">Kept%d.</word></line></block></flow></page>"#
        let chatty = try tool("pages", "for i in 1 2; do printf '\(page)' $i; done; yes '<page height=\"800\">'")
        var limits = ExtractionLimits()
        limits.maxTextBytes = 1000
        guard case .success(let r) = extract(chatty, limits: limits) else { return XCTFail("\(extract(chatty, limits: limits))") }
        XCTAssertEqual(r.document.sections.map(\.text), ["Kept1.\n\nKept2."])
        XCTAssertEqual(r.document.sections.map { $0.lineStart...$0.lineEnd }, [1...2])
        XCTAssertEqual(r.warnings, ["pdftotext printed more than 1 MiB; the text is cut after the last whole page"])
    }

    func testACrashIsToolFailedWithItsLastMessage() throws {
        let crash = try tool("crash", "echo 'Internal Error: something broke' >&2; kill -SEGV $$")
        XCTAssertEqual(extract(crash, limits: ExtractionLimits()).failure, .toolFailed("pdftotext failed: killed by signal 11 (something broke)"))
        let odd = try tool("odd", "echo 'a complaint' >&2; exit 99")
        XCTAssertEqual(extract(odd, limits: ExtractionLimits()).failure, .toolFailed("pdftotext failed: exit status 99 (a complaint)"))
    }

    func testAHangingPdftohtmlCostsOnlyTheOutline() throws {
        let pdftotext = try XCTUnwrap(Subprocess.locate("pdftotext"))
        let hang = try tool("hang", "sleep 20")
        var limits = ExtractionLimits()
        limits.timeLimit = 3
        let result = PDFExtractor.extract(location: NativePath(Fixtures.root.appendingPathComponent("pdf/outline.pdf").path), path: "outline.pdf",
                                          limits: limits, tools: PDFExtractor.Tools(pdftotext: pdftotext, pdftohtml: hang))
        guard case .success(let r) = result else { return XCTFail("\(result)") }
        // Headings from font size instead: the heading lines are 16 and 13 pt over 10 pt text.
        XCTAssertEqual(r.document.sections.first { $0.text.contains("zebrafish") }?.headingPath, ["1 Installation", "1.1 Linux"])
    }

    func testAMissingToolIsToolMissing() throws {
        XCTAssertEqual(extract(nil, limits: ExtractionLimits()).failure, .toolMissing("pdftotext"))
        XCTAssertEqual(extract(dir.appendingPathComponent("nowhere").path, limits: ExtractionLimits()).failure, .toolMissing("pdftotext"))
        XCTAssertNil(Subprocess.locate("pdftotext", override: dir.appendingPathComponent("nowhere").path))
        XCTAssertNil(Subprocess.locate("kbindex-no-such-tool-\(UUID().uuidString)"))
        XCTAssertNotNil(Subprocess.locate("sh"))
    }

    func testAFullStandardErrorDoesNotDeadlockAndIsCapped() throws {
        // 1 MB on standard error before anything on standard output: read together, no deadlock.
        let noisy = try tool("noisy", "head -c 1000000 /dev/zero | tr '\\0' e >&2; echo done")
        guard case .success(let o) = Subprocess.run(noisy, [], limits: .init(time: 60, memory: nil, maxOutput: 100)) else { return XCTFail() }
        XCTAssertEqual(o.termination, .exited(0))
        XCTAssertEqual(String(decoding: o.stdout, as: UTF8.self), "done\n")
        XCTAssertEqual(o.stderr.count, Subprocess.stderrCap)
        XCTAssertFalse(o.outputCut)
    }

    func testArgumentsArePassedAsBytes() throws {
        let echo = try tool("echo", "printf '%s|' \"$@\"")
        let name: [UInt8] = Array("caf".utf8) + [0xE9] + Array(".pdf".utf8)  // Latin-1, not UTF-8
        guard case .success(let o) = Subprocess.run(echo, [Array("-x".utf8), name], limits: .init(time: 60, memory: 1 << 30, maxOutput: 100)) else { return XCTFail() }
        XCTAssertEqual(o.stdout, Array("-x|".utf8) + name + [UInt8(ascii: "|")])
    }

    func testAToolThatClosesItsOutputAndGoesOnIsKilledAtTheTimeLimit() throws {
        // Both pipes at end of file, the tool still running: without a deadline on waiting
        // for it, this took 6 s and was "exited(0)" (then "no pages").
        let quiet = try tool("quiet", "exec >&- 2>&-; sleep 6")
        var limits = ExtractionLimits()
        limits.timeLimit = 1
        XCTAssertEqual(extract(quiet, limits: limits).failure, .timedOut(seconds: 1))
    }

    func testTheToolGetsACPUTimeLimitPastTheTimeLimit() throws {
        try XCTSkipIf(Subprocess.prlimit == nil, "prlimit is not installed")
        let probe = try tool("probe", "echo \"cpu $(ulimit -t)\" >&2; exit 7")
        var limits = ExtractionLimits()
        limits.timeLimit = 2
        XCTAssertEqual(extract(probe, limits: limits).failure, .toolFailed("pdftotext failed: exit status 7 (cpu 7)"))
    }

    func testOutputCutIsAWarningEvenWhenTheToolExitedBeforeTheKill() {
        let pageXML = Array("<doc><page width=\"600\" height=\"800\"><flow><block><line yMin=\"300\" yMax=\"310\"><word yMin=\"300\" yMax=\"310\">Hello</word></line></block></flow></page>".utf8)
        let outcome = Subprocess.Outcome(termination: .exited(0), stdout: pageXML, stderr: [], outputCut: true)
        let checked = PDFExtractor.check(outcome, limits: ExtractionLimits(), maxOutput: 1 << 20)
        XCTAssertEqual(try? checked.get(), ["pdftotext printed more than 1 MiB; the text is cut after the last whole page"])
    }

    func testTheOutputCapIsAtMost256MiB() {
        XCTAssertEqual(PDFExtractor.outputCap(maxTextBytes: ExtractionLimits().maxTextBytes), min(256 << 20, ExtractionLimits().maxTextBytes * 32))
        XCTAssertEqual(PDFExtractor.outputCap(maxTextBytes: 64 << 20), 256 << 20)
        XCTAssertEqual(PDFExtractor.outputCap(maxTextBytes: Int.max), 256 << 20)
        XCTAssertEqual(PDFExtractor.outputCap(maxTextBytes: 1000), 1 << 20)
    }
}
