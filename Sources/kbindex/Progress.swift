import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display on stderr, redrawn at most 10 times a second; silent when
/// stderr is not a terminal or when quiet.
final class ProgressLine {
    private let enabled: Bool
    private var last = 0.0
    private var shown = false

    init(quiet: Bool) {
        enabled = !quiet && isatty(STDERR_FILENO) == 1
    }

    /// Redraws the line (rate-limited unless `force`).
    func update(_ text: @autoclosure () -> String, force: Bool = false) {
        guard enabled else { return }
        let now = Date().timeIntervalSince1970
        guard force || now - last >= 0.1 else { return }
        last = now
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(text())".utf8))
        shown = true
    }

    /// Clears the line so normal output can follow.
    func finish() {
        guard enabled, shown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        shown = false
    }
}

/// Human formats shared by the commands.
enum Format {
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
