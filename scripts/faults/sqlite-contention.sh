#!/usr/bin/env bash
# See sqlite_contention.py for what this fault test does and checks.
set -euo pipefail
exec python3 "$(dirname "$0")/sqlite_contention.py" "$@"
