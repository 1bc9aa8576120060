import Foundation
import KBCore

/// One evaluation question and what answers it.
public struct Question: Sendable, Equatable {
    public var id: String
    public var text: String
    public var relevant: [Relevant]
    /// 1-based line of the question file it came from.
    public var line: Int
}

/// A place that answers a question: a document (path relative to the indexed folder), or a
/// line range of one, or for a PDF a page range. `path#anchor` names a place in the document;
/// relevance is still judged per document (a chunk records lines, not anchors), except
/// `manual.pdf#page=12`, which is page 12 as a PDF viewer reads it.
public struct Relevant: Sendable, Equatable, Hashable {
    public var path: String
    public var anchor: String?
    /// What `lines` counts; a range matches only chunks that count the same thing.
    public var unit: LocationUnit
    /// 1-based, inclusive; nil: the whole document. Pages for `path:P3-P5` and `#page=3` (a
    /// PDF's chunks record pages where text files' record lines, so both compare the same way).
    public var lines: ClosedRange<Int>?

    public init(path: String, anchor: String? = nil, lines: ClosedRange<Int>? = nil, unit: LocationUnit = .lines) {
        self.path = path
        self.anchor = anchor
        self.lines = lines
        self.unit = unit
    }

    /// Parses `path`, `path#anchor`, `path:L10-L40` or `path:L10`, and for pages `path:P3-P5`,
    /// `path:P3` or `path#page=3`. Nil when malformed.
    public init?(parsing s: String) {
        var s = Substring(s.trimmingCharacters(in: .whitespaces))
        unit = .lines
        for (letter, u) in [("L", LocationUnit.lines), ("P", .pages)] {
            // ":L"/":P" then a digit: a path such as "notes:Plan.md" is a path.
            guard let colon = s.range(of: ":" + letter, options: .backwards), s[colon.upperBound...].first?.isASCII == true,
                  s[colon.upperBound...].first?.isNumber == true else { continue }
            let spec = s[colon.upperBound...]
            let parts = spec.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 1 || parts.count == 2, let a = Int(parts[0]), a >= 1 else { return nil }
            var b = a
            if parts.count == 2 {
                guard parts[1].hasPrefix(letter), let e = Int(parts[1].dropFirst()), e >= a else { return nil }
                b = e
            }
            lines = a...b
            unit = u
            s = s[..<colon.lowerBound]
            break
        }
        if let hash = s.firstIndex(of: "#") {
            let fragment = s[s.index(after: hash)...]
            if lines == nil, fragment.hasPrefix("page="), let page = Int(fragment.dropFirst(5)), page >= 1 {
                lines = page...page
                unit = .pages
            } else {
                anchor = String(fragment)
            }
            s = s[..<hash]
        }
        guard !s.isEmpty, !s.hasPrefix("/") else { return nil }
        path = String(s)
    }

    /// How a question file writes this place: `path`, `path#anchor`, `path:L3-L5`, `path:P3-P5`.
    public var location: String {
        guard let lines else { return anchor.map { "\(path)#\($0)" } ?? path }
        let l = unit == .pages ? "P" : "L"
        return lines.count == 1 ? "\(path):\(l)\(lines.lowerBound)" : "\(path):\(l)\(lines.lowerBound)-\(l)\(lines.upperBound)"
    }

    /// Whether a retrieved chunk of `path` covering `chunkLines` (counted in `unit`) is this
    /// place: same path, and with a range, the same unit and an overlap.
    public func matches(path p: String, chunkLines: ClosedRange<Int>, unit chunkUnit: LocationUnit = .lines) -> Bool {
        guard p == path else { return false }
        guard let lines else { return true }
        return unit == chunkUnit && lines.overlaps(chunkLines)
    }
}

/// Why a question file cannot be read: the file, the line and what is wrong.
public struct QuestionFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let line: Int
    public let message: String
    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// A question file: TSV with the header `id<TAB>question<TAB>relevant_paths` (paths
/// comma-separated), or JSON lines with the fields `id`, `question` and `relevant_paths` (an
/// array of strings, or one comma-separated string). Blank lines are skipped; ids must be
/// unique; every question needs at least one relevant path.
public enum QuestionSet {
    public static let header = "id\tquestion\trelevant_paths"

    /// The lines of a question file, without their line ends ("\n" or "\r\n"; a lone "\r"
    /// before the end of a line is dropped too). Line i (1-based) is element i − 1. O(size).
    public static func lines(of text: String) -> [String] {
        // "\r\n" is one Character in Swift: split on both spellings of a line end.
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
    }

    /// Parses `data`; `file` names it in errors. Throws `QuestionFileError`. O(size).
    public static func parse(_ data: Data, file: String) throws -> [Question] {
        let lines = Self.lines(of: String(decoding: data, as: UTF8.self))
        func fail(_ line: Int, _ m: String) -> QuestionFileError { QuestionFileError(file: file, line: line, message: m) }
        guard let first = lines.firstIndex(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw fail(0, "no questions (expected the TSV header '\(header.replacingOccurrences(of: "\t", with: "<TAB>"))' or JSON lines)")
        }
        let json = lines[first].trimmingCharacters(in: .whitespaces).hasPrefix("{")
        if !json && lines[first] != header {
            throw fail(first + 1, "the first line must be the header '\(header.replacingOccurrences(of: "\t", with: "<TAB>"))' (or use JSON lines)")
        }
        var out: [Question] = []
        var seen: [String: Int] = [:]
        for n in (json ? first : first + 1)..<lines.count {
            let raw = lines[n]
            if raw.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let lineNo = n + 1
            var id: String, question: String, paths: [String]
            if json {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any] else {
                    throw fail(lineNo, "not a JSON object")
                }
                guard let i = obj["id"] as? String ?? (obj["id"] as? Int).map(String.init) else { throw fail(lineNo, "missing \"id\" (a string)") }
                guard let q = obj["question"] as? String else { throw fail(lineNo, "missing \"question\" (a string)") }
                if let list = obj["relevant_paths"] as? [String] {
                    paths = list
                } else if let s = obj["relevant_paths"] as? String {
                    paths = s.split(separator: ",").map(String.init)
                } else {
                    throw fail(lineNo, "missing \"relevant_paths\" (an array of strings, or one comma-separated string)")
                }
                id = i
                question = q
            } else {
                let f = raw.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard f.count == 3 else { throw fail(lineNo, "expected 3 tab-separated fields (id, question, relevant_paths), found \(f.count)") }
                id = f[0]
                question = f[1]
                paths = f[2].split(separator: ",").map(String.init)
            }
            id = id.trimmingCharacters(in: .whitespaces)
            question = question.trimmingCharacters(in: .whitespaces)
            guard !id.isEmpty else { throw fail(lineNo, "the id is empty") }
            guard !question.isEmpty else { throw fail(lineNo, "the question is empty") }
            if let prev = seen[id] { throw fail(lineNo, "id '\(id)' was already used on line \(prev)") }
            seen[id] = lineNo
            var relevant: [Relevant] = []
            for p in paths where !p.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let r = Relevant(parsing: p) else {
                    throw fail(lineNo, "'\(p)' is not a relevant path (path, path#anchor, path:L10-L40 or, for a PDF, path:P3-P5, relative to the indexed folder)")
                }
                relevant.append(r)
            }
            guard !relevant.isEmpty else { throw fail(lineNo, "no relevant paths") }
            out.append(Question(id: id, text: question, relevant: relevant, line: lineNo))
        }
        guard !out.isEmpty else { throw fail(0, "no questions") }
        return out
    }
}

extension QuestionSet {
    /// The relevant places of `questions` whose path is none of `documents` (the paths of the
    /// index's live documents), in question order: such a place can never be retrieved, so a
    /// typo in it would silently score 0. Each (question, path) once. O(relevant places).
    public static func unknownPaths(in questions: [Question], documents: Set<String>) -> [(question: Question, path: String)] {
        var out: [(question: Question, path: String)] = []
        for q in questions {
            var seen: Set<String> = []
            for r in q.relevant where !documents.contains(r.path) && seen.insert(r.path).inserted {
                out.append((q, r.path))
            }
        }
        return out
    }
}
