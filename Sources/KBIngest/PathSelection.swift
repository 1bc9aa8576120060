import KBCore

/// The documents a set of path globs selects (`kbindex query --path`), read as git reads
/// `.gitignore` patterns and rg its `--glob`s, and relative to a folder inside the indexed
/// one as git reads pathspecs:
///
/// - a glob without '/' (a trailing one aside) matches a name at any depth below `base`:
///   "*.md" selects "notes/deadlines.md";
/// - a glob with '/' is anchored at `base`: "notes/*.md"; leading "./" and "../" move
///   from `base` ("../*.md" from "docs/notes" is "docs/*.md");
/// - a leading '/' anchors at the index root whatever `base` is;
/// - a glob that matches a folder selects everything in it ("notes", "library/*");
///   a trailing '/' matches folders only.
///
/// `base` is the folder, relative to the index root, that relative globs start from ("" for
/// the root; see `base(root:current:)`). A path is selected when any glob selects it.
public struct PathSelection: Sendable {
    private struct Rule: Sendable {
        /// Anchored: the glob matches a whole path from the root (`base` already prefixed);
        /// else it matches one component below `base`.
        let glob: Glob
        let anchored: Bool
        /// Folder part of the root-relative path every match lies under ("" for any).
        let under: String
        let directoryOnly: Bool
        /// `under` + "/", and its number of components: computed once, not per document.
        let underPrefix: String, underDepth: Int

        init(glob: Glob, anchored: Bool, under: String, directoryOnly: Bool) {
            self.glob = glob
            self.anchored = anchored
            self.under = under
            self.directoryOnly = directoryOnly
            underPrefix = under + "/"
            underDepth = under.split(separator: "/").count
        }
    }

    private let rules: [Rule]

    /// Compiles `globs` (each checked with `Glob(validating:)`) relative to `base`. Throws
    /// `IngestError` for an invalid glob, or one whose "../" climbs above the index root.
    /// O(total length).
    public init(globs: [String], base: String = "") throws(IngestError) {
        let baseParts = base.split(separator: "/").map(String.init).filter { !$0.isEmpty && $0 != "." }
        var rules: [Rule] = []
        for original in globs {
            if original.isEmpty { throw IngestError("invalid glob '': it is empty") }
            var g = original
            var directoryOnly = false
            while g.count > 1 && g.hasSuffix("/") { g.removeLast(); directoryOnly = true }
            var parts: [String]
            var anchored: Bool
            if g.hasPrefix("/") {
                g.removeFirst()
                parts = []
                anchored = true
            } else {
                parts = baseParts
                anchored = g.contains("/")
            }
            // Leading "./" and "../" move from the base.
            while true {
                if g == "." || g == ".." || g.hasPrefix("./") || g.hasPrefix("../") {
                    let up = g.hasPrefix("..")
                    g = String(g.dropFirst(up ? 2 : 1))
                    if g.hasPrefix("/") { g.removeFirst() }
                    if up {
                        guard !parts.isEmpty else {
                            throw IngestError("invalid glob '\(original)': it leads out of the indexed folder")
                        }
                        parts.removeLast()
                    }
                } else { break }
            }
            let under = parts.joined(separator: "/")
            if g.isEmpty {
                // ".", "..", "/": the folder itself, everything in it.
                rules.append(Rule(glob: Glob("**"), anchored: false, under: under, directoryOnly: false))
                continue
            }
            _ = try Glob(validating: g)
            if anchored {
                let prefix = parts.map(Self.escaped).joined(separator: "/")
                rules.append(Rule(glob: Glob(prefix.isEmpty ? g : prefix + "/" + g), anchored: true, under: "", directoryOnly: directoryOnly))
            } else {
                rules.append(Rule(glob: Glob(g), anchored: false, under: under, directoryOnly: directoryOnly))
            }
        }
        self.rules = rules
    }

    /// Whether `relativePath` (a document's path relative to the index root) is selected.
    /// O(globs · components · match).
    public func matches(_ relativePath: String) -> Bool {
        let components = relativePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        return rules.contains { rule in
            var first = 0
            if !rule.under.isEmpty {
                guard relativePath.hasPrefix(rule.underPrefix) else { return false }
                first = rule.underDepth
            }
            let last = components.count - 1
            if rule.anchored {
                // The path itself, or a folder it is in.
                var prefix = ""
                for (i, c) in components.enumerated() {
                    prefix = i == 0 ? c : prefix + "/" + c
                    if rule.directoryOnly && i == last { break }
                    if rule.glob.matches(prefix) { return true }
                }
                return false
            }
            // A name at any depth below `under`: the file's, or a folder's it is in.
            return (first...max(first, last)).contains { i in
                i <= last && !(rule.directoryOnly && i == last) && rule.glob.matches(components[i])
            }
        }
    }

    /// The folder `current` as a path relative to `root` (both resolved, links included),
    /// "" when they are the same folder, or nil when `current` is not inside `root` (then
    /// globs are relative to the root). Any path that cannot be resolved gives nil.
    public static func base(root: NativePath, current: NativePath) -> String? {
        guard let r = try? root.resolved(), let c = try? current.resolved(), c.isInside(r) else { return nil }
        let rest = c.bytes.dropFirst(r.bytes.count).drop { $0 == UInt8(ascii: "/") }
        return String(decoding: rest, as: UTF8.self)
    }

    /// `name` with the glob characters escaped, so a folder named "[draft]" is matched literally.
    private static func escaped(_ name: String) -> String {
        var out = ""
        for ch in name {
            if "*?[]\\".contains(ch) { out.append("\\") }
            out.append(ch)
        }
        return out
    }
}
