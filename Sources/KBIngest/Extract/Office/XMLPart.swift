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

extension XMLHandler {
    var finished: Bool { false }
}

/// Parses one XML part of a container with FoundationXML (libxml2), safely:
///   - no external entity or DTD is ever loaded (`shouldResolveExternalEntities = false`,
///     and `resolveExternalEntityName` answers nothing);
///   - a part that declares entities (`<!ENTITY`, which no .docx/.odt/.epub part needs) is
///     refused before parsing, so an entity-expansion bomb ("billion laughs") costs one scan
///     of its bytes and no memory (libxml2 also stops entity loops, but this does not rely on
///     it);
///   - parsing stops at the first error; what came before it has been delivered.
enum XMLPart {
    /// The outcome of a pass: nil when the part was read to its end, else a one-line reason
    /// ("line 3: mismatched tag") with everything before the error already delivered.
    /// O(bytes). `refuseEntities: false` skips the entity check (for tests of what libxml2
    /// does on its own).
    static func parse(_ data: Data, handler: XMLHandler, refuseEntities: Bool = true) -> String? {
        if refuseEntities && declaresEntities(data) { return "declares XML entities (<!ENTITY), which are not expanded" }
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

    /// Whether the bytes contain "<!ENTITY" (anywhere: also in a comment, which costs
    /// nothing real since office writers never put it there). O(bytes).
    static func declaresEntities(_ data: Data) -> Bool {
        let needle = Array("<!ENTITY".utf8)
        return data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
            let b = raw.bindMemory(to: UInt8.self)
            guard b.count >= needle.count else { return false }
            var i = 0
            let last = b.count - needle.count
            while i <= last {
                if b[i] == 0x3C && b[i + 1] == 0x21 {
                    var j = 2
                    while j < needle.count && b[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return true }
                }
                i += 1
            }
            return false
        }
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
