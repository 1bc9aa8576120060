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

    func testANameThatIsNotUTF8IsListedStatedAndReadByItsBytes() throws {
        let name: [UInt8] = Array("caf".utf8) + [0xE9] + Array(".md".utf8)
        let path = NativePath(dir.path).appending(name)
        let fd = path.withCString { open($0, O_WRONLY | O_CREAT, 0o644) }
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(write(fd, "latte", 5), 5)
        close(fd)
        XCTAssertFalse(path.isValidUTF8)
        XCTAssertEqual(path.description, dir.path + "/caf\u{FFFD}.md")
        XCTAssertEqual(try DirectoryListing.entries(in: NativePath(dir.path)), [name])
        XCTAssertEqual(try FileStatus.ofLink(path).size, 5)
        XCTAssertEqual(try FileStatus.of(path).kind, .regular)
        XCTAssertEqual(try FileReader.read(path), Data("latte".utf8))
        // The text form names a file that does not exist: why walks keep the bytes.
        let lossy = try DirectoryListing.names(in: dir.path)
        XCTAssertEqual(lossy, ["caf\u{FFFD}.md"])
        XCTAssertThrowsError(try FileStatus.ofLink(dir.path + "/" + lossy[0])) { e in
            XCTAssertTrue("\(e)".contains("No such file"), "\(e)")
        }
    }

    func testNativePathResolvesLinksAndComparesWholeComponents() throws {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("a/b"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("link").path, withDestinationPath: "a/b")
        let real = try NativePath(dir.path).resolved()
        XCTAssertEqual(try NativePath(dir.path + "/link").resolved(), real.appending(Array("a/b".utf8)))
        XCTAssertEqual(try NativePath(dir.path + "/a/./b/../b").resolved(), real.appending(Array("a/b".utf8)))
        XCTAssertThrowsError(try NativePath(dir.path + "/missing").resolved())
        XCTAssertTrue(NativePath("/x/a/b").isInside(NativePath("/x/a")))
        XCTAssertTrue(NativePath("/x/a").isInside(NativePath("/x/a/")))
        XCTAssertTrue(NativePath("/x/a").isInside(NativePath("/x/a")))
        XCTAssertTrue(NativePath("/x").isInside(NativePath("/")))
        XCTAssertFalse(NativePath("/x/ab").isInside(NativePath("/x/a")))
        XCTAssertFalse(NativePath("/x").isInside(NativePath("/x/a")))
        XCTAssertEqual(NativePath("/x/").appending(Array("y".utf8)), NativePath("/x/y"))
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
