#!/usr/bin/env bash
# See disk_full.py for what this fault test does and checks.
set -euo pipefail
exec python3 "$(dirname "$0")/disk_full.py" "$@"
