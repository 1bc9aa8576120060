import Foundation
import XCTest

/// Where the tests find the real all-MiniLM-L6-v2 weights (90 MB, not in the repository):
/// the model store that `scripts/install-model.sh` fills, i.e. `$KBINDEX_MODEL_DIR`,
/// else `$XDG_CACHE_HOME/kbindex/models`, else `~/.cache/kbindex/models`.
public enum InstalledModels {
    public static var storeRoot: URL {
        let env = ProcessInfo.processInfo.environment
        if let d = env["KBINDEX_MODEL_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("kbindex/models") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kbindex/models")
    }

    /// The MiniLM folder, or a test failure that says how to install it.
    public static func miniLM(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let dir = storeRoot.appendingPathComponent("all-MiniLM-L6-v2")
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) else {
            XCTFail("all-MiniLM-L6-v2 is not installed in \(storeRoot.path): run scripts/install-model.sh (scripts/test.sh does it)", file: file, line: line)
            throw XCTSkip("model missing")
        }
        return dir
    }
}
