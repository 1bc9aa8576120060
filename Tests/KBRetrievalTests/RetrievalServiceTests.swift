import Foundation
import KBFormat
import KBRetrieval
import KBSearch
import KBTestSupport
import XCTest

/// The retrieval library as a server uses it: answers equal `kbindex query --json`, concurrent
/// questions share batches, chunk ids survive compaction and rebuilds, and reloads never
/// take an index away from a request or serve a broken one. Indexes are built by the real
/// `kbindex` binary with a tiny model (cheap to embed; what is tested is the library).
final class RetrievalServiceTests: XCTestCase {
    var corpus: URL!
    var model: URL!
    var scratch: [URL] = []
    var indexDir: URL { corpus.appendingPathComponent(".kbindex") }

    override func setUpWithError() throws {
        model = try TinyModel(seed: 11).writeTemporary()
        corpus = try folder("kbretrieval")
    }

    override func tearDownWithError() throws {
        for u in scratch { try? FileManager.default.removeItem(at: u) }
        if let model { try? FileManager.default.removeItem(at: model) }
    }

    func folder(_ prefix: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        scratch.append(u)
        return u
    }

    func put(_ name: String, _ text: String, in root: URL? = nil) throws {
        let url = (root ?? corpus).appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func kb(_ args: [String]) throws {
        let r = try CLIRunner.run(args)
        XCTAssertEqual(r.status, 0, "kbindex \(args.joined(separator: " ")): \(r.stderr)")
    }

    func build(_ root: URL? = nil, model: URL? = nil) throws {
        try kb(["build", (root ?? corpus).path, "--quiet", "--model", (model ?? self.model).path])
    }

    /// Three documents, the middle one long enough for several chunks.
    func corpusOfThree() throws {
        try put("soup.md", "# Soup\n\nRinse the lentils and simmer them with onions for half an hour.\n")
        try put("notes/tea.md", "# Tea\n\nGreen tea wants water below boiling, about eighty degrees.\n")
        var long = "# Bread\n\n"
        for i in 0..<60 { long += "## Step \(i)\n\nKnead the dough number \(i) and let it rise near the oven, then shape loaf \(i).\n\n" }
        try put("bread.md", long)
        try build()
    }

    func service(window: Duration = .milliseconds(2), maxBatch: Int = 64) throws -> RetrievalService {
        try RetrievalService(indexes: [("docs", corpus)], options: ServiceOptions(model: model.path, batchWindow: window, maxBatch: maxBatch))
    }

    // MARK: - Answers

    func testAnswersEqualQueryJSONInEveryMode() async throws {
        try corpusOfThree()
        let s = try service()
        for mode in SearchMode.allCases {
            for question in ["lentil soup", "how hot should the water be for green tea", "knead dough 7"] {
                let r = try CLIRunner.run(["query", "--index", indexDir.path, "--model", model.path, "--json", "-k", "4", "--mode", mode.rawValue, question])
                XCTAssertEqual(r.status, 0, r.stderr)
                let expected = try r.stdoutLines.map { try JSONDecoder().decode(SearchHit.self, from: Data($0.utf8)) }
                let got = try await s.search([SearchQuery(question, k: 4, mode: mode)], index: nil)
                XCTAssertEqual(got.count, 1)
                XCTAssertEqual(got[0].mode, mode)
                XCTAssertEqual(got[0].index, "docs")
                XCTAssertEqual(got[0].generation, 1)
                XCTAssertEqual(got[0].hits, expected, "\(mode) \(question)")
                XCTAssertFalse(expected.isEmpty)
            }
        }
    }

    func testConcurrentQuestionsAreAnsweredAsOneBatch() async throws {
        try corpusOfThree()
        // A window far longer than the test: only a full batch (6 questions) can start it.
        let batched = try service(window: .seconds(600), maxBatch: 6)
        let sizes = Sizes()
        batched.setBatchObserver { sizes.add($0) }
        let questions = ["lentils", "green tea", "dough 3", "oven", "boiling water", "loaf 12"]
        let answers = try await withThrowingTaskGroup(of: (Int, SearchResult).self) { group in
            for (i, q) in questions.enumerated() {
                let mode: SearchMode = i % 3 == 0 ? .vector : (i % 3 == 1 ? .hybrid : .lexical)
                group.addTask { (i, try await batched.search([SearchQuery(q, k: 3, mode: mode)], index: "docs")[0]) }
            }
            var out: [Int: SearchResult] = [:]
            for try await (i, r) in group { out[i] = r }
            return out
        }
        XCTAssertEqual(sizes.all, [6], "the six questions should have been one batch")
        // The same answers as one question at a time.
        let single = try service(window: .zero)
        for (i, q) in questions.enumerated() {
            let mode: SearchMode = i % 3 == 0 ? .vector : (i % 3 == 1 ? .hybrid : .lexical)
            let alone = try await single.search([SearchQuery(q, k: 3, mode: mode)], index: nil)[0]
            XCTAssertEqual(answers[i], alone, q)
        }
    }

    func testWaitingQuestionsAreBoundedAndACancelledRequestLeavesTheQueue() async throws {
        try corpusOfThree()
        // A window longer than the test: the first job waits until it is cancelled.
        let s = try RetrievalService(indexes: [("docs", corpus)],
                                     options: ServiceOptions(model: model.path, batchWindow: .seconds(600), maxBatch: 4, maxWaiting: 4))
        let first = Task { try await s.search([SearchQuery("tea"), SearchQuery("soup"), SearchQuery("bread")], index: nil) }
        while s.waitingQuestions < 3 { await Task.yield() }
        // Two more would make five waiting, over the limit of four: refused at once.
        await assertThrows(try await s.search([SearchQuery("oven"), SearchQuery("loaf")], index: nil), "too busy to answer now")
        XCTAssertEqual(s.waitingQuestions, 3)
        first.cancel()
        do {
            _ = try await first.value
            XCTFail("the cancelled request was answered")
        } catch {
            XCTAssertTrue(error is CancellationError, "\(error)")
        }
        XCTAssertEqual(s.waitingQuestions, 0)
        // One question alone fits (and a full batch of four starts without the window).
        let four = try await s.search([SearchQuery("tea"), SearchQuery("soup"), SearchQuery("bread"), SearchQuery("oven")], index: nil)
        XCTAssertEqual(four.count, 4)
    }

    func testRequestsThatMeanNothingAreClearErrors() async throws {
        try corpusOfThree()
        let s = try service()
        await assertThrows(try await s.search([SearchQuery("  ")], index: nil), "the query is empty")
        await assertThrows(try await s.search([SearchQuery("tea", k: 0)], index: nil), "k must be a positive number")
        await assertThrows(try await s.search([SearchQuery("tea", paths: ["[z-a]"])], index: nil), "invalid glob")
        await assertThrows(try await s.search([SearchQuery("tea")], index: "nope"), "no index named 'nope' (served: docs)")
        XCTAssertThrowsError(try s.chunk(id: "not-an-id", index: nil)) { XCTAssertEqual("\($0)", "no chunk with id 'not-an-id' in the index") }
        XCTAssertThrowsError(try s.chunk(id: "0123456789abcdef-0", index: nil))
        XCTAssertThrowsError(try s.chunk(id: String(repeating: "f", count: 16) + "-99999999999999999999", index: nil))
        // --path keeps only matching documents.
        let only = try await s.search([SearchQuery("tea soup bread", k: 10, paths: ["notes/*"])], index: nil)[0]
        XCTAssertEqual(Set(only.hits.map(\.path)), ["notes/tea.md"])
    }

    func assertThrows<T>(_ body: @autoclosure () async throws -> T, _ fragment: String, line: UInt = #line) async {
        do {
            _ = try await body()
            XCTFail("no error; expected one containing '\(fragment)'", line: line)
        } catch {
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
        }
    }

    // MARK: - Chunks and their ids

    func testChunkIDsSurviveCompactionAndUnchangedRebuilds() async throws {
        try corpusOfThree()
        let s = try service()
        let hit = try await s.search([SearchQuery("Knead the dough number 30", k: 1, mode: .lexical)], index: nil)[0].hits[0]
        XCTAssertEqual(hit.path, "bread.md")
        let context = try s.chunk(id: hit.id, index: nil, neighbours: 2)
        XCTAssertEqual(context.chunk.text, hit.text)
        XCTAssertEqual(context.document.path, "bread.md")
        XCTAssertGreaterThan(context.document.chunks, 4)
        XCTAssertEqual(context.before.count, min(2, context.chunk.ordinal))
        XCTAssertEqual(context.before.map(\.ordinal), Array(max(0, context.chunk.ordinal - 2)..<context.chunk.ordinal))
        XCTAssertEqual(context.after.first?.ordinal, context.chunk.ordinal + 1)
        // Neighbour ids lead to the neighbours.
        if let next = context.after.first { XCTAssertEqual(try s.chunk(id: next.id, index: nil, neighbours: 0).chunk.text, next.text) }

        // Another document and a new build (a second segment), then a compaction (one segment
        // again, the old files removed): the id still names the same chunk.
        try put("jam.md", "# Jam\n\nBoil the berries with sugar.\n")
        try build()
        XCTAssertEqual(s.reloadIfChanged(), ["docs"])
        try kb(["compact", "--index", indexDir.path])
        XCTAssertEqual(s.reloadIfChanged(), ["docs"])
        XCTAssertEqual(s.info().indexes[0].generation, 3)
        XCTAssertEqual(try s.chunk(id: hit.id, index: "docs").chunk.text, hit.text)
        XCTAssertEqual(s.reloadIfChanged(), [], "nothing changed: no reload")

        // A changed document's old ids are gone.
        try put("bread.md", "# Bread\n\nBuy it.\n")
        try build()
        XCTAssertEqual(s.reloadIfChanged(), ["docs"])
        XCTAssertThrowsError(try s.chunk(id: hit.id, index: nil)) { XCTAssertTrue("\($0)".contains("no chunk with id")) }
    }

    // MARK: - Reloads

    func testARequestKeepsItsGenerationWhileTheIndexIsReplaced() async throws {
        try corpusOfThree()
        let s = try service()
        let old = try s.searcher(nil)
        let before = try old.hits(try old.answer(["lentils"], vectors: [], mode: .lexical, k: 2)[0])
        try put("jam.md", "# Jam\n\nBoil the berries with sugar.\n")
        try build()
        try kb(["compact", "--index", indexDir.path])  // removes the files the old generation maps
        XCTAssertEqual(s.reloadIfChanged(), ["docs"])
        XCTAssertEqual(try s.searcher(nil).generation, 2)
        // The old generation still reads its (removed, still mapped) segments.
        XCTAssertEqual(try old.hits(try old.answer(["lentils"], vectors: [], mode: .lexical, k: 2)[0]), before)
        let now = try await s.search([SearchQuery("berries sugar", k: 1, mode: .lexical)], index: nil)[0]
        XCTAssertEqual(now.generation, 2)
        XCTAssertEqual(now.hits.first?.path, "jam.md")
    }

    func testABrokenNewManifestLeavesTheOldGenerationServed() async throws {
        try corpusOfThree()
        let s = try service()
        let events = Sizes.Lines()
        s.setEventHandler { events.add($0) }
        let manifest = indexDir.appendingPathComponent(Manifest.fileName)
        let good = try Data(contentsOf: manifest)
        try Data("{ not json".utf8).write(to: manifest, options: .atomic)
        XCTAssertEqual(s.reloadIfChanged(), [])
        XCTAssertEqual(s.reloadIfChanged(), [])
        XCTAssertEqual(events.all.count, 1, "one report per distinct failure: \(events.all)")
        XCTAssertTrue(events.all.first?.contains("previous generation stays") ?? false, "\(events.all)")
        let r = try await s.search([SearchQuery("lentils", k: 1)], index: nil)[0]
        XCTAssertEqual(r.generation, 1)
        XCTAssertEqual(r.hits.first?.path, "soup.md")
        // Repaired: served again, as a new generation.
        try good.write(to: manifest, options: .atomic)
        XCTAssertEqual(s.reloadIfChanged(), ["docs"])
        XCTAssertEqual(try s.searcher(nil).generation, 2)
    }

    // MARK: - Models

    func testAnIndexOfAnotherModelIsRefused() throws {
        try corpusOfThree()
        let other = try folder("kbretrieval-other")
        let otherModel = try TinyModel(seed: 12).writeTemporary()
        scratch.append(otherModel)
        try put("a.md", "# A\n\nSomething else entirely.\n", in: other)
        try build(other, model: otherModel)
        XCTAssertThrowsError(try RetrievalService(indexes: [("docs", corpus), ("other", other)], options: ServiceOptions(model: model.path))) { e in
            guard case RetrievalError.incompatibleModel(let name, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(name, "other")
        }
        XCTAssertThrowsError(try RetrievalService(indexes: [("a", corpus), ("a", corpus)], options: ServiceOptions(model: model.path))) {
            XCTAssertTrue("\($0)".contains("two indexes are named 'a'"))
        }

        // A segment of the other model copied into this index under its own name: refused at
        // open, not scanned with vectors of the wrong model.
        let mine = try Manifest.read(from: indexDir.path).segments[0].file
        let theirs = try Manifest.read(from: other.appendingPathComponent(".kbindex").path).segments[0].file
        try FileManager.default.removeItem(at: indexDir.appendingPathComponent(mine))
        try FileManager.default.copyItem(at: other.appendingPathComponent(".kbindex").appendingPathComponent(theirs), to: indexDir.appendingPathComponent(mine))
        XCTAssertThrowsError(try IndexDirectory(url: indexDir)) { e in
            XCTAssertTrue("\(e)".contains("its vectors come from"), "\(e)")
        }
    }
}

/// What observers saw, from any thread.
final class Sizes: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int] = []
    func add(_ n: Int) { lock.withLock { values.append(n) } }
    var all: [Int] { lock.withLock { values } }

    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String] = []
        func add(_ s: String) { lock.withLock { values.append(s) } }
        var all: [String] { lock.withLock { values } }
    }
}
