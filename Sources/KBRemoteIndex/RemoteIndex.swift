import Foundation
import KBObjectStore

/// An index stored under a prefix of an object store (issue 19; to be filled in): the same
/// files as a local index folder, as objects, with `manifest.json` written last and
/// conditionally.
public struct RemoteIndex: Sendable {
    public let store: any ObjectStore

    public init(store: any ObjectStore) { self.store = store }
}
