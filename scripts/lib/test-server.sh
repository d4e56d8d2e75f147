# Sourced by the scripts that test a live server (schemathesis.sh, openai-sdk-test.sh, browser-test.sh):
#   start_test_server NAME [steno serve arguments...]
# makes a fresh API key named NAME, starts "$STENO serve" on a free port of 127.0.0.1 with a temporary data
# directory, the VAD model, that key and the given arguments, and waits until it answers /healthz. It sets
# `base` (the server's URL), `key`, `log` (the server's log) and `data` (the temporary directory), and stops the
# server and removes the directory when the script exits. `$0`'s name prefixes its messages.
start_test_server() {
    local name="$1"
    shift
    local script
    script="$(basename "$0")"
    data="$(mktemp -d)"
    log="$data/server.log"
    local generated
    generated="$("$STENO" keys generate "$name")"
    key="$(sed -n 's/^key: *//p' <<<"$generated")"
    sed -n 's/^line: *//p' <<<"$generated" >"$data/keys"
    "$STENO" serve --data-dir "$data/data" --vad-model models/silero-vad/silero_vad.safetensors \
        --speaker-model models/speaker-encoder/ge2e.safetensors \
        --host 127.0.0.1 --port 0 --api-keys-file "$data/keys" "$@" >"$log" 2>&1 &
    test_server_pid=$!
    trap stop_test_server EXIT

    # Port 0: the server picks a free port and logs it ("listening on http://…").
    base=""
    for _ in $(seq 1 300); do
        [ -n "$base" ] || base="$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's/^listening on //' || true)"
        [ -n "$base" ] && curl -fsS "$base/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$test_server_pid" 2>/dev/null || { echo "$script: the server did not start:" >&2; cat "$log" >&2; exit 1; }
        sleep 0.2
    done
    echo "$script: the server did not answer in 60 s:" >&2
    tail -50 "$log" >&2
    exit 1
}

stop_test_server() {
    kill "$test_server_pid" 2>/dev/null && wait "$test_server_pid" 2>/dev/null || true
    rm -rf "$data"
}
