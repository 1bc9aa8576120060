import Foundation
import KBCore

/// An element type a safetensors file may hold. kbindex computes in Float32 and converts
/// F16 and BF16 weights once, at load.
public enum SafeTensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// A read-only Float32 tensor, row-major. Either borrowed straight from the memory-mapped
/// weights file (F32 data that is 4-byte aligned: no copy) or converted once into memory it owns.
public final class FloatTensor: @unchecked Sendable {
    public let shape: [Int]
    public let pointer: UnsafePointer<Float>
    public let count: Int
    private let owner: AnyObject?
    private let owned: UnsafeMutablePointer<Float>?

    /// Borrows `count` floats at `pointer`, kept alive by `owner`.
    init(shape: [Int], borrowing pointer: UnsafePointer<Float>, owner: AnyObject) {
        self.shape = shape
        self.pointer = pointer
        self.count = shape.reduce(1, *)
        self.owner = owner
        self.owned = nil
    }

    /// Allocates and fills a tensor with `fill(buffer)`.
    public init(shape: [Int], fill: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let n = shape.reduce(1, *)
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        fill(UnsafeMutableBufferPointer(start: p, count: n))
        self.shape = shape
        self.pointer = UnsafePointer(p)
        self.count = n
        self.owner = nil
        self.owned = p
    }

    deinit { owned?.deallocate() }

    /// The values as a buffer (valid while the tensor lives).
    public var buffer: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: pointer, count: count) }
}

/// A memory-mapped safetensors file (https://github.com/huggingface/safetensors):
/// an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
/// `{dtype, shape, data_offsets: [begin, end]}` relative to the data that follows, then the data.
///
/// Opening validates the whole header: every tensor's byte range lies inside the file, its
/// length equals its shape's element count times the dtype size, and no two ranges
/// overlap. A truncated file, a header that is not JSON or any inconsistency is a
/// `ModelError` naming the file (and the tensor), never a crash.
public final class SafeTensorsFile: @unchecked Sendable {
    public struct TensorInfo: Sendable, Equatable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range in the file (absolute).
        public let range: Range<Int>
    }

    public let path: String
    public let tensors: [String: TensorInfo]
    private let file: MappedFile

    /// Maps and validates `path`. Cost: O(header size); the tensor data is not read.
    public init(path: String) throws {
        self.path = path
        do { file = try MappedFile(path: path) } catch {
            throw ModelError.unreadable(file: path, reason: "\(error)")
        }
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw ModelError.invalidWeights(file: path, reason: "file is \(bytes.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard n >= 2, n <= UInt64(bytes.count - 8), n <= 100_000_000 else {
            throw ModelError.invalidWeights(file: path, reason: "header length \(n) does not fit in a file of \(bytes.count) bytes (truncated?)")
        }
        let headerEnd = 8 + Int(n)
        let json = Data(bytes[8..<headerEnd])
        guard let header = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw ModelError.invalidWeights(file: path, reason: "header is not a JSON object")
        }
        let dataSize = bytes.count - headerEnd
        var infos: [String: TensorInfo] = [:]
        // In name order, so a file with several bad entries always reports the same one.
        for (name, value) in header.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsetsAny = entry["data_offsets"] as? [Any], offsetsAny.count == 2
            else { throw ModelError.badTensor(file: path, tensor: name, reason: "header entry lacks dtype, shape or data_offsets") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw ModelError.badTensor(file: path, tensor: name, reason: "unsupported dtype \(dtypeName)")
            }
            var shape: [Int] = []
            var elements = 1
            for d in shapeAny {
                guard let v = (d as? NSNumber)?.intValue, v >= 0, v < 1 << 31 else {
                    throw ModelError.badTensor(file: path, tensor: name, reason: "invalid shape \(shapeAny)")
                }
                shape.append(v)
                let (m, o) = elements.multipliedReportingOverflow(by: v)
                guard !o, m < 1 << 40 else { throw ModelError.badTensor(file: path, tensor: name, reason: "shape \(shape) is too large") }
                elements = m
            }
            guard let begin = (offsetsAny[0] as? NSNumber)?.intValue, let end = (offsetsAny[1] as? NSNumber)?.intValue,
                  begin >= 0, begin <= end else {
                throw ModelError.badTensor(file: path, tensor: name, reason: "invalid data_offsets \(offsetsAny)")
            }
            guard end <= dataSize else {
                throw ModelError.badTensor(file: path, tensor: name, reason: "data ends at byte \(end) but the file has \(dataSize) data bytes (truncated?)")
            }
            guard end - begin == elements * dtype.size else {
                throw ModelError.badTensor(file: path, tensor: name, reason: "\(end - begin) bytes do not hold shape \(shape) of \(dtypeName)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, range: (headerEnd + begin)..<(headerEnd + end))
        }
        let sorted = infos.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.overlaps(b.range) {
            throw ModelError.badTensor(file: path, tensor: b.name, reason: "data overlaps tensor '\(a.name)'")
        }
        tensors = infos
    }

    /// The tensor `name` as Float32 with exactly `shape`.
    ///
    /// F32 data that is 4-byte aligned is borrowed from the mapping (no copy); F16, BF16
    /// and F64 are converted once. Throws when the tensor is missing, has another shape,
    /// or a dtype that is not floating point.
    public func floats(_ name: String, shape: [Int]) throws -> FloatTensor {
        guard let info = tensors[name] else { throw ModelError.missingTensor(file: path, tensor: name) }
        guard info.shape == shape else {
            throw ModelError.badTensor(file: path, tensor: name, reason: "shape \(info.shape), expected \(shape) from config.json")
        }
        let base = file.bytes.baseAddress! + info.range.lowerBound
        let n = shape.reduce(1, *)
        switch info.dtype {
        case .f32:
            if Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                return FloatTensor(shape: shape, borrowing: base.assumingMemoryBound(to: Float.self), owner: file)
            }
            return FloatTensor(shape: shape) { out in
                for i in 0..<n { out[i] = Float(bitPattern: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
            }
        case .f16:
            return FloatTensor(shape: shape) { out in
                for i in 0..<n { out[i] = floatFromHalf(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            }
        case .bf16:
            return FloatTensor(shape: shape) { out in
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
            }
        case .f64:
            return FloatTensor(shape: shape) { out in
                for i in 0..<n { out[i] = Float(Double(bitPattern: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
            }
        default:
            throw ModelError.badTensor(file: path, tensor: name, reason: "dtype \(info.dtype.rawValue) is not a floating-point type")
        }
    }
}

/// IEEE 754 half → single, exact for every input (subnormals, infinities, NaN).
@inline(__always)
func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = UInt32(h >> 10) & 0x1F
    var mant = UInt32(h & 0x3FF)
    if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        var e: UInt32 = 127 - 15 + 1
        while mant & 0x400 == 0 { mant <<= 1; e -= 1 }
        return Float(bitPattern: sign | (e << 23) | ((mant & 0x3FF) << 13))
    }
    return Float(bitPattern: sign | ((exp + 127 - 15) << 23) | (mant << 13))
}
