#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, for a long
/// command that can save its work first (`kbindex build`).
///
/// `install()` replaces the action of both signals by a handler that only records the signal
/// (an atomic store, async-signal-safe) and, through `SA_RESETHAND`, puts back the default
/// action, so a second signal ends the process at once, as it would without the handler. A
/// signal the process started with ignored (a background job of a script, `nohup`-like
/// wrappers) stays ignored. The command polls `receivedSignal` where it can stop.
public enum Interruption {
    private static let flag = Atomic<Int32>(0)
    /// The actions `install()` replaced, for `uninstall()`. Touched only by those two, which
    /// the command calls from its main thread.
    nonisolated(unsafe) private static var replaced: [(Int32, sigaction)] = []

    /// Installs the handler for SIGINT and SIGTERM, leaving an inherited "ignore" alone. Call
    /// once, before the work starts.
    public static func install() {
        _ = flag.load(ordering: .relaxed)  // initialize the global before any handler runs
        for s in [SIGINT, SIGTERM] {
            var old = sigaction()
            guard sigaction(s, nil, &old) == 0, !isIgnored(old) else { continue }
            var new = sigaction()
            sigemptyset(&new.sa_mask)
            new.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
            #if canImport(Glibc)
            new.__sigaction_handler.sa_handler = { sig in Interruption.flag.store(sig, ordering: .relaxed) }
            #else
            new.__sigaction_u.__sa_handler = { sig in Interruption.flag.store(sig, ordering: .relaxed) }
            #endif
            if sigaction(s, &new, nil) == 0 { replaced.append((s, old)) }
        }
    }

    private static func isIgnored(_ action: sigaction) -> Bool {
        #if canImport(Glibc)
        let handler = action.__sigaction_handler.sa_handler
        #else
        let handler = action.__sigaction_u.__sa_handler
        #endif
        return handler.map { unsafeBitCast($0, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) } ?? false
    }

    /// The signal received since `install()`, or nil. One atomic load.
    public static var receivedSignal: Int32? {
        let s = flag.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    /// True exactly once after a signal was received (to say "stopping…" once, whichever
    /// thread notices first); false before and after. One atomic operation.
    public static func firstNotice() -> Bool {
        guard receivedSignal != nil else { return false }
        return !noticed.exchange(true, ordering: .relaxed)
    }

    private static let noticed = Atomic<Bool>(false)

    /// Puts back the actions `install()` replaced (from here on, a signal does what it did
    /// before: usually it ends the process at once); a signal already received stays recorded.
    public static func uninstall() {
        for (s, old) in replaced {
            var action = old
            _ = sigaction(s, &action, nil)
        }
        replaced = []
    }

    /// Crash-test hook: when `KBINDEX_FAULT` is `interrupt@NAME`, the process sends itself
    /// SIGINT the first time it reaches point `NAME` (as a user's Ctrl-C at that moment
    /// would) and goes on; when the handler is not installed (the test runner started it with
    /// SIGINT ignored) it records the signal as the handler would. Unset (always, for users),
    /// each point is one comparison.
    public static func point(_ name: String) {
        guard let armed, armed == "interrupt@" + name, receivedSignal == nil else { return }
        if replaced.contains(where: { $0.0 == SIGINT }) { raise(SIGINT) } else { flag.store(SIGINT, ordering: .relaxed) }
    }

    private static let armed: String? = getenv("KBINDEX_FAULT").map { String(cString: $0) }
}
