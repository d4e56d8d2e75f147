#!/usr/bin/env bash
# Property-based API test: Schemathesis (PyPI) generates requests from the OpenAPI document the server serves
# and checks every answer against it. Starts `steno serve` (release build, tiny.en model) on a free port with a
# temporary data directory and a fresh API key, runs a bounded number of examples per operation with that key
# (and checks that operations needing a key refuse requests without one), stops the server, and fails on any
# failure. Used by `make test-server`; run it alone after `swift build -c release --product steno`.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG="${CONFIG:-release}"
STENO="${STENO:-.build/$CONFIG/steno}"
MODEL="${MODEL:-./models/tiny.en}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-25}"
SEED="${SCHEMATHESIS_SEED:-20261129}"

[ -x "$STENO" ] || { echo "schemathesis.sh: $STENO is missing; run: swift build -c $CONFIG --product steno" >&2; exit 1; }
if ! command -v st >/dev/null 2>&1; then
    echo "schemathesis.sh: installing schemathesis with pip" >&2
    python3 -m pip install --quiet --user schemathesis
    export PATH="$HOME/.local/bin:$PATH"
fi

source scripts/lib/test-server.sh
start_test_server schemathesis --model "$MODEL"

st --no-color run "$base/openapi.yaml" --url "$base" --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth \
    --max-examples "$EXAMPLES" --seed "$SEED" --request-timeout 30 \
    || { echo "schemathesis.sh: failures above; server log: $log" >&2; tail -50 "$log" >&2; exit 1; }
