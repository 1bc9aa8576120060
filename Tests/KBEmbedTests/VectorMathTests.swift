import Foundation
import KBTestSupport
import XCTest

@testable import KBEmbed

/// The encoder's element-wise kernels against plain Double references. Lengths are chosen so
/// the SIMD16 main loops and their scalar/partial tails are both exercised.
final class VectorMathTests: XCTestCase {
    func testErfMatchesFoundationOnDenseGrid() {
        // 2,000,001 points over [-10, 10], plus the lanes of every vector differing.
        var worst = 0.0, worstX = 0.0
        let n = 2_000_000
        var i = 0
        while i <= n {
            var lanes = SIMD16<Float>()
            for k in 0..<16 { lanes[k] = Float(-10 + 20 * Double(min(i + k, n)) / Double(n)) }
            let got = erfSIMD(lanes)
            for k in 0..<16 {
                let x = Double(lanes[k])
                let e = abs(Double(got[k]) - erf(x))
                if e > worst { worst = e; worstX = x }
            }
            i += 16
        }
        XCTAssertLessThanOrEqual(worst, 5e-7, "erfSIMD: max |error| \(worst) at x = \(worstX)")
        // The scalar twin is the same function.
        for x: Float in [-10, -4, -3.5, -1, -1e-3, 0, 1e-6, 0.5, 2, 3.99, 4, 7] {
            XCTAssertEqual(erfScalar(x), erfSIMD(SIMD16(repeating: x))[0])
            XCTAssertLessThanOrEqual(abs(Double(erfScalar(x)) - erf(Double(x))), 5e-7, "x = \(x)")
        }
        XCTAssertEqual(erfScalar(0), 0)
        XCTAssertEqual(erfScalar(-20), -1)
        XCTAssertEqual(erfScalar(20), 1)
    }

    func testExpRelativeErrorOnFullRange() {
        var worst = 0.0, worstX = 0.0
        let lo = -87.0, hi = 88.0, n = 1_750_000
        var i = 0
        while i <= n {
            var lanes = SIMD16<Float>()
            for k in 0..<16 { lanes[k] = Float(lo + (hi - lo) * Double(min(i + k, n)) / Double(n)) }
            let got = expSIMD(lanes)
            for k in 0..<16 {
                let x = Double(lanes[k])
                let want = exp(x)
                let e = abs(Double(got[k]) - want) / want
                if e > worst { worst = e; worstX = x }
            }
            i += 16
        }
        XCTAssertLessThanOrEqual(worst, 5e-7, "expSIMD: max relative error \(worst) at x = \(worstX)")
        // Below the range the result is tiny and positive (softmax only needs ≈ 0), never NaN.
        let tiny = expSIMD(SIMD16(repeating: -1e30))
        XCTAssertFalse(tiny[0].isNaN)
        XCTAssertLessThan(tiny[0], 1e-37)
        XCTAssertEqual(expSIMD(SIMD16(repeating: 0))[3], 1)
    }

    static func softmaxReference(_ s: [Float]) -> [Double] {
        let m = Double(s.max()!)
        let e = s.map { exp(Double($0) - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    func testSoftmaxRowAgainstDoubleForEveryLengthUpTo40() {
        var rng = SeededRNG(seed: 11)
        for n in 1...40 {
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
                got.withUnsafeMutableBufferPointer { softmaxRow($0.baseAddress!, count: n) }
                var worst = 0.0, sum = 0.0
                for (g, w) in zip(got, want) {
                    XCTAssertFalse(g.isNaN, "n \(n) variant \(variant): NaN")
                    worst = max(worst, abs(Double(g) - w) / max(w, 1e-6))
                    sum += Double(g)
                }
                XCTAssertLessThanOrEqual(worst, 2e-6, "n \(n) variant \(variant): relative error \(worst)")
                XCTAssertEqual(sum, 1, accuracy: 1e-5, "n \(n) variant \(variant)")
            }
        }
    }

    func testSoftmaxRowDoesNotTouchNeighbours() {
        // The tail is handled in a SIMD16 register: nothing past `count` may be read into the sum or written.
        for n in [1, 5, 15, 17, 31] {
            var buf = [Float](repeating: 123, count: n + 16)
            for k in 0..<n { buf[k] = Float(k) / 4 }
            buf.withUnsafeMutableBufferPointer { softmaxRow($0.baseAddress!, count: n) }
            XCTAssertEqual(Array(buf[n...]), [Float](repeating: 123, count: 16), "n \(n)")
            XCTAssertEqual(buf[0..<n].reduce(0, +), 1, accuracy: 1e-5)
        }
    }

    static func geluReference(_ x: Double) -> Double { x * 0.5 * (1 + erf(x / 2.0.squareRoot())) }

    func testBiasGELUAgainstDoubleForRaggedWidths() {
        var rng = SeededRNG(seed: 12)
        for cols in [1, 7, 15, 16, 17, 33, 37, 64] {
            let rows = 3
            let bias = (0..<cols).map { _ in Float.random(in: -0.5...0.5, using: &rng) }
            var m = (0..<(rows * cols)).map { _ in Float.random(in: -6...6, using: &rng) }
            m[0] = -12  // far left tail: 0, not NaN
            if m.count > 1 { m[1] = 12 }
            let input = m
            m.withUnsafeMutableBufferPointer { p in
                bias.withUnsafeBufferPointer { b in biasGELU(p.baseAddress!, rows: rows, cols: cols, bias: b.baseAddress!) }
            }
            for i in 0..<(rows * cols) {
                let x = Double(input[i]) + Double(bias[i % cols])
                let want = Self.geluReference(Double(Float(x)))
                XCTAssertEqual(Double(m[i]), want, accuracy: 1e-6 * max(1, abs(want)), "cols \(cols) index \(i) x \(x)")
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
