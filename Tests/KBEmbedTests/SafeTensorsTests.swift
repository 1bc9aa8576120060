import Foundation
import KBTestSupport
import XCTest

@testable import KBEmbed

/// The safetensors reader: round trips through the test writer, every dtype path, and a
/// malformed file of every kind giving a `ModelError` that names the file (and the tensor).
final class SafeTensorsTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbindex-st-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: dir)
    }

    func write(_ data: Data, _ name: String = "model.safetensors") throws -> String {
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    /// Opens `data` as a safetensors file (and, when that works, reads `tensor` as floats of
    /// `shape`) and returns the `ModelError` thrown, failing when there is none.
    func error(opening data: Data, reading tensor: String? = nil, shape: [Int] = [],
               file: StaticString = #filePath, line: UInt = #line) throws -> ModelError? {
        let path = try write(data)
        do {
            let st = try SafeTensorsFile(path: path)
            if let tensor { _ = try st.floats(tensor, shape: shape) }
            XCTFail("no error thrown", file: file, line: line)
            return nil
        } catch let e as ModelError {
            XCTAssertTrue(e.description.contains(path), "message does not name the file: \(e)", file: file, line: line)
            return e
        } catch {
            XCTFail("not a ModelError: \(error)", file: file, line: line)
            return nil
        }
    }

    func assertMessage(_ e: ModelError?, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        guard let e else { return }
        for p in parts {
            XCTAssertTrue(e.description.contains(p), "'\(e.description)' lacks '\(p)'", file: file, line: line)
        }
    }

    static let sample: [SafeTensorsWriter.Tensor] = [
        .init(name: "a", dtype: .f32, shape: [2, 3], values: [1, -2, 3.5, 0, 1e-30, -7]),
        .init(name: "b", dtype: .f16, shape: [3], values: [0.5, -65504, 6e-8]),   // 6 bytes: the next tensor is unaligned
        .init(name: "c", dtype: .f32, shape: [2], values: [.pi, -1e20]),
        .init(name: "d", dtype: .bf16, shape: [2, 2], values: [1, -0.15625, 3e38, 1e-38]),
        .init(name: "e", dtype: "F64", shape: [2], data: Array(Data(bytes: [1.5, -0.1] as [Double], count: 16))),
        .init(name: "ids", dtype: "I64", shape: [3], data: [UInt8](repeating: 1, count: 24)),
        .init(name: "empty", dtype: .f32, shape: [0, 4], values: []),
    ]

    // MARK: Valid files

    /// A tensor's values. `buffer` is valid only while the tensor lives, and a converted
    /// (F16/BF16/F64/unaligned) tensor owns its memory, so keep it alive while copying.
    func values(_ t: FloatTensor) -> [Float] { withExtendedLifetime(t) { Array(t.buffer) } }

    func testRoundTripEveryFloatDTypeAlignedAndUnaligned() throws {
        let st = try SafeTensorsFile(path: write(SafeTensorsWriter.encode(Self.sample)))
        XCTAssertEqual(Set(st.tensors.keys), ["a", "b", "c", "d", "e", "ids", "empty"])  // __metadata__ skipped
        XCTAssertEqual(st.tensors["c"]!.dtype, .f32)
        XCTAssertNotEqual(st.tensors["c"]!.range.lowerBound % 4, 0, "the test wants an unaligned F32 tensor")
        XCTAssertEqual(values(try st.floats("a", shape: [2, 3])), [1, -2, 3.5, 0, 1e-30, -7])
        XCTAssertEqual(values(try st.floats("b", shape: [3])), [0.5, -65504, SafeTensorsWriter.DType.f16.rounded(6e-8)])
        XCTAssertEqual(values(try st.floats("c", shape: [2])), [.pi, -1e20])
        let d = SafeTensorsWriter.DType.bf16
        XCTAssertEqual(values(try st.floats("d", shape: [2, 2])), [1, -0.15625, d.rounded(3e38), d.rounded(1e-38)])
        XCTAssertEqual(values(try st.floats("e", shape: [2])), [1.5, Float(-0.1)])
        XCTAssertEqual(try st.floats("empty", shape: [0, 4]).count, 0)
    }

    func testHeaderIsPaddedAndDataFollowsIt() {
        let file = SafeTensorsWriter.encode(Self.sample)
        let n = SafeTensorsWriter.headerLength(of: file)
        XCTAssertEqual(n % 8, 0)
        XCTAssertEqual(file.count, 8 + n + Self.sample.reduce(0) { $0 + $1.data.count })
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: file[8..<(8 + n)]))
    }

    func testWrongShapeMissingTensorAndNonFloatDType() throws {
        let st = try SafeTensorsFile(path: write(SafeTensorsWriter.encode(Self.sample)))
        XCTAssertThrowsError(try st.floats("a", shape: [3, 2])) { e in
            XCTAssertEqual(e as? ModelError, .badTensor(file: st.path, tensor: "a", reason: "shape [2, 3], expected [3, 2] from config.json"))
        }
        XCTAssertThrowsError(try st.floats("nope", shape: [1])) { e in
            XCTAssertEqual(e as? ModelError, .missingTensor(file: st.path, tensor: "nope"))
            XCTAssertTrue("\(e)".contains("'nope'"))
        }
        XCTAssertThrowsError(try st.floats("ids", shape: [3])) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("'ids'") && text.contains("I64") && text.contains(st.path), text)
        }
    }

    // MARK: Malformed files

    func testTruncatedAnywhereIsAnErrorNamingTheFile() throws {
        let file = SafeTensorsWriter.encode(Self.sample)
        let n = SafeTensorsWriter.headerLength(of: file)
        let dataStart = 8 + n
        // Inside the length, inside the header, inside the data (every tensor's bytes).
        let cuts = [0, 1, 4, 7, 8, 9, 8 + n / 2, dataStart - 1, dataStart + 1, dataStart + 24, dataStart + 25, file.count - 1]
        for cut in cuts {
            let e = try error(opening: file.prefix(cut))
            if cut < 8 {
                assertMessage(e, contains: ["\(cut) bytes", "8-byte header length"])
            } else if cut < dataStart {
                assertMessage(e, contains: ["header length \(n)", "truncated"])
            } else {
                assertMessage(e, contains: ["tensor '", "truncated"])
            }
        }
        // Cutting the last byte leaves "ids" and "empty" (which ends at the very end) past the data:
        // the message names the first by name, every time (not whichever a dictionary yields first).
        for _ in 0..<20 {
            assertMessage(try error(opening: file.prefix(file.count - 1)), contains: ["tensor 'empty'"])
        }
    }

    func testHeaderNotJSONOrNotAnObject() throws {
        var file = SafeTensorsWriter.encode(Self.sample)
        let n = SafeTensorsWriter.headerLength(of: file)
        let original = file
        file.replaceSubrange(8..<(8 + n), with: Data(repeating: UInt8(ascii: "x"), count: n))
        assertMessage(try error(opening: file), contains: ["header is not a JSON object"])

        file = original
        file.replaceSubrange(8..<(8 + n), with: Data(("[1,2]" + String(repeating: " ", count: n - 5)).utf8))
        assertMessage(try error(opening: file), contains: ["header is not a JSON object"])

        file = original
        file[8 + 3] = 0xFF  // invalid UTF-8 inside the JSON
        assertMessage(try error(opening: file), contains: ["header is not a JSON object"])
    }

    func testHeaderLengthLargerThanTheFile() throws {
        let original = SafeTensorsWriter.encode(Self.sample)
        for n: UInt64 in [UInt64(original.count - 7), UInt64(original.count), 1 << 40, UInt64(Int64.max), UInt64.max, 0, 1] {
            var file = original
            var v = n
            for i in 0..<8 { file[i] = UInt8(truncatingIfNeeded: v); v >>= 8 }
            assertMessage(try error(opening: file), contains: ["header length \(n)"])
        }
    }

    func header(_ entries: String) -> Data {
        var text = Array("{\(entries)}".utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        var out = Data()
        var n = UInt64(text.count)
        for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: n)); n >>= 8 }
        out.append(contentsOf: text)
        out.append(Data(repeating: 0, count: 64))  // 64 data bytes
        return out
    }

    func testInconsistentEntriesNameTheTensor() throws {
        let cases: [(String, [String])] = [
            // data_offsets beyond the data, reversed, negative, not numbers, wrong count
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[56,72]}"#, ["tensor 'w'", "ends at byte 72", "64 data bytes"]),
            (#""w":{"dtype":"F32","shape":[0],"data_offsets":[65,65]}"#, ["tensor 'w'", "65"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}"#, ["tensor 'w'", "data_offsets"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}"#, ["tensor 'w'", "data_offsets"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":["0","16"]}"#, ["tensor 'w'", "data_offsets"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}"#, ["tensor 'w'"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[0,1e30]}"#, ["tensor 'w'"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[1e300,1e301]}"#, ["tensor 'w'"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551615]}"#, ["tensor 'w'"]),
            // byte count and shape disagree
            (#""w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}"#, ["tensor 'w'", "16 bytes", "[5]"]),
            (#""w":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}"#, ["tensor 'w'", "F16"]),
            // shapes that are not shapes
            (#""w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}"#, ["tensor 'w'", "shape"]),
            (#""w":{"dtype":"F32","shape":[1e30],"data_offsets":[0,16]}"#, ["tensor 'w'", "shape"]),
            (#""w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}"#, ["tensor 'w'", "shape"]),
            (#""w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}"#, ["tensor 'w'"]),
            // unknown dtype, missing keys, not an object
            (#""w":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,16]}"#, ["tensor 'w'", "unsupported dtype Q4_K"]),
            (#""w":{"shape":[4],"data_offsets":[0,16]}"#, ["tensor 'w'"]),
            (#""w":[1,2,3]"#, ["tensor 'w'"]),
            // two tensors over the same bytes (either way round), or partly
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#, ["overlaps"]),
            (#""w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[4],"data_offsets":[12,28]}"#, ["tensor 'v'", "overlaps tensor 'w'"]),
            (#""w":{"dtype":"F32","shape":[8],"data_offsets":[8,40]},"v":{"dtype":"F16","shape":[2],"data_offsets":[20,24]}"#, ["overlaps"]),
        ]
        for (entries, parts) in cases {
            let e = try error(opening: header(entries))
            assertMessage(e, contains: parts)
        }
    }

    func testTouchingAndEmptyTensorsAreNotOverlaps() throws {
        let st = try SafeTensorsFile(path: write(header(
            #""w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[4],"data_offsets":[16,32]},"z":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}"#)))
        XCTAssertEqual(st.tensors.count, 3)
    }

    func testEmptyFileAndFolderAreErrors() throws {
        assertMessage(try error(opening: Data()), contains: ["0 bytes"])
        let sub = dir.appendingPathComponent("folder.safetensors")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        XCTAssertThrowsError(try SafeTensorsFile(path: sub.path)) { e in
            XCTAssertTrue("\(e)".contains(sub.path), "\(e)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(path: dir.appendingPathComponent("absent").path)) { e in
            XCTAssertTrue(e is ModelError && "\(e)".contains("absent"), "\(e)")
        }
    }

    // MARK: Half precision

    func testFloatFromHalfIsExactOnAllBitPatterns() {
        var mismatches = 0
        for bits in 0...0xFFFF {
            let h = UInt16(bits)
            let got = floatFromHalf(h)
            // An independent reference by arithmetic (subnormals, ±0, ±inf, NaN payloads).
            let want = SafeTensorsWriter.floatFromHalfBits(h)
            if got.bitPattern != want.bitPattern { mismatches += 1; if mismatches < 5 { XCTFail("0x\(String(bits, radix: 16)): \(got) vs \(want)") } }
            #if !(os(macOS) && arch(x86_64))
            let hw = Float(Float16(bitPattern: h))
            if hw.isNaN {
                XCTAssertTrue(got.isNaN, "0x\(String(bits, radix: 16))")
                XCTAssertEqual(got.sign, hw.sign)
            } else if got.bitPattern != hw.bitPattern {
                mismatches += 1
                if mismatches < 5 { XCTFail("0x\(String(bits, radix: 16)): \(got) vs Float16 \(hw)") }
            }
            #endif
        }
        XCTAssertEqual(mismatches, 0)
        XCTAssertEqual(floatFromHalf(0x0001), 0x1p-24)       // smallest subnormal
        XCTAssertEqual(floatFromHalf(0x03FF), 1023 * 0x1p-24) // largest subnormal
        XCTAssertEqual(floatFromHalf(0x0400), 0x1p-14)       // smallest normal
        XCTAssertEqual(floatFromHalf(0x7BFF), 65504)
        XCTAssertEqual(floatFromHalf(0x7C00), .infinity)
        XCTAssertEqual(floatFromHalf(0xFC00), -.infinity)
        XCTAssertEqual(floatFromHalf(0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertTrue(floatFromHalf(0x7E00).isNaN)
    }

    /// The test writer's float → half rounding agrees with Swift's own conversion.
    func testWriterHalfRoundingMatchesFloat16() {
        #if !(os(macOS) && arch(x86_64))
        var rng = SeededRNG(seed: 5)
        var samples: [Float] = [0, -0, 1, 65504, 65520, 65519.99, 1e-8, 2.98e-8, 0x1p-25, 0x1.8p-25, 0x1p-24, 6.1e-5, .infinity, -.infinity]
        for _ in 0..<200_000 { samples.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        for _ in 0..<200_000 { samples.append(Float.random(in: -70000...70000, using: &rng) * Float(sign: .plus, exponent: Int.random(in: -30...0, using: &rng), significand: 1)) }
        for f in samples where !f.isNaN {
            XCTAssertEqual(SafeTensorsWriter.halfBits(f), Float16(f).bitPattern, "\(f)")
        }
        #endif
    }
}
