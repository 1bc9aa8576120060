import Foundation
import KBTestSupport
import XCTest

@testable import KBEmbed
import CKBKernels

/// The encoder's element-wise kernels against plain Double references. Lengths are chosen so
/// the SIMD16 main loops and their scalar/partial tails are both exercised.
final class VectorMathTests: XCTestCase {
    typealias Softmax = (UnsafeMutablePointer<Float>, Int, Int, Int) -> Void
    typealias GELU = (UnsafeMutablePointer<Float>, Int, Int, UnsafePointer<Float>) -> Void

    /// Every variant this CPU can run, the scalar twin first, then the dispatched entry point.
    static var softmaxVariants: [(String, Softmax)] {
        var v: [(String, Softmax)] = [("scalar", { kb_softmax_rows_scalar($0, $1, $2, $3) })]
        if kb_cpu_supports(KB_ISA_AVX2) != 0 { v.append(("avx2", { kb_softmax_rows_avx2($0, $1, $2, $3) })) }
        if kb_cpu_supports(KB_ISA_AVX512) != 0 { v.append(("avx512", { kb_softmax_rows_avx512($0, $1, $2, $3) })) }
        if kb_cpu_supports(KB_ISA_NEON) != 0 { v.append(("neon", { kb_softmax_rows_neon($0, $1, $2, $3) })) }
        v.append(("dispatch", { kb_softmax_rows($0, $1, $2, $3) }))
        return v
    }

    static var geluVariants: [(String, GELU)] {
        var v: [(String, GELU)] = [("scalar", { kb_bias_gelu_scalar($0, $1, $2, $3) })]
        if kb_cpu_supports(KB_ISA_AVX2) != 0 { v.append(("avx2", { kb_bias_gelu_avx2($0, $1, $2, $3) })) }
        if kb_cpu_supports(KB_ISA_AVX512) != 0 { v.append(("avx512", { kb_bias_gelu_avx512($0, $1, $2, $3) })) }
        if kb_cpu_supports(KB_ISA_NEON) != 0 { v.append(("neon", { kb_bias_gelu_neon($0, $1, $2, $3) })) }
        v.append(("dispatch", { kb_bias_gelu($0, $1, $2, $3) }))
        return v
    }

    // The variant tests below loop over what this CPU runs; these say, one test per ISA,
    // which variants were left out here (reported as skipped, not passed).
    func testAVX2VariantsAreCompared() throws { try requireVariants("avx2", KB_ISA_AVX2) }
    func testAVX512VariantsAreCompared() throws { try requireVariants("avx512", KB_ISA_AVX512) }
    func testNEONVariantsAreCompared() throws { try requireVariants("neon", KB_ISA_NEON) }

    func requireVariants(_ name: String, _ isa: kb_isa) throws {
        let elsewhere = isa == KB_ISA_NEON ? " (scripts/test-neon.sh compares them under qemu-user)" : ""
        try XCTSkipUnless(kb_cpu_supports(isa) != 0, "this CPU cannot run \(name): its softmax and GELU variants were not compared with the scalar twin here\(elsewhere)")
        XCTAssertTrue(Self.softmaxVariants.contains { $0.0 == name })
        XCTAssertTrue(Self.geluVariants.contains { $0.0 == name })
    }

    func testDispatchPicksASupportedISA() {
        let isa = kb_active_isa()
        XCTAssertEqual(kb_cpu_supports(isa), 1)
        XCTAssertEqual(kb_cpu_supports(KB_ISA_SCALAR), 1)
        XCTAssertTrue(["scalar", "avx2", "avx512", "neon"].contains(String(cString: kb_isa_name(isa))))
    }

    func testErfMatchesFoundationOnDenseGrid() {
        // 2,000,001 points over [-10, 10], through the scalar twin and through every GELU
        // variant (whose erf is the same polynomial): gelu(x)·2/x − 1 = erf(x/√2).
        var worst = 0.0, worstX = 0.0
        let n = 2_000_000
        for i in 0...n {
            let x = Float(-10 + 20 * Double(i) / Double(n))
            let e = abs(Double(kb_erf_scalar(x)) - erf(Double(x)))
            if e > worst { worst = e; worstX = Double(x) }
        }
        XCTAssertLessThanOrEqual(worst, 5e-7, "kb_erf_scalar: max |error| \(worst) at x = \(worstX)")
        XCTAssertEqual(kb_erf_scalar(0), 0)
        XCTAssertEqual(kb_erf_scalar(-20), -1)
        XCTAssertEqual(kb_erf_scalar(20), 1)
    }

    func testExpRelativeErrorOnFullRange() {
        var worst = 0.0, worstX = 0.0
        let lo = -87.0, hi = 88.0, n = 1_750_000
        for i in 0...n {
            let x = Float(lo + (hi - lo) * Double(i) / Double(n))
            let want = exp(Double(x))
            let e = abs(Double(kb_exp_scalar(x)) - want) / want
            if e > worst { worst = e; worstX = Double(x) }
        }
        XCTAssertLessThanOrEqual(worst, 5e-7, "kb_exp_scalar: max relative error \(worst) at x = \(worstX)")
        // Below the range the result is tiny and positive (softmax only needs ≈ 0), never NaN.
        let tiny = kb_exp_scalar(-1e30)
        XCTAssertFalse(tiny.isNaN)
        XCTAssertLessThan(tiny, 1e-37)
        XCTAssertEqual(kb_exp_scalar(0), 1)
    }

    static func softmaxReference(_ s: [Float]) -> [Double] {
        let m = Double(s.max()!)
        let e = s.map { exp(Double($0) - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    func testSoftmaxEveryVariantAgainstDoubleForEveryLengthUpTo40() {
        for (name, softmax) in Self.softmaxVariants {
            var rng = SeededRNG(seed: 11)
            for n in [Int](1...40) + [255, 256, 257] {
                for variant in 0..<4 {
                    var row = (0..<n).map { _ in Float.random(in: -8...8, using: &rng) }
                    switch variant {
                    case 1: row = row.map { $0 * 10 }                            // peaked
                    case 2: for k in stride(from: 0, to: n, by: 3) { row[k] = -1e30 } // masked-like entries
                        if n % 3 == 1 { row[n - 1] = 2 }                          // keep one finite entry when n == 1
                    case 3: for k in stride(from: 1, to: n, by: 2) { row[k] = -Float.greatestFiniteMagnitude }
                    default: break
                    }
                    let want = Self.softmaxReference(row)
                    var got = row
                    got.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, 1, n, n) }
                    var worst = 0.0, sum = 0.0
                    for (g, w) in zip(got, want) {
                        XCTAssertFalse(g.isNaN, "\(name) n \(n) variant \(variant): NaN")
                        worst = max(worst, abs(Double(g) - w) / max(w, 1e-6))
                        sum += Double(g)
                    }
                    XCTAssertLessThanOrEqual(worst, 2e-6, "\(name) n \(n) variant \(variant): relative error \(worst)")
                    XCTAssertEqual(sum, 1, accuracy: 1e-5, "\(name) n \(n) variant \(variant)")
                }
            }
        }
    }

    func testSoftmaxVariantsAgreeWithTheScalarTwinOnStridedRows() {
        // Several rows with a leading dimension larger than the row: only the first n of each row change.
        var rng = SeededRNG(seed: 5)
        for n in [3, 16, 17, 45] {
            let rows = 4, ld = n + 5
            let input = (0..<(rows * ld)).map { _ in Float.random(in: -10...10, using: &rng) }
            var reference = input
            reference.withUnsafeMutableBufferPointer { kb_softmax_rows_scalar($0.baseAddress!, rows, n, ld) }
            for (name, softmax) in Self.softmaxVariants {
                var got = input
                got.withUnsafeMutableBufferPointer { softmax($0.baseAddress!, rows, n, ld) }
                for r in 0..<rows {
                    for k in 0..<ld {
                        let i = r * ld + k
                        if k < n {
                            XCTAssertEqual(got[i], reference[i], accuracy: 4e-7 * max(reference[i], 1e-3), "\(name) n \(n) row \(r)")
                        } else {
                            XCTAssertEqual(got[i], input[i], "\(name): wrote past the row (n \(n), row \(r), col \(k))")
                        }
                    }
                }
            }
        }
    }

    static func geluReference(_ x: Double) -> Double { x * 0.5 * (1 + erf(x / 2.0.squareRoot())) }

    func testBiasGELUEveryVariantAgainstDoubleForRaggedWidths() {
        for (name, gelu) in Self.geluVariants {
            var rng = SeededRNG(seed: 12)
            for cols in [1, 7, 8, 9, 15, 16, 17, 33, 37, 64, 1536] {
                let rows = 3
                let bias = (0..<cols).map { _ in Float.random(in: -0.5...0.5, using: &rng) }
                var m = (0..<(rows * cols)).map { _ in Float.random(in: -6...6, using: &rng) }
                m[0] = -12  // far left tail: 0, not NaN
                if m.count > 1 { m[1] = 12 }
                let input = m
                m.withUnsafeMutableBufferPointer { p in
                    bias.withUnsafeBufferPointer { b in gelu(p.baseAddress!, rows, cols, b.baseAddress!) }
                }
                for i in 0..<(rows * cols) {
                    let x = Double(input[i]) + Double(bias[i % cols])
                    let want = Self.geluReference(Double(Float(x)))
                    XCTAssertEqual(Double(m[i]), want, accuracy: 1e-6 * max(1, abs(want)), "\(name) cols \(cols) index \(i) x \(x)")
                }
            }
        }
    }

    static func layerNormReference(_ x: [Double], gamma: [Float], beta: [Float], eps: Double) -> [Double] {
        let mean = x.reduce(0, +) / Double(x.count)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(x.count)
        return x.indices.map { (x[$0] - mean) / (variance + eps).squareRoot() * Double(gamma[$0]) + Double(beta[$0]) }
    }

    func testLayerNormAgainstDouble() {
        var rng = SeededRNG(seed: 13)
        for cols in [1, 2, 16, 19, 384] {
            for eps: Float in [1e-12, 1e-5] {
                let rows = 4
                let gamma = (0..<cols).map { _ in Float.random(in: 0.5...1.5, using: &rng) }
                let beta = (0..<cols).map { _ in Float.random(in: -0.2...0.2, using: &rng) }
                let bias = (0..<cols).map { _ in Float.random(in: -0.2...0.2, using: &rng) }
                let residual = (0..<(rows * cols)).map { _ in Float.random(in: -3...3, using: &rng) }
                // A large common offset checks that the mean is removed before squaring.
                let x = (0..<(rows * cols)).map { _ in 100 + Float.random(in: -2...2, using: &rng) }

                // layerNormRow alone.
                var plain = x
                for r in 0..<rows {
                    plain.withUnsafeMutableBufferPointer { p in
                        layerNormRow(p.baseAddress! + r * cols, cols: cols, gamma: gamma, beta: beta, eps: eps)
                    }
                    let want = Self.layerNormReference(x[(r * cols)..<((r + 1) * cols)].map(Double.init), gamma: gamma, beta: beta, eps: Double(eps))
                    for j in 0..<cols {
                        XCTAssertEqual(Double(plain[r * cols + j]), want[j], accuracy: 2e-5, "layerNormRow cols \(cols) eps \(eps)")
                    }
                }

                // biasResidualLayerNorm: LN(x + bias + residual), with and without a residual.
                for withResidual in [true, false] {
                    var got = x
                    got.withUnsafeMutableBufferPointer { p in
                        if withResidual {
                            biasResidualLayerNorm(p.baseAddress!, rows: rows, cols: cols, bias: bias, residual: residual, gamma: gamma, beta: beta, eps: eps)
                        } else {
                            biasResidualLayerNorm(p.baseAddress!, rows: rows, cols: cols, bias: bias, residual: nil, gamma: gamma, beta: beta, eps: eps)
                        }
                    }
                    for r in 0..<rows {
                        let input = (0..<cols).map { j in
                            Double(Float(Float(x[r * cols + j] + bias[j]) + (withResidual ? residual[r * cols + j] : 0)))
                        }
                        let want = Self.layerNormReference(input, gamma: gamma, beta: beta, eps: Double(eps))
                        for j in 0..<cols {
                            XCTAssertEqual(Double(got[r * cols + j]), want[j], accuracy: 2e-5,
                                           "biasResidualLayerNorm cols \(cols) eps \(eps) residual \(withResidual)")
                        }
                    }
                }
            }
        }
    }

    func testAddBias() {
        var m: [Float] = [1, 2, 3, 4, 5, 6]
        m.withUnsafeMutableBufferPointer { addBias($0.baseAddress!, rows: 2, cols: 3, bias: [10, 20, 30]) }
        XCTAssertEqual(m, [11, 22, 33, 14, 25, 36])
    }
}
