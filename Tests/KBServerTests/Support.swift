#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import KBRetrieval
import KBServer
import KBTestSupport
import Logging
import XCTest

/// A blocking HTTP/1.1 client over a plain socket, so that tests control every byte (Host,
/// Origin, a wrong Content-Length, a body cut short). One request per connection.
struct RawHTTP {
    struct Response {
        var status: Int
        var headers: [String: String]   // lowercased names
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        func json() throws -> [String: Any] {
            guard let o = try JSONSerialization.jsonObject(with: body) as? [String: Any] else { throw Failure("not a JSON object: \(text)") }
            return o
        }
        /// The `error.code` of a JSON error body.
        var errorCode: String? { ((try? json())?["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String? { ((try? json())?["error"] as? [String: Any])?["message"] as? String }
    }
    struct Failure: Error, CustomStringConvertible { let description: String; init(_ s: String) { description = s } }

    let port: Int

    /// Sends `method path` with `headers` (Host and Content-Length added unless given) and
    /// `body`, and reads the whole answer (the server closes after it: Connection: close).
    func send(_ method: String, _ path: String, headers: [(String, String)] = [], body: Data? = nil) throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        var names = Set(headers.map { $0.0.lowercased() })
        if !names.contains("host") { head += "Host: 127.0.0.1:\(port)\r\n" }
        if let body, !names.contains("content-length"), !names.contains("transfer-encoding") { head += "Content-Length: \(body.count)\r\n" }
        names.insert("connection")
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "Connection: close\r\n\r\n"
        return try raw(Data(head.utf8) + (body ?? Data()))
    }

    func post(_ path: String, json: String, headers: [(String, String)] = []) throws -> Response {
        try send("POST", path, headers: [("Content-Type", "application/json")] + headers, body: Data(json.utf8))
    }
    func post(_ path: String, object: Any, headers: [(String, String)] = []) throws -> Response {
        try send("POST", path, headers: [("Content-Type", "application/json")] + headers, body: try JSONSerialization.data(withJSONObject: object))
    }
    func get(_ path: String, headers: [(String, String)] = []) throws -> Response { try send("GET", path, headers: headers) }

    /// Writes `bytes` on a new connection and parses what comes back until the server closes.
    func raw(_ bytes: Data) throws -> Response {
        let fd = try connection()
        defer { close(fd) }
        Self.write(bytes, to: fd)
        return try Self.readAll(fd)
    }

    /// A new connection to the server (a socket to close).
    func connection() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw Failure("connect to port \(port) failed: errno \(errno)") }
        return fd
    }

    static func write(_ slice: Data, to fd: Int32) {
        let bytes = Data(slice)  // indices from 0
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // The server may answer (413) and close before reading the whole body.
            if n <= 0 { break }
            sent += n
        }
    }

    /// Reads until the server closes, and parses the response.
    static func readAll(_ fd: Int32) throws -> Response {
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        return try Self.parse(received)
    }

    static func parse(_ data: Data) throws -> Response {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { throw Failure("no response head in \(data.count) bytes: \(String(decoding: data, as: UTF8.self))") }
        let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw Failure("bad status line \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = try dechunk(body) }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: Data) throws -> Data {
        var out = Data(), i = data.startIndex
        while let lineEnd = data[i...].range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: data[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";")[0]
            guard let size = Int(sizeText, radix: 16) else { throw Failure("bad chunk size \(sizeText)") }
            if size == 0 { break }
            let start = lineEnd.upperBound
            guard start + size <= data.endIndex else { throw Failure("chunk cut short") }
            out.append(data[start..<start + size])
            i = start + size + 2
        }
        return out
    }
}

/// A small corpus and its index, built with the real `kbindex build`.
final class Corpus {
    let folder: URL
    var index: URL { folder.appendingPathComponent(".kbindex") }
    static var env: [String: String?] { ["KBINDEX_MODEL_DIR": InstalledModels.storeRoot.path] }

    static let files: [String: String] = [
        "cooking.md": """
            # Recipes

            ## Lentil soup

            Rinse a cup of red lentils. Soften an onion and two carrots in olive oil, add cumin,
            then the lentils and a litre of stock. Simmer for twenty-five minutes and blend.

            ## Bread

            Mix flour, water, salt and yeast; knead for ten minutes and let the dough rise for an hour.

            ## Pancakes

            Whisk two eggs with milk and flour, rest the batter, and fry thin pancakes in butter.
            """,
        "ops/logging.md": """
            # Operations

            ## Rotating logs

            Configure logrotate to rotate /var/log/app.log weekly, keep eight old files and compress them.

            ## Backups

            The database is copied to the backup disk every night at two o'clock.
            """,
        "notes.txt": "The garden needs watering twice a week in summer.\n\nTomatoes go in after the last frost.\n",
        "tools/backup.py": "import shutil\n\ndef back_up(src, dst):\n    \"\"\"Copy the database file to the backup disk every night.\"\"\"\n    shutil.copy(src, dst)\n",
        "space.html": "<html><head><title>Astronomy</title></head><body><h1>The Moon</h1><p>The Moon orbits the Earth every 27.3 days and always shows the same face.</p></body></html>",
    ]

    init(name: String = "kbserver", files: [String: String] = Corpus.files) throws {
        _ = try InstalledModels.miniLM()
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        for (path, text) in files { try write(path, text) }
    }

    func write(_ path: String, _ text: String) throws {
        let url = folder.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    @discardableResult
    func build(_ extra: [String] = []) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(["build", folder.path, "--quiet"] + extra, environment: Self.env)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    @discardableResult
    func compact() throws -> CLIRunner.Result {
        let r = try CLIRunner.run(["compact", "--index", index.path], environment: Self.env)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// A `KBServerApp` running in this process on an ephemeral port, started and stopped from
/// synchronous test code (the blocking client must not run on the concurrency pool the server
/// needs).
final class RunningServer: @unchecked Sendable {
    let service: RetrievalService
    let url: URL
    let port: Int
    private let task: Task<Void, Never>
    private let finished = DispatchSemaphore(value: 0)
    private(set) var runError: Error?

    var http: RawHTTP { RawHTTP(port: port) }

    init(indexes: [(name: String, url: URL)], configuration: ServerConfiguration = .init(port: 0), options: ServiceOptions = .init()) throws {
        var configuration = configuration
        configuration.port = 0
        service = try RetrievalService(indexes: indexes, options: options)
        let app = try KBServerApp(service: service, configuration: configuration)
        let listening = DispatchSemaphore(value: 0)
        let box = URLBox()
        let finished = self.finished
        let errorBox = ErrorBox()
        task = Task {
            do {
                // Stopped by cancellation (not SIGTERM), which hummingbird logs as errors.
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                try await app.run(handleSignals: false, logger: logger) { url in box.url = url; listening.signal() }
            } catch {
                errorBox.error = error
                listening.signal()
            }
            finished.signal()
        }
        listening.wait()
        guard let url = box.url else { throw errorBox.error ?? RawHTTP.Failure("the server did not start") }
        self.url = url
        self.port = url.port ?? 0
    }

    func stop() {
        task.cancel()
        finished.wait()
    }
}

final class URLBox: @unchecked Sendable { var url: URL? }
final class ErrorBox: @unchecked Sendable { var error: Error? }
