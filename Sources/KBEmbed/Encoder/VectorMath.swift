// The encoder's light element-wise steps: bias and LayerNorm. The heavy ones (softmax with
// exp, GELU with erf) are C kernels with per-ISA variants in CKBKernels, because Swift's SIMD
// types compile to baseline SSE2 here and ran several times slower (see Benchmarks/RESULTS.md).

/// Adds `bias[j]` to every row of a `rows × cols` row-major matrix.
@inline(__always)
func addBias(_ m: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>) {
    for r in 0..<rows {
        let row = m + r * cols
        for j in 0..<cols { row[j] += bias[j] }
    }
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
