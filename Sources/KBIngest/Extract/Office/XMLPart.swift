import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element name: its namespace URI ("" when none) and local name.
struct XMLName: Equatable {
    var namespace: String
    var local: String
}

/// What a streaming pass over one XML part does with it.
protocol XMLHandler: AnyObject {
    /// An element starts. `attributes` are keyed by LOCAL name (prefixes vary between writers).
    func start(_ name: XMLName, _ attributes: [String: String])
    func end(_ name: XMLName)
    /// Character data (entities already decoded; may arrive in several pieces).
    func text(_ text: String)
    /// True once the handler wants nothing more (e.g. its text limit is reached): the parse
    /// stops there, successfully.
    var finished: Bool { get }
}

/// A handler of a DOCX or ODT body: the paragraphs it built, and the ones still open when the
/// XML broke off.
protocol BodyHandling: XMLHandler {
    var builder: BodyBuilder { get set }
    /// Closes the paragraphs still open into `builder` (after malformed XML).
    func finishOpenParagraphs()
}

extension XMLHandler {
    var finished: Bool { false }
}

/// Parses one XML part of a container with FoundationXML (libxml2), safely:
///   - no external entity or DTD is ever loaded (`shouldResolveExternalEntities = false`,
///     and `resolveExternalEntityName` answers nothing);
///   - a part that declares entities (`<!ENTITY`, which no .docx/.odt/.epub part needs) is
///     refused before parsing, so an entity-expansion bomb ("billion laughs") costs one scan
///     of its bytes and no memory (libxml2 also stops entity loops, but this does not rely on
///     it); the scan sees UTF-8 and UTF-16, and parts in encodings it could not see through
///     (UTF-32, EBCDIC, UTF-7, …) are refused too (`refusal`);
///   - parsing stops at the first error; what came before it has been delivered.
enum XMLPart {
    /// The outcome of a pass: nil when the part was read to its end, else a one-line reason
    /// ("line 3: mismatched tag") with everything before the error already delivered.
    /// O(bytes). `refuseEntities: false` skips those checks (for tests of what libxml2
    /// does on its own).
    static func parse(_ data: Data, handler: XMLHandler, refuseEntities: Bool = true) -> String? {
        if refuseEntities, let reason = refusal(data) { return reason }
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        let delegate = Delegate(handler: handler)
        parser.delegate = delegate
        let ok = parser.parse()
        if handler.finished { return nil }
        if let error = delegate.error { return error }
        if !ok { return "line \(parser.lineNumber): " + describe(parser.parserError) }
        return nil
    }

    /// Why a part is refused before parsing, nil when it is not: it declares entities
    /// ("<!ENTITY" in ASCII-compatible bytes or in UTF-16 of either byte order, found
    /// anywhere, also in a comment, which costs nothing real since office writers never put
    /// it there), it is in UTF-32 or EBCDIC (byte-order mark or first bytes), or its XML
    /// declaration names an encoding other than UTF-8, UTF-16, ASCII, ISO-8859-n or
    /// windows-125n (in one like UTF-7, "<!ENTITY" could hide from the scan). O(bytes).
    static func refusal(_ data: Data) -> String? {
        let head = [UInt8](data.prefix(4))
        if head.starts(with: [0xFF, 0xFE, 0, 0]) || head.starts(with: [0, 0, 0xFE, 0xFF])
            || head.starts(with: [0x3C, 0, 0, 0]) || head.starts(with: [0, 0, 0, 0x3C]) {
            return "is in UTF-32, which is not read"
        }
        if head.starts(with: [0x4C, 0x6F, 0xA7, 0x94]) { return "is in EBCDIC, which is not read" }
        if declaresEntities(data) { return "declares XML entities (<!ENTITY), which are not expanded" }
        if let encoding = declaredEncoding(data), !allowedEncoding(encoding) {
            return "declares the encoding '\(encoding)', which is not read (UTF-8, UTF-16, ASCII, ISO-8859 and windows-125x are)"
        }
        return nil
    }

    /// Whether the bytes contain "<!ENTITY" in ASCII-compatible bytes, UTF-16LE or UTF-16BE.
    /// O(bytes).
    static func declaresEntities(_ data: Data) -> Bool {
        let ascii = Array("<!ENTITY".utf8)
        let needles = [ascii, ascii.flatMap { [$0, 0] }, ascii.flatMap { [0, $0] }]
        return data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            let b = raw.bindMemory(to: UInt8.self)
            return needles.contains { needle in
                guard b.count >= needle.count else { return false }
                let first = needle[0]
                for i in 0...(b.count - needle.count) where b[i] == first {
                    var j = 1
                    while j < needle.count && b[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return true }
                }
                return false
            }
        }
    }

    /// The encoding named in the XML declaration (in ASCII-compatible bytes or UTF-16 of
    /// either byte order), nil when there is none. Reads at most the first 256 bytes.
    static func declaredEncoding(_ data: Data) -> String? {
        var head = [UInt8](data.prefix(256))
        if head.starts(with: [0xEF, 0xBB, 0xBF]) { head.removeFirst(3) }
        if head.count >= 2, head[0] == 0 || head[1] == 0 || head.starts(with: [0xFF, 0xFE]) || head.starts(with: [0xFE, 0xFF]) {
            // UTF-16: keep the low bytes of its code units.
            let bigEndian = head.starts(with: [0xFE, 0xFF]) || head[0] == 0
            let units = stride(from: 0, to: head.count - 1, by: 2).map { bigEndian ? head[$0 + 1] : head[$0] }
            head = Array(units.drop { $0 == 0xFF || $0 == 0xFE })
        }
        let text = String(decoding: head, as: UTF8.self)
        guard text.hasPrefix("<?xml"), let end = text.range(of: "?>") else { return nil }
        let declaration = text[..<end.lowerBound]
        guard let key = declaration.range(of: "encoding") else { return nil }
        var rest = declaration[key.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        rest = rest.dropFirst()
        return String(rest.prefix { $0 != quote })
    }

    static func allowedEncoding(_ name: String) -> Bool {
        let n = name.lowercased()
        return ["utf-8", "utf8", "utf-16", "utf-16le", "utf-16be", "ucs-2", "us-ascii", "ascii", "latin1"].contains(n)
            || n.hasPrefix("iso-8859-") || n.hasPrefix("windows-125") || n.hasPrefix("cp125")
    }

    static func describe(_ error: Error?) -> String {
        guard let error else { return "not well-formed XML" }
        let code = (error as NSError).code
        let known: [Int: String] = [
            4: "empty document", 5: "unexpected end of the document", 9: "invalid character",
            23: "'>' expected", 26: "undeclared entity", 27: "undeclared entity", 38: "unfinished attribute value",
            39: "'<' in an attribute value", 41: "attribute without a value", 64: "bad XML declaration",
            68: "name expected", 73: "'>' expected", 76: "mismatched end tag", 77: "tag not closed", 85: "unfinished tag",
            89: "entity reference loop", 111: "unfinished document",
        ]
        return known[code].map { "\($0) (XML error \(code))" } ?? "not well-formed XML (error \(code))"
    }

    private final class Delegate: NSObject, XMLParserDelegate {
        let handler: XMLHandler
        var error: String?

        init(handler: XMLHandler) { self.handler = handler }

        static func local(_ name: String) -> String {
            guard let colon = name.lastIndex(of: ":") else { return name }
            return String(name[name.index(after: colon)...])
        }

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            guard error == nil else { return }
            var attributes: [String: String] = [:]
            for (k, v) in attributeDict { attributes[Self.local(k)] = v }
            handler.start(XMLName(namespace: namespaceURI ?? "", local: Self.local(elementName)), attributes)
            if handler.finished { parser.abortParsing() }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            guard error == nil else { return }
            handler.end(XMLName(namespace: namespaceURI ?? "", local: Self.local(elementName)))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard error == nil else { return }
            handler.text(string)
        }

        func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
            guard error == nil else { return }
            handler.text(String(decoding: CDATABlock, as: UTF8.self))
        }

        func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? { nil }

        func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
            guard error == nil, !handler.finished else { return }
            error = "line \(parser.lineNumber): " + XMLPart.describe(parseError)
            parser.abortParsing()
        }

        func parser(_ parser: XMLParser, validationErrorOccurred validationError: Error) {}
    }
}
