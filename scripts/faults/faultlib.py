"""Shared pieces of the fault scripts: a real `steno serve` process (release build, real model), uploads and
polls over HTTP, and direct reads of the SQLite job store and the data directory to check what the API cannot
show (leases, files nobody points at). Standard library only."""

import http.client
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.environ.get("CONFIG", "release")
# Relative paths (as `make` passes them) are relative to the repository root: the scripts run from their own folder.
STENO = os.path.join(ROOT, os.environ.get("STENO", os.path.join(".build", CONFIG, "steno")))
MODEL = os.path.join(ROOT, os.environ.get("MODEL", os.path.join("models", "tiny.en")))
VAD_MODEL = os.path.join(ROOT, "models", "silero-vad", "silero_vad.safetensors")
SPEAKER_MODEL = os.path.join(ROOT, "models", "speaker-encoder", "ge2e.safetensors")
LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"
CLIPS = {n: f"{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-{n}.wav" for n in ["0870", "0880", "0890", "0920", "0930"]}
TERMINAL = {"completed", "failed", "cancelled"}


class Failure(Exception):
    """A check that did not hold: the script prints it and exits with status 1."""


def check(condition, message):
    if not condition:
        raise Failure(message)


def require_binary():
    if not os.access(STENO, os.X_OK):
        sys.exit(f"{STENO} is missing; run: swift build -c {CONFIG} --product steno")


class Server:
    """One `steno serve` on `data` (a data directory), configured through the environment as in production."""

    def __init__(self, data, port=None, env=None, log_name="server.log", prefix=None, log_dir=None):
        self.data = data
        # Port 0 unless told: the server picks a free port and logs it; `base` reads it back.
        self.port = port or 0
        self._base = f"127.0.0.1:{self.port}" if self.port else None
        os.makedirs(data, exist_ok=True)
        self.log_path = os.path.join(log_dir or os.path.dirname(data.rstrip("/")), log_name)
        settings = {
            "STENO_PORT": str(self.port), "STENO_DATA_DIR": data, "STENO_MODEL": MODEL, "STENO_VAD_MODEL": VAD_MODEL,
            "STENO_SPEAKER_MODEL": SPEAKER_MODEL, "STENO_WORKERS": "1",
            "STENO_RETRIEVAL_GRACE": "10m", "STENO_LOG_LEVEL": "info",
        }
        settings.update(env or {})
        environment = {k: v for k, v in os.environ.items() if not k.startswith("STENO_")}
        environment.update(settings)
        self.log = open(self.log_path, "ab")
        self.log_start = self.log.tell()  # the log may hold earlier servers' lines
        self.started = time.monotonic()
        self.process = subprocess.Popen((prefix or []) + [STENO, "serve"], env=environment,
                                        stdout=self.log, stderr=self.log)

    @property
    def base(self):
        """`127.0.0.1:<port>` from the server's "listening on http://…" line (waits up to 90 s for it)."""
        deadline = time.monotonic() + 90
        while self._base is None:
            match = re.search(r"listening on http://(\S+)", self.log_text(since_start=True))
            if match:
                self._base = match.group(1)
            elif self.process.poll() is not None or time.monotonic() > deadline:
                raise Failure(f"the server never said where it listens; log: {self.log_path}")
            else:
                time.sleep(0.05)
        return self._base

    @property
    def pid(self):
        return self.process.pid

    def __enter__(self):
        return self

    def __exit__(self, *_):
        """Stops the server if it still runs (SIGTERM, SIGKILL after 30 s)."""
        if self.process.poll() is None:
            try:
                self.terminate(timeout=30)
            except Failure:
                pass  # killed

    def wait_healthy(self, timeout=90):
        """Seconds from start until `/healthz` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure(f"the server exited with {self.process.returncode}; log: {self.log_path}")
            try:
                if request(self.base, "GET", "/healthz", timeout=2)[0] == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.05)
        raise Failure(f"the server did not become healthy in {timeout} s; log: {self.log_path}")

    def signal(self, number):
        os.kill(self.process.pid, number)

    def kill(self):
        self.signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout=60):
        """SIGTERM; returns (exit status, seconds to exit)."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure(f"the server did not exit within {timeout} s of SIGTERM")
        return self.process.returncode, time.monotonic() - started

    def log_text(self, since_start=False):
        """The log file; with `since_start`, only what this server wrote."""
        self.log.flush()
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")


def request(base, method, path, body=None, headers=None, timeout=30):
    """One HTTP request; returns (status, parsed JSON or raw text, headers)."""
    connection = http.client.HTTPConnection(base, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return response.status, parsed, dict(response.getheaders())
    finally:
        connection.close()


def multipart(data, fields=None):
    boundary = "steno-fault-" + uuid.uuid4().hex[:12]
    parts = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def submit(base, data, fields=None, timeout=60, headers=None):
    """POST /transcribe; returns (status, body). `headers` adds to the request's (say, `Authorization`)."""
    body, content_type = multipart(data, fields)
    status, parsed, _ = request(base, "POST", "/transcribe", body, {"Content-Type": content_type, **(headers or {})}, timeout)
    return status, parsed


def error_code(body):
    """`error.code` of an error answer's JSON body, or None."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


def read_clip(number):
    with open(CLIPS[number], "rb") as f:
        return f.read()


def status(base, job_id):
    return request(base, "GET", f"/transcribe/{job_id}")[1]


def metric(base, name, labels=""):
    """Sum of a Prometheus metric's samples whose label text contains `labels`."""
    _, text, _ = request(base, "GET", "/metrics")
    total = 0.0
    for line in str(text).splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


# MARK: - The data directory, read directly


def database(data):
    return sqlite3.connect(os.path.join(data, "steno.sqlite"), timeout=30)


def rows(data, where="1=1"):
    db = database(data)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM job WHERE {where} ORDER BY seq")]
    finally:
        db.close()


def files(data):
    names = set()
    for folder in ("audio", "results", "tmp"):
        directory = os.path.join(data, folder)
        if os.path.isdir(directory):
            names.update(f"{folder}/{entry}" for entry in os.listdir(directory))
    return names


def orphans(data):
    """Files in audio/, results/ and tmp/ that no job row points at."""
    referenced = set()
    for row in rows(data):
        referenced.update(p for p in (row["audio_path"], row["result_path"]) if p)
    return sorted(files(data) - referenced)


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting for {what}")


def reference_texts(work, numbers):
    """Transcripts of `numbers` from an undisturbed server: what every fault run must reproduce exactly.
    Also returns each clip's processing seconds there. With FAULT_REFERENCE_CACHE (a file; run.sh sets it) the
    first script's reference run serves the others."""
    cache = os.environ.get("FAULT_REFERENCE_CACHE")
    if cache and os.path.exists(cache):
        with open(cache) as f:
            stored = json.load(f)
        if all(n in stored["texts"] for n in numbers):
            return stored["texts"], stored["seconds"]
    texts, seconds = _reference_run(work, numbers)
    if cache:
        with open(cache, "w") as f:
            json.dump({"texts": texts, "seconds": seconds}, f)
    return texts, seconds


def _reference_run(work, numbers):
    server = Server(os.path.join(work, "reference", "data"), log_name="reference.log")
    try:
        server.wait_healthy()
        ids = {}
        for number in numbers:
            code, body = submit(server.base, read_clip(number))
            check(code == 202, f"reference upload of {number}: {code} {body}")
            ids[number] = body["job_id"]
        wait_until(lambda: all(r["state"] in TERMINAL for r in rows(server.data)), 300, 0.2, "the reference run")
        texts, seconds = {}, {}
        by_id = {r["id"]: r for r in rows(server.data)}
        for number, job_id in ids.items():
            answer = status(server.base, job_id)
            check(answer["status"] == "completed", f"reference {number}: {answer}")
            texts[number] = answer["result"]["text"]
            row = by_id[job_id]
            seconds[number] = row["completed_at"] - row["started_at"]
        return texts, seconds
    finally:
        server.terminate()


# MARK: - The server process, read from /proc


def proc_status_kb(pid, field):
    """A `kB` figure of /proc/PID/status (`VmRSS`, `VmHWM`, …)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise Failure(f"/proc/{pid}/status has no {field}")


def rss_mb(pid):
    return proc_status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid):
    """The process's high-water mark of resident memory (VmHWM)."""
    return proc_status_kb(pid, "VmHWM") / 1024


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    """User + system CPU time of the process (all its threads, not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Samples a process's resident memory (MB) and open descriptors every `interval` seconds on a thread of its
    own: `samples` is a list of (seconds since start, rss MB, fds). `on_sample(rss, fds)` may return True to stop."""

    def __init__(self, pid, interval, on_sample=None):
        self.pid, self.interval, self.on_sample = pid, interval, on_sample
        self.samples = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                rss, fds = rss_mb(self.pid), open_fds(self.pid)
            except (OSError, Failure):
                return  # the process is gone
            self.samples.append((time.monotonic() - self.started, rss, fds))
            if self.on_sample and self.on_sample(rss, fds):
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.samples

    @property
    def peak_rss(self):
        return max((s[1] for s in self.samples), default=float("nan"))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def median(values):
    return statistics.median(values) if values else float("nan")


def table(title, rows_):
    """A Markdown table: rows_ is a list of (figure, value)."""
    print(f"\n### {title}\n")
    print("| figure | value |")
    print("|---|---|")
    for name, value in rows_:
        print(f"| {name} | {value} |")
    sys.stdout.flush()


def main(run):
    """Runs `run()`; a failed check exits 1 with its message."""
    require_binary()
    try:
        run()
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)


def seeded():
    seed = int(os.environ.get("FAULT_SEED", random.SystemRandom().randrange(1, 1 << 31)))
    print(f"seed {seed} (rerun with FAULT_SEED={seed})")
    return random.Random(seed)
