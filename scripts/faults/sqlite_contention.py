#!/usr/bin/env python3
"""SQLite under contention (issue 4, item 5). A real `steno serve` with two workers transcribing while 32
client threads send SUBMITS uploads (a short real recording each), and after each upload poll the job's status
and the job list a few times. Checked: every upload is accepted (202), no request gets a 5xx or a
busy/locked error, the server logs no database busy/locked error and no failed heartbeat. Prints request
counts, throughput and latency percentiles.

Usage: scripts/faults/sqlite-contention.sh [SUBMITS] (default 200)."""

import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from faultlib import Server, check, main, read_clip, request, rows, seeded, submit, table, wait_until

THREADS = 32
POLLS_PER_SUBMIT = 3


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def run():
    submits = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rng = seeded()
    work = tempfile.mkdtemp(prefix="steno-contention-")
    data = os.path.join(work, "data")
    server = Server(data, env={"STENO_WORKERS": "2", "STENO_MAX_QUEUED_JOBS": str(submits + 10), "STENO_SHUTDOWN_GRACE": "0"})
    server.wait_healthy()
    audio = read_clip("0880")
    lock = threading.Lock()
    latencies = {"submit": [], "status": [], "list": []}
    statuses = {}
    problems = []

    def record(kind, seconds, code, body):
        with lock:
            latencies[kind].append(seconds)
            statuses[code] = statuses.get(code, 0) + 1
            text = str(body).lower()
            if code >= 500 or "busy" in text or "locked" in text:
                problems.append((kind, code, body))

    def client(index):
        started = time.monotonic()
        code, body = submit(server.base, audio, timeout=120)
        record("submit", time.monotonic() - started, code, body)
        if code != 202:
            return
        for _ in range(POLLS_PER_SUBMIT):
            started = time.monotonic()
            code, answer, _ = request(server.base, "GET", f"/transcribe?limit=20", timeout=120)
            record("list", time.monotonic() - started, code, answer)
            # The status of a job counts as a retrieval only once completed; that is fine here.
            started = time.monotonic()
            code, answer, _ = request(server.base, "GET", f"/transcribe/{body['job_id']}", timeout=120)
            record("status", time.monotonic() - started, code, answer)

    began = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(client, range(submits)))
    elapsed = time.monotonic() - began
    completed_during = sum(1 for r in rows(data) if r["state"] == "completed")
    metrics_ok = request(server.base, "GET", "/readyz")[0]
    code, _ = server.terminate()
    log = server.log_text().lower()
    busy_logged = sum(log.count(w) for w in ("database is locked", "sqlite_busy", "database is busy"))
    heartbeat_failures = log.count("heartbeat failed")
    requests_total = sum(len(v) for v in latencies.values())
    accepted = len(rows(data))
    table(f"SQLite contention ({THREADS} client threads, 2 workers transcribing)", [
        ("uploads / accepted (202)", f"{submits} / {accepted}"),
        ("requests in all (uploads, status polls, list polls)", requests_total),
        ("answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))),
        ("5xx or busy/locked answers", len(problems)),
        ("busy/locked errors in the server log / failed heartbeats", f"{busy_logged} / {heartbeat_failures}"),
        ("wall time / throughput", f"{elapsed:.1f} s / {requests_total / elapsed:.0f} requests/s"),
        ("upload latency p50 / p99 / max", " / ".join(f"{percentile(latencies['submit'], p) * 1000:.0f} ms" for p in (0.5, 0.99, 1.0))),
        ("status latency p50 / p99 / max", " / ".join(f"{percentile(latencies['status'], p) * 1000:.0f} ms" for p in (0.5, 0.99, 1.0))),
        ("list latency p50 / p99 / max", " / ".join(f"{percentile(latencies['list'], p) * 1000:.0f} ms" for p in (0.5, 0.99, 1.0))),
        ("jobs completed by the workers meanwhile", completed_during),
    ])
    check(not problems, f"errors reached clients: {problems[:5]}")
    check(accepted == submits and statuses.get(202, 0) == submits, "not every upload was accepted")
    check(busy_logged == 0 and heartbeat_failures == 0, "the server logged busy errors or failed heartbeats")
    check(code == 0, f"exit status {code}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(run)
