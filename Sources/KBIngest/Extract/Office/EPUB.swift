import Foundation

/// EPUB (2 and 3): META-INF/container.xml names the package document (OPF); its spine lists
/// the content documents in reading order; each goes through the HTML parser, whose h1–h6
/// become the headings. A missing, unreadable or encrypted (DRM) chapter is a warning and
/// the rest is read (one warning per kind of problem, with its count and first case);
/// `.malformed` when no chapter could be read, `.encrypted` when all are encrypted.
enum EPUBReader {
    static func read(_ zip: ZipReader, fileName: String, limits: ExtractionLimits) throws(ExtractionError) -> ParseResult {
        var warnings: [String] = []
        // The package document: the container's first rootfile, else the only .opf.
        var opfPath: String?
        if let container = try OfficeExtractor.optionalPart("META-INF/container.xml", in: zip, warnings: &warnings) {
            let handler = ContainerHandler()
            if let error = XMLPart.parse(container, handler: handler), handler.rootfile == nil {
                warnings.append("META-INF/container.xml: \(error)")
            }
            opfPath = handler.rootfile.map { OfficeExtractor.resolve($0, from: "") }
        }
        if opfPath == nil || !zip.contains(opfPath!) {
            let opfs = zip.names.filter { $0.lowercased().hasSuffix(".opf") }
            guard opfs.count == 1 else {
                throw .malformed(opfPath.map { "missing \($0) (the package document META-INF/container.xml names)" }
                                 ?? "missing META-INF/container.xml (not an EPUB?)")
            }
            warnings.append("\(opfPath.map { "missing \($0)" } ?? "no META-INF/container.xml"); read \(opfs[0]) instead")
            opfPath = opfs[0]
        }
        let opf = opfPath!
        let package = PackageHandler()
        if let error = XMLPart.parse(try OfficeExtractor.requiredPart(opf, in: zip), handler: package) {
            guard !package.spine.isEmpty else { throw .malformed("\(opf): \(error)") }
            warnings.append("\(opf): \(error); kept the \(package.spine.count) chapter(s) listed before it")
        }
        guard !package.spine.isEmpty else { throw .malformed("\(opf): the spine lists no chapters") }
        let encrypted = try encryptedPaths(zip, warnings: &warnings)

        let base = OfficeExtractor.folder(of: opf)
        var builder = BodyBuilder(maxTextBytes: limits.maxTextBytes)
        var read = 0, locked = 0
        var seen: Set<String> = []
        // One warning per kind of problem, however many spine items have it.
        var problems = RepeatedWarnings()
        for idref in package.spine where !builder.cut {
            guard let item = package.manifest[idref] else {
                problems.add("spine items not in the manifest", first: "'\(idref)'", alone: "spine item '\(idref)' is not in the manifest; skipped")
                continue
            }
            let path = OfficeExtractor.resolve(item.href, from: base)
            guard seen.insert(path).inserted else { continue }
            let type = item.mediaType.lowercased()
            guard type.isEmpty || type.contains("html") || type.contains("xml") && !type.contains("svg") else { continue }
            if encrypted.contains(path) {
                locked += 1
                problems.add("chapters encrypted (DRM)", first: path, alone: "\(path) is encrypted (DRM); skipped")
                continue
            }
            let data: Data?
            do {
                data = try zip.read(path)
            } catch {
                if case .malformed(let detail) = error {
                    problems.add("damaged chapters", first: detail, alone: "\(detail); skipped")
                    continue
                }
                throw error
            }
            guard let data else {
                problems.add("missing chapters", first: path, alone: "missing chapter \(path); skipped")
                continue
            }
            read += 1
            add(chapter: data, path: path, to: &builder, problems: &problems)
        }
        warnings += problems.warnings
        if read == 0 {
            if locked > 0 { throw .encrypted }
            throw .malformed("none of the \(package.spine.count) chapter(s) in the spine could be read")
        }
        if let cut = builder.cutWarning { warnings.append(cut) }
        let doc = ParsedDocument(title: package.title ?? fileName, sections: builder.finish(), unit: .paragraphs)
        return ParseResult(document: doc, warnings: warnings)
    }

    /// Adds one XHTML content document: its sections' headings (those new since the previous
    /// section, each a heading paragraph at its depth) and paragraphs (runs of lines between
    /// blank lines). Headings continue across documents: a chapter that starts without one
    /// stays under the previous chapter's (a chapter split over files).
    static func add(chapter data: Data, path: String, to builder: inout BodyBuilder, problems: inout RepeatedWarnings) {
        let (data, source, decodeWarnings) = DocumentParser.decode(data)
        for w in decodeWarnings {
            problems.add("chapters with text replaced with U+FFFD", first: "\(path): \(w)", alone: "\(path): \(w)")
        }
        let doc = HTMLParser.parse(data, source: source, fileName: (path as NSString).lastPathComponent)
        var previous: [String] = []
        for section in doc.sections {
            let path = section.headingPath
            var common = 0
            while common < min(path.count, previous.count) && path[common] == previous[common] { common += 1 }
            if common == path.count && path.count == previous.count && !path.isEmpty {
                common = path.count - 1   // the same heading again: a new section under it
            }
            for depth in common..<path.count { builder.heading(path[depth], level: depth + 1) }
            previous = path
            var lines: [String] = []
            for line in section.text.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.allSatisfy(\.isWhitespace) {
                    builder.paragraph(lines)
                    lines = []
                } else {
                    lines.append(String(line))
                }
            }
            builder.paragraph(lines)
        }
    }

    /// Paths listed in META-INF/encryption.xml other than obfuscated fonts (their content
    /// cannot be read without the key).
    static func encryptedPaths(_ zip: ZipReader, warnings: inout [String]) throws(ExtractionError) -> Set<String> {
        guard let data = try OfficeExtractor.optionalPart("META-INF/encryption.xml", in: zip, warnings: &warnings) else { return [] }
        let handler = EncryptionHandler()
        _ = XMLPart.parse(data, handler: handler)
        return Set(handler.paths.map { OfficeExtractor.resolve($0, from: "") })
    }

    final class ContainerHandler: XMLHandler {
        private(set) var rootfile: String?
        func start(_ name: XMLName, _ attributes: [String: String]) {
            guard name.local == "rootfile", rootfile == nil, let path = attributes["full-path"], !path.isEmpty else { return }
            let type = attributes["media-type"] ?? "application/oebps-package+xml"
            if type == "application/oebps-package+xml" { rootfile = path }
        }
        func end(_ name: XMLName) {}
        func text(_ text: String) {}
    }

    /// The OPF: dc:title, manifest items (id → href, media type), spine idrefs in order.
    final class PackageHandler: XMLHandler {
        struct Item { var href: String; var mediaType: String }
        private(set) var manifest: [String: Item] = [:]
        private(set) var spine: [String] = []
        private let titleHandler = FirstTextHandler(local: "title", namespace: FirstTextHandler.dublinCore)
        var title: String? { titleHandler.value }

        func start(_ name: XMLName, _ attributes: [String: String]) {
            titleHandler.start(name, attributes)
            switch name.local {
            case "item":
                if let id = attributes["id"], let href = attributes["href"], manifest[id] == nil {
                    manifest[id] = Item(href: href, mediaType: attributes["media-type"] ?? "")
                }
            case "itemref":
                if let id = attributes["idref"] { spine.append(id) }
            default: break
            }
        }
        func end(_ name: XMLName) { titleHandler.end(name) }
        func text(_ text: String) { titleHandler.text(text) }
    }

    final class EncryptionHandler: XMLHandler {
        private(set) var paths: [String] = []
        private var algorithm = ""
        func start(_ name: XMLName, _ attributes: [String: String]) {
            switch name.local {
            case "EncryptedData": algorithm = ""
            case "EncryptionMethod": algorithm = attributes["Algorithm"] ?? ""
            case "CipherReference":
                // Font obfuscation (IDPF, Adobe) hides fonts, not text.
                let font = algorithm.contains("idpf.org/2008/embedding") || algorithm.contains("ns.adobe.com/pdf/enc#RC")
                if !font, let uri = attributes["URI"] { paths.append(uri) }
            default: break
            }
        }
        func end(_ name: XMLName) {}
        func text(_ text: String) {}
    }
}
