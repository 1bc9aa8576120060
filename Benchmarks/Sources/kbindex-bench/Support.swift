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

/// A human table: left-aligned text columns (`left`: the first by default), right-aligned numbers.
func printTable(_ title: String, header: [String], rows: [[String]], left: Set<Int> = [0]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return left.contains(i) ? c + pad : pad + c
        }.joined(separator: "  ")
    }
    print("\n\(title)")
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    rows.forEach { print(line($0)) }
}

func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }

/// Machine facts for RESULTS.md: the CPU's model name, cores, memory, and `flags`, the
/// CPU features the scan kernels use that this CPU has (see `cpuFeatures`), comma-separated.
func machineDescription() -> [String: String] {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let features = cpuFeatures(cpuinfo: info)
    return ["cpu": cpuModel(cpuinfo: info), "cores": "\(ProcessInfo.processInfo.activeProcessorCount)",
            "memory_gib": fmt(Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824, 1),
            "flags": features.isEmpty ? "none" : features.joined(separator: ",")]
}

/// The CPU's model name from /proc/cpuinfo text: x86's "model name"; on ARM, which often has
/// none, the implementer and part numbers ("CPU implementer 0x41 part 0xd0c"); else "unknown".
func cpuModel(cpuinfo: String) -> String {
    func field(_ name: String) -> String? {
        cpuinfo.split(separator: "\n").first { $0.split(separator: ":", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces) == name }
            .flatMap { $0.split(separator: ":", maxSplits: 1).dropFirst().first?.trimmingCharacters(in: .whitespaces) }
    }
    if let name = field("model name"), !name.isEmpty { return name }
    if let implementer = field("CPU implementer"), let part = field("CPU part") { return "CPU implementer \(implementer) part \(part)" }
    return "unknown"
}

/// The features the int8 scan kernels depend on, in this order, among those the first
/// "flags" (x86) or "Features" (ARM) line of /proc/cpuinfo text lists.
func cpuFeatures(cpuinfo: String) -> [String] {
    let relevant = ["avx2", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"]
    guard let line = cpuinfo.split(separator: "\n").first(where: {
        let key = $0.split(separator: ":", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces)
        return key == "flags" || key == "Features"
    }) else { return [] }
    let present = Set(line.split(separator: ":", maxSplits: 1).dropFirst().first?.split(separator: " ").map(String.init) ?? [])
    return relevant.filter(present.contains)
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
