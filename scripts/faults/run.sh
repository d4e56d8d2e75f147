#!/usr/bin/env bash
# Every fault test of issue 4 against a real `steno serve` (release build, models/tiny.en), each printing its
# figures table (docs/reliability.md collects them), then the hostile-client checks and the soak. `run.sh short`
# is what `make test` runs (3 SIGKILL trials, 1 SIGSTOP round, 100 contended uploads, a 60 s soak); `run.sh full`
# is the documented run (20 trials, 3 rounds, 200 uploads, a 600 s soak). Needs
# `swift build -c release --product steno` first.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-short}"
if [ "$mode" = full ]; then trials=20; rounds=3; submits=200; max_jobs=5; soak=600; else trials=3; rounds=1; submits=100; max_jobs=3; soak=60; fi
started=$(date +%s)
# One undisturbed reference run serves every script (the transcripts each fault run must reproduce).
FAULT_REFERENCE_CACHE="$(mktemp -u /tmp/steno-fault-reference-XXXXXX.json)"
export FAULT_REFERENCE_CACHE
trap 'rm -f "$FAULT_REFERENCE_CACHE"' EXIT
FAULT_MAX_JOBS=$max_jobs ./sigkill-trials.sh "$trials"
./sigstop-lease.sh "$rounds"
./sigterm-inflight.sh
./disk-full.sh
./sqlite-contention.sh "$submits"
./hostile.sh
./soak.sh "$soak"
echo "fault tests ($mode): passed in $(( $(date +%s) - started )) s"
