/// Why a segment file cannot be read. Every case names the file; `description` is one line
/// that describes the problem only (the command line adds what to do about it).
public enum SegmentError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file ends before its footer (an interrupted copy or write). `size`: bytes present.
    case truncated(file: String, size: Int)
    /// The first 8 bytes are not a segment's magic: not a kbindex segment.
    case badMagic(file: String)
    /// A segment of a format version this build does not read.
    case unsupportedVersion(file: String, version: UInt32)
    /// A MODEL section whose model descriptor has a `version` this build does not read (§8.3).
    case unsupportedModelVersion(file: String, version: Int)
    /// A region's CRC32C does not match: `section` is "header/directory" or a section name
    /// ("VECTORS", "CHUNKS", …).
    case checksumMismatch(file: String, section: String)
    /// A count, offset or length points outside the file or its section.
    case outOfBounds(file: String, what: String)
    /// Any other inconsistency.
    case corrupt(file: String, reason: String)

    public var description: String {
        switch self {
        case .truncated(let f, let size):
            return "segment \(f) is truncated (\(size) bytes, the footer is missing)"
        case .badMagic(let f):
            return "\(f) is not a kbindex segment (bad magic bytes)"
        case .unsupportedVersion(let f, let v):
            return "segment \(f) has format version \(v); this kbindex reads versions 1 and 2"
        case .unsupportedModelVersion(let f, let v):
            return "segment \(f) has a model descriptor of version \(v); this kbindex reads versions 1 and 2"
        case .checksumMismatch(let f, let s):
            return "segment \(f) is damaged: the \(s) checksum does not match"
        case .outOfBounds(let f, let what):
            return "segment \(f) is damaged: \(what) is out of bounds"
        case .corrupt(let f, let reason):
            return "segment \(f) is damaged: \(reason)"
        }
    }
}
