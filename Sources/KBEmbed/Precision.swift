/// The arithmetic the encoder's linear layers run in.
///
/// - `f32`: float32 weights and activations through OpenBLAS sgemm (equal to
///   sentence-transformers within float noise).
/// - `int8`: weights quantized once at load per output channel, activations quantized per
///   token on the fly, int32 accumulation in the int8 GEMM kernels (CKBKernels, one dispatch
///   point); softmax, layer norm, GELU, residuals and pooling stay in float.
///
/// An index records the precision that embedded it (`ModelDescriptor.precision`); a query on
/// it embeds the question the same way unless told otherwise.
public enum Precision: String, CaseIterable, Sendable, CustomStringConvertible {
    case f32
    case int8

    /// What a build uses when neither the command line nor an existing index says.
    public static let `default`: Precision = .f32

    public var description: String { rawValue }

    /// The value an index records: nil for `f32` (indexes from before precisions existed
    /// read as f32, and f32 indexes stay byte-identical), else the raw value.
    public var recorded: String? { self == .f32 ? nil : rawValue }

    /// The precision an index recorded (`ModelDescriptor.precision`): nil is f32; nil as well
    /// for a value this kbindex does not know.
    public init?(recorded: String?) {
        guard let recorded else { self = .f32; return }
        self.init(rawValue: recorded)
    }
}
