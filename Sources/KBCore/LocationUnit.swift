/// What a chunk's `lineStart`/`lineEnd` count (format-spec.md §8.5, the CHUNKS record's byte 52).
///
/// Text files are cited by line. A PDF has no lines worth citing, but it has pages; a Word,
/// OpenDocument or EPUB file has neither, but its body is a sequence of paragraphs (a heading
/// counts as one). Where the unit is not `.lines`, a chunk's byte range is in the document's
/// extracted text, not in the file.
public enum LocationUnit: UInt8, Sendable, Codable, CaseIterable {
    /// 1-based lines of the source file.
    case lines = 0
    /// 1-based physical pages of a PDF (the first page is 1, whatever its printed label).
    case pages = 1
    /// 1-based paragraphs of the extracted body of a DOCX, ODT or EPUB file.
    case paragraphs = 2
}
