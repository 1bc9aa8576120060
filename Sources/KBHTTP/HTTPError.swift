import Foundation

/// Why an HTTP request failed. Each description is one line a user can act on.
public enum HTTPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The host could not be reached at all: name resolution, TCP connect, proxy or TLS
    /// handshake failed. `detail` is libcurl's explanation.
    case couldNotConnect(host: String, detail: String)
    /// The server answered with a status of 400 or more (after following redirects).
    case status(Int, url: String)
    /// The body stopped before it was complete (connection cut, fewer bytes than
    /// announced or expected). `bytes` is how much arrived.
    case interrupted(bytes: Int64, url: String, detail: String)
    /// No byte arrived for too long, or the transfer exceeded its time limit.
    case stalled(bytes: Int64, url: String, detail: String)
    /// A request with a total time limit (`post(timeout:)`) was sent but its answer did not
    /// arrive completely within `seconds`; `bytes` of body had arrived.
    case timedOut(seconds: Double, bytes: Int64, url: String)
    /// A small-body request (`get`, `post`) got more than it allows.
    case bodyTooLarge(limit: Int, url: String)
    /// The body could not be written to the destination file.
    case file(String)
    /// Any other libcurl failure, with its code and message.
    case transport(code: Int, url: String, detail: String)
    /// The request cannot be sent as asked (a header value with a line break, a body the
    /// method cannot carry): a local mistake, never worth retrying.
    case invalidRequest(url: String, detail: String)
    /// The server's TLS certificate was refused (unknown issuer, expired, wrong host name) or
    /// the CA file cannot be read: retrying will not help.
    case tlsCertificate(host: String, detail: String)

    /// True when the error means the host could not be reached (as opposed to a
    /// server that answered badly).
    public var isConnectFailure: Bool {
        if case .couldNotConnect = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case let .couldNotConnect(host, detail):
            return "could not connect to \(host) (\(detail))"
        case let .status(code, url):
            return "HTTP \(code) for \(url)"
        case let .interrupted(bytes, url, detail):
            return "transfer interrupted after \(bytes) bytes from \(url) (\(detail))"
        case let .stalled(bytes, url, detail):
            return "transfer stalled after \(bytes) bytes from \(url) (\(detail))"
        case let .timedOut(seconds, bytes, url):
            let limit = seconds == seconds.rounded() && abs(seconds) < 1e9 ? String(Int(seconds)) : String(seconds)
            return "no complete answer from \(url) within \(limit) s (\(bytes) bytes of body received)"
        case let .bodyTooLarge(limit, url):
            return "response from \(url) is larger than \(limit) bytes"
        case let .file(message):
            return message
        case let .transport(code, url, detail):
            return "request to \(url) failed (curl error \(code): \(detail))"
        case let .invalidRequest(url, detail):
            return "cannot send the request to \(url): \(detail)"
        case let .tlsCertificate(host, detail):
            return "the TLS certificate of \(host) was not accepted (\(detail)); check the host name, the system's CA certificates (CURL_CA_BUNDLE, SSL_CERT_FILE) or the endpoint's certificate"
        }
    }
}
