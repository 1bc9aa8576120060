import CKBKernels
import COpenBLAS
import Dispatch
import Synchronization

/// A `[rows, cols]` float matrix quantized to int8 once per row and packed for the int8 GEMM
/// kernel this CPU runs (`kb_i8_weights`, see CKBKernels' kb_kernels.h). Immutable, so
/// workers share it. Memory: about rows · cols bytes plus 4 · rows for the scales.
final class Int8Matrix: @unchecked Sendable {
    let handle: OpaquePointer

    /// Quantizes and packs `values` (`rows · cols` floats, row-major). O(rows · cols).
    /// - Throws: `ModelError.unsupported` naming `name` when the kernels cannot take the
    ///   shape (more than 131072 columns) or memory is short.
    init(_ values: UnsafePointer<Float>, rows: Int, cols: Int, name: String, file: String) throws {
        guard let h = kb_i8_weights_new(values, rows, cols) else {
            throw ModelError.unsupported(
                file: file, reason: "cannot quantize '\(name)' ([\(rows), \(cols)]) to int8: use precision f32")
        }
        handle = h
    }

    deinit { kb_i8_weights_free(handle) }
}

/// The largest |value| each input channel of a linear layer saw while calibrating.
final class ChannelRange: @unchecked Sendable {
    var maxAbs: [Float]
    init(channels: Int) { maxAbs = [Float](repeating: 0, count: channels) }

    /// Folds in `rows` rows of `maxAbs.count` values. O(rows · channels).
    func record(_ x: UnsafePointer<Float>, rows: Int) {
        let k = maxAbs.count
        for r in 0..<rows {
            for c in 0..<k { maxAbs[c] = max(maxAbs[c], abs(x[r * k + c])) }
        }
    }
}

/// A linear layer in int8, with its few outlier input channels in float.
///
/// BERT's hidden states carry a handful of channels up to ~20× larger than the rest; a
/// per-token scale sized for them rounds every other channel coarsely (measured on the
/// golden texts: mean cosine 0.9953 with every channel in int8). So the `outlierCount`
/// channels with the largest calibrated range are dropped from the int8 product (their
/// activations multiplied by 0 while quantizing, their weight columns zeroed before the
/// weights are quantized) and added back by a float product of rank `outlierCount`:
///     y = int8(x ⊙ mask) · int8(W ⊙ mask)ᵀ + x[:, outliers] · W[:, outliers]ᵀ
final class Int8Linear: @unchecked Sendable {
    /// Input channels computed in float, per layer input (2% of 384, 0.5% of 1536).
    static let outlierCount = 8

    let matrix: Int8Matrix
    let rows: Int, cols: Int
    let outliers: [Int]
    /// 1 per input channel, 0 for the outliers (the quantizer's channel scale).
    let mask: UnsafeMutablePointer<Float>
    /// `[rows, outliers.count]`: W's outlier columns.
    let outlierWeights: UnsafeMutablePointer<Float>

    /// The `outlierCount` input channels (fewer when there are fewer) with the largest
    /// calibrated range, ascending; ties go to the lower channel. O(cols log cols).
    static func outliers(of range: ChannelRange) -> [Int] {
        let r = min(outlierCount, range.maxAbs.count)
        return range.maxAbs.indices.sorted { (range.maxAbs[$0], $1) > (range.maxAbs[$1], $0) }.prefix(r).sorted()
    }

    /// - Parameter outliers: the input channels kept in float (`outliers(of:)` of a
    ///   calibration, or the same list remembered from an earlier load). Precondition:
    ///   ascending, distinct, each below `w.shape[1]`.
    init(_ w: FloatTensor, outliers: [Int], name: String, file: String) throws {
        rows = w.shape[0]
        cols = w.shape[1]
        let r = outliers.count
        self.outliers = outliers
        mask = .allocate(capacity: cols)
        mask.initialize(repeating: 1, count: cols)
        for c in outliers { mask[c] = 0 }
        outlierWeights = .allocate(capacity: rows * r)
        let masked = UnsafeMutablePointer<Float>.allocate(capacity: rows * cols)
        defer { masked.deallocate() }
        for j in 0..<rows {
            for c in 0..<cols { masked[j * cols + c] = w.pointer[j * cols + c] * mask[c] }
            for (t, c) in outliers.enumerated() { outlierWeights[j * r + t] = w.pointer[j * cols + c] }
        }
        do {
            matrix = try Int8Matrix(masked, rows: rows, cols: cols, name: name, file: file)
        } catch {
            mask.deallocate(); outlierWeights.deallocate()
            throw error
        }
    }

    deinit { mask.deallocate(); outlierWeights.deallocate() }

    /// y[m, rows] = x[m, cols] · Wᵀ, with `quantized`/`scales` (room for m rows of
    /// `stride` bytes, and m floats) and `gathered` (m · outlierCount floats) as scratch.
    /// O(m · rows · cols) int8 + O(m · rows · outlierCount) float.
    func apply(_ x: UnsafePointer<Float>, m: Int, into y: UnsafeMutablePointer<Float>, quantized: UnsafeMutablePointer<Int8>,
               stride: Int, scales: UnsafeMutablePointer<Float>, gathered: UnsafeMutablePointer<Float>) {
        kb_i8_quantize_rows(x, cols, m, cols, mask, quantized, stride, scales)
        kb_i8_gemm(matrix.handle, quantized, stride, scales, m, y, rows)
        let r = outliers.count
        guard r > 0 else { return }
        for i in 0..<m {
            for (t, c) in outliers.enumerated() { gathered[i * r + t] = x[i * cols + c] }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(rows), Int32(r),
                    1, gathered, Int32(r), outlierWeights, Int32(r), 1, y, Int32(rows))
    }
}

/// One linear layer's weight in the arithmetic the encoder runs it in.
enum LinearWeight: @unchecked Sendable {
    /// Float32 through OpenBLAS sgemm.
    case f32(FloatTensor)
    /// Float32, recording each input channel's range (the int8 calibration pass).
    case calibrating(FloatTensor, ChannelRange)
    /// int8 weights × per-token int8 activations through kb_i8_gemm, outliers in float.
    case int8(Int8Linear)
}

/// A transformer layer's four linear maps (biases stay in `BertLayerWeights`).
struct LayerLinears: @unchecked Sendable {
    let qkv: LinearWeight      // [3H, H]
    let attnOut: LinearWeight  // [H, H]
    let ffnIn: LinearWeight    // [I, H]
    let ffnOut: LinearWeight   // [H, I]

    var all: [LinearWeight] { [qkv, attnOut, ffnIn, ffnOut] }

    init(qkv: LinearWeight, attnOut: LinearWeight, ffnIn: LinearWeight, ffnOut: LinearWeight) {
        self.qkv = qkv; self.attnOut = attnOut; self.ffnIn = ffnIn; self.ffnOut = ffnOut
    }

    /// Float maps, recording into fresh ranges when `calibrating`.
    init(float w: BertLayerWeights, calibrating: Bool) {
        func make(_ t: FloatTensor) -> LinearWeight { calibrating ? .calibrating(t, ChannelRange(channels: t.shape[1])) : .f32(t) }
        self.init(qkv: make(w.qkvWeight), attnOut: make(w.attnOutWeight), ffnIn: make(w.ffnInWeight), ffnOut: make(w.ffnOutWeight))
    }

    /// The outlier channels a calibrating layer that ran found for its four maps, in `all`'s
    /// order (empty lists for maps that were not calibrating).
    var calibratedOutliers: [[Int]] {
        all.map { if case .calibrating(_, let range) = $0 { Int8Linear.outliers(of: range) } else { [] } }
    }

    /// int8 maps keeping `outliers` (four lists, in `all`'s order) in float.
    /// Precondition: each list ascending, distinct, below its map's input width.
    init(int8 w: BertLayerWeights, outliers: [[Int]], layer: Int, file: String) throws {
        func make(_ t: FloatTensor, _ o: [Int], _ name: String) throws -> LinearWeight {
            .int8(try Int8Linear(t, outliers: o, name: "encoder.layer.\(layer).\(name)", file: file))
        }
        self.init(qkv: try make(w.qkvWeight, outliers[0], "attention.self.{query,key,value}.weight"),
                  attnOut: try make(w.attnOutWeight, outliers[1], "attention.output.dense.weight"),
                  ffnIn: try make(w.ffnInWeight, outliers[2], "intermediate.dense.weight"),
                  ffnOut: try make(w.ffnOutWeight, outliers[3], "output.dense.weight"))
    }
}

/// The int8 matrix product seen from outside the encoder (benchmarks, diagnostics).
public enum Int8GEMM {
    /// The kernel int8 weights are packed for on this CPU ("avx512vnni", "avxvnni", "neon",
    /// "avx2" or "scalar"; KBINDEX_GEMM_KERNEL may force a lower one).
    public static var kernelName: String { String(cString: kb_gemm_kernel_name()) }

    /// Operations per second (multiply-add = 2) of the int8 linear layer as the encoder runs
    /// it (per-token quantization + kb_i8_gemm, no outlier channels) on `shapes` (m tokens,
    /// n outputs, k inputs), with `threads` threads each running the shapes in turn, for
    /// about `seconds`. Random weights; allocates O(n·k + m·k) per thread.
    public static func rate(shapes: [(m: Int, n: Int, k: Int)], threads: Int, seconds: Double = 1.5) -> Double {
        let opsPerPass = shapes.reduce(0.0) { $0 + 2 * Double($1.m) * Double($1.n) * Double($1.k) }
        let passes = Mutex<Int>(0)
        let clock = ContinuousClock()
        let t0 = clock.now
        DispatchQueue.concurrentPerform(iterations: max(1, threads)) { _ in
            var weights: [Int8Matrix] = []
            var buffers: [(x: [Float], y: [Float])] = []
            for (s, (m, n, k)) in shapes.enumerated() {
                let w = (0..<(n * k)).map { Float(($0 &* 2_654_435_761 &+ s) % 2001 - 1000) * 1e-4 }
                guard let q = w.withUnsafeBufferPointer({ try? Int8Matrix($0.baseAddress!, rows: n, cols: k, name: "bench", file: "") }) else { return }
                weights.append(q)
                buffers.append(((0..<(m * k)).map { Float(($0 &* 40_503) % 997 - 498) * 1e-3 }, [Float](repeating: 0, count: m * n)))
            }
            let kmax = shapes.map(\.k).max() ?? 1, mmax = shapes.map(\.m).max() ?? 1
            let stride = kb_i8_row_stride(kmax)
            let quantized = UnsafeMutablePointer<Int8>.allocate(capacity: mmax * stride); defer { quantized.deallocate() }
            let scales = UnsafeMutablePointer<Float>.allocate(capacity: mmax); defer { scales.deallocate() }
            var count = 0
            let start = clock.now
            while (clock.now - start) < .milliseconds(Int(seconds * 1000)) {
                for (s, (m, n, k)) in shapes.enumerated() {
                    buffers[s].x.withUnsafeBufferPointer { x in
                        buffers[s].y.withUnsafeMutableBufferPointer { y in
                            kb_i8_quantize_rows(x.baseAddress!, k, m, k, nil, quantized, stride, scales)
                            kb_i8_gemm(weights[s].handle, quantized, stride, scales, m, y.baseAddress!, n)
                        }
                    }
                }
                count += 1
            }
            passes.withLock { $0 += count }
        }
        let elapsed = clock.now - t0
        let secondsElapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Double(passes.withLock { $0 }) * opsPerPass / secondsElapsed
    }
}
