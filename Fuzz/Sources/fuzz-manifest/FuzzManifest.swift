// libFuzzer target: Manifest.read(from:) on arbitrary manifest.json bytes. Errors are fine;
// a crash, a trap or an ASan report is a bug. Built and run by scripts/fuzz.sh manifest SECONDS.
//
// Each input is read twice: as is (exercising the sha256 trailer parsing), and with a valid
// trailer `"sha256": "<SHA-256 of the input>"\n}\n` appended, so that mutations reach the JSON
// decoding behind the checksum.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import FuzzSupport
import KBCore
import KBFormat

let manifestDir: String = {
    let d = FuzzFiles.scratch("manifest")
    mkdir(d, 0o700)
    return d
}()
let manifestPath = manifestDir + "/" + Manifest.fileName

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    writeSeedsIfAsked(Seeds.manifests)
    atexit {
        unlink(manifestPath)
        rmdir(manifestDir)
    }
    return 0
}

func readManifest() {
    do { _ = try Manifest.read(from: manifestDir) } catch { checkContract(error, names: manifestDir) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzFiles.write(data, size, to: manifestPath)
    readManifest()
    let body = UnsafeRawBufferPointer(start: data, count: size)
    let sealed = Array(body) + Array("\"sha256\": \"\(Hashing.sha256Hex(body))\"\n}\n".utf8)
    FuzzFiles.write(sealed, to: manifestPath)
    readManifest()
    return 0
}

/// The program's entry point (SwiftPM's name for `main` in this target): runs libFuzzer.
@_cdecl("fuzz_manifest_main")
public func fuzzManifestMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runLibFuzzer(argc, argv) { fuzz($0, $1) }
}
