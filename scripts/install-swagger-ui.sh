#!/usr/bin/env bash
# Installs Swagger UI 5 (the page at /docs renders the OpenAPI 3.1 document with it) into the server's resources:
#   Sources/StenoServer/Resources/swagger-ui/ — swagger-ui-bundle.js, swagger-ui.css, swagger-ui-standalone-preset.js,
#   favicon-32x32.png and Swagger UI's LICENSE (Apache 2.0). The folder is git-ignored; the build bundles it.
# It ships on PyPI inside the wheel `drf-spectacular-sidecar` (the `swagger-ui-bundle` wheel is Swagger UI 4, which
# cannot render OpenAPI 3.1); pip only downloads it, and just those files are copied out. Without them the server
# serves the static reference page at /docs. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="Sources/StenoServer/Resources/swagger-ui"
version="2026.10.1"
files=(swagger-ui-bundle.js swagger-ui.css swagger-ui-standalone-preset.js favicon-32x32.png)
installed=1
for f in "${files[@]}"; do
    [ -s "$dest/$f" ] || installed=0
done
# The version installed is recorded, so that a change of the pin replaces the files.
[ "$(cat "$dest/VERSION" 2>/dev/null || true)" = "drf-spectacular-sidecar $version" ] || installed=0
[ "$installed" -eq 1 ] && exit 0
echo "setup: installing Swagger UI (PyPI drf-spectacular-sidecar $version) into $dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "drf-spectacular-sidecar==$version"
python3 -m zipfile -e "$tmp"/drf_spectacular_sidecar-*.whl "$tmp/unpacked"
dist="$tmp/unpacked/drf_spectacular_sidecar/static/drf_spectacular_sidecar/swagger-ui-dist"
mkdir -p "$dest"
for f in "${files[@]}" LICENSE; do
    [ -s "$dist/$f" ] || { echo "setup: the wheel has no swagger-ui-dist/$f" >&2; exit 1; }
    cp "$dist/$f" "$dest/$f.partial"
    mv "$dest/$f.partial" "$dest/$f"
done
echo "drf-spectacular-sidecar $version" > "$dest/VERSION"
