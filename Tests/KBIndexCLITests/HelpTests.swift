import Foundation
import KBTestSupport
import XCTest

/// `--help` of every subcommand reads as prose: a discussion's line continuations (a `\` at
/// the end of a source line) must join lines, not show up as stray backslashes.
final class HelpTests: XCTestCase {
    func testEverySubcommandsHelpIsCleanProse() throws {
        for sub in ["build", "query", "eval", "info", "verify", "compact", "embed", "model"] {
            let r = try CLIRunner.run([sub, "--help"])
            XCTAssertEqual(r.status, 0, "\(sub): \(r.stderr)")
            XCTAssertTrue(r.stdout.hasPrefix("OVERVIEW: "), "\(sub): \(r.stdout.prefix(80))")
            let stray = r.stdout.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces) == "\\" || $0.hasSuffix(" \\") && !$0.hasPrefix("  ") }
            XCTAssertEqual(stray, [], "\(sub) --help has stray backslashes")
        }
    }
}
