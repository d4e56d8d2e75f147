#!/usr/bin/env bash
# Installs what Steno needs and is missing on a fresh Debian 12 machine: system packages and the default model.
# Idempotent: a second run does nothing. Used by `make run`, `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(ffmpeg libopenblas-dev pkg-config libsqlite3-dev pocketsphinx-testdata asterisk-core-sounds-en-wav asterisk-core-sounds-en asterisk-core-sounds-es-wav asterisk-core-sounds-es asterisk-core-sounds-fr-wav asterisk-core-sounds-fr espeak-ng sox wrk postgresql openssl chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/install-model.sh
scripts/install-vad-model.sh
scripts/install-speaker-model.sh
scripts/install-swagger-ui.sh
