#!/usr/bin/env bash
# See hostile.py for what this fault test does and checks.
set -euo pipefail
exec python3 "$(dirname "$0")/hostile.py" "$@"
