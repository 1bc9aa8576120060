import Foundation
import XCTest
import KBCore
@testable import KBIngest

final class WalkerTests: XCTestCase {
    var folder: ScratchFolder!

    override func setUpWithError() throws { folder = try ScratchFolder() }
    override func tearDown() { folder.remove() }

    // MARK: - Types

    func testKindsAndLanguagesByExtensionAndShebang() throws {
        let files: [(String, DocumentKind, String?)] = [
            ("a.md", .markdown, nil), ("b.markdown", .markdown, nil), ("c.html", .html, nil), ("d.htm", .html, nil),
            ("e.txt", .text, nil), ("f.rst", .text, nil), ("README", .text, nil),
            ("g.swift", .code, "swift"), ("h.py", .code, "python"), ("i.c", .code, "c"), ("j.h", .code, "c"),
            ("k.cpp", .code, "cpp"), ("l.js", .code, "javascript"), ("m.ts", .code, "typescript"),
            ("n.go", .code, "go"), ("o.rs", .code, "rust"), ("p.sh", .code, "shell"),
            ("tool", .code, "python"), ("run", .code, "shell"),
        ]
        for (name, _, _) in files { try folder.write(name, "content of \(name)\n") }
        try folder.write("tool", "#!/usr/bin/env python3\nprint(1)\n")
        try folder.write("run", "#!/bin/bash\necho 1\n")
        try folder.write("picture.png", "not really a png")
        let result = try walk(folder)
        XCTAssertEqual(result.paths, files.map(\.0).sorted())
        for (name, kind, language) in files {
            XCTAssertEqual(result.file(name)?.kind, kind, name)
            XCTAssertEqual(result.file(name)?.language, language, name)
        }
        XCTAssertEqual(result.reason("picture.png"), .unsupportedType)
        let a = try XCTUnwrap(result.file("a.md"))
        XCTAssertEqual(a.size, "content of a.md\n".utf8.count)
        XCTAssertEqual(a.url.path, folder.url.appendingPathComponent("a.md").path)
        XCTAssertGreaterThan(a.mtimeNanoseconds, 0)
    }

    // MARK: - Hostile files

    func testBinaryFileWithNULIsSkipped() throws {
        try folder.write("blob.txt", Data([0x68, 0x69, 0x00, 0x01, 0x02]))
        try folder.write("late-nul.txt", Data(repeating: 0x61, count: 9000) + Data([0]))  // NUL past the sniffed 8 KiB
        let result = try walk(folder)
        XCTAssertEqual(result.reason("blob.txt"), .binary)
        XCTAssertEqual(result.paths, ["late-nul.txt"])
    }

    /// PDF and zip containers are binary by nature: not skipped for NUL bytes, whitespace or
    /// long lines, and limited by `maxDocumentSize` instead of `maxFileSize`; an empty one is
    /// still empty. Their kinds come from the extension, case-insensitively.
    func testDocumentContainersAreTakenDespiteBinaryContentAndHaveTheirOwnSizeLimit() throws {
        let pdf = Data("%PDF-1.4\n".utf8) + Data([0, 0xE2, 0xE3, 0xCF, 0xD3, 0]) + Data(repeating: 0x41, count: 150)
        try folder.write("manual.pdf", pdf)
        try folder.write("plan.DOCX", Data([0x50, 0x4B, 0x03, 0x04, 0, 0, 0]))
        try folder.write("notes.odt", Data([0x50, 0x4B, 0x03, 0x04, 0, 0]))
        try folder.write("book.epub", Data([0x50, 0x4B, 0x03, 0x04, 0]))
        try folder.write("huge.pdf", Data(repeating: 0x25, count: 300))
        try folder.write("empty.pdf", Data())
        try folder.write("blob.txt", Data([0x68, 0x69, 0x00]))
        try folder.write("long.txt", String(repeating: "x", count: 200))
        let result = try walk(folder) { $0.maxFileSize = 100; $0.maxDocumentSize = 200 }
        XCTAssertEqual(result.paths, ["book.epub", "manual.pdf", "notes.odt", "plan.DOCX"])
        XCTAssertEqual(result.files.map(\.kind), [.epub, .pdf, .odt, .docx])
        XCTAssertEqual(result.reason("huge.pdf"), .tooLarge)
        XCTAssertEqual(result.skipped["huge.pdf"]?.detail, "300 bytes, more than 200")
        XCTAssertEqual(result.reason("empty.pdf"), .empty)
        XCTAssertEqual(result.reason("blob.txt"), .binary)
        XCTAssertEqual(result.reason("long.txt"), .tooLarge)
        XCTAssertTrue(DocumentKind.allCases.filter(\.isContainer) == [.pdf, .docx, .odt, .epub])
    }

    func testFileOverTheSizeLimitIsSkipped() throws {
        try folder.write("big.txt", String(repeating: "x", count: 101))
        try folder.write("fits.txt", String(repeating: "x", count: 100))
        let result = try walk(folder) { $0.maxFileSize = 100 }
        XCTAssertEqual(result.reason("big.txt"), .tooLarge)
        XCTAssertEqual(result.skipped["big.txt"]?.detail, "101 bytes, more than 100")
        XCTAssertEqual(result.paths, ["fits.txt"])
    }

    func testMinifiedCodeIsSkippedUnlessAskedFor() throws {
        // One 20 KB line (a bundle or a one-line search index), and a license comment
        // followed by a long line: both average far over 110 bytes in the first 8 KiB.
        try folder.write("app.min.js", "var a=" + String(repeating: "f(1),", count: 4000) + "0;")
        try folder.write("lib.js", "/*! lib v1 | MIT */\n" + String(repeating: "x=1;", count: 3000) + "\n")
        // Ordinary code with a few long lines, exactly at the threshold, and prose with
        // one-paragraph lines: kept.
        try folder.write("app.js", String(repeating: "function f(x) {\n  return x + 1;\n}\n", count: 50)
                         + "const s = \"" + String(repeating: "y", count: 300) + "\";\n")
        try folder.write("edge.py", String(repeating: String(repeating: "a", count: 110) + "\n", count: 3))
        try folder.write("notes.md", String(repeating: String(repeating: "word ", count: 200) + "\n\n", count: 5))
        let result = try walk(folder)
        XCTAssertEqual(result.reason("app.min.js"), .minified)
        XCTAssertEqual(result.reason("lib.js"), .minified)
        XCTAssertEqual(result.skipped["app.min.js"]?.detail, "its lines average 8192 bytes (over at most its first 8 KiB); --include-minified indexes it")
        XCTAssertEqual(result.paths, ["app.js", "edge.py", "notes.md"])

        let all = try walk(folder) { $0.skipMinified = false }
        XCTAssertEqual(all.paths, ["app.js", "app.min.js", "edge.py", "lib.js", "notes.md"])
    }

    func testAverageLineLength() {
        XCTAssertNil(Walker.averageLineLength(Data()))
        XCTAssertEqual(Walker.averageLineLength(Data("abc".utf8)), 3)
        XCTAssertEqual(Walker.averageLineLength(Data("abc\n".utf8)), 3)
        XCTAssertEqual(Walker.averageLineLength(Data("ab\ncdef\n".utf8)), 3)
        XCTAssertEqual(Walker.averageLineLength(Data("\n\n\n".utf8)), 0)
    }

    func testEmptyAndWhitespaceOnlyFilesAreSkipped() throws {
        try folder.write("empty.md", "")
        try folder.write("blank.md", " \n\t\r\n")
        try folder.write("long-blank.md", String(repeating: " ", count: 10_000))
        try folder.write("late-text.md", String(repeating: " ", count: 10_000) + "x")
        let result = try walk(folder)
        XCTAssertEqual(result.reason("empty.md"), .empty)
        XCTAssertEqual(result.reason("blank.md"), .empty)
        XCTAssertEqual(result.reason("long-blank.md"), .empty)
        XCTAssertEqual(result.paths, ["late-text.md"])
    }

    func testInvalidUTF8IsIndexedWithAWarningAndReplacementCharacters() throws {
        try folder.write("latin1.txt", Data("caf".utf8) + Data([0xE9]) + Data(" au lait\n".utf8))
        let result = try walk(folder)
        let file = try XCTUnwrap(result.file("latin1.txt"))
        let data = try FileReader.read(file.url.path)
        let (doc, warnings) = DocumentParser.parse(data, kind: file.kind, language: file.language, path: file.relativePath)
        XCTAssertEqual(warnings.count, 1)
        // The caller names the file once; the warning does not repeat it.
        XCTAssertEqual(warnings[0], "invalid UTF-8 on 1 line(s) (first: line 1), replaced with U+FFFD")
        XCTAssertEqual(doc.sections.map(\.text), ["caf\u{FFFD} au lait"])
    }

    func testUnreadableFileIsReportedAndTheWalkGoesOn() throws {
        try folder.write("a.md", "first")
        try folder.write("locked.md", "secret")
        try folder.write("z.md", "last")
        folder.chmod("locked.md", 0)
        try folder.mkdir("lockeddir")
        try folder.write("lockeddir/inside.md", "x")
        folder.chmod("lockeddir", 0)
        let result = try walk(folder)
        if geteuid() == 0 {
            // Root reads through any permission bits: the files are simply indexed.
            XCTAssertEqual(result.paths, ["a.md", "locked.md", "lockeddir/inside.md", "z.md"])
        } else {
            XCTAssertEqual(result.reason("locked.md"), .unreadable)
            XCTAssertTrue(result.skipped["locked.md"]?.detail?.contains("ermission") ?? false)
            XCTAssertEqual(result.reason("lockeddir"), .unreadable)
            XCTAssertEqual(result.paths, ["a.md", "z.md"])
        }
    }

    func testReadErrorIsReportedEvenForRoot() throws {
        // /proc/self/mem looks like a regular file but reading its first bytes fails with EIO,
        // whatever the privileges: a read error that chmod cannot give when tests run as root.
        guard FileManager.default.fileExists(atPath: "/proc/self/mem") else { throw XCTSkip("no /proc") }
        try folder.write("a.md", "first")
        try folder.symlink("mem.txt", to: "/proc/self/mem")
        try folder.write("z.md", "last")
        let result = try walk(folder) { $0.symlinks = .everywhere }  // the link leads out of the folder
        XCTAssertEqual(result.reason("mem.txt"), .unreadable)
        XCTAssertTrue(result.skipped["mem.txt"]?.detail?.contains("cannot read") ?? false, "\(String(describing: result.skipped["mem.txt"]))")
        XCTAssertEqual(result.paths, ["a.md", "z.md"])
    }

    func testFifoIsNotOpened() throws {
        try folder.write("a.md", "x")
        XCTAssertEqual(mkfifo(folder.url.appendingPathComponent("pipe.md").path, 0o644), 0)
        let result = try walk(folder)   // would block forever if the walker opened the fifo
        XCTAssertEqual(result.reason("pipe.md"), .unsupportedType)
        XCTAssertEqual(result.paths, ["a.md"])
    }

    // MARK: - Symbolic links

    func testSymlinkLoopsAreReportedWithoutHanging() throws {
        try folder.write("sub/doc.md", "x")
        try folder.symlink("sub/up", to: "..")             // folder loop back to the root
        try folder.symlink("sub/self", to: ".")            // folder loop to itself
        try folder.symlink("ping.md", to: "pong.md")        // cycle of links: ELOOP
        try folder.symlink("pong.md", to: "ping.md")
        try folder.symlink("me.md", to: "me.md")
        let result = try walk(folder)
        XCTAssertEqual(result.paths, ["sub/doc.md"])
        XCTAssertEqual(result.reason("sub/up"), .symlinkLoop)
        XCTAssertEqual(result.reason("sub/self"), .symlinkLoop)
        XCTAssertEqual(result.reason("ping.md"), .symlinkLoop)
        XCTAssertEqual(result.reason("pong.md"), .symlinkLoop)
        XCTAssertEqual(result.reason("me.md"), .symlinkLoop)
    }

    func testDanglingSymlinkIsUnreadable() throws {
        try folder.write("real.md", "x")
        try folder.symlink("gone.md", to: "does-not-exist.md")
        let result = try walk(folder)
        XCTAssertEqual(result.reason("gone.md"), .unreadable)
        XCTAssertEqual(result.paths, ["real.md"])
    }

    func testSymlinksOutOfTheFolderAreFollowedOnlyWhenAskedFor() throws {
        let outside = try ScratchFolder()
        defer { outside.remove() }
        try outside.write("elsewhere.md", "outside text")
        try outside.write("shared/doc.md", "shared text")
        try folder.symlink("linked.md", to: outside.url.appendingPathComponent("elsewhere.md").path)
        try folder.symlink("shared", to: outside.url.appendingPathComponent("shared").path)
        // A relative link that climbs out through "..".
        try folder.symlink("sub/up.md", to: "../../" + outside.url.lastPathComponent + "/elsewhere.md")
        let inside = try walk(folder)
        XCTAssertEqual(inside.paths, [])
        for path in ["linked.md", "shared", "sub/up.md"] { XCTAssertEqual(inside.reason(path), .linkOutsideFolder, path) }
        let target = try NativePath(outside.path + "/elsewhere.md").resolved()
        XCTAssertEqual(inside.skipped["linked.md"]?.detail, "symbolic link to \(target), outside the folder")

        let followed = try walk(folder) { $0.symlinks = .everywhere }
        // linked.md and sub/up.md reach one file: taken once, at its first path.
        XCTAssertEqual(followed.paths, ["linked.md", "shared/doc.md"])
        XCTAssertEqual(followed.reason("sub/up.md"), .duplicate)
        XCTAssertEqual(followed.file("linked.md")?.size, "outside text".utf8.count)
        XCTAssertEqual(followed.file("linked.md")?.url.path, folder.url.appendingPathComponent("linked.md").path)

        let never = try walk(folder) { $0.symlinks = .never }
        XCTAssertEqual(never.paths, [])
        XCTAssertEqual(never.reason("linked.md"), .ignored)
        XCTAssertEqual(never.reason("shared"), .ignored)
    }

    func testAFileReachedTwiceThroughALinkIsTakenOnceUnderItsOwnPath() throws {
        try folder.write("real.md", "real")
        try folder.write("sub/doc.md", "doc")
        try folder.symlink("a-alias.md", to: "real.md")       // sorts before its target
        try folder.symlink("sub/again.md", to: "../sub/doc.md")
        try folder.symlink("dirlink", to: "sub")              // the whole folder a second time
        // Hard links are separate names for one file, each indexed (as git and rg see them).
        XCTAssertEqual(link(folder.path + "/real.md", folder.path + "/z-hard.md"), 0)
        // A folder on the root's own path through a link: still inside the folder.
        let result = try walk(folder)
        XCTAssertEqual(result.paths, ["real.md", "sub/doc.md", "z-hard.md"])
        for path in ["a-alias.md", "sub/again.md", "dirlink/doc.md", "dirlink/again.md"] {
            XCTAssertEqual(result.reason(path), .duplicate, path)
        }
        XCTAssertEqual(result.skipped["a-alias.md"]?.detail, "the same file as real.md, reached through a symbolic link")
    }

    func testLinksFanningOutToTheSameFoldersAreWalkedOnceEach() throws {
        // d0 holds two links to d1, d1 two links to d2, and so on: following every link would
        // walk d20 a million times (2^20). A folder is entered through links once.
        let depth = 20
        for i in 0...depth { try folder.write("d\(i)/doc\(i).md", "level \(i)") }
        for i in 0..<depth {
            try folder.symlink("d\(i)/x", to: "../d\(i + 1)")
            try folder.symlink("d\(i)/y", to: "../d\(i + 1)")
        }
        var events = 0
        let files = try Walker(root: folder.url, options: IngestOptions()).walk { _ in events += 1 }
        XCTAssertEqual(files.map(\.relativePath), (0...depth).map { "d\($0)/doc\($0).md" }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        XCTAssertLessThan(events, 10 * depth, "the walk went down the same folders again")
    }

    func testARootReachedThroughALinkStillHoldsItsLinks() throws {
        // The walked folder named through a link ("/tmp/x" -> the real folder): links inside
        // it compare with the resolved root, so they count as inside.
        try folder.write("real/doc.md", "doc")
        try folder.symlink("real/alias.md", to: "doc.md")
        try folder.symlink("via", to: "real")
        let result = try Walker(root: folder.url.appendingPathComponent("via"), options: IngestOptions()).walk { _ in }
        XCTAssertEqual(result.map(\.relativePath), ["doc.md"])
    }

    // MARK: - .gitignore

    func testGitignoreRules() throws {
        try folder.write(".gitignore", """
            # comment
            *.txt
            !keep.txt
            build/
            /only-root.md
            docs/**/draft.md
            **/tmp
            \\#literal.md
            trailing.md   \n
            """)
        for path in ["a.txt", "keep.txt", "build/out.md", "sub/build/out.md", "notes/build", "only-root.md", "sub/only-root.md",
                     "docs/draft.md", "docs/a/b/draft.md", "docs/a/final.md", "tmp/x.md", "deep/er/tmp/x.md",
                     "#literal.md", "trailing.md", "sub/deeper.txt", "sub/x.md"] {
            try folder.write(path, "text of \(path)")
        }
        // A nested .gitignore overrides its parent's rules below it.
        try folder.write("sub/.gitignore", "!*.txt\nx.md\n")
        try folder.write(".git/info/exclude", "excluded-by-info.md\n")
        try folder.write("excluded-by-info.md", "x")
        let result = try walk(folder)
        XCTAssertEqual(result.paths, ["docs/a/final.md", "keep.txt", "notes/build", "sub/deeper.txt", "sub/only-root.md"])
        for ignored in ["a.txt", "build", "sub/build", "only-root.md", "docs/draft.md", "docs/a/b/draft.md", "tmp", "deep/er/tmp",
                        "#literal.md", "trailing.md", "sub/x.md", "excluded-by-info.md"] {
            XCTAssertEqual(result.reason(ignored), .ignored, ignored)
        }
        XCTAssertEqual(result.skipped["a.txt"]?.detail, ".gitignore")
    }

    func testGitignoreParsing() {
        let file = GitignoreFile(base: "", text: "a/b\n/c\nd/\n!e\n\\!f\n  \n#x\n*.o\r\n")
        XCTAssertEqual(file.rules.count, 6)
        XCTAssertEqual(file.decision(relativePath: "a/b", isDirectory: false), true)
        XCTAssertNil(file.decision(relativePath: "z/a/b", isDirectory: false), "a pattern with a middle slash is anchored")
        XCTAssertEqual(file.decision(relativePath: "c", isDirectory: false), true)
        XCTAssertNil(file.decision(relativePath: "z/c", isDirectory: false))
        XCTAssertEqual(file.decision(relativePath: "z/d", isDirectory: true), true)
        XCTAssertNil(file.decision(relativePath: "z/d", isDirectory: false), "a trailing slash matches folders only")
        XCTAssertEqual(file.decision(relativePath: "e", isDirectory: false), false)
        XCTAssertEqual(file.decision(relativePath: "!f", isDirectory: false), true)
        XCTAssertEqual(file.decision(relativePath: "x/y.o", isDirectory: false), true)
        let nested = GitignoreFile(base: "sub", text: "/top.md\n")
        XCTAssertEqual(nested.decision(relativePath: "sub/top.md", isDirectory: false), true)
        XCTAssertNil(nested.decision(relativePath: "sub/x/top.md", isDirectory: false))
        XCTAssertNil(nested.decision(relativePath: "top.md", isDirectory: false))
    }

    func testGlobValidationNamesTheProblem() {
        func problem(_ pattern: String) -> String? {
            do { _ = try Glob(validating: pattern); return nil } catch { return error.description }
        }
        XCTAssertEqual(problem("[abc"), "invalid glob '[abc': '[' has no closing ']' (write '\\[' for a literal '[')")
        XCTAssertEqual(problem("a/[!x"), "invalid glob 'a/[!x': '[' has no closing ']' (write '\\[' for a literal '[')")
        XCTAssertEqual(problem("[z-a]"), "invalid glob '[z-a]': the range 'z-a' is reversed (write '[a-z]')")
        XCTAssertEqual(problem("x\\"), "invalid glob 'x\\': it ends with a '\\' that escapes nothing (write '\\\\' for a backslash)")
        XCTAssertEqual(problem(""), "invalid glob '': it is empty")
        for good in ["*.md", "docs/**/*.md", "[]x]", "[!]]", "\\[", "a[b-d]e", "**", "?", "[a\\]]"] {
            XCTAssertNil(problem(good), good)
        }
        // .gitignore stays lenient, as git is: '[' without ']' is a literal.
        XCTAssertTrue(Glob("lone[").matches("lone["))
    }

    func testInvalidIncludeOrExcludeStopsTheWalk() throws {
        try folder.write("a.md", "x")
        XCTAssertThrowsError(try walk(folder) { $0.include = ["[abc"] }) { error in
            XCTAssertEqual("\(error)", "invalid glob '[abc': '[' has no closing ']' (write '\\[' for a literal '[')")
        }
        XCTAssertThrowsError(try walk(folder) { $0.exclude = ["ok", "[b-a]"] })
    }

    func testPathSelectionFollowsGitignoreRules() throws {
        func selected(_ globs: [String], base: String = "", _ paths: [String]) throws -> [String] {
            let s = try PathSelection(globs: globs, base: base)
            return paths.filter(s.matches)
        }
        let all = ["top.md", "notes/deadlines.md", "notes/deadline.txt", "library/deep/x.md", "library/y.md",
                   "docs/notes/logging.md", "docs/logging.md", "docs/notes/sub/more.md", "[draft]/a.md"]
        XCTAssertEqual(try selected(["*.md"], all), all.filter { $0.hasSuffix(".md") })
        XCTAssertEqual(try selected(["notes/*.md"], all), ["notes/deadlines.md"])
        XCTAssertEqual(try selected(["/top.md"], all), ["top.md"])
        XCTAssertEqual(try selected(["library/*"], all), ["library/deep/x.md", "library/y.md"], "a matched folder takes its contents")
        XCTAssertEqual(try selected(["library"], all), ["library/deep/x.md", "library/y.md"])
        XCTAssertEqual(try selected(["deep/"], all), ["library/deep/x.md"], "a trailing slash: folders only")
        XCTAssertEqual(try selected(["x.md/"], all), [])
        XCTAssertEqual(try selected(["**/logging.md"], all), ["docs/notes/logging.md", "docs/logging.md"])
        XCTAssertEqual(try selected(["top.md", "*.txt"], all), ["top.md", "notes/deadline.txt"])
        // Relative to a folder inside the index, as git reads pathspecs.
        XCTAssertEqual(try selected(["logging.md"], base: "docs/notes", all), ["docs/notes/logging.md"])
        XCTAssertEqual(try selected(["*.md"], base: "docs/notes", all), ["docs/notes/logging.md", "docs/notes/sub/more.md"])
        XCTAssertEqual(try selected(["sub/*"], base: "docs/notes", all), ["docs/notes/sub/more.md"])
        XCTAssertEqual(try selected(["./logging.md"], base: "docs/notes", all), ["docs/notes/logging.md"])
        XCTAssertEqual(try selected(["../logging.md"], base: "docs/notes", all), ["docs/logging.md"])
        XCTAssertEqual(try selected([".."], base: "docs/notes", all), ["docs/notes/logging.md", "docs/logging.md", "docs/notes/sub/more.md"])
        XCTAssertEqual(try selected(["/top.md"], base: "docs/notes", all), ["top.md"])
        // A base folder's name is literal, glob characters and all.
        XCTAssertEqual(try selected(["a.md"], base: "[draft]", all), ["[draft]/a.md"])
        XCTAssertEqual(try selected(["./a.md"], base: "[draft]", all), ["[draft]/a.md"])
        XCTAssertThrowsError(try PathSelection(globs: ["../../x"], base: "docs")) { error in
            XCTAssertEqual("\(error)", "invalid glob '../../x': it leads out of the indexed folder")
        }
        XCTAssertThrowsError(try PathSelection(globs: ["[abc"]))
    }

    func testPathSelectionBaseIsTheCurrentFolderInsideTheRoot() throws {
        try folder.mkdir("docs/notes")
        try folder.symlink("alias", to: "docs")
        let root = NativePath(folder.path)
        XCTAssertEqual(PathSelection.base(root: root, current: NativePath(folder.path + "/docs/notes")), "docs/notes")
        XCTAssertEqual(PathSelection.base(root: root, current: root), "")
        XCTAssertEqual(PathSelection.base(root: root, current: NativePath(folder.path + "/alias/notes")), "docs/notes", "links resolved")
        XCTAssertNil(PathSelection.base(root: NativePath(folder.path + "/docs"), current: root))
        XCTAssertNil(PathSelection.base(root: root, current: NativePath(folder.path + "/missing")))
    }

    /// Many '*' runs against a long name: plain backtracking tries every way to split the
    /// name (about 10^17 here, it would never finish); remembering failed positions makes it
    /// pattern × name steps. A server takes such globs from any client (--path / "path").
    func testGlobsWithManyStarsMatchInPolynomialSteps() {
        let name = String(repeating: "a", count: 60)
        let hostile = String(repeating: "*a", count: 30) + "b"
        XCTAssertFalse(Glob(hostile).matches(name))
        XCTAssertTrue(Glob(String(repeating: "*a", count: 30)).matches(name))
        XCTAssertFalse(Glob(String(repeating: "*?", count: 10) + "#").matches(String(repeating: "x", count: 31)))
        XCTAssertTrue(Glob("**/" + String(repeating: "*a", count: 20) + "/*.md").matches("d/e/" + name + "/x.md"))
        XCTAssertFalse(Glob("**/" + String(repeating: "*a", count: 20) + "b/*.md").matches("d/e/" + name + "/x.md"))
    }

    func testGlob() {
        XCTAssertTrue(Glob("*.md").matches("a.md"))
        XCTAssertFalse(Glob("*.md").matches("d/a.md"))
        XCTAssertTrue(Glob("**/a.md").matches("a.md"))
        XCTAssertTrue(Glob("**/a.md").matches("x/y/a.md"))
        XCTAssertTrue(Glob("a/**/b").matches("a/b"))
        XCTAssertTrue(Glob("a/**/b").matches("a/x/y/b"))
        XCTAssertFalse(Glob("a/**/b").matches("ab/b"))
        XCTAssertTrue(Glob("a/**").matches("a/x/y"))
        XCTAssertTrue(Glob("file?.[ch]").matches("file1.c"))
        XCTAssertFalse(Glob("file?.[!ch]").matches("file1.c"))
        XCTAssertTrue(Glob("[a-c]x").matches("bx"))
        XCTAssertTrue(Glob("lone[").matches("lone["))
        XCTAssertTrue(Glob("\\*").matches("*"))
        XCTAssertFalse(Glob("\\*").matches("x"))
    }

    // MARK: - Names that are not UTF-8, text that is not UTF-8

    /// Creates a file whose name is `name`'s bytes (which need not be UTF-8) in the folder.
    func writeRaw(_ name: [UInt8], _ text: String) throws {
        let path = Array(folder.path.utf8) + [UInt8(ascii: "/")] + name + [0]
        let fd = path.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644) } }
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }, bytes.count)
    }

    func testANameThatIsNotUTF8IsReadThroughItsBytes() throws {
        let latin1 = Array("caf".utf8) + [0xE9] + Array(".md".utf8)
        try writeRaw(latin1, "espresso")
        let result = try walk(folder)
        XCTAssertEqual(result.skipped.count, 0, "\(result.skipped)")
        XCTAssertEqual(result.paths, ["caf\u{FFFD}.md"])
        let file = try XCTUnwrap(result.file("caf\u{FFFD}.md"))
        XCTAssertEqual(file.location.bytes, Array(folder.path.utf8) + [UInt8(ascii: "/")] + latin1)
        XCTAssertEqual(try FileReader.read(file.location), Data("espresso".utf8))
        XCTAssertEqual(file.size, 8)
        // The same walk again gives the same path: incremental builds recognise the file.
        XCTAssertEqual(try walk(folder).files, result.files)
    }

    func testNamesThatReadTheSameOnceDecodedAreTakenOnce() throws {
        // 0xE8 and 0xE9 both decode to U+FFFD: one relative path, two files.
        try writeRaw(Array("caf".utf8) + [0xE9] + Array(".md".utf8), "second by bytes")
        try writeRaw(Array("caf".utf8) + [0xE8] + Array(".md".utf8), "first by bytes")
        for _ in 0..<2 {
            let result = try walk(folder)
            XCTAssertEqual(result.paths, ["caf\u{FFFD}.md"])
            XCTAssertEqual(try FileReader.read(result.files[0].location), Data("first by bytes".utf8), "the first by bytes, every time")
            XCTAssertEqual(result.reason("caf\u{FFFD}.md"), .duplicate)
        }
    }

    func testUTF16AndUTF32WithAByteOrderMarkAreTextNotBinary() throws {
        let text = "# Tea\n\nGreen tea steeps for two minutes.\n"
        let le: [UInt8] = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        try folder.write("le.md", Data(le))
        try folder.write("be.md", Data([0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }))
        try folder.write("wide.md", Data([0, 0, 0xFE, 0xFF] + text.unicodeScalars.flatMap { s in (0..<4).reversed().map { UInt8((s.value >> (8 * $0)) & 0xFF) } }))
        // Real NUL characters are still binary; a mark and spaces alone are empty.
        try folder.write("nul.txt", Data([0xFF, 0xFE, 0x41, 0, 0, 0, 0x42, 0]))
        try folder.write("blank.txt", Data([0xFF, 0xFE, 0x20, 0, 0x0A, 0]))
        // A file longer than the sniffed 8 KiB, cut there between the halves of a surrogate pair.
        let a = { (n: Int) -> [UInt8] in Array(repeating: [UInt8(0x61), 0], count: n).flatMap { $0 } }
        let longBytes: [UInt8] = [0xFF, 0xFE] + a(4094) + [0x3D, 0xD8, 0x00, 0xDE] + a(1000)
        try folder.write("long.txt", Data(longBytes))
        let result = try walk(folder)
        XCTAssertEqual(result.paths, ["be.md", "le.md", "long.txt", "wide.md"])
        XCTAssertEqual(result.reason("nul.txt"), .binary)
        XCTAssertEqual(result.skipped["nul.txt"]?.detail, "NUL character in the first 8 KiB (read as UTF-16LE)")
        XCTAssertEqual(result.reason("blank.txt"), .empty)
        for name in ["be.md", "le.md", "wide.md"] {
            let file = try XCTUnwrap(result.file(name))
            let (doc, warnings) = DocumentParser.parse(try FileReader.read(file.location), kind: file.kind, language: nil, path: name)
            XCTAssertEqual(warnings, [], name)
            XCTAssertEqual(doc.title, "Tea", name)
            XCTAssertEqual(doc.sections.map(\.text), ["Green tea steeps for two minutes."], name)
            XCTAssertEqual(doc.sections.map(\.lineStart), [1], name)
        }
        let long = try DocumentParser.parse(FileReader.read(try XCTUnwrap(result.file("long.txt")).location), kind: .text, language: nil, path: "long.txt")
        XCTAssertEqual(long.warnings, [])
        XCTAssertEqual(long.0.sections.map(\.text), [String(repeating: "a", count: 4094) + "😀" + String(repeating: "a", count: 1000)])
    }

    // MARK: - Hidden, excluded, include/exclude

    func testHiddenFilesAndFoldersAndNodeModulesAreSkipped() throws {
        try folder.write(".hidden.md", "x")
        try folder.write(".config/inside.md", "x")
        try folder.write("node_modules/pkg/readme.md", "x")
        try folder.write("visible.md", "x")
        let result = try walk(folder)
        XCTAssertEqual(result.paths, ["visible.md"])
        XCTAssertEqual(result.reason(".hidden.md"), .ignored)
        XCTAssertEqual(result.reason(".config"), .ignored)
        XCTAssertEqual(result.reason("node_modules"), .ignored)
        XCTAssertNil(result.reason(".config/inside.md"), "a hidden folder is not entered")
    }

    func testIndexFolderIsExcludedWhateverItsSpelling() throws {
        try folder.write("kb-index/chunks.txt", "index data")
        try folder.write("doc.md", "x")
        // Another spelling of the same folder: through "./" and "..".
        let other = folder.path + "/./kb-index/../kb-index"
        let result = try walk(folder) { $0.excludedDirectories = [other] }
        XCTAssertEqual(result.paths, ["doc.md"])
        XCTAssertEqual(result.reason("kb-index"), .ignored)
        XCTAssertEqual(result.skipped["kb-index"]?.detail, "excluded folder")
        // And through a symbolic link to it.
        try folder.symlink("alias", to: "kb-index")
        let viaLink = try walk(folder) { $0.excludedDirectories = [self.folder.path + "/alias"] }
        XCTAssertEqual(viaLink.paths, ["doc.md"])
        XCTAssertEqual(viaLink.reason("kb-index"), .ignored)
    }

    func testIncludeAndExcludeGlobs() throws {
        for path in ["docs/guide.md", "docs/deep/more.md", "docs/private/secret.md", "docs/notes.txt", "notes.txt",
                     "a/b/c.txt", "draft.draft.txt", "src/main.swift"] {
            try folder.write(path, "text")
        }
        let result = try walk(folder) {
            $0.include = ["docs/**/*.md", "*.txt"]
            $0.exclude = ["docs/private/**", "*.draft.txt"]
        }
        XCTAssertEqual(result.paths, ["a/b/c.txt", "docs/deep/more.md", "docs/guide.md", "docs/notes.txt", "notes.txt"])
        XCTAssertEqual(result.reason("src/main.swift"), .ignored)
        XCTAssertEqual(result.skipped["src/main.swift"]?.detail, "not matched by include")
        XCTAssertEqual(result.reason("docs/private"), .ignored, "an excluded folder is not entered")
        XCTAssertEqual(result.skipped["draft.draft.txt"]?.detail, "exclude *.draft.txt")
    }

    // MARK: - Root and order

    func testRootErrors() throws {
        let file = try folder.write("file.md", "x")
        XCTAssertThrowsError(try Walker(root: file, options: IngestOptions()).walk { _ in }) { error in
            XCTAssertTrue("\(error)".contains("not a folder"), "\(error)")
        }
        XCTAssertThrowsError(try Walker(root: folder.url.appendingPathComponent("missing"), options: IngestOptions()).walk { _ in })
    }

    func testOrderIsSortedByPathBytes() throws {
        for path in ["b.md", "a/z.md", "B.md", "a.md", "a-b.md", "é.md"] { try folder.write(path, "x") }
        let first = try walk(folder).paths
        XCTAssertEqual(first, ["B.md", "a-b.md", "a.md", "a/z.md", "b.md", "é.md"])
        XCTAssertEqual(try walk(folder).paths, first)
    }
}

/// `IngestOptions.keep`: a shard's walk reads only its own files.
final class WalkerKeepTests: XCTestCase {
    var folder: ScratchFolder!
    override func setUpWithError() throws { folder = try ScratchFolder() }

    func testARejectedFileIsNeverReadNorReported() throws {
        try folder.write("mine.md", "# Mine\n")
        try folder.write("theirs.txt", Data([0x68, 0x69, 0x00, 0x01]))  // binary: only a read tells
        try folder.write("empty.md", "")
        try folder.write("picture.png", "not really a png")
        let all = try walk(folder)
        XCTAssertEqual(all.reason("theirs.txt"), .binary)
        XCTAssertEqual(all.reason("empty.md"), .empty)
        let r = try walk(folder) { $0.keep = { $0 == "mine.md" } }
        XCTAssertEqual(r.paths, ["mine.md"])
        // Rejected before any read: no binary or empty verdict; the name-only checks (type,
        // include/exclude, size) still report, for the caller to filter.
        XCTAssertNil(r.reason("theirs.txt"))
        XCTAssertNil(r.reason("empty.md"))
        XCTAssertEqual(r.reason("picture.png"), .unsupportedType)
    }

    /// A file and a link to it in different shards: the link's shard skips the link as a
    /// duplicate, as a walk without the predicate does, and does not index the file twice.
    func testALinkToAnotherShardsFileIsStillADuplicate() throws {
        try folder.write("a.md", "# A\n")
        try folder.symlink("l.md", to: "a.md")
        let all = try walk(folder)
        XCTAssertEqual(all.paths, ["a.md"])
        XCTAssertEqual(all.reason("l.md"), .duplicate)
        let r = try walk(folder) { $0.keep = { $0 == "l.md" } }
        XCTAssertEqual(r.paths, [])
        XCTAssertEqual(r.reason("l.md"), .duplicate)
    }
}
