import Foundation
import KBCore

/// A chunk's stable id: `<16 hex digits>-<ordinal>`, the first 8 bytes of
/// SHA-256(document path, 0x00, the document content's SHA-256) and the chunk's position in
/// its document. It names the same chunk across reloads, compactions and builds that leave
/// the document unchanged; a changed or removed document's ids are unknown afterwards.
public struct ChunkID: Sendable, Hashable, CustomStringConvertible {
    /// The document part: 16 lowercase hex digits.
    public let document: String
    public let ordinal: Int

    /// The id of chunk `ordinal` of the document at `path` with content hash `contentSHA256`.
    /// O(path length).
    public init(path: String, contentSHA256: [UInt8], ordinal: Int) {
        self.document = Self.documentKey(path: path, contentSHA256: contentSHA256)
        self.ordinal = ordinal
    }

    /// Parses "3f9a0c1d2b4e5f60-2"; nil for anything else (never traps, whatever the text).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count == 16,
              parts[0].utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }),
              parts[1].utf8.count <= 10, !parts[1].isEmpty, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let n = Int(parts[1]), n <= Int(UInt32.max) else { return nil }
        document = String(parts[0])
        ordinal = n
    }

    public var description: String { "\(document)-\(ordinal)" }

    /// The document part of the ids of a document's chunks. O(path length).
    static func documentKey(path: String, contentSHA256: [UInt8]) -> String {
        var data = Data(path.utf8)
        data.append(0)
        data.append(contentsOf: contentSHA256)
        return String(Hashing.sha256Hex(data).prefix(16))
    }
}
