import Foundation

/// DOCX, ODT and EPUB text out of their zip containers. (Stub: the office helper replaces this file.)
enum OfficeExtractor {
    static func extract(data: Data, kind: DocumentKind, path: String, limits: ExtractionLimits) -> Result<ParseResult, ExtractionError> {
        .failure(.malformed("not read yet"))
    }
}
