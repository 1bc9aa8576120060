import Foundation

/// A bucket and key prefix in S3 (or an S3-compatible store), as `s3://bucket/some/prefix`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// The bucket name (3 to 63 of `a-z 0-9 . -`, starting and ending with a letter or digit).
    public var bucket: String
    /// The key prefix without leading or trailing "/"; "" for the whole bucket.
    public var prefix: String

    static let example = "s3://bucket/some/prefix (or s3://bucket for the whole bucket)"

    /// A location from its parts; `prefix` loses leading and trailing slashes.
    public init(bucket: String, prefix: String = "") throws {
        guard S3Location.isValidBucket(bucket) else {
            throw ObjectStoreError.invalidLocation(
                "'\(bucket)' is not a bucket name (3 to 63 of a-z, 0-9, '.', '-'); expected \(S3Location.example)")
        }
        var p = Substring(prefix)
        while p.hasPrefix("/") { p = p.dropFirst() }
        while p.hasSuffix("/") { p = p.dropLast() }
        if !p.isEmpty, p.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw ObjectStoreError.invalidLocation("'\(prefix)' has an empty, '.' or '..' path segment; expected \(S3Location.example)")
        }
        self.bucket = bucket
        self.prefix = String(p)
    }

    /// Parses `s3://bucket` or `s3://bucket/some/prefix` (a trailing "/" is dropped).
    /// - Throws: `ObjectStoreError.invalidLocation` saying what a valid location looks like.
    public init(parsing text: String) throws {
        guard text.lowercased().hasPrefix("s3://") else {
            throw ObjectStoreError.invalidLocation("'\(text)' does not start with s3://; expected \(S3Location.example)")
        }
        let rest = text.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else {
            throw ObjectStoreError.invalidLocation("'\(text)' names no bucket; expected \(S3Location.example)")
        }
        try self.init(bucket: String(bucket), prefix: String(rest.dropFirst(bucket.count)))
    }

    /// "s3://bucket/prefix" (or "s3://bucket").
    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }

    /// The full object key of `key` (relative to the prefix).
    public func objectKey(_ key: String) -> String { prefix.isEmpty ? key : "\(prefix)/\(key)" }

    static func isValidBucket(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }
}
