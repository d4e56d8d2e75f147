#!/usr/bin/env bash
# Fails when the committed OpenAPI code (Sources/StenoServer/Generated) differs from what swift-openapi-generator
# makes of Sources/StenoServer/Resources/openapi.yaml: after editing the document, run `make generate` and commit.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
STENO_GENERATED_DIR="$fresh" "$root/scripts/generate-openapi.sh" >"$fresh.log" 2>&1 || { cat "$fresh.log" >&2; rm -f "$fresh.log"; exit 1; }
rm -f "$fresh.log"
if ! diff -ru "$root/Sources/StenoServer/Generated" "$fresh" >&2; then
    echo "check-generated: Sources/StenoServer/Generated is not what openapi.yaml generates; run 'make generate' and commit" >&2
    exit 1
fi
echo "check-generated: the generated OpenAPI code matches openapi.yaml"
