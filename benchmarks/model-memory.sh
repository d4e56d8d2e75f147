#!/usr/bin/env bash
# Resident memory of `steno serve` serving two models (tiny.en and the multilingual base), without a bound and
# with a --model-memory budget that holds one model at a time, after jobs that alternate between the models.
#
#   benchmarks/model-memory.sh [--budget 350M] [--rounds 2]
#
# Prints, per configuration, the resident size at start, at the end and at its peak (VmRSS, VmHWM), and the
# models loaded at the end (/readyz). Needs `make build` and `make test-models`. Jobs go through the OpenAI
# route, so each run waits for its transcription: the figures are after real work on both models.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=350M
rounds=2
while [ $# -gt 0 ]; do
    case "$1" in
        --budget) budget="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        *) echo "usage: $0 [--budget SIZE] [--rounds N]" >&2; exit 2 ;;
    esac
done
steno=.build/release/steno
[ -x "$steno" ] || { echo "model-memory: $steno is missing; run make build" >&2; exit 1; }
[ -s models/whisper-base/model.bin ] || { echo "model-memory: models/whisper-base is missing; run make test-models" >&2; exit 1; }
english=/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0920.wav
spanish=/usr/share/asterisk/sounds/es/agent-incorrect.wav

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
kib() { awk -v key="$1:" '$1 == key { print int($2 / 1024) }' "/proc/$server/status"; }

printf '%-22s %10s %10s %10s  %s\n' "budget" "start MB" "end MB" "peak MB" "loaded at the end"
for limit in none "$budget"; do
    rm -rf "$work/data"
    extra=()
    [ "$limit" != none ] && extra=(--model-memory "$limit")
    "$steno" serve --data-dir "$work/data" --model "tiny.en=models/tiny.en,base=models/whisper-base" "${extra[@]}" \
        --host 127.0.0.1 --port 0 --log-level info >"$work/log" 2>&1 &
    server=$!
    base=""
    for _ in $(seq 1 300); do
        [ -n "$base" ] || base="$(grep -o 'listening on http://[^ ]*' "$work/log" | head -1 | sed 's/^listening on //' || true)"
        [ -n "$base" ] && curl -fsS "$base/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    start=$(kib VmRSS)
    for _ in $(seq 1 "$rounds"); do
        curl -fsS "$base/v1/audio/transcriptions" -F file=@"$english" -F model=tiny.en -o /dev/null
        curl -fsS "$base/v1/audio/transcriptions" -F file=@"$spanish" -F model=base -F language=es -o /dev/null
    done
    loaded=$(curl -fsS "$base/readyz" | python3 -c 'import json, sys; print(",".join(m["name"] for m in json.load(sys.stdin)["models"] if m["loaded"]))')
    printf '%-22s %10s %10s %10s  %s\n' "$limit" "$start" "$(kib VmRSS)" "$(kib VmHWM)" "$loaded"
    kill "$server"
    wait "$server" 2>/dev/null || true
done
