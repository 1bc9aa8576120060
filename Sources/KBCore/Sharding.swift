/// Limits of sharded builds shared by the shard rule (KBIngest's `ShardSpec`) and the
/// manifest's `shard` entry (KBFormat's `Manifest.Shard`), which cannot see each other.
public enum Sharding {
    /// The most shards a build may be cut into (format-spec.md §13.7).
    public static let maxCount = 65_536
}
