import CKBKernels

/// One (row, query) pair a scan found at or above its query's threshold.
public typealias ScanCandidate = kb_candidate

/// Quantized queries prepared for scanning blocks of int8 rows: the kernel-side half of
/// exact top-k. Scanning fuses the dot products with a per-query threshold, so only rows that
/// could still enter a query's top-k come back (see `scan`).
///
/// Immutable after `init`; one batch may be scanned from many threads at once.
public final class QueryBatch: @unchecked Sendable {
    private let handle: OpaquePointer
    /// Number of queries and their dimensions.
    public let count: Int
    public let dimensions: Int
    /// The kernel this batch runs (the requested one, or scalar when the CPU cannot run it).
    public let kernel: DotKernel

    /// Copies `count` queries of `dimensions` values each, stored back to back in `queries`.
    /// Precondition: `queries.count == count · dimensions`; values in −127…127 (never −128);
    /// `dimensions ≤ 131_072`. O(count · dimensions).
    ///
    /// `genericPath` runs the kernel's dot products on the generic blocked path instead of the
    /// kernel's own scan paths: the scan as it was before them, for benchmarks' baselines.
    public init(queries: [Int8], count: Int, dimensions: Int, kernel: DotKernel = .active, genericPath: Bool = false) {
        precondition(queries.count == count * dimensions, "queries hold \(queries.count) values, not \(count) × \(dimensions)")
        precondition(dimensions <= 131_072, "at most 131072 dimensions")
        precondition(!queries.contains(-128), "query values must be in -127...127")
        let h = queries.withUnsafeBufferPointer { q in
            genericPath ? kb_query_batch_new_generic(kernel.cID, q.baseAddress, dimensions, count, dimensions)
                : kb_query_batch_new(kernel.cID, q.baseAddress, dimensions, count, dimensions)
        }
        guard let h else { fatalError("out of memory preparing \(count) queries") }
        handle = h
        self.count = count
        self.dimensions = dimensions
        self.kernel = DotKernel(rawValue: Int(kb_query_batch_kernel(h).rawValue)) ?? .scalar
    }

    deinit { kb_query_batch_free(handle) }

    /// The scan path this batch runs, for reports: the kernel's name and the path's, e.g.
    /// "avx2 tile8" (one query at a time, 8-row tiles), "avx512vnni packed16x4" (the
    /// register-tiled batch kernel), "scalar generic".
    public var path: String { String(cString: kb_query_batch_path(handle)) }

    /// Scores `n` rows against every query and writes to `out` each (row, query) pair whose
    /// score `scale(row) · dot(query, row)` (as Float, computed exactly that way) is ≥
    /// `thresholds[query]`. Returns the number written. Row `r` is at `rows + r · stride`; its
    /// scale (Float) and the sum of its values (Int32) are at byte offset `r · quantStride`
    /// from `scales` and `sums` (a segment's QUANT records). Kernels may use the stored sums
    /// rather than recompute them; a wrong sum gives wrong scores, never a wrong memory access.
    ///
    /// - Precondition: `out` has room for `n · count` candidates; `thresholds` holds `count`
    ///   values; rows hold `dimensions` values in −127…127 and `stride ≥ dimensions`.
    /// - Complexity: O(n · count · dimensions); no allocation.
    @inline(__always)
    public func scan(rows: UnsafePointer<Int8>, stride: Int, n: Int, scales: UnsafeRawPointer, sums: UnsafeRawPointer,
                     quantStride: Int, thresholds: UnsafePointer<Float>, into out: UnsafeMutablePointer<ScanCandidate>) -> Int {
        kb_i8_scan(handle, rows, stride, n, scales.assumingMemoryBound(to: Float.self), sums.assumingMemoryBound(to: Int32.self),
                   quantStride, thresholds, out)
    }
}
