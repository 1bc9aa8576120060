import Foundation
import KBKernels
import KBTestSupport
import XCTest

/// The fused scan (`QueryBatch.scan`): every kernel must return exactly the candidates the
/// scalar twin returns (same rows, queries and float scores), for batch sizes on both sides of
/// the packed kernels' threshold (8 queries) and around their query groups (8 or 16) and row
/// tiles (3, 6, 8 or 16 rows), dims with every 4-byte tail, strides past dims, unaligned rows,
/// QUANT records wider than 8 bytes, negative and NaN scales, extreme values and thresholds
/// that admit everything, nothing, some rows, or (NaN) nothing for some queries. Rows, QUANT
/// records, thresholds and the output each end where an inaccessible page begins, so a kernel
/// that reads or writes one byte past them crashes the test instead of passing.
final class ScanKernelTests: XCTestCase {
    struct Candidate: Hashable { var row: UInt32, query: UInt32, score: Float }

    /// `count` bytes that end exactly where an inaccessible page begins.
    final class GuardedBytes {
        private let mapping: UnsafeMutableRawPointer
        private let mapped: Int
        let start: UnsafeMutableRawPointer

        init(count: Int) {
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let pages = (count + page - 1) / page
            mapped = (pages + 1) * page
            let m = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            precondition(m != MAP_FAILED && m != nil, "mmap failed")
            mapping = m!
            precondition(mprotect(mapping + pages * page, page, PROT_NONE) == 0, "mprotect failed")
            start = mapping + pages * page - count
        }

        deinit { munmap(mapping, mapped) }
    }

    /// Scans with QUANT-like records (f32 scale, i32 Σ of the row's values, then padding up to
    /// `quantStride` bytes), every buffer guarded.
    func scan(_ batch: QueryBatch, rows: UnsafePointer<Int8>, stride: Int, n: Int, scales: [Float], thresholds: [Float],
              quantStride: Int = 8) -> [Candidate] {
        let out = GuardedBytes(count: max(1, n * batch.count) * MemoryLayout<ScanCandidate>.stride)
        let quant = GuardedBytes(count: max(1, n - 1) * quantStride + 8)
        for r in 0..<n {
            let sum = (0..<batch.dimensions).reduce(Int32(0)) { $0 + Int32(rows[r * stride + $1]) }
            quant.start.storeBytes(of: scales[r], toByteOffset: r * quantStride, as: Float.self)
            quant.start.storeBytes(of: sum, toByteOffset: r * quantStride + 4, as: Int32.self)
        }
        let th = GuardedBytes(count: max(1, thresholds.count) * 4)
        for (j, t) in thresholds.enumerated() { th.start.storeBytes(of: t, toByteOffset: 4 * j, as: Float.self) }
        let o = out.start.bindMemory(to: ScanCandidate.self, capacity: max(1, n * batch.count))
        let found = batch.scan(rows: rows, stride: stride, n: n, scales: UnsafeRawPointer(quant.start), sums: UnsafeRawPointer(quant.start + 4),
                               quantStride: quantStride, thresholds: th.start.bindMemory(to: Float.self, capacity: max(1, thresholds.count)),
                               into: o)
        XCTAssertLessThanOrEqual(found, n * batch.count)
        return (0..<found).map { Candidate(row: o[$0].row, query: o[$0].query, score: o[$0].score) }
    }

    // One test per kernel, so that a kernel this CPU cannot run is reported as skipped
    // instead of silently left out of a loop over the supported ones.
    func testScalarFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.scalar) }
    func testAVX2FindsTheScalarCandidates() throws { try findsTheScalarCandidates(.avx2) }
    func testAVX512VNNIFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.avx512vnni) }
    func testNEONFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.neon) }
    func testAVXVNNIFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.avxvnni) }
    func testAMXFindsTheScalarCandidates() throws { try findsTheScalarCandidates(.amx) }

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
            (200, 40, 50), (64, 16, 33), (128, 48, 48),
            (0, 16, 40), (0, 3, 9), (384, 32, 48),
        ]
        for (index, (dims, nq, n)) in cases.enumerated() {
            for extreme in [false, true] {
                // Every third case has stride == dims: the last row's last byte is the buffer's.
                let stride = dims + (index % 3 == 0 ? 0 : Int.random(in: 0...9, using: &rng))
                let offset = Int.random(in: 0...63, using: &rng)
                let quantStride = [8, 12, 24][Int.random(in: 0...2, using: &rng)]
                let values0 = values(offset + (n - 1) * stride + dims, extreme: extreme)
                let buffer = GuardedBytes(count: values0.count)
                values0.withUnsafeBytes { if let base = $0.baseAddress { buffer.start.copyMemory(from: base, byteCount: $0.count) } }
                let rows = UnsafePointer(buffer.start.assumingMemoryBound(to: Int8.self) + offset)
                let queries = values(nq * dims, extreme: extreme)
                // Scales: mostly positive, some negative; with 4 or more rows one is NaN
                // (its scores are NaN: never a candidate, in every kernel).
                var scales = (0..<n).map { _ in Float.random(in: 0.001...0.02, using: &rng) * (Bool.random(using: &rng) ? 1 : -1) }
                if n >= 4 { scales[Int.random(in: 0..<n, using: &rng)] = .nan }
                let finite = scales.filter { !$0.isNaN }.count
                let reference = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: .scalar)
                // Thresholds: everything passes; a score near the middle; nothing passes; NaN
                // (nothing passes) for every other query.
                let all = [Float](repeating: -.infinity, count: nq)
                let everything = scan(reference, rows: rows, stride: stride, n: n, scales: scales, thresholds: all, quantStride: quantStride)
                XCTAssertEqual(everything.count, finite * nq)
                let middle = (0..<nq).map { j -> Float in
                    let s = everything.filter { $0.query == j }.map(\.score).sorted()
                    return s.isEmpty ? 0 : s[s.count / 2]
                }
                let none = [Float](repeating: .infinity, count: nq)
                let someNaN = (0..<nq).map { $0 % 2 == 0 ? Float.nan : middle[$0] }
                let batch = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: kernel)
                XCTAssertEqual(batch.kernel, kernel)
                // Every kernel but scalar has its own paths: a row tile for fewer than 8
                // queries, a packed kernel from 8 on (never the generic fallback).
                if kernel != .scalar {
                    XCTAssertTrue(batch.path.hasPrefix("\(kernel)") && batch.path.contains(nq < 8 ? "tile" : "packed"),
                                  "\(kernel) with \(nq) queries runs \(batch.path)")
                }
                // The generic path (the benchmarks' baseline) must agree as well.
                let generic = QueryBatch(queries: queries, count: nq, dimensions: dims, kernel: kernel, genericPath: true)
                XCTAssertEqual(generic.path, "\(kernel) generic")
                for thresholds in [all, middle, none, someNaN] {
                    let want = Set(scan(reference, rows: rows, stride: stride, n: n, scales: scales, thresholds: thresholds, quantStride: quantStride))
                    let got = scan(batch, rows: rows, stride: stride, n: n, scales: scales, thresholds: thresholds, quantStride: quantStride)
                    let what = "\(kernel) dims \(dims) nq \(nq) n \(n) stride \(stride) quant \(quantStride) extreme \(extreme)"
                    XCTAssertEqual(got.count, want.count, what)
                    XCTAssertEqual(Set(got), want, what)
                    XCTAssertEqual(Set(scan(generic, rows: rows, stride: stride, n: n, scales: scales, thresholds: thresholds,
                                            quantStride: quantStride)), want, "generic path, " + what)
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
        XCTAssertEqual(DotKernel.allCases.map(\.description), ["scalar", "avx2", "avx512vnni", "neon", "avxvnni", "amx"])
    }
}
