// swift-tools-version:6.0
// libFuzzer targets for kbindex's on-disk readers (not part of CI). Run them with
// scripts/fuzz.sh segment|manifest SECONDS from the repository root; that script builds them
// with `-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library` (they link only with
// libFuzzer, which that flag brings).
//
//   fuzz-segment    SegmentReader(path:) on arbitrary bytes, then every record, text, vector, verify();
//                   the same bytes as a deletion file (DeletionSet.decode)
//   fuzz-manifest   Manifest.read(from:) on arbitrary manifest.json bytes
//   FuzzSupport     shared helpers: per-process files under /dev/shm, the seed corpora
import PackageDescription

let package = Package(
    name: "kbindex-fuzz",
    dependencies: [
        // The main package, whatever its folder is called (its identity is the folder name).
        .package(name: "kbindex", path: ".."),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "KBFormat", package: "kbindex"),
                .product(name: "KBCore", package: "kbindex"),
            ]
        ),
        .executableTarget(
            name: "fuzz-segment",
            dependencies: ["FuzzSupport", .product(name: "KBFormat", package: "kbindex"), .product(name: "KBCore", package: "kbindex")]
        ),
        .executableTarget(
            name: "fuzz-manifest",
            dependencies: ["FuzzSupport", .product(name: "KBFormat", package: "kbindex"), .product(name: "KBCore", package: "kbindex")]
        ),
    ]
)
