#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// How long to wait between attempts, and how to wait: exponential backoff with jitter, shared
/// by the remote embedders (KBRemoteEmbed) and the object store (KBObjectStore). Tests replace
/// `sleep` with one that records the delays and returns at once.
public struct RetryPolicy: Sendable {
    /// The first retry waits `baseDelay` seconds (times the jitter), each later one twice as long...
    public var baseDelay: Double = 0.5
    /// ...up to this many seconds.
    public var maxDelay: Double = 30
    /// The most seconds a server's `Retry-After` makes kbindex wait.
    public var retryAfterCap: Double = 120
    /// Waits `seconds`, or less when `shouldStop` turns true; polls it at least every 50 ms.
    public var sleep: @Sendable (_ seconds: Double, _ shouldStop: @Sendable () -> Bool) -> Void = RetryPolicy.sleepPolling
    /// A number in 0..<1 for the jitter.
    public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

    public init(
        baseDelay: Double = 0.5, maxDelay: Double = 30, retryAfterCap: Double = 120,
        sleep: @escaping @Sendable (_ seconds: Double, _ shouldStop: @Sendable () -> Bool) -> Void = RetryPolicy.sleepPolling,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.retryAfterCap = retryAfterCap
        self.sleep = sleep
        self.random = random
    }

    /// The wait before retry `retry` (0 for the first) without a `Retry-After`: exponential,
    /// capped, with "equal jitter" (between half and all of the exponential delay), so that
    /// concurrent requests that failed together do not retry together.
    public func backoff(retry: Int) -> Double {
        let exponential = min(maxDelay, baseDelay * pow(2, Double(min(retry, 60))))
        return exponential * (0.5 + 0.5 * random())
    }

    public static func sleepPolling(_ seconds: Double, _ shouldStop: @Sendable () -> Bool) {
        let deadline = Date().addingTimeInterval(max(0, seconds))
        while !shouldStop() {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return }
            usleep(useconds_t(min(left, 0.05) * 1_000_000))
        }
    }

    /// The delay a `Retry-After` value asks for, in seconds (RFC 9110: a number of seconds,
    /// or an HTTP date, of which a past one means now); nil when it is neither.
    public static func retryAfter(_ value: String, now: Date = Date()) -> Double? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Double(text), seconds.isFinite {
            return max(0, seconds)
        }
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = format
            if let date = f.date(from: text) {
                return max(0, date.timeIntervalSince(now))
            }
        }
        return nil
    }
}
