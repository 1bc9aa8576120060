import ArgumentParser
import Foundation
import KBFormat
#if canImport(Glibc)
import Glibc
#endif

/// `kbindex-bench serve`: `kbindex serve` under load from this second process, on loopback.
///
/// For each index (the one given by --index, by default the demo's Python-docs index, and a
/// synthetic index of --chunks chunks this command writes once into Benchmarks/.cache), in
/// one run:
///   - the baseline: --baseline sequential `kbindex query --json` processes (process start,
///     model load, index open and one question each): their p50 and queries/s;
///   - `kbindex serve --index DIR --port 0`, then for each --clients count a closed loop
///     (each client, on its own keep-alive HTTP/1.1 connection, sends the next question as
///     soon as the answer to the last one arrives) of `POST /v1/search {"query", "k"}` with
///     the questions of Benchmarks/questions cycled: queries/s, p50/p90/p99 latency, the
///     batch sizes the server saw (its /metrics batch histogram, before and after) and its
///     resident memory;
///   - ratios (served queries/s over the processes', 32 clients over 1) and the issue's goals.
struct ServeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Load 'kbindex serve' over HTTP at 1, 8 and 32 clients, against 'kbindex query' processes, in one run.",
        discussion: """
            Needs the release kbindex (swift build -c release in the repository root). The Python-docs index is the one scripts/demo.sh builds (.demo/pydocs.kbindex). The synthetic index (seeded random unit vectors, texts of real and made-up words so BM25 has postings to walk, 8 chunks per document, 200,000 chunks per segment) is written once per --chunks into Benchmarks/.cache and reused: 1,000,000 chunks take about 6 minutes on 2 cores and 750 MB of disk the first time.

            For each index: --baseline sequential 'kbindex query --json' processes, then 'kbindex serve --index DIR --port 0' and, for each --clients count, a closed loop (each client sends its next question on its own keep-alive connection as soon as its answer arrives) of POST /v1/search {"query", "k"} with the questions cycled, --requests requests per level (or --duration seconds) after --warmup requests. Latency runs from sending a request to the last byte of its answer; percentiles are exact (every latency is kept). Batch sizes come from the server's /metrics histogram (the one whose name contains "batch"), RSS from /proc (VmRSS: with the index pages the server has mapped and touched). This process and the server share the machine's cores.

            Goals checked (issue 14): a warm single question (1 client) on the Python-docs index <= 15 ms p50; at 32 clients on the 1M-chunk index >= 3x the queries/s of one client, with p99 <= 250 ms.

            Examples:
              swift run -c release kbindex-bench serve
              swift run -c release kbindex-bench serve --chunks 20000 --requests 200
              swift run -c release kbindex-bench serve --chunks 0 --json
              swift run -c release kbindex-bench serve --no-index \\
                --clients 1,4,16,64 --duration 10
            """
    )

    @Option(help: "The kbindex executable (default: ../.build/release/kbindex).")
    var kbindex: String?

    @Option(help: "An index to serve (default: ../.demo/pydocs.kbindex when it exists).")
    var index: String?

    @Flag(help: "Measure only the synthetic index.")
    var noIndex = false

    @Option(help: "Chunks in the synthetic index (0: none).")
    var chunks = 1_000_000

    @Option(help: "Concurrent client counts, comma-separated.")
    var clients = "1,8,32"

    @Option(help: "Requests per client level.")
    var requests = 500

    @Option(help: "Seconds per client level instead of --requests.")
    var duration: Double?

    @Option(help: "Requests before the first level, not measured (model and page cache warm-up).")
    var warmup = 20

    @Option(help: "Sequential 'kbindex query' processes timed for the baseline (0: none).")
    var baseline = 20

    @Option(name: .short, help: "Hits per question.")
    var k = 10

    @Option(help: "Search mode sent with each request (hybrid, vector or lexical; default: the server's).")
    var mode: String?

    @Option(help: "Question files (TSV: id, question, ...; repeatable; default: Benchmarks/questions/python-docs.tsv and python-docs-dev.tsv).")
    var questions: [String] = []

    @Option(help: ArgumentHelp("An extra argument for 'kbindex serve' (repeatable; with =, since it starts with --), e.g. --serve-arg=--host --serve-arg=127.0.0.1.", valueName: "arg"))
    var serveArg: [String] = []

    @Option(help: "Seconds to wait for the server to listen (opening a large index takes a while).")
    var startTimeout = 600.0

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(help: "Also write the JSON object to this file (tables still print).")
    var jsonFile: String?

    func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }

    func validate() throws {
        guard !clientCounts.isEmpty, clientCounts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--clients needs counts >= 1, e.g. 1,8,32") }
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1") }
        guard duration.map({ $0 > 0 }) ?? true else { throw ValidationError("--duration must be positive") }
        guard k >= 1 else { throw ValidationError("-k must be at least 1") }
        guard chunks >= 0 else { throw ValidationError("--chunks must be 0 or more") }
    }

    var clientCounts: [Int] { clients.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    struct Dataset {
        var name: String
        var url: URL
        var chunks: Int?
        var synthetic: Bool
    }

    func run() throws {
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        let benchRoot = here.appendingPathComponent("../..").standardizedFileURL
        let exe = try kbindexExecutable(kbindex)
        var version = (try? IndexBench.runProcess(exe, ["--version"]).1.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
        if !version.hasPrefix("kbindex") { version = "kbindex " + version }

        // Questions.
        let files = questions.isEmpty
            ? ["python-docs.tsv", "python-docs-dev.tsv"].map { benchRoot.appendingPathComponent("questions/\($0)").path }
            : questions
        var texts: [String] = []
        for f in files {
            guard let content = try? String(contentsOfFile: f, encoding: .utf8) else { throw BenchError("cannot read question file \(f)") }
            for line in content.split(separator: "\n").dropFirst() {
                let cols = line.split(separator: "\t", omittingEmptySubsequences: false)
                if cols.count >= 2, !cols[1].isEmpty { texts.append(String(cols[1])) }
            }
        }
        guard !texts.isEmpty else { throw BenchError("no questions in \(files.joined(separator: ", "))") }
        let bodies: [[UInt8]] = try texts.map { q in
            var obj: [String: Any] = ["query": q, "k": k]
            if let mode { obj["mode"] = mode }
            return Array(try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]))
        }

        // Indexes.
        var datasets: [Dataset] = []
        if !noIndex {
            let path = index ?? benchRoot.appendingPathComponent("../.demo/pydocs.kbindex").standardizedFileURL.path
            if FileManager.default.fileExists(atPath: path) {
                let url = URL(fileURLWithPath: path).standardizedFileURL
                // The demo's index (scripts/demo.sh) is "python-docs", the name the goal uses.
                let name = index == nil || url.lastPathComponent == "pydocs.kbindex" ? "python-docs" : url.lastPathComponent
                datasets.append(Dataset(name: name, url: url,
                                        chunks: Self.liveChunks(url), synthetic: false))
            } else if index != nil {
                throw ValidationError("no index at \(path)")
            } else {
                log("no --index and no \(path) (scripts/demo.sh builds it): measuring the synthetic index only")
            }
        }
        if chunks > 0 {
            let model: ModelDescriptor
            do { model = try defaultModelDescriptor() } catch {
                // Without the model store, the model of the other index (serve needs the model anyway).
                guard let first = datasets.first, let m = try? Manifest.read(from: Self.manifestFolder(first.url).path).model else {
                    throw BenchError("cannot describe the default model (\(error)): run scripts/install-model.sh")
                }
                model = m
            }
            let logger: @Sendable (String) -> Void = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }
            let url = try SyntheticServeIndex.prepare(chunks: chunks, model: model, words: SyntheticServeIndex.words(of: texts),
                                                      cache: benchRoot.appendingPathComponent(".cache"), log: logger)
            datasets.append(Dataset(name: "synthetic", url: url, chunks: chunks, synthetic: true))
        }
        guard !datasets.isEmpty else { throw BenchError("nothing to measure: give --index or --chunks N") }

        var results: [[String: Any]] = []
        for d in datasets { results.append(try measure(d, exe: exe, texts: texts, bodies: bodies)) }

        // Goals.
        var goals: [[String: Any]] = []
        if let real = results.first(where: { !($0["synthetic"] as? Bool ?? true) }),
           let one = (real["levels"] as? [[String: Any]])?.first(where: { $0["clients"] as? Int == 1 }),
           let p50 = one["p50_ms"] as? Double {
            let note = real["name"] as? String == "python-docs" ? "" : " (the goal is stated for the Python-docs index)"
            goals.append(["goal": "warm single question p50 on \(real["name"]!) (1 client) <= 15 ms\(note)",
                          "value": "\(fmt(p50, 2)) ms", "met": p50 <= 15])
        }
        if let syn = results.first(where: { $0["synthetic"] as? Bool ?? false }),
           let levels = syn["levels"] as? [[String: Any]],
           let one = levels.first(where: { $0["clients"] as? Int == 1 }), let q1 = one["qps"] as? Double,
           let many = levels.first(where: { $0["clients"] as? Int == 32 }), let q32 = many["qps"] as? Double,
           let p99 = many["p99_ms"] as? Double {
            let n = syn["chunks"] as? Int ?? 0
            let note = n == 1_000_000 ? "" : " (the goal is stated for 1,000,000 chunks; this index has \(grouped(n)))"
            goals.append(["goal": "32 clients on synthetic \(grouped(n)): >= 3x one client's queries/s\(note)",
                          "value": "\(fmt(q32 / q1, 2))x", "met": q32 / q1 >= 3])
            goals.append(["goal": "32 clients on synthetic \(grouped(n)): p99 <= 250 ms\(note)",
                          "value": "\(fmt(p99, 1)) ms", "met": p99 <= 250])
        }

        let report: [String: Any] = [
            "machine": machineDescription(), "date": ISO8601DateFormatter().string(from: Date()),
            "command": CommandLine.arguments.joined(separator: " "), "kbindex_version": version,
            "k": k, "mode": mode ?? "server default", "questions": texts.count,
            "requests_per_level": duration == nil ? requests as Any : NSNull(), "seconds_per_level": duration ?? NSNull(),
            "results": results, "goals": goals,
        ]
        if let jsonFile {
            try JSONSerialization.data(withJSONObject: Self.jsonSafe(report), options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: jsonFile))
        }
        if json { printJSON(Self.jsonSafe(report)); return }

        let m = machineDescription()
        print("kbindex-bench serve: \(m["cpu"]!), \(m["cores"]!) cores, \(m["memory_gib"]!) GiB; \(version); k=\(k), mode \(mode ?? "server default"), \(texts.count) questions cycled; "
              + (duration.map { "\(fmt($0, 0)) s per level" } ?? "\(requests) requests per level"))
        for r in results {
            let name = r["name"] as! String
            let base = r["baseline"] as? [String: Any]
            var rows: [[String]] = []
            for l in r["levels"] as! [[String: Any]] {
                let batch = l["batch"] as? [String: Any]
                let batchCell = batch.map { b -> String in
                    func bound(_ x: Any?) -> String { (x as? Double).map { fmt($0, 0) } ?? (x as? String) ?? "-" }
                    return "\((b["mean"] as? Double).map { fmt($0, 2) } ?? "-") (p50 ≤\(bound(b["p50_le"])), max ≤\(bound(b["max_le"])))"
                } ?? "n/a"
                rows.append([
                    "\(l["clients"]!)", "\(l["requests"]!)", "\(l["errors"]!)", fmt(l["qps"] as! Double, 1),
                    fmt(l["p50_ms"] as! Double, 2), fmt(l["p90_ms"] as! Double, 2), fmt(l["p99_ms"] as! Double, 2),
                    batchCell, (l["rss_bytes"] as? Int).map { fmt(Double($0) / 1_048_576, 0) } ?? "-",
                    (l["qps_over_processes"] as? Double).map { fmt($0, 1) + "×" } ?? "-",
                    (l["qps_over_one_client"] as? Double).map { fmt($0, 2) + "×" } ?? "-",
                ])
            }
            let chunkText = (r["chunks"] as? Int).map { "\(grouped($0)) chunks" } ?? "? chunks"
            printTable("\(name): \(chunkText), \(r["path"]!); server listening after \(fmt(r["startup_s"] as! Double, 2)) s",
                       header: ["clients", "requests", "errors", "q/s", "p50 ms", "p90 ms", "p99 ms", "batch size: mean (p50, max)", "RSS MiB",
                                "÷ processes", "÷ 1 client"],
                       rows: rows)
            if let base {
                print("baseline: \(base["processes"]!) sequential 'kbindex query --json -k \(k)' processes: p50 \(fmt(base["p50_ms"] as! Double, 1)) ms, \(fmt(base["qps"] as! Double, 2)) q/s")
            }
            print("server: peak RSS \((r["peak_rss_bytes"] as? Int).map { fmt(Double($0) / 1_048_576, 0) + " MiB" } ?? "-"), exit status on SIGTERM \(r["sigterm_exit_status"]!)"
                  + ((r["batch_metric"] as? String).map { "; batch sizes from \($0)" } ?? "; no batch histogram in /metrics"))
            if let errs = r["error_samples"] as? [String], !errs.isEmpty {
                print("errors seen: " + errs.joined(separator: " | "))
            }
        }
        if !goals.isEmpty {
            print("\ngoals:")
            for g in goals { print("  \(g["goal"]!): \(g["value"]!): \((g["met"] as! Bool) ? "met" : "NOT met")") }
        }
    }

    // MARK: - One index

    func measure(_ d: Dataset, exe: String, texts: [String], bodies: [[UInt8]]) throws -> [String: Any] {
        var out: [String: Any] = ["name": d.name, "path": d.url.path, "synthetic": d.synthetic, "chunks": d.chunks ?? NSNull()]

        // 1. Baseline: one process per question, sequentially, after one untimed to warm the page cache.
        var processQPS: Double? = nil
        if baseline > 0 {
            log("\(d.name): \(baseline) 'kbindex query' processes...")
            func query(_ q: String) throws -> Double {
                var args = ["query", "--json", "-k", "\(k)", "--index", d.url.path]
                if let mode { args += ["--mode", mode] }
                let (status, text, t) = try IndexBench.runProcess(exe, args + ["--", q])
                guard status == 0 else { throw BenchError("kbindex query failed (\(status)) on \(d.url.path):\n\(text.suffix(2000))") }
                return t
            }
            _ = try query(texts[0])
            var lat: [Double] = []
            for i in 0..<baseline { lat.append(try query(texts[i % texts.count])) }
            processQPS = Double(lat.count) / lat.reduce(0, +)
            out["baseline"] = ["processes": baseline, "p50_ms": percentile(lat, 50) * 1000, "p90_ms": percentile(lat, 90) * 1000,
                               "qps": processQPS!]
        }

        // 2. The server.
        log("\(d.name): starting kbindex serve...")
        let t0 = now()
        let server = try ServerProcess(exe, ["serve", "--index", d.url.path, "--port", "0"] + serveArg)
        defer { if !server.hasExited() { server.terminate(grace: 5) } }
        guard let line = server.waitForLine(timeout: startTimeout, { Self.listeningAddress($0) != nil }),
              let (host, port) = Self.listeningAddress(line) else {
            let exited = server.waitForExit(timeout: 2)  // its output ends just before it can be reaped
            let status = exited ? server.terminate() : { server.terminate(grace: 5); return Int32(-1) }()
            throw BenchError("kbindex serve did not print an http://127.0.0.1:PORT line "
                                  + (exited ? "(it exited with status \(status))" : "within \(fmt(startTimeout, 0)) s")
                                  + ":\n" + server.output.suffix(20).joined(separator: "\n"))
        }
        out["startup_s"] = now() - t0
        log("\(d.name): server at http://\(host):\(port) after \(fmt(now() - t0, 2)) s; warming up...")

        // 3. Warm-up, and a check that the answers look like answers.
        let control = try HTTPConnection(host: host, port: port)
        var hitsSeen: [Int] = []
        for i in 0..<max(1, warmup) {
            let r = try control.request("POST", "/v1/search", body: bodies[i % bodies.count])
            guard r.status == 200 else {
                throw BenchError("POST /v1/search answered \(r.status): \(r.text.prefix(500))")
            }
            hitsSeen.append(Self.hitCount(r.body) ?? -1)
        }
        if hitsSeen.contains(-1) { log("warning: some warm-up answers have no \"hits\" array: \(hitsSeen)") }
        out["warmup_hits_per_answer"] = hitsSeen

        // 4. The levels.
        var levels: [[String: Any]] = []
        var errorSamples: [String] = []
        var oneClientQPS: Double? = nil
        var batchMetric: String? = nil
        for c in clientCounts {
            let before = try? Self.scrape(control)
            log("\(d.name): \(c) client(s)...")
            let result: LoadRun
            do {
                result = try LoadRun.run(host: host, port: port, clients: c, bodies: bodies, requests: requests, duration: duration)
            } catch {
                let died = server.hasExited() ? " (the server exited with status \(server.terminate()))" : ""
                throw BenchError("\(c) client(s): \(error)\(died):\n" + server.output.suffix(20).joined(separator: "\n"))
            }
            let after = try? Self.scrape(control)
            var level: [String: Any] = [
                "clients": c, "requests": result.latencies.count + result.errors, "errors": result.errors,
                "seconds": result.seconds, "qps": result.qps,
                "p50_ms": result.percentileMs(50), "p90_ms": result.percentileMs(90), "p99_ms": result.percentileMs(99),
                "max_ms": result.percentileMs(100),
            ]
            if c == 1 { oneClientQPS = result.qps }
            if let p = processQPS { level["qps_over_processes"] = result.qps / p }
            if let o = oneClientQPS { level["qps_over_one_client"] = result.qps / o }
            if let after, let h = ScrapedHistogram.find("batch", in: after) {
                let delta = h.since(before.flatMap { ScrapedHistogram.find("batch", in: $0) })
                batchMetric = h.name
                level["batch"] = ["batches": delta.count, "mean": delta.mean.map { $0 as Any } ?? NSNull(),
                                  "p50_le": Self.jsonBound(delta.quantileBound(0.5)), "max_le": Self.jsonBound(delta.quantileBound(1)),
                                  "buckets": Dictionary(uniqueKeysWithValues: delta.buckets.map { ($0.key.isInfinite ? "+Inf" : fmt($0.key, 0), $0.value) })]
            }
            if let mem = server.memory() { level["rss_bytes"] = mem.rss }
            errorSamples += result.errorSamples.filter { !errorSamples.contains($0) }.prefix(3)
            levels.append(level)
            log("  \(c) client(s): \(fmt(result.qps, 1)) q/s, p50 \(fmt(result.percentileMs(50), 2)) ms, p99 \(fmt(result.percentileMs(99), 2)) ms, \(result.errors) errors")
        }
        out["levels"] = levels
        out["batch_metric"] = batchMetric ?? NSNull()
        out["error_samples"] = errorSamples
        out["peak_rss_bytes"] = server.memory()?.peak ?? NSNull()

        // 5. SIGTERM: drains and exits (0 expected).
        out["sigterm_exit_status"] = Int(server.terminate())
        return out
    }

    // MARK: - Helpers

    /// The address in a line the server prints when it listens: `http://HOST:PORT`, or
    /// hummingbird's own log line `... listening on HOST:PORT`. HOST is IPv4 or localhost;
    /// 0.0.0.0 and localhost are reached at 127.0.0.1.
    static func listeningAddress(_ line: String) -> (String, Int)? {
        guard let r = line.range(of: #"(http://|listening on )(localhost|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]+"#, options: .regularExpression) else { return nil }
        var hostPort = line[r]
        hostPort = hostPort.hasPrefix("http://") ? hostPort.dropFirst("http://".count) : hostPort.dropFirst("listening on ".count)
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]), port > 0, port < 65536 else { return nil }
        var host = String(hostPort[..<colon])
        if host == "0.0.0.0" || host == "localhost" { host = "127.0.0.1" }
        return (host, port)
    }

    /// `value` with every non-finite number (a level whose requests all failed has no
    /// percentiles) as null, which JSON can hold.
    static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Any]: return a.map(jsonSafe)
        case let o as [String: Any]: return o.mapValues(jsonSafe)
        default: return value
        }
    }

    /// A bucket bound for JSON (which has no infinity): a number, "+Inf" or null.
    static func jsonBound(_ x: Double?) -> Any {
        guard let x else { return NSNull() }
        return x.isInfinite ? "+Inf" : x
    }

    /// GET /metrics as text (throws when it is not there).
    static func scrape(_ c: HTTPConnection) throws -> String {
        let r = try c.request("GET", "/metrics")
        guard r.status == 200 else { throw HTTPConnection.Failure(description: "/metrics answered \(r.status)") }
        return r.text
    }

    /// The number of hits in a search answer (`hits`, or the first of `results`), nil when neither.
    static func hitCount(_ body: [UInt8]) -> Int? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        if let hits = obj["hits"] as? [Any] { return hits.count }
        if let results = obj["results"] as? [[String: Any]], let hits = results.first?["hits"] as? [Any] { return hits.count }
        return nil
    }

    /// The folder holding manifest.json: `url`, or `url/.kbindex`.
    static func manifestFolder(_ url: URL) -> URL {
        FileManager.default.fileExists(atPath: url.appendingPathComponent(Manifest.fileName).path) ? url : url.appendingPathComponent(".kbindex")
    }

    /// Live chunks of the index at `url`, from its manifest.
    static func liveChunks(_ url: URL) -> Int? {
        (try? Manifest.read(from: manifestFolder(url).path)).map { $0.segments.reduce(0) { $0 + $1.liveChunks } }
    }
}

/// One closed-loop level: `clients` threads, each on its own connection, each sending the
/// next request as soon as its answer arrives.
struct LoadRun {
    var latencies: [Double]  // seconds, successful requests only
    var errors: Int
    var errorSamples: [String]
    var seconds: Double
    var qps: Double { Double(latencies.count) / seconds }

    func percentileMs(_ p: Double) -> Double { latencies.isEmpty ? .nan : percentile(latencies, p) * 1000 }

    /// Runs `requests` requests in all (or until `duration` seconds pass), the bodies taken
    /// in turn across clients, so concurrent clients ask different questions. Connections
    /// are opened before the clock starts. Throws when a connection cannot be opened.
    static func run(host: String, port: Int, clients: Int, bodies: [[UInt8]], requests: Int, duration: Double?) throws -> LoadRun {
        let connections = try (0..<clients).map { _ in try HTTPConnection(host: host, port: port) }
        let next = Locked(0)
        let gathered = Locked((latencies: [Double](), errors: 0, samples: [String]()))
        let start = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        let deadline = Locked(Double.infinity)
        for conn in connections {
            group.enter()
            let box = UncheckedBox(conn)
            Thread {
                let conn = box.value
                start.wait()
                var lat: [Double] = [], errors = 0, samples: [String] = []
                let end = deadline.withLock { $0 }
                while true {
                    let ticket = next.withLock { t -> Int in t += 1; return t - 1 }
                    if duration == nil ? ticket >= requests : now() >= end { break }
                    let t0 = now()
                    do {
                        let r = try conn.request("POST", "/v1/search", body: bodies[ticket % bodies.count])
                        if r.status == 200 { lat.append(now() - t0) } else {
                            errors += 1
                            if samples.count < 3 { samples.append("HTTP \(r.status): \(r.text.prefix(200))") }
                        }
                    } catch {
                        errors += 1
                        if samples.count < 3 { samples.append("\(error)") }
                    }
                }
                gathered.withLock { $0.latencies += lat; $0.errors += errors; $0.samples += samples }
                group.leave()
            }.start()
        }
        usleep(50_000)  // let every thread reach the gate
        let t0 = now()
        if let duration { deadline.withLock { $0 = t0 + duration } }
        for _ in 0..<clients { start.signal() }
        group.wait()
        let seconds = now() - t0
        return gathered.withLock { g in LoadRun(latencies: g.latencies, errors: g.errors, errorSamples: g.samples, seconds: seconds) }
    }
}

/// Hands a value to one other thread (it is used by that thread only).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// 1234567 as "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return n < 0 ? "-" + out : out
}

/// A failure while measuring (not a usage error: printed without the usage text).
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
