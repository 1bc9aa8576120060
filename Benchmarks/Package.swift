// swift-tools-version:6.0
// kbindex's benchmarks: a package of its own so `swift test` in the root never builds it.
//   cd Benchmarks && swift run -c release kbindex-bench embed [--json]
import PackageDescription

let package = Package(
    name: "kbindex-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "kbindex", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The memory floor's read loop (widest loads the CPU has), in C like the kernels it bounds.
        .target(name: "CBenchStream"),
        .executableTarget(
            name: "kbindex-bench",
            dependencies: [
                "CBenchStream",
                .product(name: "KBEmbed", package: "kbindex"),
                .product(name: "KBKernels", package: "kbindex"),
                .product(name: "COpenBLAS", package: "kbindex"),
                .product(name: "KBSearch", package: "kbindex"),
                .product(name: "KBIngest", package: "kbindex"),
                .product(name: "KBCore", package: "kbindex"),
                .product(name: "KBFormat", package: "kbindex"),
                .product(name: "CLZ4", package: "kbindex"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The load client's parsing (HTTP/1.1 responses, Prometheus text, the server's
        // listening line), without a server: cd Benchmarks && swift test
        .testTarget(name: "kbindex-benchTests", dependencies: ["kbindex-bench"]),
    ]
)
