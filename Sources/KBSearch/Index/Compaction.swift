import Foundation
import KBCore
import KBFormat

/// Merging an index's segments into fewer, dropping deleted documents and their chunks.
///
/// Chunks are copied as they are stored (int8 row, scale, row sum, record, text): nothing is
/// re-embedded, so a compacted index answers every vector query exactly as before, with the
/// same scores. Their terms are copied from the LEXICAL section when it was made by the
/// current tokenizer; a segment without one, or with an older tokenizer's, is re-tokenized
/// (`LexicalTokenizer.currentVersion`) from each chunk's heading path joined with " › ", a
/// newline and its text, as a build indexes it, so every output segment holds one tokenizer
/// version (the current one). Old segments stay mapped and readable until the new manifest
/// is committed.
public enum Compaction {
    /// `build` compacts on its own past either threshold.
    public static let maxDeletedFraction = 0.25
    public static let maxSegments = 16

    /// Whether `manifest` has more than `maxDeletedFraction` of its chunks deleted or more
    /// than `maxSegments` segments. O(segments).
    public static func isWorthwhile(_ manifest: Manifest) -> Bool {
        let chunks = manifest.segments.reduce(0) { $0 + $1.chunks }
        let deleted = manifest.segments.reduce(0) { $0 + ($1.deletedChunks ?? 0) }
        return manifest.segments.count > maxSegments || (chunks > 0 && Double(deleted) > maxDeletedFraction * Double(chunks))
    }

    /// Writes the live documents of `index`, in index order, into new segment files in the
    /// index folder named `seg-<stamp>-<n>.kbseg` (a new file starts once one holds
    /// `segmentChunks` chunks; a document is never split), and returns the manifest that
    /// lists them, not yet committed (`IndexFiles.commit`). Every segment's checksums are
    /// checked first, since copying a damaged segment would give its damage fresh checksums:
    /// throws `SegmentError.checksumMismatch` for the first damaged one before writing
    /// anything. Throws `SegmentError` when a chunk's text cannot be read, or `FileError`; the
    /// files written so far are then removed.
    ///
    /// Cost: O(index size) for the checksums, then O(live chunks · (dimensions + text block
    /// size)); memory holds one output segment at a time.
    public static func compact(_ index: IndexDirectory, stamp: String, segmentChunks: Int = 200_000) throws -> Manifest {
        precondition(segmentChunks >= 1)
        for seg in index.segments { try seg.verify() }
        let model = index.manifest.model
        var written: [Manifest.Segment] = []
        var writer = SegmentWriter(model: model)
        var writerDocuments = 0
        func flush() throws {
            guard writer.chunkCount > 0 else { return }
            let name = "seg-\(stamp)-\(written.count)\(IndexFiles.segmentSuffix)"
            let bytes = try writer.write(to: index.url.appendingPathComponent(name).path)
            written.append(Manifest.Segment(file: name, chunks: writer.chunkCount, documents: writerDocuments, bytes: bytes))
            writer = SegmentWriter(model: model)
            writerDocuments = 0
        }
        do {
            for (s, seg) in index.segments.enumerated() {
                // The chunks' terms, from the LEXICAL section when it has the current tokenizer's
                // (nil: they are made again from the heading path and text).
                var termsOf: [[(term: [UInt8], tf: UInt32)]]?
                if let lex = seg.lexical, lex.tokenizerVersion == LexicalTokenizer.currentVersion {
                    var t = [[(term: [UInt8], tf: UInt32)]](repeating: [], count: seg.chunkCount)
                    for (term, p) in try lex.allTerms() {
                        for (c, f) in zip(p.chunks, p.frequencies) { t[c].append((term, UInt32(f))) }
                    }
                    termsOf = t
                }
                var chunksOf = [[Int]](repeating: [], count: seg.documentCount)
                for c in 0..<seg.chunkCount { chunksOf[seg.documentIndex(ofChunk: c)].append(c) }
                for d in 0..<seg.documentCount where !index.isDeleted(segment: s, document: d) && !chunksOf[d].isEmpty {
                    let doc = writer.addDocument(seg.document(d))
                    writerDocuments += 1
                    for c in chunksOf[d] {
                        var record = seg.chunk(c)
                        record.document = doc
                        let row = UnsafeBufferPointer(start: seg.vectorBase + c * seg.rowStride, count: seg.dimensions)
                        let text = try seg.text(ofChunk: c)
                        let terms = termsOf?[c] ?? LexicalTokenizer.counts(Self.indexedText(heading: record.headingPath, text: text))
                        writer.addQuantizedChunk(record, text: text, row: row,
                                                 scale: seg.scale(ofChunk: c), sum: seg.sum(ofChunk: c), terms: terms)
                    }
                    if writer.chunkCount >= segmentChunks { try flush() }
                }
            }
            try flush()
        } catch {
            for w in written { try? FileManager.default.removeItem(at: index.url.appendingPathComponent(w.file)) }
            throw error
        }
        return Manifest(model: model, segments: written, shard: index.manifest.shard)
    }

    /// What a build gives the lexical tokenizer for a chunk (its `embeddingText`): the heading
    /// path joined with " › ", a newline, then the text; only the text without headings. (A
    /// build shortens a path longer than a quarter of the model's input; the stored path is
    /// whole, so a chunk under such a path gets a few more terms here.) O(text length).
    public static func indexedText(heading: [String], text: String) -> String {
        heading.isEmpty ? text : heading.joined(separator: " › ") + "\n" + text
    }
}
