import Foundation
import KBRetrieval
import KBServer
import KBTestSupport
import XCTest

/// Clients query continuously while the served index is rebuilt and compacted: no request
/// fails, and the answers move to each new generation. Bounded by counts, never by time.
final class HotReloadTests: XCTestCase {
    /// What the client threads saw.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var _ok = 0, _failures: [String] = [], _generations = Set<Int>()
        private var _stop = false
        func record(ok generation: Int) { lock.lock(); _ok += 1; _generations.insert(generation); lock.unlock() }
        func record(failure: String) { lock.lock(); _failures.append(failure); lock.unlock() }
        var ok: Int { lock.lock(); defer { lock.unlock() }; return _ok }
        var failures: [String] { lock.lock(); defer { lock.unlock() }; return _failures }
        var generations: Set<Int> { lock.lock(); defer { lock.unlock() }; return _generations }
        var stop: Bool { get { lock.lock(); defer { lock.unlock() }; return _stop } set { lock.lock(); _stop = newValue; lock.unlock() } }
    }

    func testReloadUnderLoadFailsNoRequestAndSwitchesGenerations() throws {
        let corpus = try Corpus(name: "kbserver-reload")
        defer { corpus.remove() }
        try corpus.build()
        var options = ServiceOptions()
        options.reloadInterval = .milliseconds(20)
        let server = try RunningServer(indexes: [("docs", corpus.index)], options: options)
        defer { server.stop() }
        let port = server.port

        let tally = Tally()
        let questions = ["lentil soup", "rotate the logs", "moon orbit", "garden watering", "nightly backup", "zebra crossing"]
        var threads: [Thread] = []
        let stopped = DispatchGroup()
        for t in 0..<4 {
            stopped.enter()
            let thread = Thread {
                let http = RawHTTP(port: port)
                var i = t
                while !tally.stop {
                    i += 1
                    let body: [String: Any] = i % 3 == 0 ? ["queries": [questions[i % questions.count], questions[(i + 1) % questions.count]], "k": 3]
                                                          : ["query": questions[i % questions.count], "k": 3, "mode": ["hybrid", "vector", "lexical"][i % 3]]
                    do {
                        let r = try http.post("/v1/search", object: body)
                        guard r.status == 200, let results = try r.json()["results"] as? [[String: Any]], let g = results.first?["generation"] as? Int else {
                            tally.record(failure: "\(r.status) \(r.text)")
                            continue
                        }
                        // A chunk id just found resolves, or (if a reload removed it since) is a clean 404.
                        if let id = (results.first?["hits"] as? [[String: Any]])?.first?["id"] as? String {
                            let c = try http.get("/v1/chunks/\(id)")
                            if c.status != 200 && c.errorCode != "unknown_chunk" { tally.record(failure: "chunk \(c.status) \(c.text)") }
                        }
                        tally.record(ok: g)
                    } catch {
                        tally.record(failure: "\(error)")
                    }
                }
                stopped.leave()
            }
            threads.append(thread)
            thread.start()
        }

        /// Waits (by polling /v1/info, at most `polls` times) until the index's generation passes `g`.
        func waitForGeneration(above g: Int, polls: Int = 3000) throws -> Int {
            for _ in 0..<polls {
                let info = try RawHTTP(port: port).get("/v1/info").json()
                if let now = (info["indexes"] as? [[String: Any]])?.first?["generation"] as? Int, now > g { return now }
                usleep(10_000)
            }
            XCTFail("the index was not reloaded after \(polls) polls")
            return g
        }
        /// Waits until the clients have answered `n` more requests.
        func waitForRequests(_ n: Int) {
            let start = tally.ok + tally.failures.count
            for _ in 0..<60_000 where tally.ok + tally.failures.count < start + n { usleep(1000) }
        }

        var generation = 1
        waitForRequests(10)
        for round in 1...3 {
            try corpus.write("animals\(round).md", "# Zebras \(round)\n\nZebra herd number \(round) crosses the river at dawn.\n")
            if round == 2 { try corpus.write("notes.txt", "The garden needs watering every evening in July.\n") }
            try corpus.build()
            generation = try waitForGeneration(above: generation)
            waitForRequests(10)
        }
        try corpus.compact()
        generation = try waitForGeneration(above: generation)
        waitForRequests(10)
        tally.stop = true
        stopped.wait()

        XCTAssertEqual(tally.failures, [], "failed requests during reloads")
        XCTAssertGreaterThan(tally.ok, 40)
        XCTAssertGreaterThanOrEqual(generation, 5)
        XCTAssertGreaterThan(tally.generations.count, 2, "clients saw generations \(tally.generations.sorted())")
        XCTAssertTrue(tally.generations.contains(generation))

        // The answers come from the new generation: the new documents are found.
        let r = try RawHTTP(port: port).post("/v1/search", object: ["query": "zebra herd crosses the river", "k": 3])
        let result = try XCTUnwrap((try r.json()["results"] as? [[String: Any]])?.first)
        XCTAssertEqual(result["generation"] as? Int, generation)
        let paths = ((result["hits"] as? [[String: Any]]) ?? []).compactMap { $0["path"] as? String }
        XCTAssertTrue(paths.allSatisfy { $0.hasPrefix("animals") }, "\(paths)")
        let metrics = try RawHTTP(port: port).get("/metrics").text
        XCTAssertTrue(metrics.contains(#"kbindex_index_generation{index="docs"} \#(generation)"#), metrics)
    }
}
