#!/usr/bin/env bash
# See soak.py for what this fault test does and checks.
set -euo pipefail
exec python3 "$(dirname "$0")/soak.py" "$@"
