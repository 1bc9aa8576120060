import Foundation
import KBCore

/// JSON files that end with their own SHA-256 (format-spec.md §13.2): the manifest and the
/// build checkpoint (§13.6) share this encoding.
public enum ChecksummedJSON {
    private static let marker = Array("\"sha256\"".utf8)

    /// `value` as pretty-printed JSON with sorted keys, its closing brace replaced by a last
    /// member `"sha256": "<hex>"` where hex is the SHA-256 of every byte before `"sha256"`.
    /// O(output size).
    public static func encode<T: Encodable>(_ value: T) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var body = Array(try enc.encode(value))
        // Drop the object's closing brace (exactly one, with the white space around it).
        func trimSpace() { while let last = body.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: " ") { body.removeLast() } }
        trimSpace()
        guard body.last == UInt8(ascii: "}") else { throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "not a JSON object")) }
        body.removeLast()
        trimSpace()
        body += Array(",\n  ".utf8)
        let hex = body.withUnsafeBytes { Hashing.sha256Hex($0) }
        return Data(body + marker + Array(": \"\(hex)\"\n}\n".utf8))
    }

    /// Checks the trailing member of `bytes` (§13.3 steps 2 and 3): nil when the file is
    /// intact, else why not ("no sha256", "sha256 mismatch", …). O(bytes).
    public static func damage(_ b: [UInt8]) -> String? {
        var m = b.count - marker.count
        while m >= 0 && !b[m..<m + marker.count].elementsEqual(marker) { m -= 1 }
        guard m >= 0 else { return "no sha256" }
        var i = m + marker.count
        func skipSpace() { while i < b.count, [0x20, 0x0A, 0x0D, 0x09].contains(b[i]) { i += 1 } }
        skipSpace()
        guard i < b.count, b[i] == UInt8(ascii: ":") else { return "malformed sha256" }
        i += 1
        skipSpace()
        guard i + 66 <= b.count, b[i] == UInt8(ascii: "\""), b[i + 65] == UInt8(ascii: "\"") else { return "malformed sha256" }
        let stored = String(decoding: b[i + 1..<i + 65], as: UTF8.self).lowercased()
        i += 66
        skipSpace()
        guard i < b.count, b[i] == UInt8(ascii: "}") else { return "data after sha256" }
        i += 1
        skipSpace()
        guard i == b.count else { return "data after the closing brace" }
        let actual = b[0..<m].withUnsafeBytes { Hashing.sha256Hex($0) }
        return actual == stored ? nil : "sha256 mismatch"
    }
}
