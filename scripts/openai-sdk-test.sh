#!/usr/bin/env bash
# OpenAI compatibility test: the real, unmodified `openai` Python SDK (PyPI) against a live server. Starts
# `steno serve` (release build) on a free port with a temporary data directory, a fresh API key and two models
# (tiny.en, English-only and the default, and the multilingual Whisper base as `base`), runs
# Tests/OpenAI/test_openai_sdk.py (unittest) with the SDK pointed at `…/v1`, stops the server, and fails on any
# failure. Used by `make test-server`; run it alone after `swift build -c release --product steno` and
# `make test-models`. The test names the models, so MODEL is not used here.
# Audio: real speech from the Debian packages pocketsphinx-testdata (English) and asterisk-core-sounds-es-wav
# (Spanish).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${CONFIG:-release}"
STENO="${STENO:-.build/$CONFIG/steno}"
MODELS="tiny.en=./models/tiny.en,base=./models/whisper-base"
# A current SDK release; an installed `openai` of any 1.x or later is used as it is.
OPENAI_VERSION="${OPENAI_SDK_VERSION:-3.60.0}"

[ -x "$STENO" ] || { echo "openai-sdk-test.sh: $STENO is missing; run: swift build -c $CONFIG --product steno" >&2; exit 1; }
[ -s models/whisper-base/model.bin ] || { echo "openai-sdk-test.sh: models/whisper-base is missing; run: make test-models" >&2; exit 1; }
for package in pocketsphinx-testdata asterisk-core-sounds-es-wav asterisk-core-sounds-es; do
    dpkg -s "$package" >/dev/null 2>&1 \
        || { echo "openai-sdk-test.sh: the test's audio is missing; run: make setup (or apt-get install -y pocketsphinx-testdata asterisk-core-sounds-es-wav asterisk-core-sounds-es)" >&2; exit 1; }
done
if ! python3 -c 'import openai' >/dev/null 2>&1; then
    echo "openai-sdk-test.sh: installing openai==$OPENAI_VERSION with pip" >&2
    python3 -m pip install --quiet --user "openai==$OPENAI_VERSION"
fi

source scripts/lib/test-server.sh
start_test_server openai --model "$MODELS" --workers 1

STENO_BASE_URL="$base" STENO_KEY="$key" python3 Tests/OpenAI/test_openai_sdk.py \
    || { echo "openai-sdk-test.sh: failures above; server log:" >&2; tail -50 "$log" >&2; exit 1; }
