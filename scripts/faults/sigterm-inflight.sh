#!/usr/bin/env bash
# See sigterm_inflight.py for what this fault test does and checks.
set -euo pipefail
exec python3 "$(dirname "$0")/sigterm_inflight.py" "$@"
