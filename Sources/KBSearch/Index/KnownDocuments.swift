import KBFormat

/// A live document of an index, as an incremental build needs it: where it is, what the
/// file looked like when it was indexed, and how many chunks it has.
public struct KnownDocument: Sendable, Equatable {
    public var segment: Int
    public var document: Int
    public var size: UInt64
    public var mtimeNanoseconds: Int64
    public var sha256: [UInt8]
    public var chunks: Int
}

/// Every live (not deleted) document of an index by its path relative to the indexed
/// folder. A path is normally live once; should it be live in several segments (only a
/// hand-edited index), all of them are listed, newest last, so an update deletes them all.
///
/// Cost: O(documents + chunks) to build (chunks are counted per document from the CHUNKS
/// records, without decoding them).
public struct KnownDocuments: Sendable {
    public private(set) var byPath: [String: [KnownDocument]] = [:]

    /// No documents (a first build).
    public init() {}

    /// The live documents of `index`, leaving out the segments in `skipping` (damaged ones,
    /// whose documents a build reads again as if they were new).
    public init(_ index: IndexDirectory, skipping: Set<Int> = []) {
        for (s, seg) in index.segments.enumerated() where !skipping.contains(s) {
            var counts = [Int](repeating: 0, count: seg.documentCount)
            for c in 0..<seg.chunkCount { counts[seg.documentIndex(ofChunk: c)] += 1 }
            for d in 0..<seg.documentCount where !index.isDeleted(segment: s, document: d) {
                let r = seg.document(d)
                byPath[r.path, default: []].append(KnownDocument(
                    segment: s, document: d, size: r.size, mtimeNanoseconds: r.mtimeNanoseconds,
                    sha256: r.contentSHA256, chunks: counts[d]))
            }
        }
    }

    /// The newest live version of `path`, if any. O(1).
    public subscript(path: String) -> KnownDocument? { byPath[path]?.last }

    /// These documents, with the paths of `other` taking `other`'s versions instead (a
    /// build's aside segments over its index, for the content-hash check). The segment and
    /// document numbers then refer to two indexes: use the result only for the file facts
    /// (size, time, hash). O(paths of `other`).
    public func overlaid(by other: KnownDocuments) -> KnownDocuments {
        var out = self
        for (path, versions) in other.byPath { out.byPath[path] = versions }
        return out
    }
}
