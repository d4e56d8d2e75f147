#!/usr/bin/env bash
# See sigstop_lease.py for what this fault test does and checks.
set -euo pipefail
exec python3 "$(dirname "$0")/sigstop_lease.py" "$@"
