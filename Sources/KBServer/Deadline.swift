import Synchronization

/// Runs `work` and returns its result, or throws `RequestTimeout` once `timeout` has passed
/// without one (the work is then cancelled and its result, when it comes, dropped). Also ends
/// early with `CancellationError` when the calling task is cancelled. The work runs in its own
/// task, so that a library call that does not check cancellation cannot hold the answer back.
func withDeadline<T: Sendable>(_ timeout: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = Race<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            race.start(continuation)
            let worker = Task {
                do { race.finish(.success(try await work())) } catch { race.finish(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { race.finish(.failure(RequestTimeout())) }
            }
            race.attach(worker: worker, timer: timer)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of work, timer and cancellation to finish resumes the continuation; the others
/// are cancelled.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, Error>?
        var result: Result<T, Error>?
        var worker: Task<Void, Never>?, timer: Task<Void, Never>?
    }
    private let state = Mutex(State())

    func start(_ c: CheckedContinuation<T, Error>) {
        let early: Result<T, Error>? = state.withLock { s in
            if let r = s.result { return r }
            s.continuation = c
            return nil
        }
        if let early { c.resume(with: early) }
    }

    func attach(worker: Task<Void, Never>, timer: Task<Void, Never>) {
        let done = state.withLock { s -> Bool in
            s.worker = worker
            s.timer = timer
            return s.result != nil
        }
        if done { worker.cancel(); timer.cancel() }
    }

    func finish(_ result: Result<T, Error>) {
        let (c, worker, timer): (CheckedContinuation<T, Error>?, Task<Void, Never>?, Task<Void, Never>?) = state.withLock { s in
            guard s.result == nil else { return (nil, nil, nil) }
            s.result = result
            defer { s.continuation = nil }
            return (s.continuation, s.worker, s.timer)
        }
        worker?.cancel()
        timer?.cancel()
        c?.resume(with: result)
    }
}
