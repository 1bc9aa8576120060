import Foundation
import KBRetrieval
import Logging
import MCP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `kbindex mcp`: MCP over standard input and output.
public enum MCPStdio {
    /// Serves the tools of `service` over stdin/stdout until stdin closes (then returns, after
    /// answering every request already read).
    ///
    /// Standard output carries only MCP messages: the protocol writes to a duplicate of
    /// descriptor 1, and descriptor 1 itself is pointed at standard error, so that anything
    /// else the process prints (a library's note) cannot corrupt the stream. SIGPIPE is ignored:
    /// a client that goes away is a write error, not a killed process.
    public static func run(service: RetrievalService, limits: MCPTools.Limits = .init(), logger: Logger? = nil) async throws {
        let logger = logger ?? MCPServerFactory.stderrLogger()
        signal(SIGPIPE, SIG_IGN)
        fflush(nil)
        let protocolOut = dup(STDOUT_FILENO)
        guard protocolOut >= 0 else { throw MCPError.internalError("cannot duplicate standard output (errno \(errno))") }
        dup2(STDERR_FILENO, STDOUT_FILENO)
        defer {
            // Give descriptor 1 back (the protocol's copy closes), so that whatever follows
            // prints where it used to.
            fflush(nil)
            dup2(protocolOut, STDOUT_FILENO)
            close(protocolOut)
        }
        let stdio = StdioTransport(input: .standardInput, output: .init(rawValue: protocolOut), logger: logger)
        let transport = DrainingTransport(stdio, logger: logger)
        let server = await MCPServerFactory.makeServer(service: service, limits: limits)
        try await server.start(transport: transport)
        await server.waitUntilCompleted()
        await server.stop()
    }
}

/// A transport that, when its input ends, waits until every request read has been answered
/// before it ends the stream the server reads: the SDK's server handles each request in its own
/// task and stops reading at the end of input, so without this a client that writes its
/// requests and closes stdin (`kbindex mcp < requests.jsonl`) could lose the last answers.
///
/// Requests are matched to responses by JSON-RPC id; a request cancelled by
/// `notifications/cancelled` counts as answered. The wait is bounded (`drainLimit`).
actor DrainingTransport: Transport {
    nonisolated let logger: Logger
    private let inner: any Transport
    private var pending: Set<String> = []
    private var drained: [CheckedContinuation<Void, Never>] = []
    /// The longest wait for answers after the input ended.
    let drainLimit: Duration

    init(_ inner: any Transport, logger: Logger, drainLimit: Duration = .seconds(60)) {
        self.inner = inner
        self.logger = logger
        self.drainLimit = drainLimit
    }

    func connect() async throws { try await inner.connect() }

    func disconnect() async {
        await inner.disconnect()
        resumeDrained()
    }

    func send(_ data: Data) async throws {
        // Count the answer only once it is written: the input may end meanwhile.
        try await inner.send(data)
        for message in Self.messages(in: data) where message["method"] == nil {
            if let id = Self.key(message["id"]) { pending.remove(id) }
        }
        if pending.isEmpty { resumeDrained() }
    }

    func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, Swift.Error>.makeStream()
        let task = Task {
            do {
                for try await data in await inner.receive() {
                    noteIncoming(data)
                    continuation.yield(data)
                }
                await waitUntilAnswered()
                continuation.finish()
            } catch {
                await waitUntilAnswered()
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func noteIncoming(_ data: Data) {
        for message in Self.messages(in: data) {
            guard let method = message["method"] as? String else { continue }
            if let id = Self.key(message["id"]) {
                pending.insert(id)
            } else if method == "notifications/cancelled",
                      let params = message["params"] as? [String: Any],
                      let id = Self.key(params["requestId"]) {
                pending.remove(id)
            }
        }
        if pending.isEmpty { resumeDrained() }
    }

    private func waitUntilAnswered() async {
        guard !pending.isEmpty else { return }
        let limit = drainLimit
        let timeout = Task { [weak self] in
            try? await Task.sleep(for: limit)
            await self?.giveUp()
        }
        await withCheckedContinuation { drained.append($0) }
        timeout.cancel()
    }

    private func giveUp() {
        if !pending.isEmpty {
            logger.warning("input ended with \(pending.count) unanswered request(s); stopping")
            pending.removeAll()
        }
        resumeDrained()
    }

    private func resumeDrained() {
        let waiting = drained
        drained.removeAll()
        for c in waiting { c.resume() }
    }

    /// The JSON-RPC objects in `data`: one, or the members of a batch.
    static func messages(in data: Data) -> [[String: Any]] {
        guard let json = try? JSONSerialization.jsonObject(with: data) else { return [] }
        if let object = json as? [String: Any] { return [object] }
        if let array = json as? [Any] { return array.compactMap { $0 as? [String: Any] } }
        return []
    }

    /// A JSON-RPC id as a set key: strings and numbers kept apart ("s:1" is not "n:1").
    static func key(_ id: Any?) -> String? {
        switch id {
        case let s as String: return "s:" + s
        case let n as NSNumber: return "n:" + n.stringValue
        default: return nil
        }
    }
}
