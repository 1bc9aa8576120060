// libFuzzer target: SegmentReader (and DeletionSet.decode) on arbitrary bytes. Errors are fine; a crash, a Swift
// runtime trap (the KBFormat code is built -Onone, so its unsafe-buffer bounds checks are on)
// or an ASan report is a bug. Built and run by scripts/fuzz.sh segment SECONDS.
//
// Each input is read twice: as is, and "sealed": with the footer magic, reserved word,
// header file_size and header/directory CRC32C patched to be right, so that mutations of the
// header and directory reach the bounds checks behind the checksum instead of all stopping
// at it. (Section CRCs are left alone: only verify() looks at them.)
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import FuzzSupport
import KBCore
import KBFormat

let segmentPath = FuzzFiles.scratch("segment.kbseg")

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    writeSeedsIfAsked(Seeds.segments)
    atexit { unlink(segmentPath) }
    return 0
}

/// Opens the file and touches everything a reader can touch.
func readEverything(_ path: String) {
    let r: SegmentReader
    do { r = try SegmentReader(path: path) } catch { checkContract(error, names: path); return }
    _ = (r.documentCount, r.chunkCount, r.dimensions, r.fileSize, r.textBlockCount, r.model, r.rowStride)
    for k in SectionKind.allCases { _ = r.sectionLength(k) }
    for i in 0..<r.documentCount { _ = r.document(i) }
    for i in 0..<r.chunkCount {
        _ = r.chunk(i)
        _ = r.documentIndex(ofChunk: i)
        do { _ = try r.text(ofChunk: i) } catch { checkContract(error, names: path) }
        _ = r.dequantized(i)
        _ = r.scale(ofChunk: i)
        _ = r.sum(ofChunk: i)
    }
    for b in 0..<r.textBlockCount {
        do { _ = try r.textBlock(b) } catch { checkContract(error, names: path) }
    }
    if let lex = r.lexical {
        for c in 0..<lex.chunkCount { _ = lex.length(ofChunk: c) }
        do {
            for (t, _) in try lex.allTerms() { _ = try lex.postings(t) }
            _ = try lex.postings(Array("the".utf8))
        } catch { checkContract(error, names: path) }
    }
    _ = r.damagedSections()
    do { try r.verify() } catch { checkContract(error, names: path) }
}

/// The same bytes as a deletion file (format-spec.md §13.4), as is and with magic, version
/// and CRC made right: a `DeletionFileError` or a set, nothing else.
func decodeAsDeletions(_ data: UnsafePointer<UInt8>, _ size: Int) {
    func decode(_ b: UnsafeRawBufferPointer) {
        do {
            let set = try DeletionSet.decode(b, file: "fuzz.kbdel")
            for i in 0..<set.documentCount { _ = set.contains(i) }
            _ = set.encoded()
        } catch is DeletionFileError {
        } catch {
            fatalError("DeletionSet.decode threw \(error)")
        }
    }
    decode(UnsafeRawBufferPointer(start: data, count: size))
    guard size >= 28 else { return }
    var b = Array(UnsafeBufferPointer(start: data, count: size))
    b.replaceSubrange(0..<8, with: Array("KBDL".utf8) + [1, 0, 0, 0])
    putLE(&b, size - 4, 4, UInt64(CRC32C.checksum(Array(b[0..<size - 4]))))
    b.withUnsafeBytes { decode($0) }
}

@inline(__always) func putLE(_ b: inout [UInt8], _ at: Int, _ size: Int, _ v: UInt64) {
    for k in 0..<size { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
}

/// The input with its footer, file_size and header/directory CRC made right, or nil when
/// it is too short or its section count cannot be sealed.
func sealed(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8]? {
    guard size >= 80 else { return nil }
    var b = Array(UnsafeBufferPointer(start: data, count: size))
    let footer = size - 16
    let n = Int(b[16]) | Int(b[17]) << 8 | Int(b[18]) << 16 | Int(b[19]) << 24
    let dirEnd = 64 + 32 * n
    guard n <= 4096, dirEnd <= footer else { return nil }
    b.replaceSubrange(0..<8, with: SegmentFormat.magic)
    b.replaceSubrange(footer + 8..<size, with: SegmentFormat.magic)
    putLE(&b, footer + 4, 4, 0)
    putLE(&b, 56, 8, UInt64(size))
    putLE(&b, footer, 4, UInt64(CRC32C.checksum(Array(b[0..<dirEnd]))))
    return b
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzFiles.write(data, size, to: segmentPath)
    readEverything(segmentPath)
    decodeAsDeletions(data, size)
    if let b = sealed(data, size), !b.elementsEqual(UnsafeBufferPointer(start: data, count: size)) {
        FuzzFiles.write(b, to: segmentPath)
        readEverything(segmentPath)
    }
    return 0
}

/// The program's entry point (SwiftPM's name for `main` in this target): runs libFuzzer.
@_cdecl("fuzz_segment_main")
public func fuzzSegmentMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv) { fuzz($0, $1) }
}
