import XCTest
@testable import KBRemoteEmbed

final class RemoteEmbedderTests: XCTestCase {}
