import Foundation
import KBTestSupport
import XCTest

import CKBKernels

/// The int8 GEMM kernels and the activation quantizer: every variant this CPU runs must return
/// exactly the scalar twin's floats (and bytes), on odd shapes (m, n, k not multiples of any
/// block, k = 1, m = 1), the encoder's shapes, strides past k with garbage in the padding, and
/// rows that are zero, tiny or non-finite. The scalar twin itself is checked against plain
/// integer arithmetic.
final class GemmKernelTests: XCTestCase {
    static func name(_ k: kb_gemm_kernel_id) -> String { String(cString: kb_gemm_kernel_id_name(k)) }

    /// Random floats with a few channels much larger than the rest (like BERT's hidden states).
    static func floats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<count).map { i in
            let u = Float(rng.next() % 2_000_001) / 1_000_000 - 1
            return (i % 37 == 5 ? 20 * u : u) * scale
        }
    }

    /// A quantized activation matrix: m rows of k values at stride lda, padding filled with
    /// random bytes (kernels must not depend on it).
    struct Activations {
        var bytes: [Int8]
        var scales: [Float]
        let lda: Int
    }

    static func quantize(_ x: [Float], m: Int, k: Int, lda: Int, seed: UInt64) -> Activations {
        var a = Activations(bytes: [Int8](repeating: 0, count: m * lda + 64), scales: [Float](repeating: 0, count: m), lda: lda)
        a.bytes.withUnsafeMutableBufferPointer { q in
            a.scales.withUnsafeMutableBufferPointer { s in
                kb_i8_quantize_rows_scalar(x, k, m, k, nil, q.baseAddress!, lda, s.baseAddress!)
            }
        }
        var rng = SeededRNG(seed: seed)
        for i in 0..<m { for t in k..<lda { a.bytes[i * lda + t] = Int8(truncatingIfNeeded: rng.next() % 255) } }
        return a
    }

    static let sentinel = Float(bitPattern: 0x7FC0_1234)

    /// C of kernel `kernel` for W (n × k floats) and activations `a`, with sentinels after each
    /// row (ldc = n + 3) to catch writes past n.
    static func gemm(_ kernel: kb_gemm_kernel_id, w: [Float], n: Int, k: Int, a: Activations, m: Int,
                     file: StaticString = #filePath, line: UInt = #line) -> [Float]? {
        guard let packed = kb_i8_weights_new_with(kernel, w, n, k) else {
            XCTFail("\(name(kernel)): packing [\(n), \(k)] failed", file: file, line: line)
            return nil
        }
        defer { kb_i8_weights_free(packed) }
        XCTAssertEqual(kb_i8_weights_kernel(packed), kernel, file: file, line: line)
        let ldc = n + 3
        var c = [Float](repeating: sentinel, count: m * ldc)
        a.bytes.withUnsafeBufferPointer { q in
            c.withUnsafeMutableBufferPointer { kb_i8_gemm(packed, q.baseAddress!, a.lda, a.scales, m, $0.baseAddress!, ldc) }
        }
        for i in 0..<m {
            for j in n..<ldc where c[i * ldc + j].bitPattern != sentinel.bitPattern {
                XCTFail("\(name(kernel)) wrote past column n at row \(i)", file: file, line: line)
                return nil
            }
        }
        return (0..<m).flatMap { Array(c[($0 * ldc)..<($0 * ldc + n)]) }
    }

    /// Shapes: odd sizes around every kernel's blocks (6 rows, 4/16/64 columns, 4/64 k) and the
    /// encoder's four linear layers at an odd token count.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 17, 1), (7, 1, 5), (1, 65, 3), (5, 16, 4), (6, 64, 64), (13, 33, 7), (37, 45, 13),
        (2, 100, 385), (11, 129, 255), (19, 70, 1000), (25, 3, 131),
        (131, 1152, 384), (131, 384, 384), (131, 1536, 384), (131, 384, 1536),
    ]

    /// Every shape, bit for bit against the scalar twin; returns after the first mismatch.
    func compare(_ kernel: kb_gemm_kernel_id) throws {
        try XCTSkipUnless(kb_gemm_kernel_supported(kernel) != 0,
                          "this CPU cannot run the \(Self.name(kernel)) GEMM kernel: its comparisons with the scalar twin did not run here")
        for (s, (m, n, k)) in Self.shapes.enumerated() {
            let w = Self.floats(n * k, seed: UInt64(s) * 2 + 1, scale: 0.05)
            let x = Self.floats(m * k, seed: UInt64(s) * 2 + 2)
            for lda in Set([(k + 3) / 4 * 4, kb_i8_row_stride(k), kb_i8_row_stride(k) + 4]) {
                let a = Self.quantize(x, m: m, k: k, lda: lda, seed: UInt64(s))
                guard let want = Self.gemm(KB_GEMM_SCALAR, w: w, n: n, k: k, a: a, m: m),
                      let got = Self.gemm(kernel, w: w, n: n, k: k, a: a, m: m) else { return }
                if let i = got.indices.first(where: { got[$0].bitPattern != want[$0].bitPattern }) {
                    XCTFail("\(Self.name(kernel)) m=\(m) n=\(n) k=\(k) lda=\(lda): C[\(i / n), \(i % n)] = \(got[i]) ≠ scalar \(want[i])")
                    return
                }
            }
        }
    }

    func testAVX2MatchesScalar() throws { try compare(KB_GEMM_AVX2) }
    func testAVXVNNIMatchesScalar() throws {
        try XCTSkipUnless(kb_gemm_kernel_supported(KB_GEMM_AVXVNNI) != 0,
                          "this CPU has no AVX-VNNI (VEX vpdpbusd): the avxvnni GEMM kernel was compiled but not compared with the scalar twin here")
        try compare(KB_GEMM_AVXVNNI)
    }
    func testAVX512VNNIMatchesScalar() throws { try compare(KB_GEMM_AVX512VNNI) }
    func testNEONMatchesScalar() throws {
        #if !arch(arm64)
        throw XCTSkip("the neon GEMM kernel runs on AArch64 only: not compared with the scalar twin in this x86-64 process (scripts/test-neon.sh compares it under qemu-user)")
        #else
        try compare(KB_GEMM_NEON)
        #endif
    }

    /// The scalar twin is C = (float)Σ a·w · (a_scale · w_scale), with w quantized per row by the
    /// same quantizer, checked here with plain integer arithmetic.
    func testScalarTwinIsTheDefinition() throws {
        for (s, (m, n, k)) in Self.shapes.prefix(12).enumerated() {
            let w = Self.floats(n * k, seed: UInt64(s) + 100, scale: 0.05)
            let x = Self.floats(m * k, seed: UInt64(s) + 200)
            let a = Self.quantize(x, m: m, k: k, lda: kb_i8_row_stride(k), seed: 1)
            let wq = Self.quantize(w, m: n, k: k, lda: k, seed: 2)
            guard let c = Self.gemm(KB_GEMM_SCALAR, w: w, n: n, k: k, a: a, m: m) else { return }
            let packed = try XCTUnwrap(kb_i8_weights_new_with(KB_GEMM_SCALAR, w, n, k))
            defer { kb_i8_weights_free(packed) }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: kb_i8_weights_scales(packed), count: n)), wq.scales)
            for i in 0..<m {
                for j in 0..<n {
                    var dot = 0
                    for t in 0..<k { dot += Int(a.bytes[i * a.lda + t]) * Int(wq.bytes[j * k + t]) }
                    let want = Float(dot) * (a.scales[i] * wq.scales[j])
                    if c[i * n + j].bitPattern != want.bitPattern {
                        XCTFail("m=\(m) n=\(n) k=\(k): C[\(i), \(j)] = \(c[i * n + j]) ≠ \(want)")
                        return
                    }
                }
            }
        }
    }

    // ---- the quantizer -------------------------------------------------------------------

    /// Rows that exercise every branch: random, all zero, tiny (→ zeros), ties at .5 after
    /// scaling, a NaN, an infinity, a single nonzero value, and negative maxima.
    static func quantizerInput(k: Int) -> [Float] {
        var rows: [[Float]] = []
        rows.append(floats(k, seed: 7))
        rows.append([Float](repeating: 0, count: k))
        rows.append([Float](repeating: 1e-35, count: k))
        rows.append((0..<k).map { Float($0 % 255) - 127 + ($0 % 3 == 0 ? 0.5 : 0) })  // max 127: scale 1, ties
        rows.append((0..<k).map { $0 == k / 2 ? .nan : 1 })
        rows.append((0..<k).map { $0 == k - 1 ? -.infinity : -2 })
        rows.append((0..<k).map { $0 == 0 ? -3 : 0 })
        rows.append(floats(k, seed: 8, scale: -1e3))
        return rows.flatMap { $0 }
    }

    func quantized(_ variant: (UnsafePointer<Float>, Int, Int, Int, UnsafePointer<Float>?, UnsafeMutablePointer<Int8>, Int, UnsafeMutablePointer<Float>) -> Void,
                   x: [Float], m: Int, k: Int, channels: [Float]?) -> ([Int8], [Float]) {
        let ldq = kb_i8_row_stride(k)
        var q = [Int8](repeating: 99, count: m * ldq)
        var s = [Float](repeating: -1, count: m)
        q.withUnsafeMutableBufferPointer { qb in
            s.withUnsafeMutableBufferPointer { sb in
                if let channels {
                    channels.withUnsafeBufferPointer { variant(x, k, m, k, $0.baseAddress!, qb.baseAddress!, ldq, sb.baseAddress!) }
                } else {
                    variant(x, k, m, k, nil, qb.baseAddress!, ldq, sb.baseAddress!)
                }
            }
        }
        return (q, s)
    }

    func testQuantizerVariantsMatchScalarAndTheDefinition() throws {
        for k in [1, 2, 7, 8, 15, 16, 17, 63, 64, 65, 384, 1536] {
            let x = Self.quantizerInput(k: k)
            let m = x.count / k
            for channels in [nil, (0..<k).map { Float($0 % 5 == 1 ? 0 : ($0 % 3 == 0 ? 0.5 : 1)) }] {
                let (q, s) = quantized(kb_i8_quantize_rows_scalar, x: x, m: m, k: k, channels: channels)
                let ldq = kb_i8_row_stride(k)
                // The definition, row by row.
                for i in 0..<m {
                    let row = (0..<k).map { x[i * k + $0] * (channels?[$0] ?? 1) }
                    let maxAbs = row.map { abs($0) }.max()!
                    let bad = row.contains { !$0.isFinite }
                    if bad { XCTAssertTrue(s[i].isNaN, "k=\(k) row \(i): non-finite row needs a NaN scale") }
                    else if maxAbs < 0x1p-100 { XCTAssertEqual(s[i], 0, "k=\(k) row \(i)") }
                    else { XCTAssertEqual(s[i], maxAbs / 127, "k=\(k) row \(i)") }
                    for t in 0..<ldq {
                        var want: Int8 = 0
                        if t < k, !bad, maxAbs >= 0x1p-100 {
                            want = Int8(max(-127, min(127, row[t] * (127 / maxAbs))).rounded(.toNearestOrEven))
                        }
                        if q[i * ldq + t] != want {
                            XCTFail("k=\(k) row \(i) [\(t)]: \(q[i * ldq + t]) ≠ \(want)")
                            return
                        }
                    }
                }
                #if arch(x86_64)
                for (name, variant, isa) in [("avx2", kb_i8_quantize_rows_avx2, KB_ISA_AVX2), ("avx512", kb_i8_quantize_rows_avx512, KB_ISA_AVX512)]
                    where kb_cpu_supports(isa) != 0 {
                    let (q2, s2) = quantized(variant, x: x, m: m, k: k, channels: channels)
                    XCTAssertEqual(q2, q, "\(name) quantized bytes differ from scalar (k=\(k))")
                    XCTAssertEqual(s2.map(\.bitPattern), s.map(\.bitPattern), "\(name) scales differ from scalar (k=\(k))")
                }
                #endif
                let (q3, s3) = quantized(kb_i8_quantize_rows, x: x, m: m, k: k, channels: channels)
                XCTAssertEqual(q3, q); XCTAssertEqual(s3.map(\.bitPattern), s.map(\.bitPattern))
            }
        }
    }

    /// A weight row holding a NaN makes its output column NaN (the encoder's finiteness check
    /// then names the damaged tensor), never a silently finite value.
    func testNonFiniteWeightsGiveNaNOutputs() throws {
        let (m, n, k) = (3, 20, 9)
        var w = Self.floats(n * k, seed: 3)
        w[5 * k + 4] = .nan
        let a = Self.quantize(Self.floats(m * k, seed: 4), m: m, k: k, lda: kb_i8_row_stride(k), seed: 5)
        for kernel in [KB_GEMM_SCALAR, kb_gemm_kernel()] {
            let c = try XCTUnwrap(Self.gemm(kernel, w: w, n: n, k: k, a: a, m: m))
            for i in 0..<m {
                XCTAssertTrue(c[i * n + 5].isNaN, "\(Self.name(kernel)) row \(i)")
                XCTAssertTrue(c[i * n + 4].isFinite, "\(Self.name(kernel)) row \(i)")
            }
        }
    }

    func testShapesOutsideTheLimitsAreRefused() {
        let w = [Float](repeating: 1, count: 4)
        XCTAssertNil(kb_i8_weights_new_with(KB_GEMM_SCALAR, w, 0, 4))
        XCTAssertNil(kb_i8_weights_new_with(KB_GEMM_SCALAR, w, 4, 0))
        XCTAssertNil(kb_i8_weights_new_with(KB_GEMM_SCALAR, w, 1, 131_073))  // refused before reading w
    }

    func testDispatch() {
        XCTAssertEqual(kb_gemm_kernel_supported(KB_GEMM_SCALAR), 1)
        XCTAssertEqual(kb_gemm_kernel_supported(kb_gemm_kernel()), 1)
        XCTAssertEqual(kb_gemm_kernel(), kb_gemm_kernel_select(getenv("KBINDEX_GEMM_KERNEL")))
        XCTAssertEqual(String(cString: kb_gemm_kernel_name()), Self.name(kb_gemm_kernel()))
        XCTAssertEqual(kb_gemm_kernel_select("scalar"), KB_GEMM_SCALAR)
        XCTAssertEqual(kb_gemm_kernel_select("no-such-kernel"), kb_gemm_kernel_select(nil))
        XCTAssertEqual(kb_gemm_kernel_supported(kb_gemm_kernel_select(nil)), 1)
        #if arch(x86_64)
        XCTAssertEqual(kb_gemm_kernel_supported(KB_GEMM_NEON), 0)
        XCTAssertEqual(kb_gemm_kernel_select("neon"), kb_gemm_kernel_select(nil), "a kernel this CPU cannot run falls back to the best")
        if kb_gemm_kernel_supported(KB_GEMM_AVX512VNNI) != 0 { XCTAssertEqual(kb_gemm_kernel_select(nil), KB_GEMM_AVX512VNNI) }
        if kb_gemm_kernel_supported(KB_GEMM_AVX2) != 0 { XCTAssertEqual(kb_gemm_kernel_select("avx2"), KB_GEMM_AVX2) }
        #elseif arch(arm64)
        XCTAssertEqual(kb_gemm_kernel_select(nil), KB_GEMM_NEON)
        #endif
        for k in [KB_GEMM_SCALAR, KB_GEMM_AVX2, KB_GEMM_AVXVNNI, KB_GEMM_AVX512VNNI, KB_GEMM_NEON] {
            XCTAssertEqual(kb_gemm_kernel_select(kb_gemm_kernel_id_name(k)),
                           kb_gemm_kernel_supported(k) != 0 ? k : kb_gemm_kernel_select(nil))
        }
    }
}
