import Foundation
import KBEmbed

/// Checking the user's URL and deriving the request URL from it.
enum RemoteURL {
    /// Query parameter names that carry secrets (compared without case, `-` and `_`).
    static let secretParameters: Set<String> = [
        "key", "apikey", "accesskey", "token", "accesstoken", "authtoken", "auth", "authorization",
        "sig", "signature", "code", "password", "passwd", "pwd", "secret", "clientsecret", "bearer",
        "session", "sessionid", "credential", "credentials", "xamzsignature", "xamzsecuritytoken", "xgoogsignature",
    ]

    /// The checked URL: http or https with a host, no credentials, no secret query parameter,
    /// no fragment. Throws `RemoteEmbedError` otherwise.
    static func checked(_ url: URL) throws -> URLComponents {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
            throw RemoteEmbedError.invalidURL(url: shownText(url.absoluteString), reason: "it is not a valid URL")
        }
        if c.user != nil || c.password != nil {
            var shown = c
            shown.user = nil
            shown.password = nil
            shown.query = nil
            shown.fragment = nil
            throw RemoteEmbedError.credentialsInURL(url: shownText(shown.string ?? "the URL"))
        }
        c.fragment = nil
        guard let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw RemoteEmbedError.invalidURL(url: shownText(c.string ?? url.absoluteString), reason: "it must start with http:// or https://")
        }
        guard let host = c.host, !host.isEmpty else {
            throw RemoteEmbedError.invalidURL(url: shownText(c.string ?? url.absoluteString), reason: "it has no host name")
        }
        for item in c.queryItems ?? [] {
            let folded = item.name.lowercased().filter { $0 != "-" && $0 != "_" }
            if secretParameters.contains(folded) || folded.hasSuffix("token") || folded.hasSuffix("apikey") || folded.hasSuffix("secret") {
                var shown = c
                shown.query = nil
                throw RemoteEmbedError.secretInURL(url: shownText(shown.string ?? "the URL"), parameter: shownText(item.name, limit: 40))
            }
        }
        return c
    }

    /// The URL requests go to: the user's URL, with `/embeddings` (OpenAI) or `/api/embed`
    /// (Ollama) appended to its path unless the path already ends in it. The query is kept
    /// (`?api-version=...` for gateways that need it).
    static func endpoint(_ base: URLComponents, provider: EmbeddingProvider) -> URL? {
        var c = base
        var path = c.path
        while path.hasSuffix("/") { path.removeLast() }
        switch provider {
        case .ollama:
            if path.hasSuffix("/api/embed") {
            } else if path.hasSuffix("/api") {
                path += "/embed"
            } else {
                path += "/api/embed"
            }
        default:
            if !path.hasSuffix("/embeddings") { path += "/embeddings" }
        }
        c.path = path
        return c.url
    }
}
