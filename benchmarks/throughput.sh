#!/usr/bin/env bash
# Transcription throughput of `steno serve` (issue 5): audio seconds transcribed per wall second on the real
# recordings of the corpus (benchmarks/fixtures.sh), for several layouts of workers, side by side (medians of
# REPEATS runs) and as ratios to the first layout. Wall time runs from the first claim to the last completion
# (read from the job store by `steno-queue-bench report`), so model loading and uploads are not counted.
#
# A layout is STORE:PROCESSESxWORKERSxTHREADS:
#   sqlite:1x1x2     one `steno serve` (SQLite), 1 worker, 2 engine threads
#   sqlite:1x2x1     one `steno serve` (SQLite), 2 workers of 1 thread each
#   postgres:2x1x1   a PostgreSQL cluster started here, one `--role api` node taking the uploads, and 2
#                    `--role worker` processes with 1 worker of 1 thread each
#
#   benchmarks/throughput.sh
#   LAYOUTS="sqlite:1x1x2 postgres:1x1x2 postgres:2x1x1" REPEATS=5 COPIES=4 benchmarks/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/pg_cluster.sh

LAYOUTS="${LAYOUTS:-sqlite:1x1x1 sqlite:1x1x2 sqlite:1x2x1}"
REPEATS="${REPEATS:-3}"
COPIES="${COPIES:-4}"            # each real recording is submitted this many times per run
PORT="${PORT:-18190}"
STENO="${STENO:-.build/release/steno}"
BENCH="${BENCH:-.build/release/steno-queue-bench}"
MODEL="${MODEL:-models/tiny.en}"
MANIFEST="${MANIFEST:-.fixtures/manifest.tsv}"

if [ -z "${SKIP_BUILD:-}" ]; then
    swift build -c release --product steno >&2
    swift build -c release --product steno-queue-bench >&2
fi
for binary in "$STENO" "$BENCH"; do [ -x "$binary" ] || { echo "throughput.sh: $binary is missing (build it)" >&2; exit 1; }; done
[ -f "$MANIFEST" ] || benchmarks/fixtures.sh
mapfile -t files < <(awk -F'\t' -v dir="$(dirname "$MANIFEST")" '$5 == "real" {print dir "/" $1}' "$MANIFEST")
audio=$(awk -F'\t' '$5 == "real" {s += $3} END {printf "%.1f", s}' "$MANIFEST")

work="$(mktemp -d /tmp/steno-throughput.XXXXXX)"
chmod 755 "$work"
pids=()
stop_nodes() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() { stop_nodes; pg_stop; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

case " $LAYOUTS" in *" postgres:"*) pg_start "$work" ;; esac

wait_healthy() { # port
    for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "throughput.sh: node on port $1 did not start; its log:" >&2; cat "$work"/node-*.log >&2; return 1
}

# run_layout LAYOUT RUN → prints the report line of `steno-queue-bench report`
run_layout() {
    local store=${1%%:*} shape=${1#*:} run=$2
    local processes=${shape%%x*} rest=${shape#*x}
    local workers=${rest%%x*} threads=${rest#*x}
    local dir="$work/run-$run" database api_port=$PORT
    mkdir -p "$dir"
    local common=(--model "$MODEL" --log-level warning --max-queued-jobs 100000 --retention 1h)
    if [ "$store" = sqlite ]; then
        [ "$processes" = 1 ] || { echo "throughput.sh: SQLite runs one process per data directory" >&2; exit 1; }
        database="$dir/data"
        "$STENO" serve "${common[@]}" --port "$api_port" --data-dir "$database" --workers "$workers" \
            --threads "$threads" 2>"$work/node-0.log" &
        pids+=($!)
        wait_healthy "$api_port"
    else
        database="postgres://steno@127.0.0.1:$PG_PORT/bench_$run"
        pg_as_owner "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U steno -d postgres -c "CREATE DATABASE bench_$run"
        "$STENO" serve "${common[@]}" --role api --database "$database" --port "$api_port" \
            --data-dir "$dir/api" 2>"$work/node-0.log" &
        pids+=($!)
        wait_healthy "$api_port"
        for i in $(seq 1 "$processes"); do
            "$STENO" serve "${common[@]}" --role worker --database "$database" --port "$((api_port + i))" \
                --data-dir "$dir/worker-$i" --workers "$workers" --threads "$threads" 2>"$work/node-$i.log" &
            pids+=($!)
            wait_healthy "$((api_port + i))"
        done
    fi
    local count=0
    for _ in $(seq 1 "$COPIES"); do
        for file in "${files[@]}"; do
            curl -fsS -o /dev/null -F "file=@$file" "http://127.0.0.1:$api_port/transcribe"
            count=$((count + 1))
        done
    done
    "$BENCH" report --database "$database" --jobs "$count"
    stop_nodes
    [ "$store" = sqlite ] || pg_as_owner "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U steno -d postgres \
        -c "DROP DATABASE bench_$run WITH (FORCE)"
    rm -rf "$dir"
}

echo "transcription throughput: ${#files[@]} real recordings (${audio} s) × $COPIES per run, model $MODEL;" \
     "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(git log -1 --format='commit %h')"
results="$work/results.tsv"
run=0
for r in $(seq 1 "$REPEATS"); do
    for layout in $LAYOUTS; do
        run=$((run + 1))
        line=$(run_layout "$layout" "$run")
        printf '%s\t%s\t%s\n' "$layout" "$line" "$(cut -d' ' -f1 /proc/loadavg)" >> "$results"
        printf 'run %d/%d  %-16s %s  load %s\n' "$r" "$REPEATS" "$layout" "$line" "$(cut -d' ' -f1 /proc/loadavg)"
    done
done

python3 - "$results" "$LAYOUTS" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
layouts = sys.argv[2].split()
def field(line, name):
    return float(dict(part.split("=") for part in line.split())[name])
speeds = {l: [field(r[1], "speed") for r in rows if r[0] == l] for l in layouts}
walls = {l: [field(r[1], "wall_seconds") for r in rows if r[0] == l] for l in layouts}
problems = {l: sum(int(field(r[1], k)) for r in rows if r[0] == l for k in ("failed", "unfinished", "reruns")) for l in layouts}
base = statistics.median(speeds[layouts[0]])
print(f"\nmedians of {len(speeds[layouts[0]])} runs [min–max]")
print(f"{'layout':18}{'audio s / wall s':26}{'wall s':10}{'ratio to ' + layouts[0]:28}failed+unfinished+reruns")
for l in layouts:
    s = speeds[l]
    print(f"{l:18}{f'{statistics.median(s):.2f} [{min(s):.2f}–{max(s):.2f}]':26}{statistics.median(walls[l]):<10.1f}"
          f"{statistics.median(s) / base:<28.2f}{problems[l]}")
PY
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
