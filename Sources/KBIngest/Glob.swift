/// A compiled glob pattern over '/'-separated relative paths, with the wildcards of
/// `.gitignore`: `*` (any run of characters except '/'), `?` (one character except '/'),
/// `[abc]`, `[a-z]`, `[!a-z]` / `[^a-z]` (character classes), `\x` (a literal x) and `**`
/// as a whole path segment (`**/x`, `a/**/b`, `a/**`: zero or more folders).
public struct Glob: Sendable, Equatable {
    /// The pattern as written.
    public let pattern: String
    private let scalars: [Unicode.Scalar]
    /// More than one run of '*': plain backtracking could try exponentially many splits
    /// (`*a*a*a*b` against a long name), so `matches` remembers the failed positions.
    private let remembersFailures: Bool

    /// Compiles `pattern` leniently, as git reads `.gitignore`: nothing fails, a '[' without
    /// its ']' is a literal '[', and so is a trailing '\'. For patterns a user types
    /// (`--include`, `--exclude`, `--path`) use `init(validating:)`, which says what is wrong.
    public init(_ pattern: String) {
        self.pattern = pattern
        scalars = Array(pattern.unicodeScalars)
        var runs = 0
        for (i, c) in scalars.enumerated() where c == "*" && (i == 0 || scalars[i - 1] != "*") { runs += 1 }
        remembersFailures = runs > 1
    }

    /// Compiles `pattern`, or throws `IngestError` naming the first problem: an empty
    /// pattern, a '[' with no closing ']', a reversed range such as `[z-a]`, or a trailing
    /// '\' with nothing to escape. O(pattern).
    public init(validating pattern: String) throws(IngestError) {
        if let problem = Glob.problem(in: Array(pattern.unicodeScalars)) {
            throw IngestError("invalid glob '\(pattern)': \(problem)")
        }
        self.init(pattern)
    }

    /// The first syntax error in `p`, in words; nil when there is none.
    private static func problem(in p: [Unicode.Scalar]) -> String? {
        if p.isEmpty { return "it is empty" }
        var i = 0
        while i < p.count {
            switch p[i] {
            case "\\":
                if i + 1 == p.count { return "it ends with a '\\' that escapes nothing (write '\\\\' for a backslash)" }
                i += 2
            case "[":
                var j = i + 1
                if j < p.count && (p[j] == "!" || p[j] == "^") { j += 1 }
                var first = true
                var closed = false
                while j < p.count {
                    var lo = p[j]
                    if lo == "]" && !first { closed = true; break }
                    first = false
                    if lo == "\\" && j + 1 < p.count { j += 1; lo = p[j] }
                    if j + 2 < p.count && p[j + 1] == "-" && p[j + 2] != "]" {
                        var hi = p[j + 2]
                        if hi == "\\" && j + 3 < p.count { hi = p[j + 3]; j += 1 }
                        if hi.value < lo.value { return "the range '\(lo)-\(hi)' is reversed (write '[\(hi)-\(lo)]')" }
                        j += 2
                    }
                    j += 1
                }
                if !closed { return "'[' has no closing ']' (write '\\[' for a literal '[')" }
                i = j + 1
            default:
                i += 1
            }
        }
        return nil
    }

    /// Whether the glob matches the whole of `path`. O(pattern × path) steps at most for a
    /// pattern with several '*' runs (each (pattern, path) position fails at most once),
    /// O(pattern + path²) for one.
    public func matches(_ path: String) -> Bool {
        let s = Array(path.unicodeScalars)
        var failed: [Bool]? = remembersFailures ? [Bool](repeating: false, count: (scalars.count + 1) * (s.count + 1)) : nil
        return Glob.match(scalars, 0, s, 0, &failed)
    }

    /// `matchFrom`, remembering in `failed` (when given) the positions that do not match.
    private static func match(_ p: [Unicode.Scalar], _ pi: Int, _ s: [Unicode.Scalar], _ si: Int, _ failed: inout [Bool]?) -> Bool {
        let key = pi * (s.count + 1) + si
        if failed?[key] == true { return false }
        let matched = matchFrom(p, pi, s, si, &failed)
        if !matched { failed?[key] = true }
        return matched
    }

    private static func matchFrom(_ p: [Unicode.Scalar], _ pi0: Int, _ s: [Unicode.Scalar], _ si0: Int, _ failed: inout [Bool]?) -> Bool {
        var pi = pi0, si = si0
        while pi < p.count {
            let c = p[pi]
            switch c {
            case "*":
                var end = pi
                while end < p.count && p[end] == "*" { end += 1 }
                let atSegmentStart = pi == 0 || p[pi - 1] == "/"
                if end - pi >= 2 && atSegmentStart && (end == p.count || p[end] == "/") {
                    // '**' as a whole segment.
                    if end == p.count { return true }
                    // '**/': zero folders, or any number of whole folders.
                    if match(p, end + 1, s, si, &failed) { return true }
                    var k = si
                    while k < s.count {
                        if s[k] == "/" && match(p, end + 1, s, k + 1, &failed) { return true }
                        k += 1
                    }
                    return false
                }
                // One star (or several in a row inside a segment): any run without '/'.
                var k = si
                while true {
                    if match(p, end, s, k, &failed) { return true }
                    if k >= s.count || s[k] == "/" { return false }
                    k += 1
                }
            case "?":
                guard si < s.count, s[si] != "/" else { return false }
                pi += 1; si += 1
            case "[":
                if let (matched, next) = matchClass(p, pi, si < s.count ? s[si] : nil) {
                    guard si < s.count, s[si] != "/", matched else { return false }
                    pi = next; si += 1
                } else {
                    guard si < s.count, s[si] == "[" else { return false }
                    pi += 1; si += 1
                }
            case "\\" where pi + 1 < p.count:
                guard si < s.count, s[si] == p[pi + 1] else { return false }
                pi += 2; si += 1
            default:
                guard si < s.count, s[si] == c else { return false }
                pi += 1; si += 1
            }
        }
        return si == s.count
    }

    /// Parses the class at `p[start] == "["`; nil when it has no closing ']' (then '[' is literal).
    private static func matchClass(_ p: [Unicode.Scalar], _ start: Int, _ ch: Unicode.Scalar?) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count && (p[i] == "!" || p[i] == "^") { negate = true; i += 1 }
        var found = false
        var first = true
        while i < p.count {
            var lo = p[i]
            if lo == "]" && !first { break }
            first = false
            if lo == "\\" && i + 1 < p.count { i += 1; lo = p[i] }
            var hi = lo
            if i + 2 < p.count && p[i + 1] == "-" && p[i + 2] != "]" {
                hi = p[i + 2]
                if hi == "\\" && i + 3 < p.count { hi = p[i + 3]; i += 1 }
                i += 2
            }
            if let ch, lo.value <= ch.value && ch.value <= hi.value { found = true }
            i += 1
        }
        guard i < p.count else { return nil }
        return (found != negate, i + 1)
    }
}

/// Matching rules shared by `IngestOptions.include`/`exclude` and `.gitignore` lines: a
/// pattern without '/' (other than a trailing one) matches the last path component at any
/// depth ("*.txt" matches "a/b/c.txt"); a pattern with '/' matches the whole relative path.
struct PathPattern: Sendable {
    let glob: Glob
    let anchored: Bool

    init(_ pattern: String) {
        var p = pattern
        if p.hasPrefix("/") { p.removeFirst(); anchored = true } else { anchored = p.contains("/") }
        glob = Glob(p)
    }

    /// As `init(_:)`, but throws `IngestError` for a pattern `Glob(validating:)` refuses.
    init(validating pattern: String) throws(IngestError) {
        _ = try Glob(validating: pattern)
        self.init(pattern)
    }

    func matches(_ relativePath: String) -> Bool {
        if anchored { return glob.matches(relativePath) }
        let name = relativePath.split(separator: "/").last.map(String.init) ?? relativePath
        return glob.matches(name)
    }

    /// Whether everything under folder `relativePath` is matched (so the walk need not enter it):
    /// the folder itself matches, or the pattern is "<prefix>/**" and the prefix matches it.
    func coversDirectory(_ relativePath: String) -> Bool {
        if matches(relativePath) { return true }
        if anchored && glob.pattern.hasSuffix("/**") {
            return Glob(String(glob.pattern.dropLast(3))).matches(relativePath)
        }
        return false
    }
}
