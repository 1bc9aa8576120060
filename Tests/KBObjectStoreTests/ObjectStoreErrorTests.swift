import KBObjectStore
import XCTest

final class ObjectStoreErrorTests: XCTestCase {
    func testDescriptionsNameTheObject() {
        XCTAssertEqual(ObjectStoreError.preconditionFailed(key: "manifest.json").description, "manifest.json was changed by another writer")
        XCTAssertEqual(ObjectStoreError.noSuchBucket(bucket: "b").description, "the bucket b does not exist")
    }
}
