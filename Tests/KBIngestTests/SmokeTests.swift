import XCTest
import KBIngest
final class SmokeTests: XCTestCase { func testKinds() { XCTAssertEqual(DocumentKind.allCases.count, 4) } }
