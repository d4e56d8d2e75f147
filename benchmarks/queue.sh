#!/usr/bin/env bash
# Queue benchmark (issue 5): jobs claimed and completed per second, and add-to-start latency p50/p99, for SQLite
# and PostgreSQL with 1, 2 and 4 worker processes, side by side (medians of REPEATS runs, ratios). Worker processes
# run the product's WorkerPool with a no-op transcriber (`steno-queue-bench`, benchmarks/QueueBench); a
# throwaway PostgreSQL cluster is started here and stopped at the end. Extra arguments go to
# `steno-queue-bench suite` (see its --help), e.g.:
#
#   benchmarks/queue.sh
#   REPEATS=5 benchmarks/queue.sh --backlog 4000 --rate 10
#   benchmarks/queue.sh --stores sqlite --processes 1 --drivers pool,loop
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/pg_cluster.sh

REPEATS="${REPEATS:-3}"
BENCH="${BENCH:-.build/release/steno-queue-bench}"
if [ -z "${SKIP_BUILD:-}" ]; then swift build -c release --product steno-queue-bench >&2; fi
[ -x "$BENCH" ] || { echo "queue.sh: $BENCH is missing: swift build -c release --product steno-queue-bench" >&2; exit 1; }

work="$(mktemp -d /tmp/steno-queue.XXXXXX)"
chmod 755 "$work"
cleanup() { pg_stop; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_start "$work"
echo "machine: $(nproc) cores, $(awk '{print "load average " $1 " " $2 " " $3}' /proc/loadavg); $(git log -1 --format='commit %h %s')"
"$BENCH" suite --postgres "$PG_URL" --repeats "$REPEATS" --work-dir "$work/runs" "$@"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
