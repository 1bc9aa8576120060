import Foundation
import KBCore
import KBEval
import XCTest

final class MetricsTests: XCTestCase {
    func chunk(_ p: String, _ a: Int, _ b: Int) -> RetrievedChunk { RetrievedChunk(path: p, lines: a...b) }

    /// Worked by hand. Places: a.md (whole) and b.md lines 10-20.
    /// Ranks: 1 x.md (no), 2 a.md (yes, new), 3 a.md (yes, not new), 4 b.md 1-9 (no: outside
    /// the range), 5 b.md 15-30 (yes, new).
    /// recall@1 = 0, recall@5 = recall@10 = 2/2; MRR = 1/2;
    /// DCG = 1/log2(3) + 1/log2(6) = 0.6309298 + 0.3868528 = 1.0177826;
    /// IDCG = 1/log2(2) + 1/log2(3) = 1.6309298; nDCG = 0.6240502.
    func testAHandWorkedQuestion() {
        let ranked = [chunk("x.md", 1, 5), chunk("a.md", 1, 3), chunk("a.md", 4, 9), chunk("b.md", 1, 9), chunk("b.md", 15, 30)]
        let s = QuestionScore(ranked: ranked, relevant: [Relevant(path: "a.md"), Relevant(path: "b.md", lines: 10...20)])
        XCTAssertEqual(s.recallAt1, 0)
        XCTAssertEqual(s.recallAt5, 1)
        XCTAssertEqual(s.recallAt10, 1)
        XCTAssertEqual(s.reciprocalRank, 0.5)
        XCTAssertEqual(s.ndcgAt10, 0.6240502, accuracy: 1e-6)
        XCTAssertTrue(s.hit)
        XCTAssertEqual(s.firstRelevantRank, 2)
    }

    /// Only the first 10 count; duplicates of a place count once; a miss is all zeros.
    func testCutOffDuplicatesAndMisses() {
        let eleven = (1...10).map { chunk("n\($0).md", 1, 1) } + [chunk("a.md", 1, 1)]
        let late = QuestionScore(ranked: eleven, relevant: [Relevant(path: "a.md")])
        XCTAssertEqual([late.recallAt10, late.reciprocalRank, late.ndcgAt10], [0, 0, 0])
        XCTAssertFalse(late.hit)
        XCTAssertNil(late.firstRelevantRank)
        // a.md and a.md#intro are one document: one place, found at rank 1.
        let dup = QuestionScore(ranked: [chunk("a.md", 1, 2)], relevant: [Relevant(path: "a.md"), Relevant(path: "a.md", anchor: "intro")])
        XCTAssertEqual([dup.recallAt1, dup.reciprocalRank, dup.ndcgAt10], [1, 1, 1])
        // Three places, one found at rank 3: recall 1/3, nDCG = (1/log2 4) / (1 + 1/log2 3 + 1/log2 4) = 0.5 / 2.1309298.
        let three = QuestionScore(ranked: [chunk("x", 1, 1), chunk("y", 1, 1), chunk("c", 1, 1)],
                                  relevant: [Relevant(path: "a"), Relevant(path: "b"), Relevant(path: "c")])
        XCTAssertEqual(three.recallAt5, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(three.recallAt1, 0)
        XCTAssertEqual(three.ndcgAt10, 0.5 / 2.1309298, accuracy: 1e-6)
        XCTAssertEqual(three.reciprocalRank, 1.0 / 3, accuracy: 1e-12)
        // An empty result list.
        XCTAssertEqual(QuestionScore(ranked: [], relevant: [Relevant(path: "a")]).recallAt10, 0)
    }

    func testSummaryIsTheMeanAndNearestRankPercentiles() {
        let hit = QuestionScore(ranked: [chunk("x.md", 1, 5), chunk("a.md", 1, 3)], relevant: [Relevant(path: "a.md")])
        let miss = QuestionScore(ranked: [chunk("x.md", 1, 5)], relevant: [Relevant(path: "a.md")])
        let s = EvalSummary(scores: [hit, miss], latencies: [0.030, 0.010])
        XCTAssertEqual(s.questions, 2)
        XCTAssertEqual(s.recallAt5, 0.5)
        XCTAssertEqual(s.mrrAt10, 0.25)
        XCTAssertEqual(s.ndcgAt10, (1 / log2(3.0)) / 2, accuracy: 1e-12)
        XCTAssertEqual(s.hitRate, 0.5)
        XCTAssertEqual(s.latencyP50, 0.010)
        XCTAssertEqual(s.latencyP95, 0.030)
        XCTAssertEqual(EvalSummary.percentile([5, 1, 4, 2, 3], 50), 3)
        XCTAssertEqual(EvalSummary.percentile([5, 1, 4, 2, 3], 95), 5)
        XCTAssertEqual(EvalSummary.percentile([7], 95), 7)
    }
}

final class QuestionSetTests: XCTestCase {
    func parse(_ s: String) throws -> [Question] { try QuestionSet.parse(Data(s.utf8), file: "q.tsv") }

    func testTSVAndJSONLinesGiveTheSameQuestions() throws {
        let tsv = "id\tquestion\trelevant_paths\r\n\nq1\t how do I read a file? \tlibrary/io.html#io.open,tutorial/inputoutput.html\nq2\tlog rotation\tops/log.md:L10-L40\n"
        let jsonl = """
            {"id": "q1", "question": "how do I read a file?", "relevant_paths": ["library/io.html#io.open", "tutorial/inputoutput.html"]}

            {"id": "q2", "question": "log rotation", "relevant_paths": "ops/log.md:L10-L40"}
            """
        let a = try parse(tsv), b = try parse(jsonl)
        XCTAssertEqual(a.map(\.id), ["q1", "q2"])
        XCTAssertEqual(a.map(\.text), ["how do I read a file?", "log rotation"])
        XCTAssertEqual(a[0].relevant, [Relevant(path: "library/io.html", anchor: "io.open"), Relevant(path: "tutorial/inputoutput.html")])
        XCTAssertEqual(a[1].relevant, [Relevant(path: "ops/log.md", lines: 10...40)])
        XCTAssertEqual(a.map(\.line), [3, 4])
        XCTAssertEqual(b.map(\.id), a.map(\.id))
        XCTAssertEqual(b.map(\.relevant), a.map(\.relevant))
        XCTAssertEqual(b.map(\.line), [1, 3])
        XCTAssertEqual(Relevant(parsing: "a.md:L7"), Relevant(path: "a.md", lines: 7...7))
    }

    /// A PDF's places are pages: `:P3-P5`, `:P3`, or `#page=3` as PDF viewers read it; a path
    /// that merely contains ":P" or ":L" followed by a letter stays a path.
    func testPageRanges() {
        XCTAssertEqual(Relevant(parsing: "m/manual.pdf:P3-P5"), Relevant(path: "m/manual.pdf", lines: 3...5, unit: .pages))
        XCTAssertEqual(Relevant(parsing: "manual.pdf:P12"), Relevant(path: "manual.pdf", lines: 12...12, unit: .pages))
        XCTAssertEqual(Relevant(parsing: "manual.pdf#page=12"), Relevant(path: "manual.pdf", lines: 12...12, unit: .pages))
        XCTAssertEqual(Relevant(parsing: "manual.pdf#pages"), Relevant(path: "manual.pdf", anchor: "pages"))
        XCTAssertNil(Relevant(parsing: "manual.pdf:P5-P3"))
        XCTAssertNil(Relevant(parsing: "manual.pdf:P5-L6"))
        XCTAssertEqual(Relevant(parsing: "notes:Plan.md"), Relevant(path: "notes:Plan.md"))
        XCTAssertEqual(RetrievedChunk(path: "manual.pdf", lines: 3...4, unit: .pages).location, "manual.pdf:P3-P4")
        XCTAssertEqual(RetrievedChunk(path: "a.md", lines: 3...4).location, "a.md:L3-L4")
        XCTAssertEqual(RetrievedChunk(path: "a.docx", lines: 3...4, unit: .paragraphs).location, "a.docx")
        let pages = Relevant(parsing: "manual.pdf:P4-P6")!
        XCTAssertTrue(pages.matches(path: "manual.pdf", chunkLines: 6...7, unit: .pages))
        XCTAssertFalse(pages.matches(path: "manual.pdf", chunkLines: 7...7, unit: .pages))
        // A range counts one thing: pages never match a chunk's lines or paragraphs, and back.
        XCTAssertFalse(pages.matches(path: "manual.pdf", chunkLines: 4...4, unit: .paragraphs))
        XCTAssertFalse(Relevant(parsing: "a.docx:L1")!.matches(path: "a.docx", chunkLines: 1...1, unit: .paragraphs))
        XCTAssertTrue(Relevant(parsing: "a.docx")!.matches(path: "a.docx", chunkLines: 1...1, unit: .paragraphs))
        // Scored end to end: the page place is found by the page chunk at rank 2, not by the
        // lines chunk with the same numbers at rank 1.
        let score = QuestionScore(ranked: [RetrievedChunk(path: "manual.pdf", lines: 5...5),
                                           RetrievedChunk(path: "manual.pdf", lines: 5...5, unit: .pages)],
                                  relevant: [pages, Relevant(parsing: "manual.pdf:P40")!])
        XCTAssertEqual(score.firstRelevantRank, 2)
        XCTAssertEqual(score.recallAt5, 0.5)
        XCTAssertEqual(pages.location, "manual.pdf:P4-P6")
        XCTAssertEqual(Relevant(parsing: "manual.pdf#page=7")!.location, "manual.pdf:P7")
        XCTAssertEqual(Relevant(parsing: "a.html#io.open")!.location, "a.html#io.open")
    }

    func testMalformedFilesNameTheLine() {
        func error(_ s: String) -> String {
            do { _ = try parse(s); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(""), "q.tsv: no questions (expected the TSV header 'id<TAB>question<TAB>relevant_paths' or JSON lines)")
        XCTAssertEqual(error("\nid,question,paths\n"), "q.tsv:2: the first line must be the header 'id<TAB>question<TAB>relevant_paths' (or use JSON lines)")
        XCTAssertEqual(error("id\tquestion\trelevant_paths\nq1\tonly two\n"), "q.tsv:2: expected 3 tab-separated fields (id, question, relevant_paths), found 2")
        XCTAssertEqual(error("id\tquestion\trelevant_paths\nq1\ta\tx.md\n\nq1\tb\ty.md\n"), "q.tsv:4: id 'q1' was already used on line 2")
        XCTAssertEqual(error("id\tquestion\trelevant_paths\nq1\ta\tx.md:L20-L10\n"), "q.tsv:2: 'x.md:L20-L10' is not a relevant path (path, path#anchor, path:L10-L40 or, for a PDF, path:P3-P5, relative to the indexed folder)")
        XCTAssertEqual(error("id\tquestion\trelevant_paths\nq1\ta\t/etc/x.md\n"), "q.tsv:2: '/etc/x.md' is not a relevant path (path, path#anchor, path:L10-L40 or, for a PDF, path:P3-P5, relative to the indexed folder)")
        XCTAssertEqual(error("id\tquestion\trelevant_paths\nq1\ta\t,\n"), "q.tsv:2: no relevant paths")
        XCTAssertEqual(error("id\tquestion\trelevant_paths\nq1\t \tx.md\n"), "q.tsv:2: the question is empty")
        XCTAssertEqual(error("{\"id\": \"a\", \"question\": \"q\", \"relevant_paths\": [\"x\"]}\n{\"id\": 3.5}\n"), "q.tsv:2: missing \"id\" (a string)")
        XCTAssertEqual(error("{\"id\": \"a\", \"question\": \"q\", \"relevant_paths\": [\"x\"]}\n{not json\n"), "q.tsv:2: not a JSON object")
        XCTAssertEqual(error("{\"id\": \"a\", \"question\": \"q\"}\n"), "q.tsv:1: missing \"relevant_paths\" (an array of strings, or one comma-separated string)")
    }

    /// A relevant path in no document of the index is reported with its question, once per
    /// question, in file order; anchors and line ranges do not hide it.
    func testUnknownRelevantPathsAreFoundWithTheirQuestion() throws {
        let set = try parse("id\tquestion\trelevant_paths\na\tfirst\tdocs/a.md,docs/typo.md#x\nb\tsecond\tdocs/b.md:L3-L9,docs/typo.md:L1,docs/typo.md\nc\tthird\tdocs/a.md\n")
        let unknown = QuestionSet.unknownPaths(in: set, documents: ["docs/a.md", "docs/b.md"])
        XCTAssertEqual(unknown.map { "\($0.question.id)@\($0.question.line): \($0.path)" }, ["a@2: docs/typo.md", "b@3: docs/typo.md"])
        XCTAssertTrue(QuestionSet.unknownPaths(in: set, documents: ["docs/a.md", "docs/b.md", "docs/typo.md"]).isEmpty)
    }
}
