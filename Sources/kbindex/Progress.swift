import Dispatch
import Foundation
import KBCore
#if canImport(Glibc)
import Glibc
#endif

/// Progress on stderr for a long command.
///
/// - On a terminal: one line redrawn in place ("\r", erase to the end of the line), at most
///   10 times a second when the command reports a step, and at least once a second from a
///   ticker thread while it runs, so elapsed time and ETA move even inside a long step.
/// - Otherwise (a pipe or a file, such as a CI log): a plain line ("progress: …") every
///   `interval` seconds (default 5), without "\r" or escape codes.
/// - Nothing when quiet.
///
/// `KBINDEX_PROGRESS_INTERVAL` (seconds) sets the interval of plain lines; 0 prints one at
/// every step the command reports (tests use it: no clock involved).
///
/// Thread-safe. The text comes from the `render` closure given to `start`, called under the
/// line's lock from the command's thread (`step`) or the ticker; it must be cheap and
/// thread-safe itself. `finish()` clears the line and keeps it hidden until the next
/// `step()`, so `progress.finish(); warn(…)` prints a clean line even with the ticker running.
final class ProgressLine: @unchecked Sendable {
    enum Mode: Equatable { case off, terminal, plain }
    let mode: Mode
    /// Seconds between plain lines (terminal: between ticker redraws).
    let interval: Double
    private let lock = NSLock()
    private var render: (@Sendable () -> String?)?
    private var active = false
    private var shown = false
    private var last = 0.0
    private var ticker: DispatchSourceTimer?

    init(quiet: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) {
        if quiet {
            mode = .off
        } else {
            mode = isatty(STDERR_FILENO) == 1 ? .terminal : .plain
        }
        let configured = environment["KBINDEX_PROGRESS_INTERVAL"].flatMap(Double.init).flatMap { $0 >= 0 && $0.isFinite ? $0 : nil }
        interval = mode == .terminal ? 0.5 : (configured ?? 5)
    }

    /// Starts showing `render()` (nil: nothing to show yet): at every `step()` when due, and
    /// from a ticker every `interval` seconds (none when the interval is 0).
    func start(_ render: @escaping @Sendable () -> String?) {
        guard mode != .off else { return }
        lock.lock()
        self.render = render
        active = true
        last = Date().timeIntervalSince1970
        lock.unlock()
        guard interval > 0 else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        t.schedule(deadline: .now() + interval, repeating: interval)
        t.setEventHandler { [weak self] in self?.draw(force: true) }
        t.resume()
        ticker = t
    }

    /// The command made progress: redraws when due (terminal: 10 times a second at most;
    /// plain: every `interval`; interval 0: every step). Shows the line again after `finish()`.
    func step() {
        guard mode != .off else { return }
        lock.lock()
        active = true
        lock.unlock()
        draw(force: false)
    }

    private func draw(force: Bool) {
        lock.lock()
        defer { lock.unlock() }
        guard active, let render else { return }
        let now = Date().timeIntervalSince1970
        let due = mode == .terminal ? 0.1 : interval
        guard force || now - last >= due else { return }
        guard let text = render() else { return }
        last = now
        switch mode {
        case .terminal:
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(Format.displayed(text))".utf8))
            shown = true
        case .plain:
            FileHandle.standardError.write(Data("progress: \(Format.displayed(text))\n".utf8))
        case .off:
            break
        }
    }

    /// Clears the line so other output can follow; it stays hidden until the next `step()`.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        active = false
        guard mode == .terminal, shown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        shown = false
    }

    /// Stops the ticker and clears the line (idempotent).
    func stop() {
        ticker?.cancel()
        ticker = nil
        finish()
        lock.lock()
        render = nil
        lock.unlock()
    }

    deinit { ticker?.cancel() }
}

/// What `kbindex build` has done so far, for its progress line: files and chunks done, what
/// is being read now, and the time spent reading (read, parse, chunk) and embedding, from
/// which the rate and ETA come. Thread-safe; each call O(1).
///
/// The chunk total is exact once every file to read has been chunked; before that it is the
/// chunks known so far plus the bytes still to read at the chunks-per-byte seen so far (shown
/// with "~"). The ETA is the chunks left at the embedding rate seen so far plus the bytes
/// left at the reading rate seen so far, so it converges as both are measured.
final class BuildProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let started = Date()
    let filesTotal: Int, bytesTotal: Int
    private var filesDone = 0, chunksDone = 0, chunksKnown = 0, bytesRead = 0
    private var readSeconds = 0.0, embedSeconds = 0.0
    private var lastEmbedded = Date()
    private var reading: (what: String, since: Date)?

    init(files: Int, bytes: Int) {
        filesTotal = files
        bytesTotal = bytes
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// A group of files starts being read and chunked; `name` is the file when there is one.
    func reading(files: Int, bytes: Int, name: String?) {
        let what = name.map { "\($0) (\(Format.bytes(bytes)))" } ?? "\(Format.counted(files, "file")) (\(Format.bytes(bytes)))"
        locked { reading = (what, Date()) }
    }

    /// The group was read and cut into `chunks` chunks in `seconds`.
    func read(bytes: Int, chunks: Int, seconds: Double) {
        locked {
            bytesRead += bytes
            chunksKnown += chunks
            readSeconds += seconds
            reading = nil
        }
    }

    /// Embedding of a group starts now (the time until the next `embedded` is embedding time).
    func startEmbedding() {
        locked { lastEmbedded = Date() }
    }

    /// `chunks` more chunks were embedded (called from the embedding workers).
    func embedded(chunks: Int) {
        locked {
            let now = Date()
            chunksDone += chunks
            embedSeconds += now.timeIntervalSince(lastEmbedded)
            lastEmbedded = now
        }
    }

    /// `files` files are now complete.
    func finished(files: Int) {
        locked { filesDone = files }
    }

    /// The progress text, or nil before anything is known.
    func line() -> String? {
        locked {
            let elapsed = Date().timeIntervalSince(started)
            if let reading, chunksDone == 0 {
                // Nothing embedded yet (the first files are being chunked): say what is read.
                return "reading and chunking \(reading.what)… \(Format.duration(Date().timeIntervalSince(reading.since)))"
                    + (filesTotal > 1 ? " · files \(Format.count(filesDone))/\(Format.count(filesTotal))" : "")
            }
            guard chunksKnown > 0 else { return nil }
            let exact = bytesRead >= bytesTotal
            let total = exact || bytesRead == 0
                ? chunksKnown
                : chunksKnown + Int((Double(bytesTotal - bytesRead) * Double(chunksKnown) / Double(bytesRead)).rounded())
            let percent = total > 0 ? Int(100 * Double(chunksDone) / Double(total)) : 100
            var text = "chunks \(Format.count(chunksDone))/\(exact ? "" : "~")\(Format.count(total)) (\(percent)%)"
            text += " · files \(Format.count(filesDone))/\(Format.count(filesTotal))"
            text += " · \(String(format: "%.0f", Double(chunksDone) / max(elapsed, 1e-3))) chunks/s"
            if chunksDone > 0 && embedSeconds > 0 {
                var eta = Double(max(0, total - chunksDone)) * embedSeconds / Double(chunksDone)
                if bytesRead > 0 && readSeconds > 0 { eta += Double(max(0, bytesTotal - bytesRead)) * readSeconds / Double(bytesRead) }
                // Counts down between steps (the ticker redraws inside a long one).
                if total > chunksDone { eta = max(0, eta - Date().timeIntervalSince(lastEmbedded)) }
                text += " · ETA \(Format.duration(eta))"
            }
            if let reading, Date().timeIntervalSince(reading.since) >= 1 {
                // A big file being chunked between embedding steps: say so, or the line looks stuck.
                text += " · reading and chunking \(reading.what)… \(Format.duration(Date().timeIntervalSince(reading.since)))"
            }
            return text
        }
    }
}

/// Human formats shared by the commands.
enum Format {
    /// Where a hit is, for people: "notes/a.md:12-15" (lines), "manual.pdf, p. 12" or
    /// "manual.pdf, pp. 12–13" (pages), "guide.docx, ¶ 4–9" (paragraphs); the path displayed
    /// safely (`displayed`).
    static func cited(_ path: String, _ unit: LocationUnit, _ start: Int, _ end: Int) -> String {
        let p = displayed(path)
        switch unit {
        case .lines: return "\(p):\(start)-\(end)"
        case .pages: return end > start ? "\(p), pp. \(start)–\(end)" : "\(p), p. \(start)"
        case .paragraphs: return end > start ? "\(p), ¶ \(start)–\(end)" : "\(p), ¶ \(start)"
        }
    }

    static func bytes(_ n: Int) -> String {
        let b = Double(n)
        if n < 1000 { return "\(n) B" }
        if n < 1_000_000 { return String(format: "%.1f kB", b / 1e3) }
        if n < 1_000_000_000 { return String(format: "%.1f MB", b / 1e6) }
        return String(format: "%.2f GB", b / 1e9)
    }

    static func duration(_ s: Double) -> String {
        if s < 1 { return String(format: "%.0f ms", s * 1000) }
        if s < 60 { return String(format: "%.1f s", s) }
        let m = Int(s) / 60, sec = Int(s) % 60
        return m < 60 ? "\(m)m\(String(format: "%02d", sec))s" : "\(m / 60)h\(String(format: "%02d", m % 60))m"
    }

    /// "1 file", "2 files", "12,345 chunks": `count(n)` and the noun, plural unless n == 1
    /// (`plural` when the noun does not just take an "s").
    static func counted(_ n: Int, _ noun: String, plural: String? = nil) -> String {
        "\(count(n)) \(n == 1 ? noun : plural ?? noun + "s")"
    }

    /// `text` safe to print on a terminal, as rg and ls print odd file names: control
    /// characters (C0, DEL, C1) and the bidirectional overrides become visible escapes
    /// (`\n`, `\t`, `\r`, `\x1b`, `\u{202e}`), so a name can neither colour the terminal
    /// nor split a line. A backslash stays as it is. JSON output keeps the real text.
    static func displayed(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            guard needsEscape(u) else { out.unicodeScalars.append(u); continue }
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default: out += u.value < 0x100 ? String(format: "\\x%02x", u.value) : String(format: "\\u{%04x}", u.value)
            }
        }
        return out
    }

    private static func needsEscape(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7F...0x9F).contains(u.value) || (0x202A...0x202E).contains(u.value) || (0x2066...0x2069).contains(u.value)
    }

    /// 12345 → "12,345".
    static func count(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0, i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }
}
