#!/usr/bin/env bash
# Rewrites the configuration table of docs/configuration.md (between its settings-table markers) from the
# settings table in the code (`steno settings`). A test fails when the two differ.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
steno="${STENO_BINARY:-$root/.build/${CONFIG:-release}/steno}"
python3 - "$root/docs/configuration.md" "$("$steno" settings)" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2].rstrip("\n") + "\n"
begin, end = "<!-- settings-table:begin -->\n", "<!-- settings-table:end -->"
text = open(path).read()
if begin not in text or end not in text:
    sys.exit(f"{path}: the settings-table markers are missing")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + table + end + tail)
PY
echo "update-settings-table: docs/configuration.md rewritten from the settings table"
