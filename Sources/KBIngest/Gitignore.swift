/// The rules of one `.gitignore` file (or `.git/info/exclude`), relative to the folder that holds it.
struct GitignoreFile: Sendable {
    struct Rule: Sendable {
        let glob: Glob
        /// Pattern had a '/' at the start or in the middle: matches the path relative to `base`.
        let anchored: Bool
        let negated: Bool
        /// Pattern ended with '/': matches folders only.
        let directoryOnly: Bool
    }

    /// The folder (relative to the walk's root, "" for the root) that holds the file.
    let base: String
    let rules: [Rule]

    /// Parses gitignore text: blank lines and '#' comments skipped, `\#` and `\!` escapes,
    /// trailing spaces dropped unless escaped, `!` negation, trailing `/` for folders only,
    /// leading or middle `/` anchoring to `base`.
    init(base: String, text: String) {
        self.base = base
        var rules: [Rule] = []
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = String(raw)
            if line.hasSuffix("\r") { line.removeLast() }
            // Trailing spaces are ignored unless escaped with a backslash.
            while line.hasSuffix(" ") && !line.hasSuffix("\\ ") { line.removeLast() }
            if line.hasSuffix("\\ ") { line = String(line.dropLast(2)) + " " }
            if line.isEmpty || line.hasPrefix("#") { continue }
            var negated = false
            if line.hasPrefix("!") { negated = true; line.removeFirst() }
            else if line.hasPrefix("\\!") || line.hasPrefix("\\#") { line.removeFirst() }
            var directoryOnly = false
            while line.hasSuffix("/") { directoryOnly = true; line.removeLast() }
            if line.isEmpty { continue }
            var anchored = line.contains("/")
            if line.hasPrefix("/") { line.removeFirst(); anchored = true }
            if line.isEmpty { continue }
            rules.append(Rule(glob: Glob(line), anchored: anchored, negated: negated, directoryOnly: directoryOnly))
        }
        self.rules = rules
    }

    /// nil when no rule matches; else whether the last matching rule ignores the path.
    func decision(relativePath: String, isDirectory: Bool) -> Bool? {
        let local: String
        if base.isEmpty { local = relativePath }
        else if relativePath.hasPrefix(base + "/") { local = String(relativePath.dropFirst(base.count + 1)) }
        else { return nil }
        let name = local.split(separator: "/").last.map(String.init) ?? local
        for rule in rules.reversed() {
            if rule.directoryOnly && !isDirectory { continue }
            if rule.glob.matches(rule.anchored ? local : name) { return !rule.negated }
        }
        return nil
    }
}

/// The `.gitignore` files in force in one folder: its own and its ancestors' (deepest last).
struct GitignoreStack: Sendable {
    var files: [GitignoreFile] = []

    /// Whether `relativePath` is ignored: the deepest file with a matching rule decides, and
    /// within a file the last matching rule. (Files inside an ignored folder are never
    /// reached, since the walk does not enter it, as in git.)
    func isIgnored(_ relativePath: String, isDirectory: Bool) -> Bool {
        for file in files.reversed() {
            if let d = file.decision(relativePath: relativePath, isDirectory: isDirectory) { return d }
        }
        return false
    }
}
