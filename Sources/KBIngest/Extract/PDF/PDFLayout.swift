import Foundation

/// What `pdftotext -bbox-layout` prints, read back: the Info title, then per page its
/// blocks (poppler's paragraphs, in its reading order: a column is read to its end before
/// the next one), their lines and the lines' words with their heights (≈ font size).
struct PDFLayout {
    struct Line {
        var words: [String]
        var yMin: Double
        var yMax: Double
        /// The median height of the line's words: the font size in points, roughly.
        var size: Double
        var text: String { words.joined(separator: " ") }
    }
    struct Block { var lines: [Line] }
    struct Page {
        /// 1-based.
        var number: Int
        var height: Double
        var blocks: [Block]
    }

    /// The Info dictionary's title as pdftotext prints it ("" when none).
    var title = ""
    /// The pages whose end tag was read, in order (a cut output keeps only whole pages).
    var pages: [Page] = []
    /// Whether the document's end tag was read (false when the output was cut).
    var complete = false

    /// Reads pdftotext's XHTML. Tolerant: unknown tags are skipped, a missing attribute is 0,
    /// a page cut short is dropped. O(bytes).
    static func parse(_ b: [UInt8]) -> PDFLayout {
        var layout = PDFLayout()
        var page: Page?
        var block: Block?
        var line: Line?
        var heights: [Double] = []
        var i = 0
        let n = b.count

        func endLine() {
            if var l = line, !l.words.isEmpty {
                heights.sort()
                l.size = heights[heights.count / 2]
                if block == nil { block = Block(lines: []) }
                block!.lines.append(l)
            }
            line = nil; heights = []
        }
        func endBlock() {
            endLine()
            if let bl = block, !bl.lines.isEmpty { page?.blocks.append(bl) }
            block = nil
        }

        while let (tag, after) = nextTag(b, from: i) {
            i = after
            switch tagName(tag) {
            case .word:
                var k = i
                while k < n && b[k] != UInt8(ascii: "<") { k += 1 }
                let text = visible(decodeEntities(b[i..<k]))
                i = k
                if line == nil { line = Line(words: [], yMin: 0, yMax: 0, size: 0) }
                if !text.isEmpty && !text.allSatisfy(\.isWhitespace) {
                    line!.words.append(text)
                    heights.append(attribute("yMax", in: tag) - attribute("yMin", in: tag))
                }
            case .line:
                endLine()
                line = Line(words: [], yMin: attribute("yMin", in: tag), yMax: attribute("yMax", in: tag), size: 0)
            case .endLine: endLine()
            case .block: endBlock(); block = Block(lines: [])
            case .endBlock, .endFlow, .flow: endBlock()
            case .page:
                page = Page(number: layout.pages.count + 1, height: attribute("height", in: tag), blocks: [])
            case .endPage:
                endBlock()
                if let p = page { layout.pages.append(p) }
                page = nil
            case .title:
                var k = i
                while k < n && b[k] != UInt8(ascii: "<") { k += 1 }
                layout.title = decodeEntities(b[i..<k]).trimmingCharacters(in: .whitespacesAndNewlines)
                i = k
            case .endDoc: layout.complete = true
            case .other: break
            }
        }
        return layout
    }

    /// The next tag at or after `from`: its bytes between "<" and ">" and the index after
    /// ">"; nil when there is none (or it is not closed). O(distance).
    static func nextTag(_ b: [UInt8], from: Int) -> (tag: ArraySlice<UInt8>, after: Int)? {
        var i = from
        let n = b.count
        while i < n && b[i] != UInt8(ascii: "<") { i += 1 }
        guard i < n else { return nil }
        var j = i + 1
        while j < n && b[j] != UInt8(ascii: ">") { j += 1 }
        guard j < n else { return nil }
        return (b[(i + 1)..<j], j + 1)
    }

    /// The tags this reader acts on.
    enum Tag { case word, line, endLine, block, endBlock, flow, endFlow, page, endPage, title, endDoc, other }
    private static let tags: [([UInt8], Tag)] = {
        let named: [(String, Tag)] = [
            ("word", .word), ("line", .line), ("/line", .endLine), ("block", .block), ("/block", .endBlock), ("flow", .flow),
            ("/flow", .endFlow), ("page", .page), ("/page", .endPage), ("title", .title), ("/doc", .endDoc),
        ]
        return named.map { (Array($0.0.utf8), $0.1) }
    }()

    private static func tagName(_ tag: ArraySlice<UInt8>) -> Tag {
        var end = tag.startIndex
        if end < tag.endIndex, tag[end] == UInt8(ascii: "/") { end += 1 }
        while end < tag.endIndex, tag[end] != 0x20, tag[end] != 0x09, tag[end] != 0x0A, tag[end] != 0x0D, tag[end] != UInt8(ascii: "/") { end += 1 }
        let name = tag[tag.startIndex..<end]
        for (bytes, t) in tags where bytes.count == name.count && name.elementsEqual(bytes) { return t }
        return .other
    }

    /// `text` without control characters, private-use characters (unmapped symbol-font
    /// glyphs such as list bullets come out as U+0088 or U+F0B7) and invisible format
    /// characters other than the soft hyphen (which marks a hyphenation point).
    static func visible(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value >= 0x7F }) else { return text }
        var scalars = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            switch u.properties.generalCategory {
            case .control, .privateUse, .surrogate, .unassigned: continue
            case .format where u.value != 0xAD: continue
            default: scalars.append(u)
            }
        }
        return String(scalars)
    }

    /// The number in `name="…"` inside `tag`, 0 when absent or not a number.
    static func attribute(_ name: String, in tag: ArraySlice<UInt8>) -> Double {
        let key = Array(name.utf8) + [UInt8(ascii: "="), UInt8(ascii: "\"")]
        var i = tag.startIndex
        while i + key.count <= tag.endIndex {
            if tag[i] == key[0], (i == tag.startIndex || tag[i - 1] == 0x20), tag[i..<(i + key.count)].elementsEqual(key) {
                var k = i + key.count
                var value = 0.0, scale = 0.0, negative = false
                if k < tag.endIndex, tag[k] == UInt8(ascii: "-") { negative = true; k += 1 }
                while k < tag.endIndex {
                    let c = tag[k]
                    if c >= 0x30 && c <= 0x39 {
                        if scale == 0 { value = value * 10 + Double(c - 0x30) } else { value += Double(c - 0x30) * scale; scale /= 10 }
                    } else if c == UInt8(ascii: "."), scale == 0 { scale = 0.1 } else { break }
                    k += 1
                }
                return negative ? -value : value
            }
            i += 1
        }
        return 0
    }

    /// XML text with its five named entities and numeric references decoded; anything else
    /// is kept as written. Invalid UTF-8 becomes U+FFFD.
    static func decodeEntities(_ s: ArraySlice<UInt8>) -> String {
        guard s.contains(UInt8(ascii: "&")) else { return String(decoding: s, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == UInt8(ascii: "&"), let semi = s[i..<min(s.endIndex, i + 12)].firstIndex(of: UInt8(ascii: ";")) {
                let name = String(decoding: s[(i + 1)..<semi], as: UTF8.self)
                var scalar: Unicode.Scalar?
                switch name {
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "amp": scalar = "&"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if name.hasPrefix("#x") || name.hasPrefix("#X") { scalar = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init) }
                    else if name.hasPrefix("#") { scalar = UInt32(name.dropFirst()).flatMap(Unicode.Scalar.init) }
                }
                if let scalar {
                    out += Array(String(Character(scalar)).utf8)
                    i = semi + 1
                    continue
                }
            }
            out.append(s[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The PDF's outline (bookmarks) as `pdftohtml -xml` prints it: titles with their depth and
/// target page, in document order.
struct PDFOutline {
    struct Item: Equatable {
        /// 1 for a top-level bookmark.
        var level: Int
        var title: String
        /// 1-based; nil when the bookmark points nowhere in this file.
        var page: Int?
    }
    var items: [Item] = []

    /// Reads the `<outline>` elements of pdftohtml's XML. O(bytes).
    static func parse(_ b: [UInt8]) -> PDFOutline {
        var outline = PDFOutline()
        var depth = 0
        var i = 0
        let n = b.count
        while let (tag, after) = PDFLayout.nextTag(b, from: i) {
            i = after
            if tag.starts(with: Array("outline".utf8)) { depth += 1 }
            else if tag.starts(with: Array("/outline".utf8)) { depth = max(0, depth - 1) }
            else if depth > 0, tag.starts(with: Array("item".utf8)) {
                var k = i
                while k < n && b[k] != UInt8(ascii: "<") { k += 1 }
                let title = PDFLayout.decodeEntities(b[i..<k]).split(whereSeparator: \.isWhitespace).joined(separator: " ")
                i = k
                // Any number a fake or broken tool prints (1e300, NaN) is a page or none, never a trap.
                let value = PDFLayout.attribute("page", in: tag)
                let page = value >= 1 && value <= Double(Int32.max) ? Int(exactly: value.rounded(.down)) : nil
                if !title.isEmpty { outline.items.append(Item(level: depth, title: title, page: page)) }
            }
        }
        return outline
    }
}
