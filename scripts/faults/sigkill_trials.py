#!/usr/bin/env python3
"""SIGKILL trials (issue 4, item 1). Each trial: a real `steno serve` (release build, models/tiny.en) gets a
few short real recordings, is killed with SIGKILL at a random moment while they are being transcribed, and is
started again on the same data directory. Checked: every accepted job reaches exactly one terminal state
(completed), each transcript equals the one of an undisturbed reference run (nothing lost, nothing
duplicated: one row and one result file per job), nothing is left claimed, and after a clean stop no file in
data/audio, data/results or data/tmp is an orphan. Prints a figures table.

Usage: scripts/faults/sigkill-trials.sh [TRIALS] (default 20; FAULT_SEED=n replays a run)."""

import os
import shutil
import sys
import tempfile
import time

from faultlib import (CLIPS, TERMINAL, Failure, Server, check, main, median, orphans, read_clip, reference_texts, rows,
                      seeded, status, submit, table, wait_until)


def trial(number, work, rng, references, seconds, figures):
    data = os.path.join(work, f"trial-{number}", "data")
    clips = rng.sample(sorted(CLIPS), rng.randint(3, int(os.environ.get("FAULT_MAX_JOBS", "5"))))
    server = Server(data)
    server.wait_healthy()
    ids = {}
    for clip in clips:
        code, body = submit(server.base, read_clip(clip))
        check(code == 202, f"trial {number}: upload {clip} answered {code} {body}")
        ids[body["job_id"]] = clip
    # Wait for the first transcription to start.
    wait_until(lambda: any(r["state"] == "processing" for r in rows(data)), 60, 0.01, "a job to start")
    # A random moment inside the work: a random job's transcription, a random fraction of the way through it
    # (from the reference timing, halved: the machine may be quicker now), then a running job is made sure of
    # (the gap between two jobs lasts milliseconds).
    order = [r["id"] for r in rows(data)]
    target = rng.randrange(len(order))
    wait_until(lambda: next(r for r in rows(data) if r["id"] == order[target])["state"] != "pending", 300, 0.005,
               "the chosen job to start")
    time.sleep(rng.uniform(0, 0.5 * seconds[ids[order[target]]]))
    wait_until(lambda: any(r["state"] == "processing" for r in rows(data)) or all(r["state"] in TERMINAL for r in rows(data)),
               60, 0.002, "a running job or the end of the work")
    server.kill()
    interrupted = [r["id"] for r in rows(data) if r["state"] == "processing"]
    finished_before = sum(1 for r in rows(data) if r["state"] in TERMINAL)

    restarted = Server(data)
    try:
        healthy = restarted.wait_healthy()
        started = restarted.started
        if interrupted:
            wait_until(lambda: all(r["state"] in TERMINAL for r in rows(data) if r["id"] in interrupted), 120, 0.05,
                       "the interrupted job to finish")
            recovery = time.monotonic() - started
        else:
            recovery = None
        wait_until(lambda: all(r["state"] in TERMINAL for r in rows(data)), 180, 0.1, "every job to finish")

        final = {r["id"]: r for r in rows(data)}
        lost = duplicated = 0
        for job_id, clip in ids.items():
            row = final.get(job_id)
            if row is None or row["state"] != "completed":
                lost += 1
                print(f"  trial {number}: job {job_id} ({clip}) is {row and row['state']}: {row and row['error_code']}")
                continue
            answer = status(restarted.base, job_id)
            if answer["result"]["text"] != references[clip]:
                lost += 1
                print(f"  trial {number}: {clip} transcript differs: {answer['result']['text']!r}")
            expected_attempts = 2 if job_id in interrupted else 1
            check(row["attempts"] == expected_attempts,
                  f"trial {number}: {clip} took {row['attempts']} attempts, expected {expected_attempts}")
        duplicated += len(final) - len(ids)
        result_files = os.listdir(os.path.join(data, "results"))
        for job_id in ids:
            copies = [f for f in result_files if f.startswith(job_id)]
            duplicated += max(0, len(copies) - 1)
        claimed = [r for r in final.values() if r["lease_token"] is not None]
        check(not claimed, f"trial {number}: jobs left claimed: {claimed}")
    finally:
        code, _ = restarted.terminate()
    check(code == 0, f"trial {number}: the restarted server exited with {code}")
    left = orphans(data)
    figures["trials"] += 1
    figures["jobs"] += len(ids)
    figures["kills_processing"] += 1 if interrupted else 0
    figures["interrupted"] += len(interrupted)
    figures["recovered"] += sum(1 for i in interrupted if final[i]["state"] == "completed")
    figures["lost"] += lost
    figures["duplicated"] += duplicated
    figures["orphans"] += len(left)
    figures["healthy"].append(healthy)
    if recovery is not None:
        figures["recovery"].append(recovery)
    print(f"trial {number}: {len(ids)} jobs, {finished_before} done before the kill, "
          f"{len(interrupted)} interrupted, healthy after {healthy:.2f} s, "
          f"recovered in {'-' if recovery is None else f'{recovery:.2f} s'}, lost {lost}, duplicated {duplicated}, "
          f"orphans {left}")
    shutil.rmtree(os.path.join(work, f"trial-{number}"), ignore_errors=True)


def run():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rng = seeded()
    work = tempfile.mkdtemp(prefix="steno-sigkill-")
    references, seconds = reference_texts(work, sorted(CLIPS))
    print("reference processing seconds: " + ", ".join(f"{c} {s:.2f}" for c, s in seconds.items()))
    figures = {"trials": 0, "jobs": 0, "kills_processing": 0, "interrupted": 0, "recovered": 0, "lost": 0,
               "duplicated": 0, "orphans": 0, "healthy": [], "recovery": []}
    for number in range(1, trials + 1):
        trial(number, work, rng, references, seconds, figures)
    table("SIGKILL trials", [
        ("trials", figures["trials"]),
        ("jobs accepted", figures["jobs"]),
        ("kills while a job was processing", f"{figures['kills_processing']} of {figures['trials']}"),
        ("jobs interrupted / recovered (completed after restart)", f"{figures['interrupted']} / {figures['recovered']}"),
        ("jobs lost (missing, not completed, or transcript differs from the reference)", figures["lost"]),
        ("jobs duplicated (extra rows or result files)", figures["duplicated"]),
        ("orphan files after a clean stop", figures["orphans"]),
        ("median restart → healthy", f"{median(figures['healthy']):.2f} s"),
        ("median restart → interrupted job completed (recovery)", f"{median(figures['recovery']):.2f} s"),
        ("max recovery", f"{max(figures['recovery'] or [float('nan')]):.2f} s"),
    ])
    check(figures["lost"] == 0 and figures["duplicated"] == 0 and figures["orphans"] == 0,
          "a job was lost or duplicated, or a file was orphaned (see above)")
    check(figures["kills_processing"] > 0, "no kill landed while a job was processing")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(run)
