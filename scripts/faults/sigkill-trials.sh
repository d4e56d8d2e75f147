#!/usr/bin/env bash
# SIGKILL trials against a real `steno serve`: ≥ 20 by default, `make test` runs 3. See sigkill_trials.py.
set -euo pipefail
exec python3 "$(dirname "$0")/sigkill_trials.py" "${1:-20}"
