import Crypto
import Foundation

/// SHA-256 helpers (swift-crypto), returning lower-case hex as `sha256sum` prints it.
public enum Hashing {
    /// The SHA-256 of a byte buffer, as 64 lower-case hex digits.
    public static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// The SHA-256 of `data`, as 64 lower-case hex digits.
    public static func sha256Hex(_ data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    /// The SHA-256 of `data` as 32 raw bytes.
    public static func sha256Bytes(_ data: Data) -> [UInt8] {
        Array(SHA256.hash(data: data))
    }

    /// The SHA-256 of a file, read through a memory map (O(file size), no copy).
    public static func sha256Hex(ofFile path: String) throws -> String {
        let file = try MappedFile(path: path)
        return sha256Hex(file.bytes)
    }

    /// The git blob id of `bytes` (SHA-1 of "blob <size>\0" + bytes), which is what the
    /// Hugging Face hub reports as the ETag of a file not stored in LFS.
    public static func gitBlobSHA1Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var h = Insecure.SHA1()
        h.update(data: Data("blob \(bytes.count)\0".utf8))
        h.update(bufferPointer: bytes)
        return hex(h.finalize())
    }

    private static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in digest {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
