#!/usr/bin/env python3
"""Disk full (issue 4, item 4). The data directory (SQLite, audio, results, tmp) lives on a small tmpfs
(`mount -t tmpfs -o size=48m`; needs root, skipped otherwise); a filler file takes the free space at chosen
moments. Checked:
- while uploading: the upload gets `507` with `{"error": {"code": "insufficient_storage", …}}`, its temporary
  file is removed, no row is written; the server keeps answering;
- while writing a result: the transcription's result cannot be stored; the job goes back to the queue at once
  (a retry with `error.code` `storage_full`, its attempt counted: the worker gives back its space reserve so
  that SQLite, on the same full disk, can write the row), never a completed row without its file, no partial
  file left; once space returns the same job completes with the reference transcript and new jobs are
  accepted and completed.

Usage: scripts/faults/disk-full.sh"""

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time

from faultlib import (CLIPS, TERMINAL, Failure, Server, check, main, read_clip, reference_texts, request, rows, seeded, status,
                      submit, table, wait_until)

SIZE_MB = 48


def fill(directory, leave=0):
    """Writes a filler file until the filesystem is full, then gives back `leave` bytes."""
    path = os.path.join(directory, "filler")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(descriptor)
    if leave:
        os.truncate(path, max(0, os.path.getsize(path) - leave))
    return path


def free(directory):
    path = os.path.join(directory, "filler")
    if os.path.exists(path):
        os.remove(path)


def run():
    if os.geteuid() != 0:
        print("disk-full: skipped (needs root to mount a tmpfs)")
        return
    seeded()
    work = tempfile.mkdtemp(prefix="steno-diskfull-")
    disk = os.path.join(work, "disk")
    os.makedirs(disk)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", disk]).returncode != 0:
        print("disk-full: skipped (mount -t tmpfs is not allowed here)")
        return
    figures = []
    server = None
    try:
        references, _ = reference_texts(work, ["0870", "0880"])
        data = os.path.join(disk, "data")
        # The log stays outside the small filesystem.
        server = Server(data, env={"STENO_MIN_FREE_DISK": "1M", "STENO_LEASE": "5s"}, log_dir=work)
        server.wait_healthy()
        code, body = submit(server.base, read_clip("0880"))
        check(code == 202, f"first upload: {code} {body}")
        wait_until(lambda: rows(data)[0]["state"] in TERMINAL, 120, 0.1, "the first job")

        # 1. Uploads into a full disk: 512 KB free, a 4 MB upload.
        fill(disk, leave=512 << 10)
        big = os.urandom(4 << 20)
        before = len(rows(data))
        refused = 0
        for attempt in range(5):
            started = time.monotonic()
            try:
                code, body = submit(server.base, big)
            except OSError as error:
                raise Failure(f"upload {attempt}: the connection failed instead of answering: {error}")
            seconds = time.monotonic() - started
            check(code == 507 and isinstance(body, dict) and body.get("error", {}).get("code") == "insufficient_storage"
                  and body["error"].get("message"), f"upload into a full disk answered {code} {body}")
            refused += 1
            check(os.listdir(os.path.join(data, "tmp")) == [], f"temporary files left: {os.listdir(os.path.join(data, 'tmp'))}")
            check(len(rows(data)) == before, "a row was written for a refused upload")
        check(request(server.base, "GET", "/healthz")[0] == 200, "healthz while the disk is full")
        check(request(server.base, "GET", "/transcribe")[0] == 200, "listing while the disk is full")
        ready_full = request(server.base, "GET", "/readyz")[0]
        # The first retrieval of a result is a write too: a success, or 507, never a bare 500.
        first_status, first_body, _ = request(server.base, "GET", f"/transcribe/{rows(data)[0]['id']}")
        check(first_status in (200, 507), f"status of a finished job while full: {first_status} {first_body}")
        figures.append(("first retrieval of a finished job while full (a write)", first_status))
        figures.append(("uploads into a full disk answered 507 insufficient_storage", f"{refused} of 5 (last in {seconds * 1000:.0f} ms)"))
        figures.append(("temporary files / rows left by refused uploads", "0 / 0"))
        figures.append(("/healthz, /transcribe list, /readyz while full", f"200, 200, {ready_full}"))

        # Space returns: uploads work again.
        free(disk)
        code, body = submit(server.base, read_clip("0880"))
        check(code == 202, f"upload after space returned: {code} {body}")
        after_space = body["job_id"]
        wait_until(lambda: status(server.base, after_space)["status"] in TERMINAL, 120, 0.1, "the job after space returned")
        check(status(server.base, after_space)["result"]["text"] == references["0880"], "transcript after space returned")
        figures.append(("upload + transcription after space returned", "completed, transcript = reference"))

        # 2. The disk fills while a job is being transcribed: its result cannot be written.
        code, body = submit(server.base, read_clip("0870"))
        check(code == 202, f"upload: {code} {body}")
        job_id = body["job_id"]
        wait_until(lambda: any(r["id"] == job_id and r["state"] == "processing" for r in rows(data)), 60, 0.005,
                   "the job to start")
        fill(disk)
        filled = time.monotonic()
        log_before = len(server.log_text())
        wait_until(lambda: any(w in server.log_text()[log_before:] for w in ("storage_full", "could not record the outcome")),
                   180, 0.1, "the result write to fail")
        for line in server.log_text()[log_before:].splitlines():
            if "storage_full" in line or "could not record the outcome" in line or "space reserve" in line:
                print("  server log: " + line[line.find(" "):][:300])
        row = next(r for r in rows(data) if r["id"] == job_id)
        check(row["state"] == "pending" and row["error_code"] == "storage_full" and row["attempts"] == 1
              and row["result_path"] is None and row["lease_token"] is None,
              f"the job after a failed result write (expected back to pending at once): {row}")
        results = os.listdir(os.path.join(data, "results"))
        check(not any(f.startswith(job_id) for f in results), f"a result file of the failed write exists: {results}")
        check(os.listdir(os.path.join(data, "tmp")) == [], "a partial result is left in tmp/")
        # Whether SQLite needed the worker's space reserve to write the row (its WAL may still have had room).
        reserve = "yes" if "space reserve released" in server.log_text()[log_before:] else "not needed"
        figures.append(("result write into a full disk", f"back to pending at once, error.code {row['error_code']}, "
                        f"attempt {row['attempts']} counted, {time.monotonic() - filled:.1f} s after the disk filled "
                        f"(space reserve given back: {reserve})"))
        free(disk)
        done = wait_until(lambda: next(r for r in rows(data) if r["id"] == job_id)["state"] in TERMINAL and
                          next(r for r in rows(data) if r["id"] == job_id), 180, 0.1, "the retried job")
        check(done["state"] == "completed", f"the job after space returned: {done}")
        check(status(server.base, job_id)["result"]["text"] == references["0870"], "retried transcript")
        figures.append(("that job after space returned", f"completed on attempt {done['attempts']}, "
                        f"{time.monotonic() - filled:.1f} s after the disk filled, transcript = reference"))
        code, body = submit(server.base, read_clip("0880"))
        check(code == 202, "a new upload at the end")
        wait_until(lambda: status(server.base, body["job_id"])["status"] == "completed", 120, 0.1, "the last job")
        figures.append(("new job at the end", "completed"))
        code, _ = server.terminate()
        server = None
        check(code == 0, f"exit status {code}")
    finally:
        if server:
            server.terminate()
        subprocess.run(["umount", disk])
        shutil.rmtree(work, ignore_errors=True)
    table(f"Disk full (data directory on a {SIZE_MB} MB tmpfs)", figures)


if __name__ == "__main__":
    main(run)
