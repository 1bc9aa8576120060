import XCTest
import KBIngest

final class ShardSelectionTests: XCTestCase {
    /// Expected shards computed independently of this code (format-spec.md §13.7):
    ///   python3 -c "import hashlib
    ///   for p in ['README.md','docs/guide.md','été/über.md','東京/天気.txt','a']:
    ///     v=int(hashlib.sha256(p.encode()).hexdigest()[:16],16); print(p,[v%n for n in (2,3,4,7,65536)])"
    /// README.md [1, 2, 1, 0, 11289] · docs/guide.md [0, 2, 0, 1, 18764] · été/über.md [1, 1, 1, 5, 61969]
    /// 東京/天気.txt [0, 1, 2, 3, 33962] · a [0, 1, 2, 4, 48586]
    func testShardOfAPathMatchesTheDocumentedRule() {
        let expected: [(String, [Int])] = [
            ("README.md", [1, 2, 1, 0, 11289]),
            ("docs/guide.md", [0, 2, 0, 1, 18764]),
            ("\u{E9}t\u{E9}/\u{FC}ber.md", [1, 1, 1, 5, 61969]),  // precomposed é and ü (NFC), as Python's literal
            ("東京/天気.txt", [0, 1, 2, 3, 33962]),
            ("a", [0, 1, 2, 4, 48586]),
        ]
        for (path, shards) in expected {
            for (n, s) in zip([2, 3, 4, 7, 65536], shards) {
                XCTAssertEqual(ShardSpec.shard(of: path, count: n), s, "\(path) of \(n)")
            }
            XCTAssertEqual(ShardSpec.shard(of: path, count: 1), 0)
        }
    }

    func testEveryPathIsInExactlyOneShard() throws {
        let specs = try (0..<5).map { try ShardSpec(index: $0, count: 5) }
        var counts = [Int](repeating: 0, count: 5)
        for i in 0..<500 {
            let path = "dir\(i % 7)/file-\(i).md"
            let owners = specs.filter { $0.contains(path) }
            XCTAssertEqual(owners.count, 1, path)
            counts[owners[0].index] += 1
        }
        // Not a statistics test: only that no shard is left empty by a broken hash.
        XCTAssertTrue(counts.allSatisfy { $0 > 50 }, "\(counts)")
    }

    func testParsing() throws {
        XCTAssertEqual(try ShardSpec(parsing: "0/4"), try ShardSpec(index: 0, count: 4))
        XCTAssertEqual(try ShardSpec(parsing: "65535/65536").index, 65535)
        XCTAssertEqual(try ShardSpec(parsing: "0/1").count, 1)
        for bad in ["", "4", "4/4", "5/4", "-1/4", "1/0", "0/65537", "1/ 4", " 1/4", "1/4/2", "a/4", "+1/4", "1/", "/4", "99999999999999999999/4"] {
            XCTAssertThrowsError(try ShardSpec(parsing: bad), bad) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("shard"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        do { _ = try ShardSpec(parsing: "4/4"); XCTFail() } catch { XCTAssertTrue("\(error)".contains("between 0 and 3"), "\(error)") }
        do { _ = try ShardSpec(parsing: "0/70000"); XCTFail() } catch { XCTAssertTrue("\(error)".contains("65536"), "\(error)") }
    }

    func testSelectionFingerprintChangesWithEverySetting() {
        let base = IngestOptions()
        var seen: Set<String> = [ShardSpec.selectionFingerprint(of: base)]
        XCTAssertEqual(ShardSpec.selectionFingerprint(of: base).count, 16)
        XCTAssertEqual(ShardSpec.selectionFingerprint(of: base), ShardSpec.selectionFingerprint(of: IngestOptions()))
        var variants: [IngestOptions] = []
        var o = base; o.include = ["*.md"]; variants.append(o)
        o = base; o.exclude = ["*.md"]; variants.append(o)
        o = base; o.include = ["*.md", "*.txt"]; variants.append(o)
        o = base; o.include = ["*.md", "*.txt", "*.rst"]; variants.append(o)
        o = base; o.maxFileSize = 1; variants.append(o)
        o = base; o.maxDocumentSize = 1; variants.append(o)
        o = base; o.skipMinified = false; variants.append(o)
        o = base; o.symlinks = .everywhere; variants.append(o)
        for v in variants {
            XCTAssertTrue(seen.insert(ShardSpec.selectionFingerprint(of: v)).inserted, "\(v.include) \(v.exclude)")
        }
        // Globs select files when any matches: their order and repeats select the same files.
        var a = base; a.include = ["*.md", "*.txt"]; a.exclude = ["b/**", "a/**"]
        var b = base; b.include = ["*.txt", "*.md", "*.txt"]; b.exclude = ["a/**", "b/**", "a/**"]
        XCTAssertEqual(ShardSpec.selectionFingerprint(of: a), ShardSpec.selectionFingerprint(of: b))
        // A glob moved from include to exclude is another selection.
        var c = base; c.include = ["*.md"]; var d = base; d.exclude = ["*.md"]
        XCTAssertNotEqual(ShardSpec.selectionFingerprint(of: c), ShardSpec.selectionFingerprint(of: d))
        // The walker's rules are part of the selection: shards of two kbindex versions whose
        // walks select differently are not merged.
        XCTAssertEqual(ShardSpec.selectionFingerprint(of: base), ShardSpec.selectionFingerprint(of: base, walkerRules: Walker.rulesVersion))
        XCTAssertNotEqual(ShardSpec.selectionFingerprint(of: base), ShardSpec.selectionFingerprint(of: base, walkerRules: Walker.rulesVersion + 1))
        // The index's own folder is excluded by every build wherever it is: not a selection setting.
        o = base; o.excludedDirectories = ["/tmp/x"]
        XCTAssertEqual(ShardSpec.selectionFingerprint(of: o), ShardSpec.selectionFingerprint(of: base))
    }
}
