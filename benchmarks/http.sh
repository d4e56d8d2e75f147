#!/usr/bin/env bash
# HTTP benchmark of `steno serve` (not a timed test): requests per second and p50/p99 latency of
# POST /transcribe with a small recording and of GET /transcribe/{id}, with wrk (Debian's `wrk`), then the
# server's memory while 20 clients upload 200 MB each at once. Everything runs on 127.0.0.1 against a server
# started here on a temporary data directory; the script stops it and removes the directory at the end.
#
#   benchmarks/http.sh            # defaults: 10 s per wrk run, 4 connections, 20 × 200 MB uploads
#   DURATION=30 CONNECTIONS=16 UPLOADS=20 UPLOAD_MB=200 benchmarks/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-4}"
THREADS="${THREADS:-2}"
UPLOADS="${UPLOADS:-20}"
UPLOAD_MB="${UPLOAD_MB:-200}"
PORT="${PORT:-18089}"
STENO="${STENO:-.build/release/steno}"
MODEL="${MODEL:-models/tiny.en}"
SAMPLE="${SAMPLE:-/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav}"

for tool in wrk curl; do command -v "$tool" >/dev/null || { echo "http.sh: $tool is missing (scripts/setup.sh installs it)"; exit 1; }; done
[ -x "$STENO" ] || { echo "http.sh: build first: swift build -c release --product steno"; exit 1; }

work="$(mktemp -d /tmp/steno-bench.XXXXXX)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base="http://127.0.0.1:$PORT"
"$STENO" serve --port "$PORT" --data-dir "$work/data" --model "$MODEL" --workers 1 \
    --max-queued-jobs 1000000 --max-upload-bytes "$((UPLOAD_MB + 50))M" --log-level warning 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 1 300); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$base/readyz" >/dev/null || { echo "server did not start:"; cat "$work/server.log"; exit 1; }

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
echo "server pid $server_pid, RSS at start $(( $(rss_kib) / 1024 )) MiB; $(nproc) cores; sample $(basename "$SAMPLE") ($(stat -c %s "$SAMPLE") bytes)"

# wrk scripts: a multipart body built once from the sample file.
cat > "$work/post.lua" <<LUA
local f = assert(io.open("$SAMPLE", "rb"))
local audio = f:read("*a")
f:close()
local boundary = "stenobenchboundary"
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\nen\r\n"
    .. "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
    .. "Content-Type: audio/wav\r\n\r\n" .. audio .. "\r\n--" .. boundary .. "--\r\n"
LUA

summarize() { # name, wrk output file
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$2")
    p50=$(awk '$1 == "50%" {print $2}' "$2")
    p99=$(awk '$1 == "99%" {print $2}' "$2")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$2")
    printf "%-28s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n" "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

echo
echo "== wrk: ${DURATION}s, $CONNECTIONS connections, $THREADS threads (one worker transcribes meanwhile) =="
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/post.lua" "$base/transcribe" > "$work/post.txt"
summarize "POST /transcribe (small wav)" "$work/post.txt"

# A job that stays pending (the queue is long now): its status includes the queue position.
job=$(curl -fs -F "file=@$SAMPLE" "$base/transcribe" | sed -E 's/.*"job_id":"([^"]+)".*/\1/')
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$base/transcribe/$job" > "$work/get.txt"
summarize "GET /transcribe/{id}" "$work/get.txt"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$base/healthz" > "$work/health.txt"
summarize "GET /healthz" "$work/health.txt"
echo "jobs queued by the run: $(curl -fs "$base/metrics" | awk '/^steno_queue_depth / {printf "%d", $2}')"

echo
echo "== memory: $UPLOADS clients upload ${UPLOAD_MB} MB each at once =="
head -c "$((UPLOAD_MB * 1024 * 1024))" /dev/urandom > "$work/big.bin"
before=$(rss_kib)
peak=$before
uploaders=()
for i in $(seq 1 "$UPLOADS"); do
    curl -s -o "$work/upload-$i.json" -w "%{http_code}\n" -F "file=@$work/big.bin" "$base/transcribe" > "$work/upload-$i.code" &
    uploaders+=($!)
done
start=$(date +%s.%N)
running() { for pid in "${uploaders[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
while running; do
    now=$(rss_kib); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.1
done
wait "${uploaders[@]}" || true
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
accepted=$(cat "$work"/upload-*.code | grep -c '^202$' || true)
echo "accepted $accepted/$UPLOADS in ${elapsed}s ($(awk -v n="$UPLOADS" -v m="$UPLOAD_MB" -v t="$elapsed" 'BEGIN {printf "%.0f", n * m / t}') MB/s in all)"
echo "server RSS: before $((before / 1024)) MiB, peak during uploads $((peak / 1024)) MiB, after $(( $(rss_kib) / 1024 )) MiB"
