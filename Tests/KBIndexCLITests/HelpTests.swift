import Foundation
import KBTestSupport
import XCTest

/// `--help` of every subcommand reads as prose: a discussion's line continuations (a `\` at
/// the end of a source line) must join lines, not show up as stray backslashes.
final class HelpTests: XCTestCase {
    func testEverySubcommandsHelpIsCleanProse() throws {
        for sub in ["build", "query", "eval", "info", "verify", "compact", "merge", "embed", "model"] {
            let r = try CLIRunner.run([sub, "--help"])
            XCTAssertEqual(r.status, 0, "\(sub): \(r.stderr)")
            XCTAssertTrue(r.stdout.hasPrefix("OVERVIEW: "), "\(sub): \(r.stdout.prefix(80))")
            let stray = r.stdout.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces) == "\\" || $0.hasSuffix(" \\") && !$0.hasPrefix("  ") }
            XCTAssertEqual(stray, [], "\(sub) --help has stray backslashes")
        }
    }

    /// Every example in every help stays one line at 80 columns, so it can be copied and
    /// pasted: swift-argument-parser wraps the discussion at the terminal width, and a wrapped
    /// example's continuation loses its indentation.
    func testExamplesAreNotWrappedAt80Columns() throws {
        let commands = [[], ["build"], ["query"], ["eval"], ["info"], ["verify"], ["compact"], ["merge"], ["embed"],
                        ["model"], ["model", "fetch"], ["model", "list"], ["model", "path"]]
        var checked = 0
        for sub in commands {
            let r = try CLIRunner.run(sub + ["--help"], environment: ["COLUMNS": "80"])
            XCTAssertEqual(r.status, 0, "\(sub): \(r.stderr)")
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var inExamples = false, continued = false, examples = 0
            for line in lines {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if ["Examples:", "Example:", "Get started:"].contains(trimmed) { inExamples = true; continue }
                if trimmed.isEmpty { inExamples = false; continue }
                guard inExamples else { continue }
                examples += 1
                // An example starts with a command (or continues one that ends with a shell
                // line continuation); a wrapped one goes on in a line that does not.
                let command = ["kbindex ", "scripts/", "cd ", "cat ", "ls "].contains { trimmed.hasPrefix($0) }
                XCTAssertTrue(command || continued, "\(sub) --help: an example wrapped at 80 columns: '\(line)'")
                // The wrapping cuts a line of 80 characters or more (its end of line is the 81st).
                XCTAssertLessThan(line.count, 80, "\(sub) --help: '\(line)'")
                continued = trimmed.hasSuffix(" \\")
            }
            XCTAssertGreaterThan(examples, 0, "\(sub) --help has no examples")
            checked += examples
        }
        XCTAssertGreaterThan(checked, 20)
    }
}
