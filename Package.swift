// swift-tools-version:6.0
// kbindex: a local knowledge-base indexer for retrieval-augmented generation.
//
// Target map (one folder each under Sources/):
//   COpenBLAS, CCurl, CLZ4  system libraries from Debian (libopenblas-dev, libcurl4-openssl-dev, liblz4-dev)
//   CKBKernels         C kernels with runtime CPU dispatch (softmax, GELU, int8 dot products for the scan)
//   KBCore             syscalls fenced in one place: memory-mapped files, atomic writes, hashing
//   KBHTTP             a small blocking HTTP client over libcurl
//   KBEmbed            the built-in embedding model: tokenizer, safetensors, BERT encoder (no network);
//                      TextEmbedder, what every embedder (local or remote) offers
//   KBRemoteEmbed      embedding models behind an HTTP API: OpenAI-compatible /v1/embeddings, Ollama /api/embed
//   KBFormat           the on-disk index: segment files (int8 vectors, LZ4 text), manifest.json
//   KBModelStore       where models live, and fetching them from the Hugging Face hub over KBHTTP
//   KBIngest           walking a document folder (.gitignore, globs), parsing by structure (Parsers/: text kinds;
//                      Extract/: PDF through poppler, DOCX/ODT/EPUB out of their zips), chunking to a token limit
//   KBKernels          the scan's int8 kernels seen from Swift: which one runs, query batches, fused threshold scan
//   KBObjectStore      S3-compatible object storage over libcurl (AWS Signature V4, multipart, conditional
//                      writes, retries): the ObjectStore protocol and S3Store
//   KBRemoteIndex      an index under s3://bucket/prefix: pulling a generation into a checksum-verified local
//                      cache, pushing new segments and committing the manifest conditionally
//   KBSearch           exact multithreaded top-k over the int8 vectors; Index/: opening an index folder,
//                      known documents for incremental builds, compaction, commits and cleanup
//   KBEval             question files (TSV / JSON lines) and retrieval metrics for `kbindex eval`
//   KBRetrieval        answering questions from opened indexes: the model check, one searcher per index
//                      generation, vector/lexical/hybrid retrieval, hits and chunks as JSON, hot reload,
//                      batching concurrent questions; what query, eval, serve and mcp all call
//   KBServer           `kbindex serve` and `kbindex mcp`: HTTP JSON API (hummingbird 2), MCP tools
//                      (modelcontextprotocol/swift-sdk), auth, limits, metrics, the OpenAPI document
//   kbindex            the command-line tool, one file per subcommand
import PackageDescription

let package = Package(
    name: "kbindex",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kbindex", targets: ["kbindex"]),
        .library(name: "KBEmbed", targets: ["KBEmbed"]),
        .library(name: "KBModelStore", targets: ["KBModelStore"]),
        .library(name: "KBRemoteEmbed", targets: ["KBRemoteEmbed"]),
        .library(name: "KBCore", targets: ["KBCore"]),
        .library(name: "KBFormat", targets: ["KBFormat"]),
        .library(name: "KBIngest", targets: ["KBIngest"]),
        .library(name: "KBSearch", targets: ["KBSearch"]),
        .library(name: "KBKernels", targets: ["KBKernels"]),
        .library(name: "KBRetrieval", targets: ["KBRetrieval"]),
        .library(name: "KBServer", targets: ["KBServer"]),
        .library(name: "KBObjectStore", targets: ["KBObjectStore"]),
        .library(name: "KBRemoteIndex", targets: ["KBRemoteIndex"]),
        // For Benchmarks/, which measures OpenBLAS itself as the encoder's baseline.
        .library(name: "COpenBLAS", targets: ["COpenBLAS"]),
        // For Benchmarks/, which compares segment text blocks with LZ4 on the whole text.
        .library(name: "CLZ4", targets: ["CLZ4"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        // Hot kernels in C: per-ISA variants (AVX-512/VNNI, AVX2, NEON, scalar), runtime dispatch.
        .target(name: "CKBKernels"),
        .target(
            name: "KBCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "KBHTTP",
            dependencies: ["CCurl", "KBCore"]
        ),
        .target(
            name: "KBEmbed",
            dependencies: ["COpenBLAS", "CKBKernels", "KBCore"]
        ),
        // Embedding models behind an HTTP API (OpenAI-compatible, Ollama), over KBHTTP.
        .target(
            name: "KBRemoteEmbed",
            dependencies: ["KBEmbed", "KBHTTP", "KBCore"]
        ),
        .target(
            name: "KBFormat",
            dependencies: ["CLZ4", "KBCore"]
        ),
        .target(
            name: "KBModelStore",
            dependencies: ["KBCore", "KBHTTP"]
        ),
        // Token counting is injected as a closure, so ingestion does not depend on KBEmbed.
        // PDF text comes from poppler-utils run as a separate process (GPL, and a crash there
        // costs one file); DOCX/ODT/EPUB are zip files read in memory with ZIPFoundation.
        .target(
            name: "KBIngest",
            dependencies: ["KBCore", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        // Swift face of the scan kernels: the dispatch choice and prepared query batches.
        .target(
            name: "KBKernels",
            dependencies: ["CKBKernels"]
        ),
        .target(
            name: "KBSearch",
            dependencies: ["KBFormat", "KBKernels", "KBCore"]
        ),
        // S3-compatible object storage: SigV4 signing by libcurl (CURLOPT_AWS_SIGV4), over KBHTTP.
        .target(
            name: "KBObjectStore",
            dependencies: ["KBHTTP", "KBCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // An index in object storage: immutable segment objects plus one conditionally written
        // manifest; readers mirror a generation into a local cache and memory-map it.
        .target(
            name: "KBRemoteIndex",
            dependencies: ["KBObjectStore", "KBFormat", "KBSearch", "KBCore"]
        ),
        // Question files and retrieval metrics for `kbindex eval` (no I/O beyond parsing bytes).
        .target(name: "KBEval", dependencies: ["KBCore"]),
        // Answering questions: what query, eval, serve and mcp share (no argument parsing, no printing).
        .target(
            name: "KBRetrieval",
            dependencies: ["KBEmbed", "KBRemoteEmbed", "KBModelStore", "KBCore", "KBFormat", "KBIngest", "KBSearch", "KBEval"]
        ),
        // The server faces: HTTP JSON and MCP over one RetrievalService.
        .target(
            name: "KBServer",
            dependencies: [
                "KBRetrieval", "KBSearch",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "kbindex",
            dependencies: [
                "KBEmbed", "KBRemoteEmbed", "KBModelStore", "KBCore", "KBFormat", "KBIngest", "KBSearch", "KBEval", "KBRetrieval", "KBServer",
                "KBObjectStore", "KBRemoteIndex",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "KBTestSupport",
            dependencies: ["KBCore"],
            path: "Tests/KBTestSupport"
        ),
        .testTarget(name: "KBCoreTests", dependencies: ["KBCore", "KBTestSupport"]),
        .testTarget(name: "KBHTTPTests", dependencies: ["KBHTTP", "KBTestSupport"]),
        .testTarget(name: "KBModelStoreTests", dependencies: ["KBModelStore", "KBHTTP", "KBTestSupport"]),
        .testTarget(name: "KBKernelsTests", dependencies: ["CKBKernels", "KBKernels", "KBTestSupport"]),
        .testTarget(name: "KBEmbedTests", dependencies: ["KBEmbed", "CKBKernels", "KBCore", "KBTestSupport"]),
        .testTarget(name: "KBRemoteEmbedTests", dependencies: ["KBRemoteEmbed", "KBEmbed", "KBHTTP", "KBTestSupport"]),
        .testTarget(name: "KBFormatTests", dependencies: ["KBFormat", "KBTestSupport"]),
        .testTarget(name: "KBIngestTests", dependencies: ["KBIngest", "KBEmbed", "KBTestSupport", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(name: "KBEvalTests", dependencies: ["KBEval", "KBCore"]),
        .testTarget(name: "KBSearchTests", dependencies: ["KBSearch", "KBKernels", "KBFormat", "KBCore", "KBTestSupport"]),
        .testTarget(name: "KBObjectStoreTests", dependencies: ["KBObjectStore", "KBHTTP", "KBCore", "KBTestSupport"]),
        .testTarget(name: "KBRemoteIndexTests", dependencies: ["KBRemoteIndex", "KBObjectStore", "KBSearch", "KBFormat", "KBCore", "KBTestSupport"]),
        .testTarget(name: "KBRetrievalTests", dependencies: ["KBRetrieval", "KBSearch", "KBFormat", "KBEmbed", "KBTestSupport"]),
        .testTarget(
            name: "KBServerTests",
            dependencies: [
                "KBServer", "KBRetrieval", "KBTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "KBIndexCLITests",
            dependencies: ["KBTestSupport", "KBEmbed", "KBModelStore", "KBFormat", "KBCore", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
    ]
)
