#!/usr/bin/env bash
# Speed benchmark of Steno's Whisper engine against faster-whisper (see benchmarks/README.md).
#
#   benchmarks/engine.sh [--threads N] [--repeats R] [--steno PATH] [--systems steno,fw-float32,fw-int8]
#                        [--workloads short,long] [--json FILE] ...   (all flags: benchmarks/speed.py --help)
#
# Builds the corpus (.fixtures/, idempotent) and the OpenBLAS SGEMM probe (.build-bench/sgemm_peak), then runs
# benchmarks/speed.py, which installs its Python requirements when missing. Defaults: all cores, 3 repeats,
# steno from .build/release/steno (`make build`), else Engine/.build/release/steno-transcribe.
set -euo pipefail
cd "$(dirname "$0")/.."

benchmarks/fixtures.sh

probe=.build-bench/sgemm_peak
if [ ! -x "$probe" ] || [ benchmarks/sgemm_peak.c -nt "$probe" ]; then
    pkg-config --exists openblas || { echo "engine.sh: libopenblas-dev is missing (run scripts/setup.sh)" >&2; exit 1; }
    mkdir -p .build-bench
    # shellcheck disable=SC2046  # pkg-config prints several flags
    cc -O2 -o "$probe" benchmarks/sgemm_peak.c $(pkg-config --cflags --libs openblas)
fi

exec python3 benchmarks/speed.py --sgemm "$probe" "$@"
