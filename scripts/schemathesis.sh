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

data="$(mktemp -d)"
log="$data/server.log"
generated="$("$STENO" keys generate schemathesis)"
key="$(sed -n 's/^key: *//p' <<<"$generated")"
sed -n 's/^line: *//p' <<<"$generated" >"$data/keys"
"$STENO" serve --data-dir "$data/data" --model "$MODEL" --vad-model models/silero-vad/silero_vad.safetensors --host 127.0.0.1 --port 0 --api-keys-file "$data/keys" \
    >"$log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

# Port 0: the server picks a free port and logs it ("listening on http://…").
base=""
for _ in $(seq 1 300); do
    [ -n "$base" ] || base="$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's/^listening on //' || true)"
    [ -n "$base" ] && curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { echo "schemathesis.sh: the server did not start:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.2
done

st --no-color run "$base/openapi.yaml" --url "$base" --header "Authorization: Bearer $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth \
    --max-examples "$EXAMPLES" --seed "$SEED" --request-timeout 30 \
    || { echo "schemathesis.sh: failures above; server log: $log" >&2; tail -50 "$log" >&2; exit 1; }
