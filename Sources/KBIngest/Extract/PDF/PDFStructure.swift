import Foundation
import KBCore

/// Turns a PDF's layout (pages, blocks, lines with font sizes) and outline into sections, as
/// the markdown and HTML parsers do for their headings.
///
/// - **Running headers and footers**: in the top or bottom 12 % of its page, the line nearest
///   the edge is dropped when it is a page number (one number: "12", "- 12 -", "xii", or
///   "Page 3 of 9", "3 / 9"; a row of numbers is table data), and any line whose text, digits
///   aside, has a letter and is in that band on at least 40 % of the pages (and 3 of them).
///   A running head that changes every chapter stays.
/// - **Tables of contents**: leader lines whose number is a page of the document are dropped,
///   and a page made mostly of contents entries with all its lines (see `flatten`); a
///   document that would be left with nothing keeps them, with a warning.
/// - **Title**: the Info title, else page 1's line in the largest font (see `displayTitle`),
///   else the file name.
/// - **Long paragraphs** end at their next line once past `maxParagraphBytes`.
/// - **Headings**: from the outline when the PDF has one: each bookmark's title is looked for
///   on its target page (ignoring case, punctuation and a leading section number); found, its
///   line(s) become the heading, else the section starts at the top of that page. Without an
///   outline, from font size: a line at least 15 % larger than the body text (the size most
///   characters have), short (≤ 20 words), with a letter, not ending like a sentence or a
///   clause (. , ; :). Each larger size is one level higher; consecutive heading lines of one
///   size in one block are one heading. Font weight is not known (pdftotext does not say).
/// - **Paragraphs**: poppler's blocks are paragraphs; their lines are joined with spaces (none
///   between two CJK characters). A block that ends without a sentence end and a next block
///   (on the same page, the next column or the next page) that starts with a lower-case letter
///   are one paragraph, which then spans both pages. A block holding only a list bullet
///   ("•") is joined to the block after it.
/// - **Hyphenation**: a line ending in a letter and "-" followed by a line starting with a
///   lower-case letter is joined without the hyphen ("retrie-" "val" → "retrieval"), unless
///   the hyphenated word is written elsewhere in the document and the joined one is not
///   ("well-" "known" stays "well-known" when "well-known" appears in the text). A soft hyphen
///   is always removed. Before a capital or a digit ("Anglo-" "Saxon", "3-" "5") the hyphen
///   stays and no space is put in.
/// - **Locations**: every paragraph is one text line whose `SourceLine` gives its first and
///   last page; byte ranges are offsets in the concatenation of the paragraphs and headings
///   as extracted, each followed by "\n\n".
enum PDFStructure {
    struct Result {
        var document: ParsedDocument
        var warnings: [String]
    }

    /// One line of text in reading order.
    struct FlatLine {
        var page: Int
        /// Index of its block over the whole document.
        var block: Int
        var text: String
        var size: Double
    }

    /// A heading placed before `lines[at]` (`at == lines.count`: at the end).
    struct Anchor {
        var at: Int
        var level: Int
        var title: String
        var page: Int
    }

    static let band = 0.12

    /// A paragraph longer than this (in UTF-8 bytes) is ended at its next line: a document
    /// that never ends a paragraph still gives chunks of its pages, and the text cut
    /// (`maxTextBytes`) sees it grow.
    static let maxParagraphBytes = 8 << 10

    /// Builds the document. O(lines + outline items × (log items + lines of their pages)).
    static func build(layout: PDFLayout, outline: PDFOutline?, fileName: String, maxTextBytes: Int) -> Result {
        var warnings: [String] = []
        var lines = flatten(layout.pages, dropping: runningLines(layout.pages), outline: outline)
        if lines.isEmpty {
            // Every line looked like a table of contents: keeping them beats an empty document.
            let all = flatten(layout.pages, dropping: runningLines(layout.pages), outline: outline, contents: false)
            if !all.isEmpty {
                lines = all
                warnings.append("every page looks like a table of contents; its text is kept")
            }
        }
        let vocabulary = Self.vocabulary(lines)

        var anchors: [Anchor] = []
        var consumed = Set<Int>()
        if let outline, outline.items.contains(where: { ($0.page ?? 0) >= 1 && $0.page! <= layout.pages.count }) {
            (anchors, consumed) = outlineAnchors(outline, lines: lines)
        } else {
            (anchors, consumed) = fontAnchors(lines)
        }

        var collector = SectionCollector()
        var stack: [(level: Int, title: String)] = []
        var offset = 0
        var paragraph: (texts: [String], first: Int, last: Int, block: Int, bytes: Int)?
        var cutAtPage: Int?

        func flush() {
            guard let p = paragraph else { return }
            paragraph = nil
            let text = join(p.texts, vocabulary: vocabulary)
            let bytes = text.utf8.count
            let source = SourceLine(line: p.first, lastLine: p.last, byteStart: offset, byteEnd: offset + bytes, verbatim: false)
            collector.add(text, source)
            collector.add("", source)
            offset += bytes + 2
        }

        var a = 0
        for i in 0...lines.count {
            while a < anchors.count && anchors[a].at <= i {
                let h = anchors[a]
                a += 1
                flush()
                while let last = stack.last, last.level >= h.level { stack.removeLast() }
                stack.append((h.level, h.title))
                let bytes = h.title.utf8.count
                collector.start(stack.map(\.title), heading: SourceLine(line: h.page, lastLine: h.page, byteStart: offset, byteEnd: offset + bytes, verbatim: false))
                offset += bytes + 2
            }
            guard i < lines.count else { break }
            if consumed.contains(i) { continue }
            let l = lines[i]
            if offset + (paragraph?.bytes ?? 0) > maxTextBytes { cutAtPage = l.page; break }
            if let p = paragraph, p.bytes >= maxParagraphBytes || (p.block != l.block && !continues(p.texts.last ?? "", l.text)) { flush() }
            if paragraph == nil { paragraph = ([], l.page, l.page, l.block, 0) }
            paragraph!.texts.append(l.text)
            paragraph!.bytes += l.text.utf8.count + 1
            paragraph!.last = l.page
            paragraph!.block = l.block
        }
        flush()
        collector.flush()

        if let cutAtPage {
            warnings.append("text cut at page \(cutAtPage) of \(layout.pages.count): more than \(byteSize(maxTextBytes)) of text")
        }
        let empty = layout.pages.filter { $0.blocks.isEmpty }
        if empty.count >= 2 && empty.count * 4 >= layout.pages.count {
            warnings.append("\(empty.count) of \(layout.pages.count) pages have no text layer (first: page \(empty[0].number))")
        }
        let title = !layout.title.isEmpty ? layout.title : (displayTitle(layout.pages.first) ?? fileName)
        return Result(document: ParsedDocument(title: title, sections: collector.sections, unit: .pages), warnings: warnings)
    }

    /// The title of a PDF without an Info title: page 1's line in the largest font, when that
    /// font is larger than the page's body text and the line is short (≤ 20 words, with a
    /// letter); nil otherwise.
    static func displayTitle(_ page: PDFLayout.Page?) -> String? {
        guard let page else { return nil }
        let lines = page.blocks.flatMap(\.lines).filter { $0.words.count <= 20 && $0.text.contains(where: \.isLetter) }
        var weight: [Double: Int] = [:]
        for l in page.blocks.flatMap(\.lines) { weight[(l.size * 2).rounded() / 2, default: 0] += l.text.count }
        let body = weight.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key ?? 0
        guard let top = lines.max(by: { $0.size < $1.size }), top.size >= body * 1.15 else { return nil }
        return top.text
    }

    // MARK: Running headers and footers

    /// Per page, the indices (block, line) of lines that are running headers, footers or
    /// page numbers.
    static func runningLines(_ pages: [PDFLayout.Page]) -> [Set<[Int]>] {
        func inBand(_ l: PDFLayout.Line, _ p: PDFLayout.Page) -> Bool {
            guard p.height > 0 else { return false }
            let center = (l.yMin + l.yMax) / 2
            return center < p.height * band || center > p.height * (1 - band)
        }
        var pagesWith: [String: Int] = [:]
        for p in pages {
            var keys = Set<String>()
            for b in p.blocks { for l in b.lines where inBand(l, p) { keys.insert(key(l.text)) } }
            for k in keys { pagesWith[k, default: 0] += 1 }
        }
        let repeated = max(3, Int((Double(pages.count) * 0.4).rounded(.up)))
        return pages.map { p in
            var drop = Set<[Int]>()
            // The page number: the candidate nearest the top edge, and the one nearest the bottom.
            var top: (at: [Int], y: Double)?, bottom: (at: [Int], y: Double)?
            for (bi, b) in p.blocks.enumerated() {
                for (li, l) in b.lines.enumerated() where inBand(l, p) {
                    let k = key(l.text)
                    // A running head has words; a row of numbers that recurs is data.
                    if pages.count >= 3 && pagesWith[k, default: 0] >= repeated && k.contains(where: \.isLetter) && !isPageNumber(k) { drop.insert([bi, li]) }
                    else if isPageNumber(k) {
                        let center = (l.yMin + l.yMax) / 2
                        if center < p.height / 2 { if top == nil || center < top!.y { top = ([bi, li], center) } }
                        else if bottom == nil || center > bottom!.y { bottom = ([bi, li], center) }
                    }
                }
            }
            if let top { drop.insert(top.at) }
            if let bottom { drop.insert(bottom.at) }
            return drop
        }
    }

    /// The text lower-cased, whitespace collapsed, each run of digits (and a lone roman
    /// numeral) as "#".
    static func key(_ text: String) -> String {
        let words = text.lowercased().split(whereSeparator: \.isWhitespace)
        if words.count == 1, isRoman(words[0]) { return "#" }
        var out = ""
        var inDigits = false
        for ch in words.joined(separator: " ") {
            if ch.isNumber { if !inDigits { out.append("#") }; inDigits = true } else { out.append(ch); inDigits = false }
        }
        return out
    }

    /// A valid roman numeral up to 399 written with i, v, x, l, c ("xiv", not "civil" or "ill").
    static func isRoman<S: StringProtocol>(_ w: S) -> Bool {
        romanValue(w) != nil
    }

    /// The value of a lower-case roman numeral up to 399; nil when `w` is not one.
    static func romanValue<S: StringProtocol>(_ w: S) -> Int? {
        let chars = Array(w)
        guard !chars.isEmpty, chars.count <= 9 else { return nil }
        let digits: [Character: Int] = ["i": 1, "v": 5, "x": 10, "l": 50, "c": 100]
        var value = 0
        for (k, c) in chars.enumerated() {
            guard let d = digits[c] else { return nil }
            if k + 1 < chars.count, let next = digits[chars[k + 1]], next > d { value -= d } else { value += d }
        }
        // Valid exactly when writing the value back gives the same letters.
        var n = value, canonical = ""
        guard n > 0, n < 400 else { return nil }
        for (v, r) in [(100, "c"), (90, "xc"), (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")] {
            while n >= v { canonical += r; n -= v }
        }
        return canonical == String(chars) ? value : nil
    }

    /// One number: "#", "- # -", "page #", "p. #", "[#]"; or two: "page # of #", "# / #".
    /// Not a row of numbers ("#.# #.# #.#").
    static func isPageNumber(_ key: String) -> Bool {
        let numbers = key.filter { $0 == "#" }.count
        guard numbers == 1 || (numbers == 2 && (key.contains(" of ") || key.contains("/"))) else { return false }
        var rest = " " + key + " "
        for word in ["page", "pages", "of", "p.", "pp.", "pg."] { rest = rest.replacingOccurrences(of: " \(word) ", with: " ") }
        rest = rest.replacingOccurrences(of: " p", with: " ")  // "p#"
        return rest.allSatisfy { "#-–—/()[]|.:, ".contains($0) }
    }

    // MARK: Lines

    /// The lines to keep, in reading order, without running lines (`dropping`) and tables of
    /// contents (when `contents`). A table of contents repeats every heading with another page
    /// number, so its hits would cite the wrong page.
    ///
    /// Entries of a page: leader lines ("Structures . . . . 111") whose number is a page of
    /// this document, the numbers not decreasing down the page; leader lines without a number
    /// (gnuplot.pdf puts the number in a block of its own); lines that are a bookmark's title
    /// pointing to another page, when the page has a leader line or half as many lines that
    /// are only a page number; those lines, when the page has a leader line or two such
    /// titles. A page
    /// is dropped whole when at least 40 % of its lines are entries and there are at least 8
    /// (3 before the first bookmark's target); elsewhere only numbered leader entries are.
    /// A price list ("Espresso . . . . 2" on a one-page menu) stays. O(lines).
    static func flatten(_ pages: [PDFLayout.Page], dropping: [Set<[Int]>], outline: PDFOutline? = nil, contents: Bool = true) -> [FlatLine] {
        var titles: [String: Set<Int>] = [:]
        var firstTarget = Int.max
        for item in outline?.items ?? [] {
            guard let page = item.page else { continue }
            firstTarget = min(firstTarget, page)
            for t in [normalized(item.title), core(item.title)] where !t.isEmpty { titles[t, default: []].insert(page) }
        }
        var out: [FlatLine] = []
        var blockID = 0
        for (pi, p) in pages.enumerated() {
            var entry = Set<[Int]>()   // numbered leader entries: dropped anywhere
            var entries = 0, count = 0, hasLeader = false
            var last = 0, lastRoman = 0
            var numberOnly = 0, titled = 0
            for (bi, b) in p.blocks.enumerated() {
                for (li, l) in b.lines.enumerated() where !dropping[pi].contains([bi, li]) {
                    count += 1
                    guard contents else { continue }
                    let text = l.text
                    switch leader(text) {
                    case .some(.some(let n)):
                        hasLeader = true
                        if let v = Int(n), v >= 1, v <= pages.count, v >= last { last = v; entry.insert([bi, li]); entries += 1 }
                        else if let v = romanValue(n.lowercased()), v <= pages.count, v >= lastRoman { lastRoman = v; entry.insert([bi, li]); entries += 1 }
                    case .some(.none):
                        hasLeader = true
                        entries += 1
                    case .none:
                        if let targets = titles[normalized(text)] ?? titles[core(text)], !targets.contains(p.number) { titled += 1 }
                        else if let v = Int(text.trimmingCharacters(in: .whitespaces)), v >= 1, v <= pages.count { numberOnly += 1 }
                    }
                }
            }
            // Titles count with their page numbers (or leaders) beside them: a body page listing
            // plot styles that are bookmarks elsewhere ("lines", "dots", …) is no contents page.
            if hasLeader || numberOnly * 2 >= titled { entries += titled }
            if hasLeader || titled >= 2 { entries += numberOnly }
            let many = outline != nil && p.number < firstTarget ? 3 : 8
            if contents && entries >= many && entries * 5 >= count * 2 { blockID += p.blocks.count; continue }
            for (bi, b) in p.blocks.enumerated() {
                for (li, l) in b.lines.enumerated() where !dropping[pi].contains([bi, li]) && !entry.contains([bi, li]) {
                    out.append(FlatLine(page: p.number, block: blockID, text: l.text, size: l.size))
                }
                blockID += 1
            }
        }
        return out
    }

    /// A line with leader dots: four or more dots (spaced or not, or "…") at its end, or
    /// before a final number (arabic or roman): `.some(number)` / `.some(nil)`; nil when the
    /// line has no leader.
    static func leader(_ text: String) -> String?? {
        var t = Substring(text.trimmingCharacters(in: .whitespaces))
        let numberLength = t.reversed().prefix { $0.isNumber || "ivxlcIVXLC".contains($0) }.count
        let number = t.suffix(numberLength)
        t = t.dropLast(numberLength)
        var dots = 0
        while let c = t.last, c == "." || c == " " || c == "\u{2026}" {
            if c == "." { dots += 1 } else if c == "\u{2026}" { dots += 3 }
            t.removeLast()
        }
        guard dots >= 4 else { return nil }
        // A roman "number" glued to a word ("Index......xi" is fine, "Basic" is not) needs the dots.
        return .some(numberLength > 0 ? String(number) : nil)
    }

    /// A table-of-contents entry: text, four or more leader dots, a page number at the end.
    static func isLeaderLine(_ text: String) -> Bool {
        if case .some(.some) = leader(text) { return true }
        return false
    }

    /// Lower-cased words of the document, punctuation around them stripped.
    static func vocabulary(_ lines: [FlatLine]) -> Set<String> {
        var words = Set<String>()
        for l in lines {
            for w in l.text.split(separator: " ") { words.insert(bare(w)) }
        }
        return words
    }

    private static func bare<S: StringProtocol>(_ w: S) -> String {
        String(w.lowercased().trimmingCharacters(in: CharacterSet.punctuationCharacters.union(.symbols)))
    }

    /// Whether a paragraph whose last line is `previous` goes on with `next` (from the next
    /// block): no sentence end before, a lower-case letter after.
    static func continues(_ previous: String, _ next: String) -> Bool {
        guard let last = previous.last, let first = next.first else { return false }
        // A list bullet that poppler put in a block of its own belongs to the item after it.
        if bullets.contains(previous.trimmingCharacters(in: .whitespaces)) { return true }
        if ".!?:;".contains(last) || last == "\u{3002}" { return false }
        return first.isLowercase
    }

    static let bullets: Set<String> = ["•", "◦", "▪", "▫", "‣", "∙", "·", "–", "—", "-", "*", "○", "●", "■", "□", "➢", "✓"]

    static let hyphens: Set<Character> = ["-", "\u{2010}", "\u{00AD}"]

    /// The lines of one paragraph as one line: see the type's notes on hyphenation.
    /// O(total length): a word is looked at only where a line ends with a hyphen.
    static func join(_ texts: [String], vocabulary: Set<String>) -> String {
        var out = texts.first ?? ""
        for next in texts.dropFirst() {
            guard let last = out.last, let first = next.first else { out += next; continue }
            // O(1) per line: indices from the end, never `count` (O(n) on a String).
            let end = out.index(before: out.endIndex)
            let beforeHyphen: Character? = end > out.startIndex ? out[out.index(before: end)] : nil
            if hyphens.contains(last), let c = beforeHyphen, c.isLetter, first.isLowercase {
                if last == "\u{00AD}" { out.removeLast(); out += next; continue }
                let body = out[..<end]
                let prefix = String(body.lastIndex(of: " ").map { body[body.index(after: $0)...] } ?? body)
                let suffix = String(next.prefix { $0 != " " })
                let hyphenated = bare(prefix + "-" + suffix), joined = bare(prefix + suffix)
                if vocabulary.contains(hyphenated) && !vocabulary.contains(joined) { out += next } else { out.removeLast(); out += next }
            } else if hyphens.contains(last), let c = beforeHyphen, c.isLetter || c.isNumber, first.isLetter || first.isNumber {
                // "Anglo-" "Saxon", "3-" "5": a compound or a range, not a hyphenation.
                if last == "\u{00AD}" { out.removeLast() }
                out += next
            } else if isCJK(last) && isCJK(first) {
                out += next
            } else {
                out += " " + next
            }
        }
        return out
    }

    private static func isCJK(_ c: Character) -> Bool {
        guard let v = c.unicodeScalars.first?.value else { return false }
        return (0x3000...0x30FF).contains(v) || (0x3400...0x9FFF).contains(v) || (0xAC00...0xD7AF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0xFF00...0xFFEF).contains(v) || (0x20000...0x2FA1F).contains(v)
    }

    // MARK: Headings

    /// Letters and digits only, lower-cased.
    static func normalized<S: StringProtocol>(_ s: S) -> String {
        String(s.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.map(Character.init))
    }

    /// `normalized` without a leading section number ("2.1", "IV.", "Chapter 3", "A.2").
    static func core(_ s: String) -> String {
        var words = s.split(whereSeparator: \.isWhitespace)
        if let w = words.first, ["chapter", "part", "section", "appendix"].contains(w.lowercased()), words.count > 2 { words.removeFirst() }
        if let w = words.first, words.count > 1,
           w.allSatisfy({ $0.isNumber || $0 == "." }) || (w.count <= 5 && w.lowercased().allSatisfy { "ivxlc.".contains($0) })
            || (w.count <= 4 && w.first!.isUppercase && w.dropFirst().allSatisfy { $0.isNumber || $0 == "." } && w.contains(".")) {
            words.removeFirst()
        }
        return normalized(words.joined(separator: " "))
    }

    /// Headings from the outline: each item found on its page (up to three lines of one
    /// block), else at the top of its page; never before the previous heading.
    static func outlineAnchors(_ outline: PDFOutline, lines: [FlatLine]) -> ([Anchor], Set<Int>) {
        // The first line of each page (pages without lines start where the next one does).
        var pageStart: [Int: Int] = [:]
        for (i, l) in lines.enumerated().reversed() { pageStart[l.page] = i }
        func start(of page: Int) -> Int {
            var p = page
            while p <= (lines.last?.page ?? 0) { if let s = pageStart[p] { return s }; p += 1 }
            return lines.count
        }
        var anchors: [Anchor] = []
        var consumed = Set<Int>()
        var cursor = 0
        // Each line's normalized text and core, computed once (a heading over several lines
        // is their concatenation: normalizing drops the spaces between them).
        var norms: [Int: (String, String)] = [:]
        func norm(_ k: Int) -> (String, String) {
            if let n = norms[k] { return n }
            let n = (normalized(lines[k].text), core(lines[k].text))
            norms[k] = n
            return n
        }
        // In page order (stable, levels kept): one bookmark out of order must not hold the
        // cursor past the headings after it.
        let items = outline.items.enumerated().filter { $0.element.page != nil }
            .sorted { ($0.element.page!, $0.offset) < ($1.element.page!, $1.offset) }.map(\.element)
        for item in items {
            guard let page = item.page else { continue }
            let want = normalized(item.title), wantCore = core(item.title)
            var found: (at: Int, count: Int)?
            var i = max(cursor, start(of: page))
            search: while i < lines.count && lines[i].page == page {
                var have = "", haveCore = ""
                for m in 0..<3 {
                    let k = i + m
                    guard k < lines.count, lines[k].block == lines[i].block, !consumed.contains(k) else { break }
                    let (n, c) = norm(k)
                    have += n
                    haveCore += m == 0 ? c : n
                    if !have.isEmpty && (have == want || (!wantCore.isEmpty && haveCore == wantCore)) { found = (i, m + 1); break search }
                    if !want.hasPrefix(have) && !wantCore.hasPrefix(haveCore) { break }
                }
                i += 1
            }
            let at = found?.at ?? max(cursor, start(of: page))
            if let found { for k in found.at..<(found.at + found.count) { consumed.insert(k) }; cursor = found.at + found.count } else { cursor = at }
            anchors.append(Anchor(at: at, level: item.level, title: item.title, page: at < lines.count ? lines[at].page : page))
        }
        return (anchors, consumed)
    }

    /// The size most characters have, to the half point.
    static func bodySize(_ lines: [FlatLine]) -> Double {
        var weight: [Double: Int] = [:]
        for l in lines { weight[(l.size * 2).rounded() / 2, default: 0] += l.text.count }
        return weight.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key ?? 0
    }

    /// Headings from font size (see the type's notes).
    static func fontAnchors(_ lines: [FlatLine]) -> ([Anchor], Set<Int>) {
        let body = bodySize(lines)
        guard body > 0 else { return ([], []) }
        func isHeading(_ l: FlatLine) -> Bool {
            guard l.size >= body * 1.15, l.text.count <= 150, l.text.split(separator: " ").count <= 20,
                  l.text.contains(where: \.isLetter), let last = l.text.last, !".,;:".contains(last) else { return false }
            return true
        }
        var runs: [(at: Int, count: Int, size: Double)] = []
        var i = 0
        while i < lines.count {
            guard isHeading(lines[i]) else { i += 1; continue }
            var k = i + 1
            while k < lines.count, k - i < 3, lines[k].block == lines[i].block, isHeading(lines[k]), abs(lines[k].size - lines[i].size) < 0.5 { k += 1 }
            runs.append((i, k - i, lines[i].size))
            i = k
        }
        let sizes = Array(Set(runs.map { $0.size.rounded() })).sorted(by: >)
        var consumed = Set<Int>()
        let anchors = runs.map { r -> Anchor in
            for k in r.at..<(r.at + r.count) { consumed.insert(k) }
            let title = lines[r.at..<(r.at + r.count)].map(\.text).joined(separator: " ")
            return Anchor(at: r.at, level: min(6, (sizes.firstIndex(of: r.size.rounded()) ?? 0) + 1), title: title, page: lines[r.at].page)
        }
        return (anchors, consumed)
    }
}
