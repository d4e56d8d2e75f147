#!/usr/bin/env python3
"""What durable uploads cost (issue 9): a 202 means the recording and its job are on stable storage.

Prints, side by side on this machine's disk (the data directory's filesystem):
  1. the end-to-end latency of `POST /transcribe` against a live `steno serve` (sequential uploads of a short
     real recording; workers idle, so only the upload path is timed);
  2. the two syncs the upload path adds, timed alone with the same system calls:
     - the audio: write the file, fsync it, rename it, fsync the directory — against write + rename alone;
     - the job row: one SQLite insert in WAL mode with synchronous=FULL (what the server uses) against NORMAL.
The difference in 2 is the cost of durability per upload; 1 shows it next to the whole request.

    python3 benchmarks/durability.py [--uploads 200] [--data-dir /path/on/the/disk/to/measure]
"""

import argparse
import http.client
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
STENO = os.path.join(ROOT, ".build", "release", "steno")
MODEL = os.path.join(ROOT, "models", "tiny.en")
SAMPLE = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def upload_latencies(data_dir, count):
    """Sequential uploads against a live server; returns per-request seconds."""
    log = open(os.path.join(data_dir, "server.log"), "wb")
    server = subprocess.Popen(
        [STENO, "serve", "--port", "0", "--data-dir", os.path.join(data_dir, "data"), "--model", MODEL,
         "--log-level", "notice", "--max-queued-jobs", "100000", "--poll-interval", "1h"],
        stdout=log, stderr=log)
    try:
        port = None
        for _ in range(300):
            text = open(log.name, errors="replace").read()
            found = re.search(r"listening on http://[^:]+:(\d+)", text)
            if found:
                port = int(found.group(1))
                break
            time.sleep(0.1)
        if port is None:
            sys.exit("the server did not start:\n" + open(log.name, errors="replace").read())
        audio = open(SAMPLE, "rb").read()
        boundary = "durability-bench"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + audio + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            connection.request("POST", "/transcribe", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            seconds.append(time.perf_counter() - started)
            if response.status != 202:
                sys.exit(f"upload answered {response.status}")
        return seconds, len(audio)
    finally:
        server.terminate()
        server.wait(timeout=30)


def file_commit_seconds(directory, size, durable, rounds):
    """Write `size` bytes to a temporary file and rename it into place, with or without the server's fsyncs."""
    payload = os.urandom(size)
    tmp = os.path.join(directory, "tmp")
    audio = os.path.join(directory, "audio")
    os.makedirs(tmp, exist_ok=True)
    os.makedirs(audio, exist_ok=True)
    seconds = []
    for index in range(rounds):
        part = os.path.join(tmp, f"{index}.part")
        started = time.perf_counter()
        with open(part, "wb") as handle:
            handle.write(payload)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.rename(part, os.path.join(audio, str(index)))
        if durable:
            descriptor = os.open(audio, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(descriptor)
            os.close(descriptor)
        seconds.append(time.perf_counter() - started)
    return seconds


def row_commit_seconds(directory, synchronous, rounds):
    """One INSERT per transaction in a WAL database, as the server records a job."""
    path = os.path.join(directory, f"jobs-{synchronous}.sqlite")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("CREATE TABLE job (id TEXT PRIMARY KEY, state TEXT, created_at REAL, audio_path TEXT)")
    seconds = []
    for index in range(rounds):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO job VALUES (?, 'pending', ?, ?)", (f"job-{index}", time.time(), f"audio/{index}"))
        db.execute("COMMIT")
        seconds.append(time.perf_counter() - started)
    db.close()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--data-dir", default=None, help="a directory on the disk to measure (default: under /tmp)")
    arguments = parser.parse_args()
    if not os.access(STENO, os.X_OK):
        sys.exit(f"{STENO} is missing; run: swift build -c release --product steno")
    with tempfile.TemporaryDirectory(dir=arguments.data_dir) as work:
        latencies, size = upload_latencies(work, arguments.uploads)
        relaxed_file = file_commit_seconds(os.path.join(work, "relaxed"), size, False, arguments.rounds)
        durable_file = file_commit_seconds(os.path.join(work, "durable"), size, True, arguments.rounds)
        normal_row = row_commit_seconds(work, "NORMAL", arguments.rounds)
        full_row = row_commit_seconds(work, "FULL", arguments.rounds)

    def ms(values, fraction=0.5):
        return percentile(values, fraction) * 1000

    print(f"durability cost per upload ({size} byte recording; load average {os.getloadavg()[0]:.2f})")
    print(f"{'step':<44}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'POST /transcribe, end to end (steno serve)':<44}{ms(latencies):>10.2f}{ms(latencies, 0.99):>10.2f}")
    print(f"{'audio: write + rename':<44}{ms(relaxed_file):>10.2f}{ms(relaxed_file, 0.99):>10.2f}")
    print(f"{'audio: write + fsync + rename + dir fsync':<44}{ms(durable_file):>10.2f}{ms(durable_file, 0.99):>10.2f}")
    print(f"{'row: SQLite WAL commit, synchronous=NORMAL':<44}{ms(normal_row):>10.2f}{ms(normal_row, 0.99):>10.2f}")
    print(f"{'row: SQLite WAL commit, synchronous=FULL':<44}{ms(full_row):>10.2f}{ms(full_row, 0.99):>10.2f}")
    added = (statistics.median(durable_file) - statistics.median(relaxed_file)) \
        + (statistics.median(full_row) - statistics.median(normal_row))
    print(f"added by durability (medians): {added * 1000:.2f} ms per upload, "
          f"{added / statistics.median(latencies) * 100:.0f} % of the end-to-end median")


if __name__ == "__main__":
    main()
