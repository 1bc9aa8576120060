import Foundation
import KBCore
import KBFormat
import KBTestSupport
import XCTest

final class DeletionSetTests: TempDirTestCase {
    func testRoundTripAtEveryBitmapShape() throws {
        var rng = SeededRNG(seed: 5)
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 1000] {
            var set = DeletionSet(documentCount: n)
            var reference = Set<Int>()
            for _ in 0..<(n / 3 + 1) where n > 0 {
                let d = Int.random(in: 0..<n, using: &rng)
                set.insert(d)
                set.insert(d)  // idempotent
                reference.insert(d)
            }
            XCTAssertEqual(set.count, reference.count)
            let p = path("s\(n).kbdel")
            try set.write(to: p)
            let back = try DeletionSet.read(path: p)
            XCTAssertEqual(back, set)
            XCTAssertEqual(back.documentCount, n)
            XCTAssertEqual((0..<n).filter(back.contains), reference.sorted())
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)).count, 24 + (n + 7) / 8 + 4)
        }
    }

    /// The exact bytes of format-spec.md §13.4's example.
    func testLayoutIsTheSpecs() {
        var set = DeletionSet(documentCount: 10)
        set.insert(1)
        set.insert(9)
        let b = set.encoded()
        XCTAssertEqual(Array(b[0..<4]), Array("KBDL".utf8))
        XCTAssertEqual(Array(b[4..<24]), [1, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(Array(b[24..<26]), [0b0000_0010, 0b0000_0010])
        let crc = CRC32C.checksum(Array(b[0..<26]))
        XCTAssertEqual(Array(b[26..<30]), [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
    }

    func decodeError(_ bytes: [UInt8]) -> DeletionFileError? {
        do {
            _ = try bytes.withUnsafeBytes { try DeletionSet.decode($0, file: "x.kbdel") }
            return nil
        } catch let e as DeletionFileError {
            XCTAssertTrue(e.description.hasPrefix("deletion file x.kbdel is damaged ("), e.description)
            return e
        } catch {
            XCTFail("\(error)")
            return nil
        }
    }

    func testEveryTruncationAndEveryBitFlipIsAnError() {
        var set = DeletionSet(documentCount: 21)
        for d in [0, 3, 20] { set.insert(d) }
        let good = set.encoded()
        for cut in 0..<good.count { XCTAssertNotNil(decodeError(Array(good[0..<cut])), "cut at \(cut)") }
        XCTAssertNotNil(decodeError(good + [0]))
        for bit in 0..<good.count * 8 {
            var b = good
            b[bit / 8] ^= 1 << UInt8(bit % 8)
            XCTAssertNotNil(decodeError(b), "bit \(bit)")
        }
    }

    /// Fields that lie, with a checksum that matches: each is still an error.
    func testInconsistentFieldsWithAValidChecksumAreErrors() {
        func resealed(_ edit: (inout [UInt8]) -> Void, documents: Int = 12) -> [UInt8] {
            var set = DeletionSet(documentCount: documents)
            set.insert(2)
            var b = Array(set.encoded().dropLast(4))
            edit(&b)
            let crc = CRC32C.checksum(b)
            return b + [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)]
        }
        XCTAssertNil(decodeError(resealed { _ in }))
        XCTAssertEqual(decodeError(resealed { $0[25] |= 0x80 })?.reason, "bits set past document 12")  // document 15 of 12
        XCTAssertEqual(decodeError(resealed { $0[16] = 3 })?.reason, "the header counts 3 deleted documents, the bitmap 1")
        XCTAssertNotNil(decodeError(resealed { for i in 8..<16 { $0[i] = 0xFF } }))  // document count 2^64-1
        XCTAssertNotNil(decodeError(resealed { $0[8] = 200 }))  // count disagrees with the length
        XCTAssertNotNil(decodeError(resealed { $0[4] = 2 }))  // version 2
        XCTAssertNotNil(decodeError(resealed { $0[0] = UInt8(ascii: "X") }))
    }

    func testMissingFileIsAFileError() {
        XCTAssertThrowsError(try DeletionSet.read(path: path("none.kbdel"))) { e in
            XCTAssertEqual((e as? FileError)?.isMissingFile, true, "\(e)")
        }
    }
}
