import Foundation

/// Response headers of one HTTP hop, in the order the server sent them.
///
/// Lookups ignore case (`headers["etag"]` finds `ETag`). When a name repeats, the
/// subscript gives the first value.
public struct HTTPHeaders: Sendable, Equatable, CustomStringConvertible {
    /// The header fields as sent, with surrounding whitespace removed from each value.
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    /// The first value of the header called `name` (case-insensitive), or nil.
    public subscript(_ name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    mutating func append(name: String, value: String) {
        fields.append((name, value))
    }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public var description: String {
        fields.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
    }
}

/// One response in a chain of redirects: its status code and headers.
public struct HTTPHop: Sendable, Equatable {
    /// The status code of this hop (302 for a redirect, 200 for the final answer, ...).
    public let status: Int
    /// The headers of this hop.
    public let headers: HTTPHeaders
}

/// What a request got back, after following redirects.
///
/// `hops` keeps every response of the chain in order, so headers that only the first
/// server sends (the Hugging Face hub puts `X-Linked-Etag` on its 302 to the CDN) stay
/// visible. `status` and `headers` are those of the final hop.
public struct HTTPResponse: Sendable {
    /// Every response received, first hop first; the last one is the final answer.
    public let hops: [HTTPHop]
    /// The URL of the final hop (after redirects).
    public let url: String
    /// Bytes of body received from the final hop (written to the file for downloads).
    public let bodyBytes: Int64

    /// The status code of the final hop.
    public var status: Int { hops.last?.status ?? 0 }
    /// The headers of the final hop.
    public var headers: HTTPHeaders { hops.last?.headers ?? HTTPHeaders() }

    /// The value of header `name` from the first hop that has it (first hop first), or nil.
    public func firstHeader(_ name: String) -> String? {
        for hop in hops {
            if let v = hop.headers[name] { return v }
        }
        return nil
    }
}
