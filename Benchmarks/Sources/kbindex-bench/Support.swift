import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Runs `body` once and returns its wall time in seconds.
@discardableResult
func time(_ body: () throws -> Void) rethrows -> Double {
    let t0 = now()
    try body()
    return now() - t0
}

/// The p-th percentile (0…100) of `samples` (nearest rank).
func percentile(_ samples: [Double], _ p: Double) -> Double {
    precondition(!samples.isEmpty)
    let s = samples.sorted()
    let rank = Int((p / 100 * Double(s.count)).rounded(.up)) - 1
    return s[min(max(rank, 0), s.count - 1)]
}

/// Peak resident memory of this process so far (VmHWM), in bytes.
func peakRSS() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kb * 1024
    }
    return 0
}

/// A human table: left-aligned first column, right-aligned numbers.
func printTable(_ title: String, header: [String], rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return i == 0 ? c + pad : pad + c
        }.joined(separator: "  ")
    }
    print("\n\(title)")
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    rows.forEach { print(line($0)) }
}

func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }

/// Machine facts for RESULTS.md.
func machineDescription() -> [String: String] {
    var cpu = "unknown"
    if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
       let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) {
        cpu = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? cpu
    }
    return ["cpu": cpu, "cores": "\(ProcessInfo.processInfo.activeProcessorCount)",
            "memory_gib": fmt(Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824, 1)]
}

func printJSON(_ value: Any) {
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// The kbindex binary to run: `option`, or the repository's release build; throws with the
/// command that builds it when it is missing.
func kbindexExecutable(_ option: String?) throws -> String {
    let exe = option ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../.build/release/kbindex").standardizedFileURL.path
    guard FileManager.default.isExecutableFile(atPath: exe) else {
        throw ValidationError("no kbindex at \(exe): run 'swift build -c release' in the repository root, or pass --kbindex")
    }
    return exe
}

/// What `index` and `update` build: a corpus folder, its exclusions, and the kbindex binary.
struct BuildTarget: ParsableArguments {
    @Option(help: "The folder to index (update copies it first; the original is not touched).")
    var corpus: String

    @Option(help: "Globs passed to kbindex build --exclude (repeatable).")
    var exclude: [String] = []

    @Option(help: "The kbindex executable (default: ../.build/release/kbindex).")
    var kbindex: String?

    /// The kbindex binary to run; throws with the command that builds it when it is missing.
    func executable() throws -> String { try kbindexExecutable(kbindex) }
}
