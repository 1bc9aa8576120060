// The encoder's element-wise kernels: bias, exact-erf GELU, softmax, LayerNorm.
// Written with SIMD16<Float> so the compiler emits AVX-512/AVX2/NEON code; each has a
// plain scalar reference in the tests. Accuracy targets float32 rounding, not speed tricks:
// erf and exp are full-range approximations accurate to a few units in the last place.

/// Adds `bias[j]` to every row of a `rows × cols` row-major matrix.
@inline(__always)
func addBias(_ m: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>) {
    for r in 0..<rows {
        let row = m + r * cols
        for j in 0..<cols { row[j] += bias[j] }
    }
}

/// erf(x) for Float, |error| ≲ 2e-7 over the whole line (rational minimax approximation
/// on [-4, 4]; erf(±4) rounds to ±1 in float32).
@inline(__always)
func erfSIMD(_ xIn: SIMD16<Float>) -> SIMD16<Float> {
    let x = xIn.clamped(lowerBound: SIMD16(repeating: -4), upperBound: SIMD16(repeating: 4))
    let x2 = x * x
    var p = SIMD16<Float>(repeating: -2.72614225801306e-10)
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    var q = SIMD16<Float>(repeating: -1.45660718464996e-05)
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return x * p / q
}

/// Scalar twin of `erfSIMD`, for tails and tests.
@inline(__always)
func erfScalar(_ x: Float) -> Float {
    erfSIMD(SIMD16(repeating: x))[0]
}

/// In place: `m[i] = gelu(m[i] + bias[i % cols])` with the exact form
/// gelu(x) = x · ½ · (1 + erf(x / √2)).
func biasGELU(_ m: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>) {
    let invSqrt2: Float = 0.70710678118654752440
    for r in 0..<rows {
        let row = m + r * cols
        var j = 0
        while j + 16 <= cols {
            let x = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD16<Float>.self)
                + UnsafeRawPointer(bias + j).loadUnaligned(as: SIMD16<Float>.self)
            let y = x * 0.5 * (1 + erfSIMD(x * invSqrt2))
            UnsafeMutableRawPointer(row + j).storeBytes(of: y, as: SIMD16<Float>.self)
            j += 16
        }
        while j < cols {
            let x = row[j] + bias[j]
            row[j] = x * 0.5 * (1 + erfScalar(x * invSqrt2))
            j += 1
        }
    }
}

/// e^x for Float, relative error ≲ 2 ulp for x in [-87, 88]; smaller x gives ~0 (1e-38),
/// which is what softmax needs after subtracting the row maximum.
@inline(__always)
func expSIMD(_ xIn: SIMD16<Float>) -> SIMD16<Float> {
    let x0 = xIn.clamped(lowerBound: SIMD16(repeating: -87.0), upperBound: SIMD16(repeating: 88.0))
    let fx = (x0 * 1.44269504088896341).rounded(.toNearestOrEven)
    var x = x0 - fx * 0.693359375
    x = x + fx * 2.12194440e-4
    var y = SIMD16<Float>(repeating: 1.9875691500e-4)
    y = y * x + 1.3981999507e-3
    y = y * x + 8.3334519073e-3
    y = y * x + 4.1665795894e-2
    y = y * x + 1.6666665459e-1
    y = y * x + 5.0000001201e-1
    y = y * (x * x) + x + 1
    let n = SIMD16<Int32>(fx)
    let bits = SIMD16<UInt32>(truncatingIfNeeded: n &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: SIMD16<Float>.self)
}

/// In place over one row of `n` scores: `s = softmax(s)`, max-subtracted.
func softmaxRow(_ s: UnsafeMutablePointer<Float>, count n: Int) {
    var mx = -Float.infinity
    for i in 0..<n { mx = Swift.max(mx, s[i]) }
    var sum: Float = 0
    var i = 0
    var acc = SIMD16<Float>(repeating: 0)
    while i + 16 <= n {
        let e = expSIMD(UnsafeRawPointer(s + i).loadUnaligned(as: SIMD16<Float>.self) - mx)
        UnsafeMutableRawPointer(s + i).storeBytes(of: e, as: SIMD16<Float>.self)
        acc += e
        i += 16
    }
    sum = acc.sum()
    if i < n {
        var tail = SIMD16<Float>(repeating: -Float.infinity)
        for k in i..<n { tail[k - i] = s[k] }
        let e = expSIMD(tail - mx)
        for k in i..<n { s[k] = e[k - i]; sum += e[k - i] }
    }
    let inv = 1 / sum
    for k in 0..<n { s[k] *= inv }
}

/// In place over `rows` rows of width `cols`: x = LayerNorm(x + bias + residual) · γ + β,
/// with mean and variance accumulated in Double (the biased variance, as PyTorch does).
func biasResidualLayerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                           bias: UnsafePointer<Float>, residual: UnsafePointer<Float>?,
                           gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float) {
    for r in 0..<rows {
        let row = x + r * cols
        if let residual {
            let res = residual + r * cols
            for j in 0..<cols { row[j] = row[j] + bias[j] + res[j] }
        } else {
            for j in 0..<cols { row[j] += bias[j] }
        }
        layerNormRow(row, cols: cols, gamma: gamma, beta: beta, eps: eps)
    }
}

/// LayerNorm of one row in place.
@inline(__always)
func layerNormRow(_ row: UnsafeMutablePointer<Float>, cols: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float) {
    var sum = 0.0
    for j in 0..<cols { sum += Double(row[j]) }
    let mean = sum / Double(cols)
    var sq = 0.0
    for j in 0..<cols { let d = Double(row[j]) - mean; sq += d * d }
    let inv = 1 / (sq / Double(cols) + Double(eps)).squareRoot()
    let m = Float(mean), s = Float(inv)
    for j in 0..<cols { row[j] = (row[j] - m) * s * gamma[j] + beta[j] }
}
