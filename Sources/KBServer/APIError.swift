import Foundation
import Hummingbird
import KBRetrieval

/// An error answered to a client: an HTTP status and `{"error": {"code": "...", "message": "..."}}`,
/// the message one line. Every failure of a request becomes one of these in `APIError.from`,
/// the only place that maps errors to statuses.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable code (snake_case), e.g. "invalid_request", "unknown_index".
    public var code: String
    /// One line for a person: what was wrong, and what to send instead.
    public var message: String
    /// Extra response headers (WWW-Authenticate, Allow, Retry-After).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = APIError.oneLine(message)
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "invalid_request", message) }
    static func tooLarge(_ message: String) -> APIError { APIError(.contentTooLarge, "payload_too_large", message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }
    /// 503 `busy` with `Retry-After: 1`: the service has too many questions waiting.
    static func busy(_ message: String) -> APIError {
        APIError(.serviceUnavailable, "busy", "\(message): try again in a moment", headers: [.retryAfter: "1"])
    }

    /// `error` as the answer to a client. Library errors keep their text (which has no advice)
    /// and get what to do here; anything unexpected is a 500 whose message names no internals.
    public static func from(_ error: Error) -> APIError {
        switch error {
        case let e as APIError:
            return e
        case let e as RetrievalError:
            return from(e)
        case let e as HTTPError:
            // Hummingbird's own: the router's 404 for an unknown path, body limits.
            switch e.status {
            case .notFound: return notFound(e.body ?? "no such route")
            case .contentTooLarge: return tooLarge(e.body ?? "the request body is too large")
            case .methodNotAllowed: return APIError(.methodNotAllowed, "method_not_allowed", e.body ?? "method not allowed", headers: e.headers)
            default:
                let code = e.status.code < 500 ? "invalid_request" : "internal_error"
                return APIError(e.status, code, e.body ?? e.status.reasonPhrase, headers: e.headers)
            }
        case let e as HTTPResponseError where e.status == .contentTooLarge:
            return tooLarge("the request body is too large")
        case is RequestTimeout:
            return APIError(.serviceUnavailable, "timeout", "the request took too long and was abandoned: ask for fewer questions, inputs or hits", headers: [.retryAfter: "1"])
        case is CancellationError:
            return APIError(.serviceUnavailable, "shutting_down", "the request was cancelled (the server is shutting down)", headers: [.retryAfter: "1"])
        case let e as HTTPResponseError:
            return APIError(e.status, e.status.code < 500 ? "invalid_request" : "internal_error", e.status.reasonPhrase)
        default:
            return APIError(.internalServerError, "internal_error", "the server could not answer this request")
        }
    }

    /// The status and advice for each `RetrievalError`.
    static func from(_ error: RetrievalError) -> APIError {
        switch error {
        case .invalidRequest:
            return badRequest("\(error)")
        case .indexNotNamed:
            return badRequest("\(error) with \"index\"")
        case .unknownIndex:
            return APIError(.notFound, "unknown_index", "\(error)")
        case .unknownChunk:
            return APIError(.notFound, "unknown_chunk", "\(error): search again for a current id")
        case .lexicalUnavailable:
            return badRequest("\(error): ask for \"mode\": \"vector\", or rebuild the index with 'kbindex build --rebuild'")
        case .openFailed:
            // Thrown only by RetrievalService's convenience init, at start-up (where the CLI
            // reports it): a request never meets it, since reloads keep the last good index.
            // Mapped so that the switch stays total and a future caller gets a sensible answer.
            return APIError(.serviceUnavailable, "index_unavailable", "\(error)", headers: [.retryAfter: "1"])
        case .damaged:
            return APIError(.internalServerError, "index_damaged", "\(error): run 'kbindex verify' on the server for the full check")
        case .model, .incompatibleModel, .unknownPrecision, .embedderChoice:
            // .unknownPrecision and .embedderChoice are met only at start-up, where the CLI reports them.
            return APIError(.internalServerError, "model_error", "\(error)")
        case .embeddingService:
            return APIError(.badGateway, "embedding_service_error", "\(error)")
        case .busy:
            return busy("\(error)")
        }
    }

    /// `s` on one line: line breaks and other control characters become spaces.
    static func oneLine(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// The JSON body: `{"error":{"code":…,"message":…}}`.
    struct Body: Encodable {
        struct Inner: Encodable { let code: String, message: String }
        let error: Inner
    }

    /// This error as a response.
    func response() -> Response {
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        let data = (try? JSON.encoder.encode(Body(error: .init(code: code, message: message)))) ?? Data(#"{"error":{"code":"internal_error","message":"unencodable error"}}"#.utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The server's request timeout fired.
struct RequestTimeout: Error {}

/// JSON encoding shared by every response.
enum JSON {
    /// Sorted keys (stable output), slashes as they are.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// `value` as a 200 (or `status`) JSON response.
    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
