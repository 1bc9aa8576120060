#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// SIGTERM and SIGINT as a graceful shutdown, armed synchronously: once `install` returns, a
/// signal can no longer kill the process, so the "listening" line printed after it is a promise
/// that SIGTERM drains. (swift-service-lifecycle arms its signal sources asynchronously, after
/// the server may already be listening: a SIGTERM in between killed the process with status 143.)
///
/// The C handler only writes a byte to a pipe; a thread reading the pipe calls the action.
enum ShutdownSignals {
    private static let action = Mutex<(@Sendable () -> Void)?>(nil)
    nonisolated(unsafe) private static var writeFD: Int32 = -1
    private static let installed = Mutex(false)

    /// Makes SIGTERM and SIGINT call `onSignal` (each time one arrives) instead of ending the
    /// process. Replaces the action of an earlier call. Returns false when the pipe cannot be
    /// made (the signals then keep their default action).
    @discardableResult
    static func install(_ onSignal: @escaping @Sendable () -> Void) -> Bool {
        action.withLock { $0 = onSignal }
        return installed.withLock { done in
            if done { return true }
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { return false }
            writeFD = fds[1]
            let readFD = fds[0]
            let thread = Thread {
                var byte: UInt8 = 0
                while read(readFD, &byte, 1) == 1 {
                    ShutdownSignals.action.withLock { $0 }?()
                }
            }
            thread.name = "kbindex-signals"
            thread.start()
            for s in [SIGTERM, SIGINT] {
                _ = signal(s) { _ in
                    var byte: UInt8 = 1
                    _ = write(ShutdownSignals.writeFD, &byte, 1)
                }
            }
            done = true
            return true
        }
    }
}
