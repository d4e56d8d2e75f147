#!/usr/bin/env bash
# Installs the GE2E speaker encoder of resemblyzer 0.1.4 (Apache-2.0; speaker diarization) into
# models/speaker-encoder/: the PyPI wheel `resemblyzer` is only downloaded, its PyTorch checkpoint pretrained.pt
# unpacked and its weights converted (scripts/convert-speaker-encoder.py, standard library only) into the plain
# tensor file the engine reads. Nothing Python runs at transcription time. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="models/speaker-encoder"
version="0.1.4"
checkpoint_sha256="39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
[ -s "$dest/ge2e.safetensors" ] && exit 0
echo "setup: installing the resemblyzer $version speaker encoder into $dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "resemblyzer==$version"
python3 -m zipfile -e "$tmp"/[Rr]esemblyzer-*.whl "$tmp/unpacked"
checkpoint="$tmp/unpacked/resemblyzer/pretrained.pt"
echo "$checkpoint_sha256  $checkpoint" | sha256sum --check --quiet
mkdir -p "$dest"
python3 scripts/convert-speaker-encoder.py "$checkpoint" "$dest/ge2e.safetensors.partial"
mv "$dest/ge2e.safetensors.partial" "$dest/ge2e.safetensors"
