import Foundation
import KBFormat
import KBSearch

/// How the commands that read an index find and open it.
enum IndexOpening {
    /// The index folder for `--index` (nil: the nearest `.kbindex` in the current folder or
    /// a parent), opened. Errors are one line that says what to do, as `CLIError`.
    static func open(_ option: String?) throws -> IndexDirectory {
        let url = option.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? IndexDirectory.locate(from: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        do {
            return try IndexDirectory(url: url)
        } catch let error as SegmentError {
            throw CLIError("\(error): rebuild the index with 'kbindex build'")
        } catch {
            throw CLIError(error)
        }
    }
}
