import Dispatch
import Foundation

/// Independent work spread over the cores (per-question BM25 scoring and fusion of a batch).
public enum Parallel {
    /// `items.map(body)`, the items spread over up to `threads` (nil: every core) workers;
    /// in order. The first error thrown is rethrown. O(items × body) work.
    public static func map<T: Sendable, R>(_ items: [T], threads: Int?, _ body: @Sendable (T) throws -> R) throws -> [R] {
        let workers = min(items.count, max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount))
        if workers <= 1 { return try items.map(body) }
        let out = Results<R>(count: items.count)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: items.count, by: workers) {
                do { out.set(i, try body(items[i])) } catch { out.fail(error) }
            }
        }
        return try out.values()
    }

    /// The slots `map` fills: each index by one worker, read after all have finished.
    private final class Results<R>: @unchecked Sendable {
        private var slots: [R?]
        private var error: Error?
        private let lock = NSLock()
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ r: R) { lock.withLock { slots[i] = r } }
        func fail(_ e: Error) { lock.withLock { if error == nil { error = e } } }
        func values() throws -> [R] {
            if let error { throw error }
            return slots.map { $0! }
        }
    }
}
