import Foundation
import KBCore
import KBRetrieval
import XCTest

/// A hit or chunk names its place in its file by unit: lines for text files, pages for a PDF,
/// paragraphs for DOCX/ODT/EPUB; exactly one pair of keys, and it reads back as written.
final class SourceLocationJSONTests: XCTestCase {
    func hit(_ unit: LocationUnit) -> SearchHit {
        SearchHit(id: "0123456789abcdef-2", rank: 1, score: 0.5, vectorScore: 0.5, bm25Score: nil, vectorRank: 1, lexicalRank: nil,
                  path: "manual.pdf", title: "Manual", lineStart: 12, lineEnd: 13, unit: unit, heading: ["Install"], text: "t")
    }

    func testEachUnitWritesItsOwnPairOfKeysAndReadsBack() throws {
        let expected: [(LocationUnit, String, String)] = [(.lines, "line_start", "line_end"), (.pages, "page", "page_end"),
                                                           (.paragraphs, "paragraph_start", "paragraph_end")]
        let all = Set(SourceLocationKeys.allCases.map(\.rawValue))
        for (unit, start, end) in expected {
            let data = try JSONEncoder().encode(hit(unit))
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual(object[start] as? Int, 12, "\(unit)")
            XCTAssertEqual(object[end] as? Int, 13, "\(unit)")
            XCTAssertEqual(Set(object.keys).intersection(all), [start, end], "\(unit): only its own pair")
            XCTAssertEqual(try JSONDecoder().decode(SearchHit.self, from: data), hit(unit))

            let chunk = ChunkContext.Chunk(id: "0123456789abcdef-0", ordinal: 0, lineStart: 12, lineEnd: 13, unit: unit, heading: [], text: "t")
            let c = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(chunk)) as? [String: Any])
            XCTAssertEqual(Set(c.keys).intersection(all), [start, end], "\(unit)")
            XCTAssertEqual(try JSONDecoder().decode(ChunkContext.Chunk.self, from: JSONEncoder().encode(chunk)), chunk)
        }
    }

    func testAHitWithoutAnyLocationIsADecodingError() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(hit(.lines))) as? [String: Any])
        object["line_start"] = nil
        object["line_end"] = nil
        XCTAssertThrowsError(try JSONDecoder().decode(SearchHit.self, from: JSONSerialization.data(withJSONObject: object)))
    }
}
