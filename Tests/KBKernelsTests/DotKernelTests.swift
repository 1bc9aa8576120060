import Foundation
import KBTestSupport
import XCTest

import CKBKernels

/// The int8 dot-product kernels: every variant this CPU runs must return exactly the scalar
/// twin's integers, for every length that reaches a different main-loop/tail split, every
/// misalignment of rows and queries, strides past dims, row counts around the 4-row blocks, and
/// values that would saturate an int16 path. Batches must equal one query at a time.
final class DotKernelTests: XCTestCase {
    static let allKernels: [kb_dot_kernel_id] = [KB_DOT_SCALAR, KB_DOT_AVX2, KB_DOT_AVX512VNNI, KB_DOT_NEON, KB_DOT_AVXVNNI, KB_DOT_AMX]

    /// The kernels the comparisons run: the scalar twin, and the kernel under test (set by
    /// `compare(_:)`, one test method per kernel, so that a kernel this CPU cannot run is
    /// reported as skipped instead of silently left out of a loop).
    nonisolated(unsafe) static var underTest: kb_dot_kernel_id?
    static var kernels: [kb_dot_kernel_id] { [KB_DOT_SCALAR] + (underTest.map { [$0] } ?? []) }

    /// Runs every comparison with the scalar twin for kernel `k`, or skips with the reason.
    func compare(_ k: kb_dot_kernel_id) throws {
        try XCTSkipUnless(kb_dot_kernel_supported(k) != 0,
                          "this CPU cannot run the \(Self.name(k)) kernel: its comparisons with the scalar twin did not run here\(k == KB_DOT_NEON ? " (scripts/test-neon.sh runs them under qemu-user)" : "")")
        Self.underTest = k
        defer { Self.underTest = nil }
        checkEveryDimsEveryMisalignment()
        checkRowCounts()
        checkExtremeValuesUpToMaxDims()
        checkBatchEqualsOneQueryAtATime()
    }

    /// The scalar twin against plain integer arithmetic, and its batch against one query at a time.
    func testScalarTwin() throws { try compare(KB_DOT_SCALAR) }
    func testAVX2MatchesScalar() throws { try compare(KB_DOT_AVX2) }
    func testAVX512VNNIMatchesScalar() throws { try compare(KB_DOT_AVX512VNNI) }
    func testNEONMatchesScalar() throws { try compare(KB_DOT_NEON) }
    func testAVXVNNIMatchesScalar() throws { try compare(KB_DOT_AVXVNNI) }
    /// amx's dot products are avx512vnni's (its own code is the scan's batch path).
    func testAMXMatchesScalar() throws { try compare(KB_DOT_AMX) }

    static func name(_ k: kb_dot_kernel_id) -> String { String(cString: kb_dot_kernel_id_name(k)) }

    /// Every dims 0…300 and the lengths around the 64- and 32-byte blocks of real embeddings.
    static let allDims = [Int](0...300) + [383, 384, 385, 511, 512, 1024, 4096]

    /// A 64-byte-aligned buffer of random values in [-127, 127]; kernels read it at byte offsets.
    final class Pool {
        let base: UnsafeMutableRawPointer
        let count: Int
        init(count: Int, seed: UInt64) {
            self.count = count
            base = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            var rng = SeededRNG(seed: seed)
            let p = base.assumingMemoryBound(to: Int8.self)
            var i = 0
            while i < count {
                var bits = rng.next()
                for _ in 0..<8 where i < count {
                    p[i] = Int8(Int(bits & 0xFF) % 255 - 127)
                    bits >>= 8
                    i += 1
                }
            }
        }
        func at(_ offset: Int) -> UnsafePointer<Int8> { UnsafePointer(base.assumingMemoryBound(to: Int8.self) + offset) }
        deinit { base.deallocate() }
    }

    static let sentinel: Int32 = 0x5A5A_5A5A

    /// Scores of `k` for one query, with sentinels past the end to catch out-of-bounds writes.
    static func scores(_ k: kb_dot_kernel_id, _ q: UnsafePointer<Int8>, _ rows: UnsafePointer<Int8>,
                       stride: Int, dims: Int, n: Int, file: StaticString = #filePath, line: UInt = #line) -> [Int32] {
        var out = [Int32](repeating: sentinel, count: n + 4)
        out.withUnsafeMutableBufferPointer { kb_i8_dot_rows_with(k, q, rows, stride, dims, n, $0.baseAddress!) }
        XCTAssertEqual(Array(out[n...]), [Int32](repeating: sentinel, count: 4), "\(name(k)) wrote past scores[n]", file: file, line: line)
        return Array(out[..<n])
    }

    static func batchScores(_ k: kb_dot_kernel_id, _ qs: UnsafePointer<Int8>, qstride: Int, nq: Int,
                            _ rows: UnsafePointer<Int8>, stride: Int, dims: Int, n: Int,
                            file: StaticString = #filePath, line: UInt = #line) -> [Int32] {
        var out = [Int32](repeating: sentinel, count: nq * n + 4)
        out.withUnsafeMutableBufferPointer { kb_i8_dot_rows_batch_with(k, qs, qstride, nq, rows, stride, dims, n, $0.baseAddress!) }
        XCTAssertEqual(Array(out[(nq * n)...]), [Int32](repeating: sentinel, count: 4), "\(name(k)) batch wrote past the end", file: file, line: line)
        return Array(out[..<(nq * n)])
    }

    /// Checks every kernel against the scalar twin (and the scalar twin against a plain Int
    /// reference) for one configuration; returns false after the first mismatch.
    @discardableResult
    static func checkAll(_ q: UnsafePointer<Int8>, _ rows: UnsafePointer<Int8>, stride: Int, dims: Int, n: Int,
                         _ what: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let want = scores(KB_DOT_SCALAR, q, rows, stride: stride, dims: dims, n: n)
        for r in Swift.stride(from: 0, to: n, by: max(1, n / 8)) {
            var s = 0
            for i in 0..<dims { s += Int(q[i]) * Int(rows[r * stride + i]) }
            if Int(want[r]) != s { XCTFail("scalar row \(r): \(want[r]) != \(s) (\(what()))", file: file, line: line); return false }
        }
        for k in kernels.dropFirst() {
            let got = scores(k, q, rows, stride: stride, dims: dims, n: n)
            if got != want {
                let r = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }!.offset
                XCTFail("\(name(k)) row \(r): \(got[r]) != scalar \(want[r]) (\(what()))", file: file, line: line)
                return false
            }
        }
        return true
    }

    func testScalarIsAvailableAndDispatchIsSupported() {
        XCTAssertEqual(kb_dot_kernel_supported(KB_DOT_SCALAR), 1)
        XCTAssertEqual(kb_dot_kernel_supported(kb_dot_kernel()), 1)
        #if arch(x86_64)
        XCTAssertEqual(kb_dot_kernel_supported(KB_DOT_NEON), 0)
        #elseif arch(arm64)
        XCTAssertEqual(kb_dot_kernel_supported(KB_DOT_AVX2), 0)
        XCTAssertEqual(kb_dot_kernel_supported(KB_DOT_AVX512VNNI), 0)
        XCTAssertEqual(kb_dot_kernel_supported(KB_DOT_AVXVNNI), 0)
        XCTAssertEqual(kb_dot_kernel_supported(KB_DOT_AMX), 0)
        #endif
        XCTAssertEqual(String(cString: kb_dot_kernel_name()), Self.name(kb_dot_kernel()))
        // The cached choice is the selection rule applied to this process's environment.
        XCTAssertEqual(kb_dot_kernel(), kb_dot_kernel_select(getenv("KBINDEX_KERNEL")))
    }

    func testForcingAKernelByName() {
        let best = kb_dot_kernel_select(nil)
        XCTAssertEqual(kb_dot_kernel_supported(best), 1)
        // The best is the most capable supported kernel.
        if kb_dot_kernel_supported(KB_DOT_AMX) != 0 { XCTAssertEqual(best, KB_DOT_AMX) }
        else if kb_dot_kernel_supported(KB_DOT_AVX512VNNI) != 0 { XCTAssertEqual(best, KB_DOT_AVX512VNNI) }
        else if kb_dot_kernel_supported(KB_DOT_AVXVNNI) != 0 { XCTAssertEqual(best, KB_DOT_AVXVNNI) }
        else if kb_dot_kernel_supported(KB_DOT_NEON) != 0 { XCTAssertEqual(best, KB_DOT_NEON) }
        else if kb_dot_kernel_supported(KB_DOT_AVX2) != 0 { XCTAssertEqual(best, KB_DOT_AVX2) }
        else { XCTAssertEqual(best, KB_DOT_SCALAR) }
        XCTAssertEqual(kb_dot_kernel_select(""), best)
        XCTAssertEqual(kb_dot_kernel_select("no-such-kernel"), best)
        XCTAssertEqual(kb_dot_kernel_select("AVX2 "), best, "names are exact")
        for k in Self.allKernels {
            // A supported kernel is honoured; an unsupported one falls back to the best.
            let got = kb_dot_kernel_select(Self.name(k))
            XCTAssertEqual(got, kb_dot_kernel_supported(k) != 0 ? k : best, Self.name(k))
        }
        XCTAssertEqual(kb_dot_kernel_select("scalar"), KB_DOT_SCALAR)
        XCTAssertEqual(Self.name(kb_dot_kernel_id(rawValue: 99)), "unknown")
    }

    func checkEveryDimsEveryMisalignment() {
        let pool = Pool(count: 1 << 20, seed: 1)
        let n = 7  // one 4-row block and a 3-row tail
        for dims in Self.allDims {
            for offset in 0..<64 {
                let qOff = offset, rOff = 128 + (offset * 37) % 64
                let stride = dims + (offset % 3 == 0 ? 0 : offset % 17)  // == dims and > dims
                if !Self.checkAll(pool.at(qOff), pool.at(rOff), stride: stride, dims: dims, n: n,
                                  "dims \(dims) q+\(qOff) rows+\(rOff) stride \(stride)") { return }
            }
        }
    }

    func checkRowCounts() {
        let pool = Pool(count: 1 << 20, seed: 2)
        for n in [0, 1, 2, 3, 4, 5, 7, 8, 64, 1000] {
            for dims in [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 383, 384, 385] {
                for offset in [0, 1, 7, 31, 63] {
                    let stride = dims + offset
                    if !Self.checkAll(pool.at(offset), pool.at(4096 + offset * 3), stride: stride, dims: dims, n: n,
                                      "n \(n) dims \(dims) offset \(offset)") { return }
                }
            }
        }
    }

    /// Constant and alternating ±127 inputs: every int16 pair sum is ±32258 (the AVX2 bound), the
    /// VNNI intermediate Σ(r+128)·q leaves the int32 range, and at dims 131072 the true result is
    /// ±127²·131072, near Int32.max.
    func checkExtremeValuesUpToMaxDims() {
        let maxDims = 131_072
        let q = UnsafeMutablePointer<Int8>.allocate(capacity: maxDims + 64)
        let rows = UnsafeMutablePointer<Int8>.allocate(capacity: 3 * (maxDims + 64) + 64)
        defer { q.deallocate(); rows.deallocate() }
        let patterns: [(String, (Int) -> Int8, (Int) -> Int8)] = [
            ("all +127", { _ in 127 }, { _ in 127 }),
            ("all -127", { _ in -127 }, { _ in -127 }),
            ("+127 · -127", { _ in 127 }, { _ in -127 }),
            ("-127 · +127", { _ in -127 }, { _ in 127 }),
            ("alternating", { $0 % 2 == 0 ? 127 : -127 }, { $0 % 2 == 0 ? 127 : -127 }),
            ("alternating, opposite", { $0 % 2 == 0 ? 127 : -127 }, { $0 % 2 == 0 ? -127 : 127 }),
            ("pairs", { $0 % 4 < 2 ? 127 : -127 }, { _ in 127 }),
            ("zeros and -127", { $0 % 3 == 0 ? 0 : -127 }, { $0 % 5 == 0 ? 0 : -127 }),
        ]
        for dims in [1, 2, 31, 32, 63, 64, 65, 384, 4096, maxDims - 1, maxDims] {
            for (label, qv, rv) in patterns {
                for offset in [0, 1, 33] {
                    let qp = q + offset, rp = rows + offset
                    let stride = dims + 5
                    for i in 0..<dims { qp[i] = qv(i) }
                    for r in 0..<3 { for i in 0..<stride { rp[r * stride + i] = i < dims ? rv(i) : -127 } }
                    if dims == maxDims, label == "all +127" {
                        XCTAssertEqual(Self.scores(KB_DOT_SCALAR, qp, rp, stride: stride, dims: dims, n: 1), [Int32(127 * 127 * maxDims)])
                    }
                    if !Self.checkAll(qp, rp, stride: stride, dims: dims, n: 3, "\(label) dims \(dims) offset \(offset)") { return }
                    for k in Self.kernels {
                        let b = Self.batchScores(k, qp, qstride: 0, nq: 3, rp, stride: stride, dims: dims, n: 3)
                        XCTAssertEqual(b, Array(repeating: Self.scores(KB_DOT_SCALAR, qp, rp, stride: stride, dims: dims, n: 3), count: 3).flatMap { $0 },
                                       "\(Self.name(k)) batch, \(label) dims \(dims)")
                    }
                }
            }
        }
    }

    func checkBatchEqualsOneQueryAtATime() {
        let pool = Pool(count: 1 << 21, seed: 3)
        var configs: [(dims: Int, n: Int)] = [(0, 5), (1, 9), (17, 3), (64, 4), (100, 13), (383, 7), (384, 64), (385, 5), (1024, 3), (4096, 2)]
        configs += [(31, 0), (384, 1)]
        for (dims, n) in configs {
            for nq in [Int](1...9) + [16, 17, 300] {
                if nq == 300 && dims > 384 { continue }
                for offset in [0, 5, 63] {
                    let qstride = dims + (offset % 7)
                    let stride = dims + offset
                    let qs = pool.at(offset), rows = pool.at((1 << 20) + 2 * offset + 1)
                    // One query at a time through the scalar twin.
                    var want = [Int32]()
                    for j in 0..<nq { want += Self.scores(KB_DOT_SCALAR, qs + j * qstride, rows, stride: stride, dims: dims, n: n) }
                    for k in Self.kernels {
                        let got = Self.batchScores(k, qs, qstride: qstride, nq: nq, rows, stride: stride, dims: dims, n: n)
                        if got != want {
                            let i = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }!.offset
                            XCTFail("\(Self.name(k)) batch dims \(dims) n \(n) nq \(nq) offset \(offset): query \(i / max(n, 1)) row \(i % max(n, 1)) \(got[i]) != \(want[i])")
                            return
                        }
                        // And the kernel's own single-query entry agrees with its batch.
                        if nq > 1 {
                            let last = Self.scores(k, qs + (nq - 1) * qstride, rows, stride: stride, dims: dims, n: n)
                            XCTAssertEqual(Array(got[((nq - 1) * n)...]), last, "\(Self.name(k)) nq \(nq) dims \(dims)")
                        }
                    }
                }
            }
        }
    }

    func testDispatchedEntryPointsMatchScalar() {
        let pool = Pool(count: 1 << 18, seed: 4)
        for dims in [0, 7, 64, 384, 385] {
            let n = 33, stride = dims + 3
            var got = [Int32](repeating: 0, count: n), gotBatch = [Int32](repeating: 0, count: 2 * n)
            got.withUnsafeMutableBufferPointer { kb_i8_dot_rows(pool.at(1), pool.at(9000), stride, dims, n, $0.baseAddress!) }
            gotBatch.withUnsafeMutableBufferPointer { kb_i8_dot_rows_batch(pool.at(1), dims + 1, 2, pool.at(9000), stride, dims, n, $0.baseAddress!) }
            let want = Self.scores(KB_DOT_SCALAR, pool.at(1), pool.at(9000), stride: stride, dims: dims, n: n)
            let want2 = Self.scores(KB_DOT_SCALAR, pool.at(2 + dims), pool.at(9000), stride: stride, dims: dims, n: n)
            XCTAssertEqual(got, want, "dims \(dims)")
            XCTAssertEqual(gotBatch, want + want2, "dims \(dims)")
        }
    }
}
