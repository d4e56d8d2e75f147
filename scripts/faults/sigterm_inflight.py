#!/usr/bin/env python3
"""SIGTERM with jobs in flight (issue 4, item 3). A real `steno serve` with two workers gets five recordings;
while two are being transcribed it receives SIGTERM. Two cases: a grace period long enough for the running
transcriptions (they finish), and a grace period of 0 s on a long recording (it is stopped at its next window
and released with its attempt given back). Checked: the process exits 0 within grace + margin; each running
job is completed or back to pending with no attempt counted; waiting jobs are untouched; nothing is left
claimed; a restart completes everything with the reference transcripts.

Usage: scripts/faults/sigterm-inflight.sh"""

import os
import shutil
import subprocess
import tempfile
import time

from faultlib import (CLIPS, TERMINAL, Server, check, main, read_clip, reference_texts, rows, seeded, status, submit,
                      table, wait_until)


def case(name, work, grace, uploads, references, figures, expect):
    data = os.path.join(work, name, "data")
    server = Server(data, env={"STENO_WORKERS": "2", "STENO_SHUTDOWN_GRACE": f"{grace}s"})
    server.wait_healthy()
    ids = {}
    for label, audio in uploads:
        code, body = submit(server.base, audio)
        check(code == 202, f"{name}: upload {label}: {code} {body}")
        ids[body["job_id"]] = label
    wait_until(lambda: sum(r["state"] == "processing" for r in rows(data)) == 2, 120, 0.01, "two jobs to start")
    running = {r["id"] for r in rows(data) if r["state"] == "processing"}
    code, seconds = server.terminate(timeout=grace + 60)
    after = {r["id"]: r for r in rows(data)}
    check(code == 0, f"{name}: exit status {code}")
    claimed = [r for r in after.values() if r["lease_token"] is not None or r["state"] == "processing"]
    check(not claimed, f"{name}: left claimed: {claimed}")
    finished = sum(1 for i in running if after[i]["state"] == "completed")
    released = sum(1 for i in running if after[i]["state"] == "pending" and after[i]["attempts"] == 0)
    check(finished + released == len(running), f"{name}: a running job is neither finished nor released: {after}")
    check((finished if expect == "finish" else released) == len(running), f"{name}: expected every running job to {expect}")
    waiting = [r for i, r in after.items() if i not in running]
    check(all(r["state"] == "pending" and r["attempts"] == 0 for r in waiting), f"{name}: a waiting job changed: {waiting}")
    check(seconds < grace + 30, f"{name}: exit took {seconds:.1f} s with a grace of {grace} s")

    # Everything completes after a restart, with the reference transcripts.
    again = Server(data, env={"STENO_WORKERS": "2"})
    try:
        again.wait_healthy()
        wait_until(lambda: all(r["state"] in TERMINAL for r in rows(data)), 300, 0.1, "every job after the restart")
        for job_id, label in ids.items():
            answer = status(again.base, job_id)
            check(answer["status"] == "completed", f"{name}: {label} is {answer['status']}")
            if label in references:
                check(answer["result"]["text"] == references[label], f"{name}: {label} transcript differs")
    finally:
        again.terminate()
    figures.append((name, grace, len(running), finished, released, seconds))
    print(f"{name}: grace {grace} s, {len(running)} running at SIGTERM, {finished} finished, {released} released, "
          f"exit after {seconds:.2f} s")


def run():
    seeded()
    work = tempfile.mkdtemp(prefix="steno-sigterm-")
    references, _ = reference_texts(work, sorted(CLIPS))
    long_path = os.path.join(work, "long.wav")
    # About 50 s of speech: two 30-second windows, so a stopped transcription ends at the window boundary.
    subprocess.run(["sox"] + [CLIPS[c] for c in sorted(CLIPS)] * 2 + [long_path], check=True)
    with open(long_path, "rb") as f:
        long_audio = f.read()
    short = [(c, read_clip(c)) for c in sorted(CLIPS)]
    figures = []
    case("finish-within-grace", work, 60, short, references, figures, "finish")
    case("release-at-grace-0", work, 0, [("long-1", long_audio), ("long-2", long_audio), ("0880", read_clip("0880"))],
         references, figures, "release")
    rows_ = []
    for name, grace, running, finished, released, seconds in figures:
        rows_.append((f"{name}: grace / running at SIGTERM / finished / released / exit time",
                      f"{grace} s / {running} / {finished} / {released} / {seconds:.2f} s"))
    rows_.append(("jobs left claimed after exit", 0))
    table("SIGTERM with jobs in flight", rows_)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(run)
