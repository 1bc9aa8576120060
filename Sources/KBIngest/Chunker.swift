import Foundation
import KBCore

/// One piece of a document as stored in the index and embedded.
public struct Chunk: Sendable, Equatable {
    /// 0, 1, 2, … within the document, in document order.
    public var ordinal: Int
    /// The heading path of the section(s) the text came from (see `Section.headingPath`).
    public var headingPath: [String]
    /// The chunk's text as stored and shown: a contiguous stretch of its sections' text
    /// (sections merged into one chunk are joined by a blank line, as in the section text).
    public var text: String
    /// Source lines the text came from, 1-based inclusive (pages or paragraphs when `unit`
    /// says so). The heading line above a section is not part of its chunks' ranges (the
    /// heading lives on in `headingPath`).
    public var lineStart: Int
    public var lineEnd: Int
    /// What `lineStart`/`lineEnd` count: the document's `ParsedDocument.unit`.
    public var unit: LocationUnit = .lines
    /// Source bytes the text came from, end exclusive. Exact where the text is a verbatim
    /// copy of the source; where it is not (HTML, markdown links, invalid UTF-8) the range
    /// spans the whole source of each text line the chunk touches.
    public var byteStart: Int
    public var byteEnd: Int
    /// What gets embedded: `headingPath` joined with " › ", a newline, then `text`; only `text`
    /// when the path is empty. Fits `Chunker.maxTokens` as measured by its `countTokens`. A
    /// path that would take more than a quarter of that is shortened here (see `Chunker`),
    /// never `text`.
    public var embeddingText: String

    /// Memberwise.
    public init(ordinal: Int, headingPath: [String], text: String, lineStart: Int, lineEnd: Int,
                byteStart: Int, byteEnd: Int, embeddingText: String, unit: LocationUnit = .lines) {
        self.unit = unit
        self.ordinal = ordinal
        self.headingPath = headingPath
        self.text = text
        self.lineStart = lineStart
        self.lineEnd = lineEnd
        self.byteStart = byteStart
        self.byteEnd = byteEnd
        self.embeddingText = embeddingText
    }
}

/// Cuts parsed documents into chunks that fit the embedding model, following structure.
///
/// Policy:
/// - **Sections are the outer unit** (markdown/HTML heading sections, code declarations,
///   plain-text paragraphs). A chunk never holds text of two sections with different heading
///   paths. Adjacent sections with the *same* heading path (plain-text paragraphs, which all
///   have the empty path; overloads of one name in code; two same-named headings under one
///   parent) are packed together while they fit — this is the only merging, so small
///   sections elsewhere stay small chunks whose heading path says where they belong.
/// - **Inside a section** the text is cut into paragraphs (blank-line separated). A paragraph
///   over the budget is split at sentence ends, a sentence over it at line ends, a line at
///   whitespace, and a single word still over it (base64, minified code) by characters. The
///   resulting pieces are packed greedily, in order, up to the budget. Nothing is dropped or
///   truncated: every character of every section's text is in some chunk.
/// - **Budget**: `embeddingText` must count at most `maxTokens`; the text gets what the heading
///   prefix leaves (the prefix is shortened, keeping its innermost headings, when it would take
///   more than a quarter of `maxTokens`). The text is also capped at `maxTextBytes` so a run of
///   characters the tokenizer folds into one `[UNK]` cannot make a chunk of unbounded size.
/// - **Overlap**: where a chunk boundary falls inside a section, the next chunk starts with
///   up to `overlapTokens` worth of the previous chunk's trailing pieces, whole; only when the
///   last one alone is larger is it cut finer (its last sentences, else lines, else words).
///   At most half the text budget, never more than leaves room for the next piece, and never
///   across sections (nor between plain-text paragraphs, which are sections).
/// - **Token counting** is done per piece and summed: for a WordPiece tokenizer the count of
///   texts joined by whitespace is the sum of their counts. Each chunk's final `embeddingText`
///   is counted once more and the chunk shrunk if the sum was wrong (e.g. next to a word cut
///   by characters, or with another tokenizer).
/// - Deterministic: the same document and settings give the same chunks.
public struct Chunker: Sendable {
    /// The most tokens an `embeddingText` may count (for a BERT model: the maximum sequence
    /// length minus 2 for `[CLS]` and `[SEP]`).
    public let maxTokens: Int
    /// About how many tokens of the previous chunk the next one repeats inside a section.
    public let overlapTokens: Int
    /// The most UTF-8 bytes a chunk's `text` may have (defaults to 16 bytes a token, at least
    /// 256; ordinary text and code use 3 to 8).
    public var maxTextBytes: Int
    private let countTokens: @Sendable (String) -> Int

    /// - Parameters:
    ///   - maxTokens: limit on `countTokens(embeddingText)`; must be at least 8.
    ///   - overlapTokens: target overlap between neighbouring chunks of one section; must be
    ///     ≥ 0 (at most half of the text budget is used).
    ///   - countTokens: the tokenizer's count of content tokens, without special tokens. It is
    ///     assumed that one character counts at most `maxTokens / 2` tokens (true of any real
    ///     tokenizer); a character over that is still emitted, alone in its chunk.
    public init(maxTokens: Int, overlapTokens: Int, countTokens: @escaping @Sendable (String) -> Int) {
        precondition(maxTokens >= 8, "Chunker needs maxTokens >= 8, got \(maxTokens)")
        precondition(overlapTokens >= 0, "Chunker needs overlapTokens >= 0, got \(overlapTokens)")
        self.maxTokens = maxTokens
        self.overlapTokens = overlapTokens
        self.maxTextBytes = max(256, maxTokens * 16)
        self.countTokens = countTokens
    }

    /// The chunks of `doc`, ordinals from 0, in document order.
    ///
    /// - Complexity: O(n) calls' worth of `countTokens` work in the text length n (each piece
    ///   is counted once at each splitting level it reaches, plus each chunk once more; a word
    ///   cut by characters a few times more), and O(w log w) steps for a word of length w that
    ///   has to be cut by characters.
    public func chunks(of doc: ParsedDocument) -> [Chunk] {
        chunksWithSpans(of: doc).map(\.chunk)
    }

    /// Where a chunk's text lies: the run of sections it belongs to (index of the run's first
    /// section; a run is a maximal stretch of sections with one heading path) and its UTF-8
    /// offsets in the run's text, which is the sections' texts joined by "\n\n".
    struct Span: Equatable {
        var firstSection: Int
        var range: Range<Int>
    }

    /// `chunks(of:)` with the span of each chunk, so tests can check that the texts tile the
    /// sections exactly (no gap, overlap only inside a section) without searching for them.
    func chunksWithSpans(of doc: ParsedDocument) -> [(chunk: Chunk, span: Span)] {
        var out: [(chunk: Chunk, span: Span)] = []
        let sections = doc.sections
        var i = 0
        while i < sections.count {
            var j = i + 1
            while j < sections.count && sections[j].headingPath == sections[i].headingPath { j += 1 }
            chunkGroup(sections[i..<j], into: &out)
            i = j
        }
        if doc.unit != .lines {
            for k in out.indices { out[k].chunk.unit = doc.unit }
        }
        return out
    }

    // MARK: - A run of sections with one heading path

    /// The sections' text laid end to end (joined by a blank line) with each line's source.
    private struct Stream {
        var bytes: [UInt8] = []
        var lineStarts: [Int] = []
        var lineEnds: [Int] = []
        var sources: [SourceLine] = []
        /// Index (within the run) of the section each line belongs to.
        var lineSection: [Int] = []

        mutating func addLine<C: Collection>(_ text: C, source: SourceLine, section: Int) where C.Element == UInt8 {
            if !lineStarts.isEmpty { bytes.append(0x0A) }
            lineStarts.append(bytes.count)
            bytes.append(contentsOf: text)
            lineEnds.append(bytes.count)
            sources.append(source)
            lineSection.append(section)
        }

        /// The line holding byte `offset` (offsets on a separator belong to the line before).
        func line(at offset: Int) -> Int {
            var lo = 0, hi = lineStarts.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }

        func isBlank(_ line: Int) -> Bool {
            bytes[lineStarts[line]..<lineEnds[line]].allSatisfy(Chunker.isSpace)
        }
    }

    /// A stretch of the stream with its token count, the unit of packing.
    private struct Piece {
        var start: Int
        var end: Int
        var tokens: Int
        var section: Int
    }

    private enum Level: Int { case sentence, line, word, character }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C }

    private func chunkGroup(_ sections: ArraySlice<Section>, into out: inout [(chunk: Chunk, span: Span)]) {
        guard let first = sections.first else { return }
        var stream = Stream()
        for (k, section) in sections.enumerated() {
            let lines = Array(section.text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
            let sources = Chunker.sourceLines(of: section, lineLengths: lines.map(\.count))
            if k > 0, let prev = stream.sources.last {
                // The blank line that joins two sections sits where the previous one ended.
                var gap = prev
                gap.line = gap.lastLine; gap.byteStart = gap.byteEnd; gap.verbatim = true
                stream.addLine(EmptyCollection<UInt8>(), source: gap, section: k - 1)
            }
            for (line, source) in zip(lines, sources) { stream.addLine(line, source: source, section: k) }
        }
        let path = first.headingPath
        let prefix = headingPrefix(path)
        let prefixTokens = prefix.isEmpty ? 0 : countTokens(prefix)
        let budget = max(1, maxTokens - prefixTokens)
        let byteBudget = maxTextBytes
        let overlapBudget = min(overlapTokens, budget / 2)

        // Paragraphs, split further where too big.
        var pieces: [Piece] = []
        var line = 0
        let lineCount = stream.lineStarts.count
        while line < lineCount {
            if stream.isBlank(line) { line += 1; continue }
            var last = line
            while last + 1 < lineCount && !stream.isBlank(last + 1) && stream.lineSection[last + 1] == stream.lineSection[line] { last += 1 }
            let range = stream.lineStarts[line]..<Chunker.trimEnd(stream.bytes, stream.lineStarts[line], stream.lineEnds[last])
            split(range, from: .sentence, known: nil, section: stream.lineSection[line], stream: stream,
                  budget: budget, byteBudget: byteBudget, into: &pieces)
            line = last + 1
        }

        // Greedy packing, with overlap inside a section and a final count of each chunk.
        var i = 0
        var previous: (first: Int, last: Int)?
        while i < pieces.count {
            var start = pieces[i].start
            var tokens = pieces[i].tokens
            if let prev = previous, pieces[prev.last].section == pieces[i].section {
                let room = min(overlapBudget, budget - pieces[i].tokens)
                if room > 0, let tail = overlapStart(pieces: pieces, from: prev.first, through: prev.last, room: room, stream: stream),
                   pieces[i].end - tail.start <= byteBudget {
                    start = tail.start
                    tokens += tail.tokens
                }
            }
            var j = i + 1
            while j < pieces.count, tokens + pieces[j].tokens <= budget, pieces[j].end - start <= byteBudget {
                tokens += pieces[j].tokens
                j += 1
            }
            // Check the real count; shrink (drop trailing pieces, then the overlap, then cut the
            // lone piece in two) until it fits.
            var text = String(decoding: stream.bytes[start..<pieces[j - 1].end], as: UTF8.self)
            var embedding = prefix.isEmpty ? text : prefix + "\n" + text
            while countTokens(embedding) > maxTokens {
                if j - 1 > i {
                    j -= 1
                } else if start != pieces[i].start {
                    start = pieces[i].start
                } else if let halves = halve(pieces[i], stream: stream) {
                    pieces.replaceSubrange(i...i, with: halves)
                    j = i + 1
                } else {
                    break  // one character over the limit on its own: kept (see the precondition)
                }
                text = String(decoding: stream.bytes[start..<pieces[j - 1].end], as: UTF8.self)
                embedding = prefix.isEmpty ? text : prefix + "\n" + text
            }
            let end = pieces[j - 1].end
            let (lineStart, lineEnd, byteStart, byteEnd) = Chunker.sourceRange(start..<end, stream: stream)
            let chunk = Chunk(ordinal: out.count, headingPath: path, text: text, lineStart: lineStart, lineEnd: lineEnd,
                              byteStart: byteStart, byteEnd: byteEnd, embeddingText: embedding)
            out.append((chunk, Span(firstSection: sections.startIndex, range: start..<end)))
            previous = (i, j - 1)
            i = j
        }
    }

    /// "A › B › C", shortened to "… › " and its innermost headings (or the first words of
    /// the innermost one, then " …") when it would take more than a quarter of `maxTokens`;
    /// "" when not even one word fits.
    private func headingPrefix(_ path: [String]) -> String {
        let full = path.joined(separator: " › ")
        if full.isEmpty { return "" }
        let cap = maxTokens / 4
        if countTokens(full) <= cap { return full }
        // Keep the innermost components that fit after "… › ".
        let marker = "… › "
        let room = cap - countTokens(marker)
        var kept: [String] = []
        var used = 0
        for component in path.reversed() {
            let t = countTokens(component) + (kept.isEmpty ? 0 : countTokens("›"))
            if used + t > room { break }
            kept.insert(component, at: 0)
            used += t
        }
        if kept.isEmpty, let last = path.last {
            // Even the innermost heading is too long: its first words.
            var words: [Substring] = []
            for word in last.split(whereSeparator: \.isWhitespace) {
                let t = countTokens(String(word))
                if used + t > room { break }
                words.append(word)
                used += t
            }
            return words.isEmpty ? "" : marker + words.joined(separator: " ") + " …"
        }
        return marker + kept.joined(separator: " › ")
    }

    /// Each text line's source: the parser's record, or (for sections built with the public
    /// initializer, or if the record does not match the text) derived from the section.
    private static func sourceLines(of section: Section, lineLengths: [Int]) -> [SourceLine] {
        if let lines = section.sourceLines, lines.count == lineLengths.count { return lines }
        if section.sourceLines == nil {
            // Verbatim copy of the source from lineStart/byteStart.
            var out: [SourceLine] = []
            var byte = section.byteStart
            for (k, length) in lineLengths.enumerated() {
                out.append(SourceLine(line: section.lineStart + k, lastLine: section.lineStart + k,
                                      byteStart: byte, byteEnd: byte + length, verbatim: true))
                byte += length + 1
            }
            return out
        }
        let whole = SourceLine(line: section.lineStart, lastLine: section.lineEnd, byteStart: section.byteStart,
                               byteEnd: section.byteEnd, verbatim: false)
        return Array(repeating: whole, count: lineLengths.count)
    }

    /// Source lines and bytes of `range` of the stream.
    private static func sourceRange(_ range: Range<Int>, stream: Stream) -> (Int, Int, Int, Int) {
        let first = stream.line(at: range.lowerBound)
        let last = stream.line(at: max(range.lowerBound, range.upperBound - 1))
        var lineStart = Int.max, lineEnd = 0, byteStart = Int.max, byteEnd = 0
        for l in first...last {
            let s = stream.sources[l]
            lineStart = min(lineStart, s.line)
            lineEnd = max(lineEnd, s.lastLine)
            let from = l == first && s.verbatim ? s.byteStart + (range.lowerBound - stream.lineStarts[l]) : s.byteStart
            let to = l == last && s.verbatim ? s.byteStart + (range.upperBound - stream.lineStarts[l]) : s.byteEnd
            byteStart = min(byteStart, from)
            byteEnd = max(byteEnd, min(to, s.byteEnd))
        }
        return (lineStart, lineEnd, byteStart, byteEnd)
    }

    // MARK: - Splitting

    /// Appends `range` as one piece if it fits, else its parts at `level` (or finer levels
    /// when `level` does not divide it). `known` is the range's token count if already counted.
    private func split(_ range: Range<Int>, from level: Level, known: Int?, section: Int, stream: Stream,
                       budget: Int, byteBudget: Int, into pieces: inout [Piece]) {
        let tokens = known ?? countTokens(String(decoding: stream.bytes[range], as: UTF8.self))
        if tokens <= budget && range.count <= byteBudget {
            pieces.append(Piece(start: range.lowerBound, end: range.upperBound, tokens: tokens, section: section))
            return
        }
        var level = level
        while level != .character {
            let parts = Chunker.parts(of: range, at: level, in: stream.bytes)
            let next = Level(rawValue: level.rawValue + 1)!
            if parts.count > 1 {
                for part in parts {
                    split(part, from: next, known: nil, section: section, stream: stream,
                          budget: budget, byteBudget: byteBudget, into: &pieces)
                }
                return
            }
            level = next
        }
        splitCharacters(range, section: section, stream: stream, budget: budget, byteBudget: byteBudget, into: &pieces)
    }

    /// Cuts a whitespace-free run into the longest runs of whole characters that fit.
    ///
    /// Each piece's end is bracketed from a first guess as long as the previous piece (pieces
    /// of one word have similar lengths), widening by doubling steps of 1/32 of it, then
    /// bisected: a few counts of about a piece each (a binary search over the whole byte
    /// budget took about 30 pieces' worth of counting). The byte budget's end is found by a
    /// binary search over the character boundaries. O(w log w) for a word of length w.
    private func splitCharacters(_ range: Range<Int>, section: Int, stream: Stream, budget: Int, byteBudget: Int,
                                 into pieces: inout [Piece]) {
        // Byte offsets of character boundaries.
        let word = String(decoding: stream.bytes[range], as: UTF8.self)
        var bounds: [Int] = [range.lowerBound]
        var offset = range.lowerBound
        for ch in word { offset += ch.utf8.count; bounds.append(offset) }
        var from = 0
        let count = { (a: Int, b: Int) in self.countTokens(String(decoding: stream.bytes[bounds[a]..<bounds[b]], as: UTF8.self)) }
        var previous = bounds.count - 1  // characters in the last piece (first: as many as allowed)
        while from < bounds.count - 1 {
            // The most characters within the byte budget; one character always goes.
            var limit = from + 1, over = bounds.count - 1
            while limit < over {
                let mid = (limit + over + 1) / 2
                if bounds[mid] - bounds[from] <= byteBudget { limit = mid } else { over = mid - 1 }
            }
            // lo: the longest run known to fit (from: none counted yet); hi: the shortest known
            // not to fit (limit + 1: none).
            var lo = from, loTokens = 0, hi = limit + 1
            let guess = min(limit, from + max(1, previous))
            let t = count(from, guess)
            var step = max(1, (guess - from) / 32)
            if t <= budget {
                lo = guess; loTokens = t
                while lo < limit {
                    let next = min(limit, lo + step)
                    let tn = count(from, next)
                    if tn <= budget { lo = next; loTokens = tn; step *= 2 } else { hi = next; break }
                }
            } else {
                hi = guess
                while hi > from + 1 {
                    let next = max(from + 1, hi - step)
                    let tn = count(from, next)
                    if tn <= budget { lo = next; loTokens = tn; break }
                    hi = next
                    step *= 2
                }
                if lo == from { lo = from + 1; loTokens = count(from, lo) }  // one character over the budget: alone
            }
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                let tm = count(from, mid)
                if tm <= budget { lo = mid; loTokens = tm } else { hi = mid }
            }
            pieces.append(Piece(start: bounds[from], end: bounds[lo], tokens: loTokens, section: section))
            previous = lo - from
            from = lo
        }
    }

    /// A piece cut in two at its middle character (nil for a single character).
    private func halve(_ piece: Piece, stream: Stream) -> [Piece]? {
        let text = String(decoding: stream.bytes[piece.start..<piece.end], as: UTF8.self)
        let n = text.count
        guard n > 1 else { return nil }
        let cut = piece.start + text.prefix(n / 2).utf8.count
        let a = piece.start..<cut, b = cut..<piece.end
        func count(_ r: Range<Int>) -> Int { countTokens(String(decoding: stream.bytes[r], as: UTF8.self)) }
        return [Piece(start: a.lowerBound, end: a.upperBound, tokens: count(a), section: piece.section),
                Piece(start: b.lowerBound, end: b.upperBound, tokens: count(b), section: piece.section)]
    }

    /// The parts of `range` at `level`, each trimmed of surrounding whitespace (lines keep
    /// their indentation), empty parts left out.
    private static func parts(of range: Range<Int>, at level: Level, in bytes: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        func add(_ a: Int, _ b: Int, keepIndent: Bool) {
            var s = a
            if !keepIndent { while s < b && isSpace(bytes[s]) { s += 1 } }
            let e = trimEnd(bytes, s, b)
            if e > s && bytes[s..<e].contains(where: { !isSpace($0) }) { out.append(s..<e) }
        }
        switch level {
        case .sentence:
            var start = range.lowerBound
            var k = range.lowerBound
            while k < range.upperBound {
                if let end = sentenceEnd(bytes, k, range.upperBound) {
                    add(start, end, keepIndent: start == range.lowerBound)
                    start = end
                    k = end
                } else {
                    k += 1
                }
            }
            add(start, range.upperBound, keepIndent: start == range.lowerBound)
        case .line:
            var start = range.lowerBound
            for k in range where bytes[k] == 0x0A {
                add(start, k, keepIndent: true)
                start = k + 1
            }
            add(start, range.upperBound, keepIndent: true)
        case .word:
            var start = range.lowerBound
            for k in range where isSpace(bytes[k]) {
                add(start, k, keepIndent: false)
                start = k + 1
            }
            add(start, range.upperBound, keepIndent: false)
        case .character:
            out = [range]
        }
        return out
    }

    /// If a sentence ends at `k` (".", "!", "?" then closing quotes or brackets, then
    /// whitespace; or a full-width "。", "！", "？"), the offset just after it.
    private static func sentenceEnd(_ b: [UInt8], _ k: Int, _ end: Int) -> Int? {
        let c = b[k]
        var after: Int
        if c == 0x2E || c == 0x21 || c == 0x3F {
            after = k + 1
        } else if c == 0xE3 && k + 2 < end && b[k + 1] == 0x80 && b[k + 2] == 0x82 {
            return k + 3   // 。
        } else if c == 0xEF && k + 2 < end && b[k + 1] == 0xBC && (b[k + 2] == 0x81 || b[k + 2] == 0x9F) {
            return k + 3   // ！ ？
        } else {
            return nil
        }
        // Closing quotes and brackets: ) ] " ' ’ ”
        while after < end {
            if b[after] == 0x29 || b[after] == 0x5D || b[after] == 0x22 || b[after] == 0x27 { after += 1; continue }
            if b[after] == 0xE2 && after + 2 < end && b[after + 1] == 0x80 && (b[after + 2] == 0x99 || b[after + 2] == 0x9D) {
                after += 3; continue
            }
            break
        }
        guard after < end, isSpace(b[after]) else { return nil }
        return after
    }

    private static func trimEnd(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int {
        var e = end
        while e > start && isSpace(bytes[e - 1]) { e -= 1 }
        return e
    }

    // MARK: - Overlap

    /// Where the next chunk starts so that it repeats at most `room` tokens of the tail of
    /// pieces `first...last`, and how many tokens that is; nil for none. Whole pieces are
    /// taken while they fit; only when not even the last one fits is it cut finer (its
    /// trailing sentences, else lines, else words), so an overlap starts mid-sentence or
    /// mid-line only when one sentence or line is over the overlap on its own.
    private func overlapStart(pieces: [Piece], from first: Int, through last: Int, room: Int,
                              stream: Stream) -> (start: Int, tokens: Int)? {
        var used = 0
        var start: Int?
        var k = last
        // Only the pieces of the section the boundary falls in (a chunk may hold several
        // same-path sections; the overlap never reaches back into an earlier one).
        while k >= first && pieces[k].section == pieces[last].section {
            let p = pieces[k]
            if used + p.tokens <= room {
                used += p.tokens
                start = p.start
                k -= 1
                continue
            }
            if used == 0, let (s, t) = tail(of: p.start..<p.end, level: .sentence, room: room, stream: stream) {
                used += t
                start = s
            }
            break
        }
        return start.map { ($0, used) }
    }

    /// The start of the longest run of trailing parts of `range` (at `level`, else finer)
    /// that counts at most `room` tokens, and its count; the last part is cut finer only
    /// when it alone is over `room`.
    private func tail(of range: Range<Int>, level: Level, room: Int, stream: Stream) -> (Int, Int)? {
        var level = level
        while level != .character {
            let parts = Chunker.parts(of: range, at: level, in: stream.bytes)
            let next = Level(rawValue: level.rawValue + 1)!
            if parts.count > 1 {
                var used = 0
                var start: Int?
                for part in parts.reversed() {
                    let t = countTokens(String(decoding: stream.bytes[part], as: UTF8.self))
                    if used + t <= room {
                        used += t
                        start = part.lowerBound
                        continue
                    }
                    if used == 0, let (s, t2) = tail(of: part, level: next, room: room, stream: stream) {
                        used += t2
                        start = s
                    }
                    break
                }
                return start.map { ($0, used) }
            }
            level = next
        }
        return nil
    }
}
