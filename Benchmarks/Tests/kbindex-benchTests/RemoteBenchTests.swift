import Foundation
import XCTest
@testable import kbindex_bench

/// The parts of `kbindex-bench remote` that choose the corpus and read kbindex's output: a
/// wrong staging order would leave questions unanswerable, a misread chunk count or eval
/// object would report wrong throughput or agreement without failing.
final class RemoteBenchTests: XCTestCase {
    func testCountsParseEachOnceAndRefuseNonPositive() {
        XCTAssertEqual(RemoteBench.counts("16, 64,16"), [16, 64])
        XCTAssertNil(RemoteBench.counts("4,0"))
        XCTAssertNil(RemoteBench.counts("four"))
        XCTAssertEqual(RemoteBench.counts(""), [])
    }

    func testRelevantDocumentsFromTSVAndJSONLines() {
        let tsv = "id\tquestion\trelevant_paths\n"
            + "a\tq one\tfaq/design.html#why,glossary.html#term-hashable\n"
            + "b\tq two\tglossary.html,notes/x.md:L10-L40,./book.pdf:P3-P5\n"
        XCTAssertEqual(RemoteBench.relevantDocuments(questionText: tsv),
                       ["faq/design.html", "glossary.html", "notes/x.md", "book.pdf"])
        let jsonl = #"{"id": "a", "question": "q", "relevant_paths": ["a.md#x", "b.md"]}"# + "\n"
            + #"{"id": "b", "question": "q", "relevant_paths": "c.md,a.md"}"# + "\n"
        XCTAssertEqual(RemoteBench.relevantDocuments(questionText: jsonl), ["a.md", "b.md", "c.md"])
    }

    func testStagingPutsRelevantDocumentsFirstSmallestFirstThenPathOrder() {
        let files = [
            RemoteBench.CorpusFile(path: "a.html", bytes: 10), RemoteBench.CorpusFile(path: "b.html", bytes: 500),
            RemoteBench.CorpusFile(path: "c.html", bytes: 300), RemoteBench.CorpusFile(path: "d.html", bytes: 1),
            RemoteBench.CorpusFile(path: "e.html", bytes: 2),
        ]
        let order = RemoteBench.stagingOrder(files, relevant: ["b.html", "c.html", "missing.html"], maxFiles: 4).map(\.path)
        XCTAssertEqual(order, ["c.html", "b.html", "a.html", "d.html"])
        XCTAssertEqual(RemoteBench.stagingOrder(files, relevant: [], maxFiles: 2).map(\.path), ["a.html", "b.html"])
    }

    func testGlobsSelectAsKbindexBuildReadsThem() throws {
        let sources = try RemoteBench.pattern("_sources/**"), genindex = try RemoteBench.pattern("genindex*")
        XCTAssertTrue(RemoteBench.selects(sources, "_sources/library/os.rst.txt"))
        XCTAssertFalse(RemoteBench.selects(sources, "library/_sources.html"))
        XCTAssertTrue(RemoteBench.selects(genindex, "genindex-A.html"))
        XCTAssertTrue(RemoteBench.selects(genindex, "deep/genindex.html"))  // no '/': a name at any depth
        XCTAssertFalse(RemoteBench.selects(genindex, "library/index.html"))
        XCTAssertThrowsError(try RemoteBench.pattern("[z-a]"))
    }

    func testEligibleFilesFollowIncludeAndExclude() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("remote-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        for f in ["a.html", "genindex-B.html", "_sources/a.txt", "lib/b.html", "lib/c.txt", ".hidden/d.html", "logo.png"] {
            let url = dir.appendingPathComponent(f)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(f.utf8).write(to: url)
        }
        let files = try RemoteBench.eligibleFiles(in: dir.path, include: ["*.html"], exclude: ["_sources/**", "genindex*"])
        XCTAssertEqual(files.map(\.path), ["a.html", "lib/b.html"])
        // Without globs: every file kbindex reads (no image, nothing hidden).
        XCTAssertEqual(try RemoteBench.eligibleFiles(in: dir.path, include: [], exclude: []).map(\.path),
                       ["_sources/a.txt", "a.html", "genindex-B.html", "lib/b.html", "lib/c.txt"])
        XCTAssertEqual(files[1].bytes, "lib/b.html".utf8.count)
    }

    func testChunkCountFromBuildSummary() {
        XCTAssertEqual(RemoteBench.chunkCount(summary: "warning: x\nindexed 37 files into 1,325 chunks (900.2 kB of text) in 39.0 s, 34 chunks/s\n"), 1325)
        XCTAssertEqual(RemoteBench.chunkCount(summary: "indexed 1 file into 1 chunk (10 B of text) in 0.1 s, 10 chunks/s"), 1)
        XCTAssertNil(RemoteBench.chunkCount(summary: "error: no files"))
    }

    func testLastJSONObjectSkipsWarnings() {
        let out = "warning: questions.tsv:3: question x: the relevant path 'a' is in no document\n{\"modes\": {}, \"questions\": []}\n"
        XCTAssertNotNil(RemoteBench.lastJSONObject(out)?["modes"])
        XCTAssertNil(RemoteBench.lastJSONObject("{not json\n"))
    }

    func testCompareReportsMetricDifferencesAndTopFiveAgreement() {
        func run(_ recall: Double, _ returned: [String: [String]]) -> [String: Any] {
            ["modes": ["vector": ["recall@1": recall, "mrr@10": 0.5, "latency_p50_ms": recall * 100]],
             "questions": returned.map { id, r in ["id": id, "modes": ["vector": ["returned": r]]] as [String: Any] }]
        }
        let local = run(0.40, ["q1": ["a", "b", "c", "d", "e", "f"], "q2": ["a", "b", "c", "d", "e"]])
        let remote = run(0.42, ["q1": ["a", "b", "c", "d", "e", "g"], "q2": ["b", "a", "c", "d", "x"]])
        let c = RemoteBench.compare(local: local, remote: remote)
        XCTAssertEqual(c["max_abs_metric_diff"] as! Double, 0.02, accuracy: 1e-12)  // latency (2 ms apart) is no metric
        let vector = (c["modes"] as! [String: Any])["vector"] as! [String: Any]
        XCTAssertEqual(vector["questions_compared"] as? Int, 2)
        XCTAssertEqual((vector["remote"] as? [String: Double])?["latency_p50_ms"] ?? 0, 42, accuracy: 1e-9)
        XCTAssertEqual(vector["top5_same"] as! Double, (1.0 + 0.8) / 2, accuracy: 1e-12)  // q1 all 5, q2 4 of 5
        XCTAssertEqual(vector["top5_identical"] as! Double, 0.5, accuracy: 1e-12)  // q2's order differs
    }
}
