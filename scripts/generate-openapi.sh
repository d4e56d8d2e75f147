#!/usr/bin/env bash
# Regenerates Sources/StenoServer/Generated/{Types,Server}.swift from the OpenAPI document with
# swift-openapi-generator. The generated files are committed, so ordinary builds never compile the generator.
# Run it (`make generate`) after every change to Sources/StenoServer/Resources/openapi.yaml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${STENO_GENERATOR_DIR:-$root/.build-openapi-generator}"
# Where the code goes: the committed folder, or another one (scripts/check-generated.sh compares the two).
output="${STENO_GENERATED_DIR:-$root/Sources/StenoServer/Generated}"
mkdir -p "$work"
cat > "$work/Package.swift" <<'SWIFT'
// swift-tools-version: 6.0
import PackageDescription
// A throwaway package whose only purpose is to build the generator's command-line tool.
let package = Package(
    name: "openapi-generator-runner",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.0")],
    targets: []
)
SWIFT
swift run -c release --package-path "$work" swift-openapi-generator generate \
    --config "$root/scripts/openapi-generator-config.yaml" \
    --output-directory "$output" \
    "$root/Sources/StenoServer/Resources/openapi.yaml"
