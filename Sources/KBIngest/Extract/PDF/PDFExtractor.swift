import Foundation
import KBCore

/// PDF text through poppler's command-line tools. (Stub: the PDF helper replaces this file.)
enum PDFExtractor {
    static func extract(data: Data, location: NativePath, path: String, limits: ExtractionLimits) -> Result<ParseResult, ExtractionError> {
        .failure(.toolMissing("pdftotext"))
    }
}
