import Foundation
import Hummingbird
import KBRetrieval
import KBSearch

/// A JSON value as a client sent it, for strict checking: a wrong type or an unknown field is a
/// 400 that names the field, not a generic decoding error.
enum JSONValue: Decodable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// What a client reads in an error: "a string", "an array", ...
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Parses a request body. Throws a 400 `APIError` for anything but one JSON object.
    /// O(body size); the decoder limits nesting depth.
    static func object(from body: ByteBuffer, example: String) throws -> Fields {
        guard body.readableBytes > 0 else { throw APIError.badRequest("the body is empty: send a JSON object such as \(example)") }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)) } catch {
            throw APIError.badRequest("the body is not valid JSON: send a JSON object such as \(example)")
        }
        guard case .object(let fields) = value else { throw APIError.badRequest("the body is \(value.kind), not a JSON object such as \(example)") }
        return Fields(fields)
    }
}

/// The fields of a request object, read one by one with their types and ranges checked. A
/// field set to null counts as absent.
struct Fields {
    let values: [String: JSONValue]
    init(_ values: [String: JSONValue]) { self.values = values.filter { $0.value != .null } }

    /// Refuses any field not in `known` (a misspelt option must not be silently ignored).
    func onlyKnown(_ known: [String]) throws {
        if let unknown = values.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError.badRequest("unknown field '\(SearchHit.shortened(unknown, to: 64))' (fields: \(known.joined(separator: ", ")))")
        }
    }

    func has(_ name: String) -> Bool { values[name] != nil }

    func string(_ name: String, maxCharacters: Int) throws -> String? {
        guard let v = values[name] else { return nil }
        guard case .string(let s) = v else { throw APIError.badRequest("'\(name)' must be a string, not \(v.kind)") }
        if s.count > maxCharacters { throw APIError.badRequest("'\(name)' is longer than \(maxCharacters) characters") }
        return s
    }

    /// A string or an array of strings (as an array), with at most `maxItems` items.
    func strings(_ name: String, maxItems: Int, maxCharacters: Int) throws -> [String]? {
        guard let v = values[name] else { return nil }
        switch v {
        case .string(let s):
            if s.count > maxCharacters { throw APIError.badRequest("'\(name)' is longer than \(maxCharacters) characters") }
            return [s]
        case .array(let items):
            if items.count > maxItems { throw APIError.badRequest("'\(name)' has \(items.count) items, more than the limit of \(maxItems)") }
            return try items.enumerated().map { i, item in
                guard case .string(let s) = item else { throw APIError.badRequest("'\(name)[\(i)]' must be a string, not \(item.kind)") }
                if s.count > maxCharacters { throw APIError.badRequest("'\(name)[\(i)]' is longer than \(maxCharacters) characters") }
                return s
            }
        default:
            throw APIError.badRequest("'\(name)' must be a string or an array of strings, not \(v.kind)")
        }
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = values[name] else { return nil }
        guard case .number(let d) = v else { throw APIError.badRequest("'\(name)' must be an integer, not \(v.kind)") }
        guard d.rounded() == d, d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            throw APIError.badRequest("'\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound), got \(Fields.number(d))")
        }
        return Int(d)
    }

    func number(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let v = values[name] else { return nil }
        guard case .number(let d) = v else { throw APIError.badRequest("'\(name)' must be a number, not \(v.kind)") }
        guard range.contains(d) else { throw APIError.badRequest("'\(name)' must be a number from \(Fields.number(range.lowerBound)) to \(Fields.number(range.upperBound)), got \(Fields.number(d))") }
        return d
    }

    /// One of `choices` (a string).
    func choice(_ name: String, _ choices: [String]) throws -> String? {
        guard let s = try string(name, maxCharacters: 64) else {
            if values[name] != nil { throw APIError.badRequest("'\(name)' must be one of \(choices.joined(separator: ", "))") }
            return nil
        }
        guard choices.contains(s) else { throw APIError.badRequest("'\(name)' must be one of \(choices.joined(separator: ", ")), got '\(SearchHit.shortened(s, to: 64))'") }
        return s
    }

    static func number(_ d: Double) -> String { String(format: "%g", d) }
}

/// A parsed POST /v1/search body.
struct SearchRequest {
    var queries: [SearchQuery]
    var index: String?

    static let fields = ["query", "queries", "k", "mode", "path", "index", "fusion", "alpha", "rrf_k", "vector_weight", "lexical_weight"]
    static let example = #"{"query": "how do I rotate the logs?", "k": 5}"#

    /// Checks every field against `limits`. Throws a 400 `APIError` naming the first bad field.
    /// O(body size).
    init(_ f: Fields, limits: ServerLimits) throws {
        try f.onlyKnown(Self.fields)
        let texts: [String]
        switch (f.has("query"), f.has("queries")) {
        case (true, true): throw APIError.badRequest("give either 'query' or 'queries', not both")
        case (false, false): throw APIError.badRequest("give 'query' (a string) or 'queries' (an array of strings), e.g. \(Self.example)")
        case (true, false):
            texts = [try f.string("query", maxCharacters: limits.maxQueryCharacters) ?? ""]
        case (false, true):
            guard case .array = f.values["queries"] else {
                throw APIError.badRequest("'queries' must be an array of strings, not \(f.values["queries"]!.kind)")
            }
            texts = try f.strings("queries", maxItems: limits.maxQueries, maxCharacters: limits.maxQueryCharacters) ?? []
            if texts.isEmpty { throw APIError.badRequest("'queries' is empty: give at least one question") }
        }
        for (i, t) in texts.enumerated() where t.allSatisfy(\.isWhitespace) {
            throw APIError.badRequest(texts.count == 1 && f.has("query") ? "'query' is empty: give the words to search for" : "'queries[\(i)]' is empty: give the words to search for")
        }
        let k = try f.integer("k", in: 1...limits.maxK) ?? 5
        let mode = try f.choice("mode", SearchMode.allCases.map(\.rawValue)).flatMap(SearchMode.init(rawValue:))
        let paths = try f.strings("path", maxItems: limits.maxPathGlobs, maxCharacters: limits.maxGlobCharacters) ?? []
        if paths.contains(where: \.isEmpty) { throw APIError.badRequest("'path' has an empty glob") }
        index = try f.string("index", maxCharacters: limits.maxNameCharacters)
        var fusion = Fusion.Options()
        if let method = try f.choice("fusion", ["convex", "rrf"]) { fusion.method = method == "rrf" ? .rrf : .convex }
        if let alpha = try f.number("alpha", in: 0...1) { fusion.alpha = alpha }
        // Bounded so that a fused score stays finite: at most (vector + lexical weight) / (c + 1).
        if let c = try f.number("rrf_k", in: 0...1e9) { fusion.constant = c }
        if let w = try f.number("vector_weight", in: 0...1e9) { fusion.vectorWeight = w }
        if let w = try f.number("lexical_weight", in: 0...1e9) { fusion.lexicalWeight = w }
        queries = texts.map { SearchQuery($0, k: k, mode: mode, paths: paths, fusion: fusion) }
    }
}

/// A parsed POST /v1/embeddings body (OpenAI's shape).
struct EmbeddingsRequest {
    var inputs: [String]
    var model: String?
    var base64: Bool
    var dimensions: Int?

    static let fields = ["input", "model", "encoding_format", "dimensions", "user"]
    static let example = #"{"input": ["first text", "second text"]}"#

    init(_ f: Fields, limits: ServerLimits) throws {
        try f.onlyKnown(Self.fields)
        guard let input = f.values["input"] else { throw APIError.badRequest("give 'input': a string or an array of strings, e.g. \(Self.example)") }
        if case .array(let items) = input, items.contains(where: { if case .number = $0 { return true }; if case .array = $0 { return true }; return false }) {
            throw APIError.badRequest("'input' must be a string or an array of strings: token arrays are not supported")
        }
        inputs = try f.strings("input", maxItems: limits.maxEmbeddingInputs, maxCharacters: limits.maxEmbeddingCharacters) ?? []
        if inputs.isEmpty { throw APIError.badRequest("'input' is empty: give at least one text") }
        if let i = inputs.firstIndex(where: \.isEmpty) {
            throw APIError.badRequest(inputs.count == 1 ? "'input' is an empty string" : "'input[\(i)]' is an empty string")
        }
        model = try f.string("model", maxCharacters: limits.maxNameCharacters)
        base64 = try f.choice("encoding_format", ["float", "base64"]) == "base64"
        dimensions = try f.integer("dimensions", in: 1...1_000_000)
        _ = try f.string("user", maxCharacters: limits.maxNameCharacters)
    }
}

/// The query string of a GET, checked: only `known` names, each at most once.
struct QueryParameters {
    let values: [String: String]

    init<Pairs: Sequence>(_ pairs: Pairs, known: [String]) throws where Pairs.Element == (key: Substring, value: Substring) {
        var values: [String: String] = [:]
        for (key, value) in pairs {
            let k = String(key)
            guard known.contains(k) else {
                throw APIError.badRequest("unknown query parameter '\(SearchHit.shortened(k, to: 64))'" + (known.isEmpty ? " (this route takes none)" : " (parameters: \(known.joined(separator: ", ")))"))
            }
            if values[k] != nil { throw APIError.badRequest("query parameter '\(k)' is given twice") }
            values[k] = String(value)
        }
        self.values = values
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let s = values[name] else { return nil }
        guard let n = Int(s), range.contains(n) else {
            throw APIError.badRequest("'\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(SearchHit.shortened(s, to: 32))'")
        }
        return n
    }

    func string(_ name: String, maxCharacters: Int) throws -> String? {
        guard let s = values[name] else { return nil }
        if s.isEmpty { throw APIError.badRequest("'\(name)' is empty") }
        if s.count > maxCharacters { throw APIError.badRequest("'\(name)' is longer than \(maxCharacters) characters") }
        return s
    }
}
