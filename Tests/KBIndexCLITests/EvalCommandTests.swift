import Foundation
import KBEmbed
import KBTestSupport
import XCTest

/// `kbindex eval` on a small corpus whose answers are unambiguous.
final class EvalCommandTests: XCTestCase {
    var corpus: URL!
    private var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }

    override func setUpWithError() throws {
        _ = try InstalledModels.miniLM()
        corpus = FileManager.default.temporaryDirectory.appendingPathComponent("kbeval-\(UUID().uuidString)")
        let files = [
            "cats.md": "# Cats\n\nCats sleep up to sixteen hours a day and groom themselves with their tongues.\n",
            "rust.md": "# Rust\n\nThe borrow checker rejects two mutable references to the same value at once.\n",
            "bread.md": "# Bread\n\nKnead the dough for ten minutes, then let it rise for an hour before baking.\n",
            "guide/tides.md": "# Tides\n\nSpring tides happen at new and full moon.\n\n## Neap\n\nNeap tides happen at the quarter moons, when the sun and moon pull at right angles.\n",
        ]
        for (p, t) in files {
            let url = corpus.appendingPathComponent(p)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(t.utf8).write(to: url)
        }
        let r = try CLIRunner.run(["build", corpus.path, "--quiet"], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    override func tearDownWithError() throws { if let corpus { try? FileManager.default.removeItem(at: corpus) } }

    struct Report: Decodable {
        struct Metrics: Decodable {
            let questions: Int
            let recall1: Double, recall10: Double, mrr10: Double, hitRate: Double
            enum CodingKeys: String, CodingKey { case questions, recall1 = "recall@1", recall10 = "recall@10", mrr10 = "mrr@10", hitRate = "hit_rate" }
        }
        struct Q: Decodable {
            struct R: Decodable { let first_relevant_rank: Int?; let returned: [String] }
            let id: String
            let modes: [String: R]
        }
        struct Other: Decodable { let modes: [String: Metrics] }
        let modes: [String: Metrics]
        let questions: [Q]
        let fusion: String
        let compare: Other?
    }

    func testMetricsPerModeAndFailedQuestions() throws {
        let questions = corpus.appendingPathComponent("q.tsv")
        try Data("""
            id\tquestion\trelevant_paths
            cats\thow long do cats sleep?\tcats.md
            borrow\terror: cannot borrow as mutable more than once\trust.md
            neap\twhen are neap tides?\tguide/tides.md:L5-L7
            wrong\thow long should dough rise?\tcats.md

            """.utf8).write(to: questions)
        let index = corpus.appendingPathComponent(".kbindex").path
        let r = try CLIRunner.run(["eval", questions.path, "--index", index, "--json", "--compare", index], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
        XCTAssertEqual(Set(report.modes.keys), ["lexical", "vector", "hybrid"])
        XCTAssertEqual(report.fusion, "convex fusion, alpha 0.85")
        let v = try XCTUnwrap(report.modes["vector"])
        // Three questions find their document first; "wrong" names a page that does not answer it.
        XCTAssertEqual(v.questions, 4)
        XCTAssertEqual(report.questions.prefix(3).map { $0.modes["vector"]?.first_relevant_rank }, [1, 1, 1])
        XCTAssertEqual(v.recall1, 0.75)
        XCTAssertEqual(v.hitRate, 1)  // top 10 of 5 chunks holds every document
        let wrongRank = try XCTUnwrap(report.questions[3].modes["vector"]?.first_relevant_rank)
        XCTAssertGreaterThan(wrongRank, 1)
        XCTAssertEqual(v.mrr10, (3 + 1 / Double(wrongRank)) / 4, accuracy: 1e-9)
        XCTAssertTrue(report.questions[2].modes["vector"]!.returned[0].hasPrefix("guide/tides.md:L"), "\(report.questions[2].modes)")
        XCTAssertEqual(report.compare?.modes["vector"]?.recall1, 0.75)

        // The human table, and a question no top 10 can answer listed as failed.
        try Data("id\tquestion\trelevant_paths\ncats\thow long do cats sleep?\tcats.md\nmissing\tsourdough starter\tnot-indexed.md\n".utf8).write(to: questions)
        let h = try CLIRunner.run(["eval", questions.path, "--index", index], environment: env)
        XCTAssertEqual(h.status, 0, h.stderr)
        let lines = h.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "2 questions from \(questions.path); hybrid: convex fusion, alpha 0.85; precision \(Precision.default)")
        XCTAssertTrue(lines[1].hasPrefix("index") && lines[1].contains("recall@1  recall@5  recall@10  MRR@10  nDCG@10  hit rate  p50 ms  p95 ms"), lines[1])
        // One row per mode: lexical, vector, hybrid.
        XCTAssertEqual(lines[3...5].map { $0.split(separator: " ")[1] }, ["lexical", "vector", "hybrid"])
        XCTAssertTrue(lines[4].hasPrefix("\(index)  vector      0.500     0.500      0.500   0.500    0.500     0.500"), lines[4])
        XCTAssertTrue(h.stdout.contains("\nfailed (lexical): 1 of 2 questions"), h.stdout)
        XCTAssertTrue(h.stdout.contains("\nfailed (vector): 1 of 2 questions had no relevant passage in the top 10\n  missing: sourdough starter\n    wanted:   not-indexed.md\n    returned: "), h.stdout)
        // A relevant path that no document of the index has (a typo would score 0 silently)
        // is a warning naming the question.
        XCTAssertEqual(h.stderr, "warning: \(questions.path):3: question missing: the relevant path 'not-indexed.md' is in no document of \(index) (a typo?): it cannot be found\n")

        // Rank fusion, named with its settings.
        let rrf = try CLIRunner.run(["eval", questions.path, "--index", index, "--fusion", "rrf", "--rrf-k", "20", "--lexical-weight", "0.5"], environment: env)
        XCTAssertEqual(rrf.status, 0, rrf.stderr)
        XCTAssertTrue(rrf.stdout.hasPrefix("2 questions from \(questions.path); hybrid: reciprocal rank fusion, c 20, weights 1 vector / 0.5 lexical; precision \(Precision.default)\n"), rrf.stdout)
        let bad = try CLIRunner.run(["eval", questions.path, "--index", index, "--alpha", "1.5"], environment: env)
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("--alpha must be between 0 and 1"), bad.stderr)
    }

    func testOneQuestionIsCountedInTheSingular() throws {
        let questions = corpus.appendingPathComponent("one.tsv")
        try Data("id\tquestion\trelevant_paths\ncats\thow long do cats sleep?\tcats.md\n".utf8).write(to: questions)
        let r = try CLIRunner.run(["eval", questions.path, "--index", corpus.appendingPathComponent(".kbindex").path], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("1 question from \(questions.path);"), r.stdout)
        XCTAssertEqual(r.stderr, "", "every relevant path is indexed: no warning")
    }

    func testAMalformedQuestionFileIsAClearErrorWithItsLine() throws {
        let questions = corpus.appendingPathComponent("bad.tsv")
        try Data("id\tquestion\trelevant_paths\nok\tfine\tcats.md\nbad\tno paths column\n".utf8).write(to: questions)
        let r = try CLIRunner.run(["eval", questions.path, "--index", corpus.appendingPathComponent(".kbindex").path], environment: env)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "error: \(questions.path):3: expected 3 tab-separated fields (id, question, relevant_paths), found 2\n")
    }
}
