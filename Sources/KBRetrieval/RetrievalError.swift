import Foundation
import KBEmbed
import KBFormat

/// Why a question, a chunk or an index could not be served. `description` is one line that
/// says what is wrong, without advice: the command line and the server add theirs (what to
/// run, which HTTP status) at their boundary.
public enum RetrievalError: Error, CustomStringConvertible, Sendable {
    /// The request cannot mean anything: an empty question, k < 1, an invalid glob.
    case invalidRequest(String)
    /// No served index has this name.
    case unknownIndex(String, known: [String])
    /// Several indexes are served and the request named none.
    case indexNotNamed(known: [String])
    /// A malformed chunk id, or one whose document is no longer in the index.
    case unknownChunk(String)
    /// Lexical or hybrid search of an index built before BM25 (no LEXICAL section).
    case lexicalUnavailable(index: String)
    /// An index folder that cannot be opened (missing, damaged manifest or segment).
    case openFailed(index: URL, reason: String)
    /// A segment found damaged while answering (a text block that does not decompress).
    case damaged(SegmentError, index: URL)
    /// The model could not load or gave vectors that are not finite; `folder` is the model's.
    case model(String, folder: URL?, isDamage: Bool)
    /// The embedder options do not make an embedder: a remote model or URL with the built-in
    /// encoder, or a remote provider without a model name.
    case embedderChoice(EmbedderChoiceProblem)
    /// The remote embedding service failed (after its retries): its error, one line.
    case embeddingService(String)
    /// Too much work waits already (a server under more load than it can answer): try later.
    case busy(String)
    /// An index built with a model whose vectors are not comparable with the served one.
    case incompatibleModel(index: String, reason: String)
    /// An index that recorded a precision this kbindex does not know (`value`, e.g. "int4",
    /// from a newer kbindex), and no precision was asked for its questions. `index` is its
    /// name as served ("" for a lone index).
    case unknownPrecision(index: String, value: String)

    public var description: String {
        switch self {
        case .invalidRequest(let s): return s
        case .unknownIndex(let name, let known):
            return "no index named '\(name)' (served: \(known.joined(separator: ", ")))"
        case .indexNotNamed(let known):
            return "several indexes are served (\(known.joined(separator: ", "))): name one"
        case .unknownChunk(let id): return "no chunk with id '\(id)' in the index"
        case .lexicalUnavailable(let index):
            return "\(index.isEmpty ? "the index" : "index '\(index)'") has no lexical section (it was built before BM25 search): only vector search"
        case .openFailed(let url, let reason): return "cannot open the index \(url.path): \(reason)"
        case .damaged(let error, _): return "\(error)"
        case .model(let s, _, _): return s
        case .embeddingService(let s): return s
        case .embedderChoice(let p): return p.description
        case .incompatibleModel(let index, let reason): return "index '\(index)': \(reason)"
        case .busy(let why): return "too busy to answer now: \(why)"
        case .unknownPrecision(let index, let value):
            return "\(index.isEmpty ? "the index" : "index '\(index)'") was embedded in precision '\(SearchHit.shortened(value, to: 32))', which this kbindex does not know (it knows \(Precision.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
    }
}

/// What is wrong with a choice of embedder (`RetrievalError.embedderChoice`).
public enum EmbedderChoiceProblem: Sendable, Equatable, CustomStringConvertible {
    /// A remote model name or URL was given, but the embedder is the built-in one.
    case remoteOptionsWithLocalEmbedder
    /// A remote provider, and no model name from the options or the index.
    case missingRemoteModel(EmbeddingProvider)

    public var description: String {
        switch self {
        case .remoteOptionsWithLocalEmbedder: return "a remote model or URL was given, but the embedder is the built-in one"
        case .missingRemoteModel(let p): return "an \(p.rawValue) embedder needs the model's name"
        }
    }
}
