import CKBKernels

/// The int8 dot-product kernels the scan can run (one per instruction set), and the one it
/// does run: chosen once per process for this CPU, or forced with `KBINDEX_KERNEL=<name>`
/// (ignored, falling back to the best, when this CPU cannot run the named kernel).
public enum DotKernel: Int, CaseIterable, Sendable, CustomStringConvertible {
    case scalar = 0, avx2 = 1, avx512vnni = 2, neon = 3, avxvnni = 4, amx = 5

    /// The kernel scans use by default. O(1) after the first call.
    public static var active: DotKernel { DotKernel(rawValue: Int(kb_dot_kernel().rawValue)) ?? .scalar }

    /// Every kernel this CPU can run, scalar first.
    public static var supported: [DotKernel] { allCases.filter(\.isSupported) }

    /// Whether this CPU (and OS) can run the kernel.
    public var isSupported: Bool { kb_dot_kernel_supported(cID) != 0 }

    /// "scalar", "avx2", "avx512vnni", "neon", "avxvnni" or "amx": the value `KBINDEX_KERNEL`
    /// accepts.
    public var description: String { String(cString: kb_dot_kernel_id_name(cID)) }

    /// The scan paths this kernel runs on this CPU for vectors of `dimensions`: for one query
    /// and for a batch of `batch` queries (e.g. "avx2 tile8" and "avx2 packed8x4"), on the
    /// generic path when `genericPath`. Builds two batches of zeros.
    /// - Precondition: 1 ≤ dimensions ≤ 131_072, batch ≥ 1.
    public func scanPaths(dimensions: Int, batch: Int = 16, genericPath: Bool = false) -> (single: String, batch: String) {
        let one = QueryBatch(queries: [Int8](repeating: 0, count: dimensions), count: 1, dimensions: dimensions, kernel: self,
                             genericPath: genericPath)
        let many = QueryBatch(queries: [Int8](repeating: 0, count: batch * dimensions), count: batch, dimensions: dimensions,
                              kernel: self, genericPath: genericPath)
        return (one.path, many.path)
    }

    var cID: kb_dot_kernel_id { kb_dot_kernel_id(rawValue: UInt32(rawValue)) }
}
