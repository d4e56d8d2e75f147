// swift-tools-version: 6.0
import PackageDescription

// The Whisper engine as a package of its own: it has no server dependencies, and it builds and tests in a
// minute without the server's dependency set. The root package depends on it by path.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "StenoEngine",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "StenoEngine", targets: ["StenoEngine"]),
        .library(name: "StenoTranscribeCommand", targets: ["StenoTranscribeCommand"]),
        .executable(name: "steno-transcribe", targets: ["steno-transcribe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
    ],
    targets: [
        // OpenBLAS (Debian libopenblas-dev) for every matrix product of the engine.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // zlib, for the compression ratio that flags repetitive (hallucinated) decodings.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Hand-written kernels where a BLAS call is the wrong shape: the float16 vocabulary projection.
        .target(name: "CStenoKernels"),
        // The few system calls glibc declares only under _GNU_SOURCE (helper processes, spool files).
        .target(name: "CStenoSystem"),
        // Whisper inference on CTranslate2-format models; audio decoding through ffmpeg.
        .target(
            name: "StenoEngine",
            dependencies: ["COpenBLAS", "CZlib", "CStenoKernels", "CStenoSystem"],
            swiftSettings: swiftSettings
        ),
        // `steno transcribe`: offline transcription from the command line.
        .target(
            name: "StenoTranscribeCommand",
            dependencies: [
                "StenoEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The same command as a stand-alone binary, for engine work without building the server.
        .executableTarget(
            name: "steno-transcribe",
            dependencies: ["StenoTranscribeCommand"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StenoEngineTests",
            dependencies: ["StenoEngine"],
            // Reference numbers (scripts/silero-reference.py wrote them once), read by path from the tests.
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
