#!/usr/bin/env bash
# Browser test of the web page at / (and of Swagger UI at /docs): headless Chromium, driven by Selenium (PyPI),
# uploads a real recording through the page with an API key the page asks for, waits for the transcript, checks
# it against the recording's reference text, plays from a clicked word, downloads the SRT, checks where the key
# is kept, and saves screenshots (desktop 1280x900, phone 390x844) in ${SCREENSHOT_DIR:-.build/screenshots}.
# Starts `steno serve` (release build, tiny.en model) on a free port with a temporary data directory and a fresh
# API key, runs Tests/Browser/test_web_page.py, stops the server, and fails on any failure. Used by
# `make test-server`; run it alone after `swift build -c release --product steno` (STENO= another binary).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${CONFIG:-release}"
STENO="${STENO:-.build/$CONFIG/steno}"
MODEL="${MODEL:-./models/tiny.en}"
SCREENSHOT_DIR="${SCREENSHOT_DIR:-.build/screenshots}"

[ -x "$STENO" ] || { echo "browser-test.sh: $STENO is missing; run: swift build -c $CONFIG --product steno" >&2; exit 1; }
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$tool" ] || { echo "browser-test.sh: $tool is missing; run scripts/setup.sh (Debian chromium, chromium-driver)" >&2; exit 1; }
done
if ! python3 -c "import selenium" >/dev/null 2>&1; then
    echo "browser-test.sh: installing selenium with pip" >&2
    python3 -m pip install --quiet --user selenium
fi

source scripts/lib/test-server.sh
start_test_server browser --model "$MODEL"

mkdir -p "$SCREENSHOT_DIR"
STENO_BASE_URL="$base" STENO_API_KEY="$key" SCREENSHOT_DIR="$(cd "$SCREENSHOT_DIR" && pwd)" \
    python3 Tests/Browser/test_web_page.py \
    || { echo "browser-test.sh: failures above; server log:" >&2; tail -50 "$log" >&2; exit 1; }
