#!/usr/bin/env bash
# Installs Silero VAD v6.2 (16 kHz) into models/silero-vad/: the PyPI wheel `silero-vad` is only downloaded, its
# ONNX model unpacked and its weights converted (scripts/convert-silero-vad.py) into the plain tensor file the
# engine reads. Nothing Python runs at transcription time. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="models/silero-vad"
version="6.2.3"
onnx_sha256="7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49"
[ -s "$dest/silero_vad.safetensors" ] && exit 0
echo "setup: installing Silero VAD $version into $dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" "silero-vad==$version"
python3 -m zipfile -e "$tmp"/silero_vad-*.whl "$tmp/unpacked"
onnx="$tmp/unpacked/silero_vad/data/silero_vad_16k_op15.onnx"
echo "$onnx_sha256  $onnx" | sha256sum --check --quiet
mkdir -p "$dest"
python3 scripts/convert-silero-vad.py "$onnx" "$dest/silero_vad.safetensors.partial"
mv "$dest/silero_vad.safetensors.partial" "$dest/silero_vad.safetensors"
