import XCTest
@testable import kbindex_bench

/// The parts of `kbindex-bench extract` that turn tool output into numbers: a misread page
/// count or a skewed embedding sample would report wrong rates without failing.
final class ExtractBenchTests: XCTestCase {
    func testPageCountFromPdfinfoOutput() {
        let out = """
            Title:           gnuplot documentation
            Producer:        pdfTeX-1.40.24
            Pages:           311
            Encrypted:       no
            Page size:       612 x 792 pts (letter)
            """
        XCTAssertEqual(ExtractBench.pageCount(pdfinfoOutput: out), 311)
        XCTAssertNil(ExtractBench.pageCount(pdfinfoOutput: "Syntax Error: Couldn't find trailer dictionary\n"))
        XCTAssertNil(ExtractBench.pageCount(pdfinfoOutput: "Pages:  many\n"))
    }

    func testEvenSampleSpreadsOverAllChunks() {
        XCTAssertEqual(ExtractBench.evenSample(0, of: 5), [0, 1, 2, 3, 4])
        XCTAssertEqual(ExtractBench.evenSample(9, of: 5), [0, 1, 2, 3, 4])
        XCTAssertEqual(ExtractBench.evenSample(4, of: 1000), [0, 250, 500, 750])
        let s = ExtractBench.evenSample(300, of: 1146)
        XCTAssertEqual(s.count, 300)
        XCTAssertEqual(Set(s).count, 300)
        XCTAssertEqual(s, s.sorted())
        XCTAssertGreaterThanOrEqual(s.last!, 1146 - (1146 + 299) / 300)  // the last stride reaches the end
    }
}
