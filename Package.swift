// swift-tools-version: 6.2
import PackageDescription

/// Every Ishtar target builds in Swift 6 language mode with strict concurrency and
/// treats every warning as an error, so a warning can never land.
///
/// Release builds check exclusivity statically only. The dynamic checks (a runtime call and
/// a thread-local access set on every access to a class's stored `var`, including those
/// inlined from Foundation's `Data`) were ~6 % of the state machine's time per finality
/// vote; debug builds, which every test runs, keep them, so an overlapping access still
/// traps in `Scripts/test`.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Ishtar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ishtar", targets: ["ishtar"]),
        .library(name: "IshtarCrypto", targets: ["IshtarCrypto"]),
        .library(name: "IshtarBitcoin", targets: ["IshtarBitcoin"]),
        .library(name: "IshtarBitcoinRPC", targets: ["IshtarBitcoinRPC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // C system libraries, found through pkg-config; Debian packages named as providers.
        .systemLibrary(
            name: "CSecp256k1", pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]),
        .systemLibrary(
            name: "CRocksDB", pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        // The process's allocator: RocksDB recommends jemalloc, and it allocates and frees
        // the many small buffers of block execution faster than glibc's malloc.
        .systemLibrary(
            name: "CJemalloc", pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]),

        .target(
            name: "IshtarCrypto",
            dependencies: [
                "CSecp256k1",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarBitcoin",
            dependencies: [
                "IshtarCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarBitcoinRPC",
            dependencies: [
                "CCurl",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarStore",
            dependencies: ["CRocksDB", "CJemalloc"],
            swiftSettings: strict),
        .target(
            name: "IshtarConsensus",
            dependencies: [
                "IshtarCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarChain",
            dependencies: [
                "IshtarCrypto",
                "IshtarBitcoin",
                "IshtarStore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarNode",
            dependencies: [
                "IshtarConsensus",
                "IshtarChain",
                "IshtarStore",
                "IshtarCrypto",
                "IshtarKeys",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarKeys",
            dependencies: [
                "IshtarCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .target(
            name: "IshtarCLI",
            dependencies: [
                "IshtarCrypto",
                "IshtarKeys",
                "IshtarBitcoin",
                "IshtarBitcoinRPC",
                "IshtarNode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "ishtar",
            dependencies: ["IshtarCLI"],
            swiftSettings: strict),
        .executableTarget(
            name: "IshtarBench",
            dependencies: [
                "IshtarCrypto",
                "IshtarBitcoin",
                "IshtarBitcoinRPC",
                "IshtarStore",
                "IshtarConsensus",
                "IshtarChain",
                "IshtarNode",
                "CSecp256k1",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict),

        // Shared by test targets only: the regtest-node launcher, fixtures, seeded randomness.
        .target(
            name: "IshtarTestSupport",
            dependencies: [
                "IshtarBitcoinRPC",
                "IshtarChain",
                "IshtarCrypto",
                "IshtarNode",
                "IshtarStore",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/IshtarTestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "IshtarCryptoTests",
            dependencies: ["IshtarCrypto", "CSecp256k1", "IshtarTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarBitcoinTests",
            dependencies: ["IshtarBitcoin", "IshtarCrypto", "IshtarBitcoinRPC", "IshtarTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarBitcoinRPCTests",
            dependencies: ["IshtarBitcoinRPC", "IshtarTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarStoreTests",
            dependencies: ["IshtarStore", "IshtarTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarConsensusTests",
            dependencies: ["IshtarConsensus", "IshtarCrypto"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarChainTests",
            dependencies: ["IshtarChain", "IshtarCrypto", "IshtarBitcoin", "IshtarStore", "IshtarTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarNodeTests",
            dependencies: [
                "IshtarNode", "IshtarChain", "IshtarConsensus", "IshtarCrypto", "IshtarStore", "IshtarTestSupport",
                "IshtarBitcoin", "IshtarBitcoinRPC", "IshtarCLI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarKeysTests",
            dependencies: ["IshtarKeys", "IshtarCrypto", "IshtarTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "IshtarCLITests",
            dependencies: [
                "IshtarCLI", "IshtarKeys", "IshtarCrypto", "IshtarChain", "IshtarNode", "IshtarStore", "IshtarTestSupport", "IshtarBitcoinRPC", "IshtarBitcoin",
                "ishtar", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
