import Foundation
import KBCore
import KBTestSupport
import XCTest

final class FileSystemTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("kbcore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    func testMappedFileSeesTheBytes() throws {
        var rng = SeededRNG(seed: 1)
        let bytes = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let path = dir.appendingPathComponent("blob").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let m = try MappedFile(path: path)
        XCTAssertEqual(Array(m.bytes), bytes)
    }

    func testMappedEmptyFileIsEmpty() throws {
        let path = dir.appendingPathComponent("empty").path
        FileManager.default.createFile(atPath: path, contents: Data())
        XCTAssertEqual(try MappedFile(path: path).bytes.count, 0)
    }

    func testMappingAMissingFileOrAFolderThrowsWithThePath() {
        let missing = dir.appendingPathComponent("nope").path
        XCTAssertThrowsError(try MappedFile(path: missing)) { e in
            XCTAssertTrue("\(e)".contains(missing), "\(e)")
            XCTAssertTrue("\(e)".contains("No such file"), "\(e)")
        }
        XCTAssertThrowsError(try MappedFile(path: dir.path)) { e in
            XCTAssertTrue("\(e)".contains("not a regular file"), "\(e)")
        }
    }

    func testAtomicWriteReplacesWholeAndLeavesNoTemporaryFile() throws {
        let path = dir.appendingPathComponent("manifest.json").path
        try AtomicFile.write(Data("old".utf8), to: path)
        try AtomicFile.write(Data("new contents".utf8), to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new contents")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["manifest.json"])
    }

    func testAtomicWriteIntoAMissingFolderFailsAndKeepsNothing() {
        let path = dir.appendingPathComponent("no/such/folder/file").path
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: path)) { e in
            XCTAssertTrue("\(e)".contains("cannot create"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testSHA256MatchesKnownVectors() throws {
        // FIPS 180-2 test vectors.
        XCTAssertEqual(Hashing.sha256Hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Hashing.sha256Hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let path = dir.appendingPathComponent("abc").path
        try Data("abc".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try Hashing.sha256Hex(ofFile: path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // The vocabulary shipped in the fixtures has the hash recorded in provenance.json.
        XCTAssertEqual(try Hashing.sha256Hex(ofFile: Fixtures.root.appendingPathComponent("minilm-config/vocab.txt").path),
                       "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3")
    }

    func testGitBlobSHA1MatchesGit() {
        // `printf 'hello\n' | git hash-object --stdin`
        let data = Array("hello\n".utf8)
        data.withUnsafeBytes { XCTAssertEqual(Hashing.gitBlobSHA1Hex($0), "ce013625030ba8dba906f756967f9e9ca394464a") }
    }
}
