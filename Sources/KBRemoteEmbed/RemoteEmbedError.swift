import Foundation
import KBEmbed

/// Why a remote embedding request failed. Descriptions are one line a person can act on,
/// and never contain the API key: every text that came from the server or the URL is
/// scrubbed of it (`scrubbing(_:)`) before the error leaves `RemoteEmbedder`, and server
/// texts are shortened and have control characters escaped.
public enum RemoteEmbedError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `RemoteEmbedder` was given `.local`, which is the built-in encoder's.
    case localProvider
    /// A configuration value out of range (batch size, concurrency, timeout, retries, token limit).
    case invalidConfiguration(String)
    /// The URL cannot be used: `reason` says why (scheme, host).
    case invalidURL(url: String, reason: String)
    /// The URL carries a user name or password; `url` is shown without them.
    case credentialsInURL(url: String)
    /// The URL's query has a parameter that looks like a secret (`key`, `token`, ...);
    /// `url` is shown without its query.
    case secretInURL(url: String, parameter: String)
    /// No connection could be made (refused, unresolvable host, TLS failure) and the call
    /// does not retry that (the first request, which checks the URL).
    case couldNotConnect(url: String, detail: String)
    /// 401 or 403. `keySource` names where the key came from (an environment variable), nil
    /// when no key was sent; `variables` lists where kbindex looks for one.
    case unauthorized(status: Int, url: String, keySource: String?, variables: String, message: String?)
    /// 404 without a word about the model: nothing serves the API at this URL.
    case notFound(provider: EmbeddingProvider, url: String, message: String?)
    /// A 404 (or another 4xx) whose text says the server does not have `model`.
    case modelNotFound(provider: EmbeddingProvider, model: String, status: Int, url: String, message: String?)
    /// Any other error status that retrying cannot fix (400, 413, 422, 501, ...), with the
    /// server's explanation when it gave one.
    case rejected(status: Int, url: String, message: String?)
    /// A 3xx: POSTs are not redirected, the user gives the final URL.
    case redirected(status: Int, url: String, location: String?)
    /// Every attempt failed with something retrying could have fixed; `last` is the last failure.
    case gaveUp(attempts: Int, url: String, last: String)
    /// The answer is not what the API returns (not JSON, missing fields, wrong types).
    case malformedResponse(url: String, detail: String)
    /// The answer holds another number of vectors than texts sent.
    case wrongCount(url: String, sent: Int, received: Int)
    /// A vector's length differs from the model's (learned from the first vector).
    case wrongDimensions(url: String, expected: Int, got: Int, input: Int)
    /// A vector that cannot be used: empty, all zeros, or with a value that is not a finite number.
    case badVector(url: String, input: Int, reason: String)

    public var description: String {
        switch self {
        case .localProvider:
            return "a remote embedder takes the 'openai' or 'ollama' provider, not 'local' (the built-in encoder)"
        case let .invalidConfiguration(message):
            return message
        case let .invalidURL(url, reason):
            return "cannot use the embedding URL '\(url)': \(reason)"
        case let .credentialsInURL(url):
            return "the embedding URL '\(url)' carries a user name or password: remove them and put the API key in \(RemoteEmbedder.genericKeyVariable)"
        case let .secretInURL(url, parameter):
            return "the embedding URL '\(url)' carries a secret in its query parameter '\(parameter)': remove it and put the API key in \(RemoteEmbedder.genericKeyVariable)"
        case let .couldNotConnect(url, detail):
            return "could not connect to the embedding server at \(url) (\(detail))"
        case let .unauthorized(status, url, keySource, variables, message):
            let what: String
            if let keySource {
                what = status == 403
                    ? "the API key from \(keySource) is not allowed to use this endpoint or model"
                    : "the server refused the API key from \(keySource)"
            } else {
                what = "the server wants an API key and none is set (\(variables))"
            }
            return "HTTP \(status) from \(url): \(what)" + Self.says(message)
        case let .notFound(provider, url, message):
            let api = provider == .ollama ? "Ollama /api/embed (Ollama 0.3.4 or later serves it)" : "OpenAI-compatible embeddings API"
            return "HTTP 404 from \(url): no \(api) at this URL" + Self.says(message)
        case let .modelNotFound(provider, model, status, url, message):
            if provider == .ollama {
                return "HTTP \(status) from \(url): the Ollama server has no model '\(model)': ollama pull \(model)" + Self.says(message)
            }
            return "HTTP \(status) from \(url): the server has no model '\(model)'" + Self.says(message)
        case let .rejected(status, url, message):
            return "HTTP \(status) from \(url)" + (message.map { ": the server says '\($0)'" } ?? " (the answer gives no reason)")
        case let .redirected(status, url, location):
            return "HTTP \(status) from \(url): the server redirects" + (location.map { " to '\($0)': give that URL instead" } ?? "")
        case let .gaveUp(attempts, url, last):
            return "no answer from \(url) after \(attempts) \(attempts == 1 ? "attempt" : "attempts"): \(last)"
        case let .malformedResponse(url, detail):
            return "unexpected answer from \(url): \(detail)"
        case let .wrongCount(url, sent, received):
            return "the answer from \(url) has \(received) \(received == 1 ? "vector" : "vectors") for \(sent) \(sent == 1 ? "text" : "texts")"
        case let .wrongDimensions(url, expected, got, input):
            return "a vector from \(url) has \(got) dimensions where the model's first had \(expected) (text \(input + 1) of its batch)"
        case let .badVector(url, input, reason):
            return "a vector from \(url) is \(reason) (text \(input + 1) of its batch)"
        }
    }

    private static func says(_ message: String?) -> String {
        message.map { " (the server says '\($0)')" } ?? ""
    }

    /// This error with `secret` replaced by `***` in every text it carries (nil or empty:
    /// unchanged). `RemoteEmbedder` passes every error through this with the API key.
    public func scrubbing(_ secret: String?) -> RemoteEmbedError {
        guard let secret, !secret.isEmpty else { return self }
        func s(_ text: String) -> String { text.replacingOccurrences(of: secret, with: "***") }
        func s(_ text: String?) -> String? { text.map { $0.replacingOccurrences(of: secret, with: "***") } }
        switch self {
        case .localProvider: return self
        case let .invalidConfiguration(m): return .invalidConfiguration(s(m))
        case let .invalidURL(u, r): return .invalidURL(url: s(u), reason: s(r))
        case let .credentialsInURL(u): return .credentialsInURL(url: s(u))
        case let .secretInURL(u, p): return .secretInURL(url: s(u), parameter: s(p))
        case let .couldNotConnect(u, d): return .couldNotConnect(url: s(u), detail: s(d))
        case let .unauthorized(st, u, k, v, m): return .unauthorized(status: st, url: s(u), keySource: k, variables: v, message: s(m))
        case let .notFound(p, u, m): return .notFound(provider: p, url: s(u), message: s(m))
        case let .modelNotFound(p, model, st, u, m): return .modelNotFound(provider: p, model: s(model), status: st, url: s(u), message: s(m))
        case let .rejected(st, u, m): return .rejected(status: st, url: s(u), message: s(m))
        case let .redirected(st, u, l): return .redirected(status: st, url: s(u), location: s(l))
        case let .gaveUp(a, u, l): return .gaveUp(attempts: a, url: s(u), last: s(l))
        case let .malformedResponse(u, d): return .malformedResponse(url: s(u), detail: s(d))
        case let .wrongCount(u, se, r): return .wrongCount(url: s(u), sent: se, received: r)
        case let .wrongDimensions(u, e, g, i): return .wrongDimensions(url: s(u), expected: e, got: g, input: i)
        case let .badVector(u, i, r): return .badVector(url: s(u), input: i, reason: s(r))
        }
    }
}

/// Server texts as error messages show them: the first `limit` characters, with line breaks,
/// tabs and other control or format characters escaped (`\n`, `\u{1b}`), so that a message
/// stays one line and cannot drive the terminal.
func shownText(_ text: String, limit: Int = 200) -> String {
    var out = ""
    var count = 0
    for ch in text.unicodeScalars {
        if count >= limit {
            out += "…"
            break
        }
        switch ch {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if ch.value < 0x20 || ch.value == 0x7F || (0x80..<0xA0).contains(ch.value)
                || ch.properties.generalCategory == .format || ch.properties.generalCategory == .lineSeparator
                || ch.properties.generalCategory == .paragraphSeparator {
                out += "\\u{\(String(ch.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(ch)
            }
        }
        count += 1
    }
    return out
}
