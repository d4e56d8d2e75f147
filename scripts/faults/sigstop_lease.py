#!/usr/bin/env python3
"""A zombie worker (issue 4, item 2). Two `steno serve` processes share one data directory (SQLite in WAL
mode), on different ports, with a short lease; both run before the job exists (a start-up resumes what was
processing). The process that claims the job is stopped with SIGSTOP past its lease; the other one rescues
the job and completes it; then the first is resumed with SIGCONT. Checked: its late write is rejected (the
job stays completed once, with the rescuer's result file, and the zombie counts a rejected write in
`steno_rejected_writes_total` and logs it), no second result file, both servers keep serving.

Usage: scripts/faults/sigstop-lease.sh [ROUNDS] (default 3)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from faultlib import (CLIPS, Failure, Server, check, main, median, metric, rows, seeded, status, submit, table,
                      wait_until)

LEASE = 3


def long_recording(work):
    """All five clips in one file (about 25 s): long enough to stop its worker in the middle."""
    path = os.path.join(work, "long.wav")
    subprocess.run(["sox"] + [CLIPS[c] for c in sorted(CLIPS)] + [path], check=True)
    with open(path, "rb") as f:
        return f.read()


def round_(number, work, audio, figures, rng):
    data = os.path.join(work, f"round-{number}", "data")
    env = {"STENO_LEASE": f"{LEASE}s", "STENO_MAX_ATTEMPTS": "3"}
    a = Server(data, env=env, log_name="a.log")
    a.wait_healthy()
    b = Server(data, env=env, log_name="b.log")
    b.wait_healthy()
    servers = [a, b]
    try:
        # Either server may take the upload (and, woken by it, usually the job).
        code, body = submit(rng.choice(servers).base, audio)
        check(code == 202, f"upload: {code} {body}")
        job_id = body["job_id"]

        def holder():
            for server in servers:
                if f"job_id={job_id}" in server.log_text() and "transcription started" in server.log_text():
                    return server
            return None

        zombie = wait_until(holder, 60, 0.005, "a worker to start the job")
        zombie.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        rescuer = b if zombie is a else a
        first = rows(data)[0]
        check(first["state"] == "processing" and first["attempts"] == 1, f"the job was not processing when stopped: {first}")

        # The lease runs out while the zombie sleeps; the other process claims the job again and completes it.
        done = wait_until(lambda: [r for r in rows(data) if r["state"] == "completed"], 180, 0.05, "the rescue")[0]
        rescue_seconds = time.monotonic() - stopped
        check(done["attempts"] == 2, f"the rescue should be attempt 2: {done}")
        result_after_rescue = done["result_path"]

        zombie.signal(signal.SIGCONT)
        # The zombie's heartbeat or completion comes late and must change nothing.
        rejected = wait_until(lambda: metric(zombie.base, "steno_rejected_writes_total"), 60, 0.1,
                              "the zombie's rejected write")
        # Its transcription then stops at the next window, or completes and has its completion refused.
        wait_until(lambda: "result dropped" in zombie.log_text()
                   or "transcription stopped: the job was cancelled or taken over" in zombie.log_text(), 180, 0.1,
                   "the zombie to give up the job")
        rejected = metric(zombie.base, "steno_rejected_writes_total")
        final = rows(data)[0]
        check(final["state"] == "completed" and final["result_path"] == result_after_rescue
              and final["completed_at"] == done["completed_at"] and final["attempts"] == 2,
              f"the completed job changed after the zombie resumed: {done} → {final}")
        results = sorted(os.listdir(os.path.join(data, "results")))
        check(results == [os.path.basename(result_after_rescue)], f"result files: {results}")
        check(f"job_id={job_id}" in rescuer.log_text() and "transcription completed" in rescuer.log_text(),
              "the rescuer's log does not show the completion")
        text = status(rescuer.base, job_id)["result"]["text"]
        check(len(text.split()) > 20, f"the rescued transcript is too short: {text!r}")
        # Both keep serving.
        for server in servers:
            check(status(server.base, job_id)["status"] == "completed", "a server does not serve the job")
        figures["rounds"] += 1
        figures["rescue"].append(rescue_seconds)
        figures["rejected"] += rejected
        kinds = [w for w in ("heartbeat", "complete", "fail", "release")
                 if metric(zombie.base, "steno_rejected_writes_total", f'write="{w}"')]
        figures["kinds"].update(kinds)
        print(f"round {number}: stopped {'a' if zombie is a else 'b'}, rescued in {rescue_seconds:.2f} s, "
              f"zombie's rejected writes: {int(rejected)} ({', '.join(kinds)})")
    finally:
        for server in servers:
            try:
                server.signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            server.terminate()
    shutil.rmtree(os.path.join(work, f"round-{number}"), ignore_errors=True)


def run():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rng = seeded()
    work = tempfile.mkdtemp(prefix="steno-sigstop-")
    audio = long_recording(work)
    figures = {"rounds": 0, "rescue": [], "rejected": 0, "kinds": set()}
    for number in range(1, rounds + 1):
        round_(number, work, audio, figures, rng)
    table("SIGSTOP past the lease (two servers, one SQLite data directory)", [
        ("rounds", figures["rounds"]),
        ("lease", f"{LEASE} s"),
        ("jobs completed once, with the rescuer's result", f"{figures['rounds']} of {figures['rounds']}"),
        ("zombie writes rejected (steno_rejected_writes_total)", f"{int(figures['rejected'])} ({', '.join(sorted(figures['kinds']))})"),
        ("median SIGSTOP → completed by the rescuer", f"{median(figures['rescue']):.2f} s"),
    ])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(run)
