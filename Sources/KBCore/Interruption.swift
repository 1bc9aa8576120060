#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, for a long
/// command that can save its work first (`kbindex build`).
///
/// `install()` replaces the default action of both signals by a handler that only records
/// the signal (an atomic store, async-signal-safe) and restores the default action, so a
/// second signal ends the process at once, as it would without the handler. The command
/// polls `receivedSignal` where it can stop.
public enum Interruption {
    private static let flag = Atomic<Int32>(0)

    /// Installs the handler for SIGINT and SIGTERM. Call once, before the work starts.
    public static func install() {
        _ = flag.load(ordering: .relaxed)  // initialize the global before any handler runs
        for s in [SIGINT, SIGTERM] {
            _ = signal(s) { sig in
                Interruption.flag.store(sig, ordering: .relaxed)
                _ = signal(sig, SIG_DFL)  // a second one ends the process
            }
        }
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

    /// Restores the default action of SIGINT and SIGTERM (from here on, a signal ends the
    /// process at once); a signal already received stays recorded.
    public static func uninstall() {
        for s in [SIGINT, SIGTERM] { _ = signal(s, SIG_DFL) }
    }

    /// Crash-test hook: when `KBINDEX_FAULT` is `interrupt@NAME`, the process sends itself
    /// SIGINT the first time it reaches point `NAME` (as a user's Ctrl-C at that moment
    /// would) and goes on. Unset (always, for users), each point is one comparison.
    public static func point(_ name: String) {
        if let armed, armed == "interrupt@" + name, receivedSignal == nil { raise(SIGINT) }
    }

    private static let armed: String? = getenv("KBINDEX_FAULT").map { String(cString: $0) }
}
