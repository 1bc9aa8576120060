import ArgumentParser
import Foundation
import KBCore
import KBFormat
import KBIngest
import KBSearch

/// `--path GLOB` (query): which documents a search may return, read as `PathSelection`
/// says (.gitignore's rules; relative to the current folder when it is inside the indexed
/// folder, as git reads pathspecs).
///
/// The indexed folder is not recorded in the index: it is the folder that holds the index
/// when the index folder has the default name (`FOLDER/.kbindex`, which is also where
/// `--index` is looked for without the option). An index elsewhere (`build --index
/// ~/pydocs.kbindex`) has no known folder, and globs are relative to its root whatever the
/// current folder.
enum PathOption {
    /// The filter for `globs` (nil when there are none). Throws `ValidationError` (usage,
    /// exit status 64) for an invalid glob. `index` is the `--index` option (nil: found
    /// from the current folder). O(globs) plus a few `stat`s.
    static func filter(_ globs: [String], index: String?) throws -> DocumentFilter? {
        guard !globs.isEmpty else { return nil }
        let selection: PathSelection
        do {
            selection = try PathSelection(globs: globs, base: base(index: index) ?? "")
        } catch {
            throw ValidationError(error.description)
        }
        return { segment, document in selection.matches(segment.document(document).path) }
    }

    /// Where relative globs start: the current folder relative to the indexed folder, or nil.
    static func base(index: String?) -> String? {
        if S3IndexOption.isRemote(index) { return nil }  // no indexed folder on this machine
        let cwd = FileManager.default.currentDirectoryPath
        let indexURL = index.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? IndexDirectory.locate(from: URL(fileURLWithPath: cwd))
        guard indexURL.lastPathComponent == IndexDirectory.defaultName else { return nil }
        return PathSelection.base(root: NativePath(indexURL.deletingLastPathComponent().path), current: NativePath(cwd))
    }
}
