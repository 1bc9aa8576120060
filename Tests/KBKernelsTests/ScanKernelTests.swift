import Foundation
import KBKernels
import KBTestSupport
import XCTest

/// The fused scan (`QueryBatch.scan`): every kernel must return exactly the candidates the
/// scalar twin returns (same rows, queries and float scores), for batch sizes on both sides of
/// the packed kernel's threshold and around its 16-query groups and 6-row tiles, dims with
/// every 4-byte tail, strides past dims, unaligned rows, extreme values and thresholds that
/// admit everything, nothing, or some rows.
final class ScanKernelTests: XCTestCase {
    struct Candidate: Hashable { var row: UInt32, query: UInt32, score: Float }

    /// Scans with QUANT-like records (f32 scale, i32 Σ of the row's values; 8 bytes each).
    func scan(_ batch: QueryBatch, rows: UnsafePointer<Int8>, stride: Int, n: Int, scales: [Float], thresholds: [Float]) -> [Candidate] {
        let out = UnsafeMutablePointer<ScanCandidate>.allocate(capacity: max(1, n * batch.count))
        defer { out.deallocate() }
        var quant = [UInt32](repeating: 0, count: 2 * max(n, 1))
        for r in 0..<n {
            quant[2 * r] = scales[r].bitPattern
            quant[2 * r + 1] = UInt32(bitPattern: (0..<batch.dimensions).reduce(Int32(0)) { $0 + Int32(rows[r * stride + $1]) })
        }
        let found = quant.withUnsafeBytes { q in
            thresholds.withUnsafeBufferPointer { t in
                batch.scan(rows: rows, stride: stride, n: n, scales: q.baseAddress!, sums: q.baseAddress! + 4, quantStride: 8,
                           thresholds: t.baseAddress!, into: out)
            }
        }
        XCTAssertLessThanOrEqual(found, n * batch.count)
        return (0..<found).map { Candidate(row: out[$0].row, query: out[$0].query, score: out[$0].score) }
    }

    // One test per kernel, so that a kernel this CPU cannot run is reported as skipped
    // instead of silently left out of a loop over the supported ones.
    func testScalarFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.scalar) }
    func testAVX2FindsTheScalarCandidates() throws { try findsTheScalarCandidates(.avx2) }
    func testAVX512VNNIFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.avx512vnni) }
    func testNEONFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.neon) }
    func testAVXVNNIFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.avxvnni) }

    func findsTheScalarCandidates(_ kernel: DotKernel) throws {
        try XCTSkipUnless(kernel.isSupported, "this CPU cannot run the \(kernel) kernel: its scan (single query and packed batch) did not run here\(kernel == .neon ? " (scripts/test-neon.sh runs it under qemu-user)" : "")")
        var rng = SeededRNG(seed: 77)
        func values(_ n: Int, extreme: Bool) -> [Int8] {
            (0..<n).map { _ in extreme ? (Bool.random(using: &rng) ? 127 : -127) : Int8.random(in: -127...127, using: &rng) }
        }
        let cases: [(dims: Int, nq: Int, n: Int)] = [
            (1, 1, 5), (3, 8, 7), (4, 9, 13), (5, 16, 6), (63, 17, 64), (64, 7, 65), (65, 33, 12),
            (103, 50, 130), (384, 8, 200), (384, 64, 70), (384, 200, 19), (385, 23, 31), (770, 65, 9),
            (384, 1, 16), (384, 1, 47), (100, 2, 33), (64, 1, 15), (129, 3, 100), (7, 1, 17),
            (384, 1, 8), (384, 7, 9), (33, 8, 25), (416, 2, 23), (96, 24, 11), (1, 8, 3),
        ]
        for (dims, nq, n) in cases {
            for extreme in [false, true] {
                let stride = dims + Int.random(in: 0...9, using: &rng)
                let offset = Int.random(in: 0...63, using: &rng)
                // Rows end exactly at the buffer's end, so a kernel reading past dims would be caught by ASan.
                var buffer = values(offset + (n - 1) * stride + dims, extreme: extreme)
                let queries = values(nq * dims, extreme: extreme)
                let scales = (0..<n).map { _ in Float.random(in: 0.001...0.02, using: &rng) }
                let reference = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: .scalar)
                // Thresholds: everything passes; a score near the middle; nothing passes.
                let all = [Float](repeating: -.infinity, count: nq)
                let middle = buffer.withUnsafeBufferPointer { b -> [Float] in
                    let c = scan(reference, rows: b.baseAddress! + offset, stride: stride, n: n, scales: scales, thresholds: all)
                    XCTAssertEqual(c.count, n * nq)
                    return (0..<nq).map { j in
                        let s = c.filter { $0.query == j }.map(\.score).sorted()
                        return s[s.count / 2]
                    }
                }
                let none = [Float](repeating: .infinity, count: nq)
                do {
                    let batch = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: kernel)
                    XCTAssertEqual(batch.kernel, kernel)
                    // Every kernel but scalar has its own paths: a row tile for fewer than 8
                    // queries, a packed kernel from 8 on (never the generic fallback).
                    if kernel != .scalar {
                        XCTAssertTrue(batch.path.hasPrefix("\(kernel)") && batch.path.contains(nq < 8 ? "tile" : "packed"),
                                      "\(kernel) with \(nq) queries runs \(batch.path)")
                    }
                    for thresholds in [all, middle, none] {
                        buffer.withUnsafeMutableBufferPointer { b in
                            let rows = UnsafePointer(b.baseAddress! + offset)
                            let want = Set(scan(reference, rows: rows, stride: stride, n: n, scales: scales, thresholds: thresholds))
                            let got = scan(batch, rows: rows, stride: stride, n: n, scales: scales, thresholds: thresholds)
                            XCTAssertEqual(got.count, want.count, "\(kernel) dims \(dims) nq \(nq) n \(n)")
                            XCTAssertEqual(Set(got), want, "\(kernel) dims \(dims) nq \(nq) n \(n) extreme \(extreme)")
                            // The generic path (the benchmarks' baseline) agrees as well.
                            let generic = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: kernel, genericPath: true)
                            XCTAssertEqual(generic.path, "\(kernel) generic")
                            XCTAssertEqual(Set(scan(generic, rows: rows, stride: stride, n: n, scales: scales, thresholds: thresholds)), want,
                                           "\(kernel) generic path, dims \(dims) nq \(nq) n \(n)")
                        }
                    }
                }
            }
        }
    }

    func testScalarCandidatesAreTheDefinition() {
        // The scalar twin itself against a direct computation: v = scale · Float(dot) ≥ threshold.
        var rng = SeededRNG(seed: 5)
        let dims = 37, nq = 3, n = 50
        let rows = (0..<n * dims).map { _ in Int8.random(in: -127...127, using: &rng) }
        let queries = (0..<nq * dims).map { _ in Int8.random(in: -127...127, using: &rng) }
        let scales = (0..<n).map { _ in Float.random(in: 0.001...0.02, using: &rng) }
        let thresholds: [Float] = [-.infinity, 0, 5]
        var want: Set<Candidate> = []
        for r in 0..<n {
            for j in 0..<nq {
                var dot: Int32 = 0
                for i in 0..<dims { dot += Int32(rows[r * dims + i]) * Int32(queries[j * dims + i]) }
                let v = scales[r] * Float(dot)
                if v >= thresholds[j] { want.insert(Candidate(row: UInt32(r), query: UInt32(j), score: v)) }
            }
        }
        let batch = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: .scalar)
        let got = rows.withUnsafeBufferPointer { scan(batch, rows: $0.baseAddress!, stride: dims, n: n, scales: scales, thresholds: thresholds) }
        XCTAssertEqual(Set(got), want)
        XCTAssertGreaterThan(want.count, 0)
        XCTAssertLessThan(want.count, n * nq)
    }

    func testActiveKernelIsSupportedAndNamed() {
        XCTAssertTrue(DotKernel.active.isSupported)
        XCTAssertTrue(DotKernel.supported.contains(.scalar))
        XCTAssertEqual(DotKernel.allCases.map(\.description), ["scalar", "avx2", "avx512vnni", "neon", "avxvnni"])
    }
}
