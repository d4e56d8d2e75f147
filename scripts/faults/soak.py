#!/usr/bin/env python3
"""Soak: DURATION seconds of mixed traffic against one real `steno serve` that transcribes all the while (one
worker, real recordings), with API keys (two tenants, `Authorization: Bearer`) and a bounded queue. Client
threads, each a tenant, upload (some with an Idempotency-Key, some retrying one), poll, list, delete, read
another tenant's job, and send bad input: a file that is not audio, a form without a file, a bad job id, an
unknown route, an oversized field, no key, a wrong key. A few slow clients trickle request headers a byte a
second. A leak shows as growth once the server is warm: the server's resident memory and open descriptors are
sampled every 5 s, and compared at two resting points, the end of the warm-up (20 % of the run) and the end,
where the clients pause and the queue drains (a transcription in progress holds some hundred MB for a moment,
which is not a leak); each figure there is the median of five reads over a second. Before the clock starts the
server transcribes every clip once and serves a burst of concurrent reads (priming), so the warm-up starts from
a server that has done every job and grown its pools.
The server runs with glibc's malloc at fixed mmap and trim thresholds (128 KB, GLIBC_TUNABLES): freed large
buffers then go back to the system at once, so the resting RSS is what the server retains. With the default
(adaptive) thresholds the resting RSS of the same server moves by ±15 % with the heap's fragmentation, more than
the growth checked for; SOAK_DEFAULT_MALLOC=1 runs it that way all the same.

Checked: every answer has a status its request may get (no unexpected 5xx; 503 only as `queue_full`); growth
of RSS and of open descriptors from the end of the warm-up to the end < 10 %; once the traffic
stops every accepted job becomes terminal (bounded wait), none is lost or duplicated, each belongs to the tenant
that created it, and ends as expected (completed, failed `undecodable_audio` for the non-audio file, or
deleted); the server log holds no API key.

Usage: scripts/faults/soak.sh [DURATION] (seconds, default 600; `soak.sh 60` is the short form)."""

import os
import random
import secrets
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from faultlib import CLIPS, TERMINAL, Sampler, Server, check, error_code, main, open_fds, read_clip, request, rows, rss_mb, seeded, table

CLIENT_THREADS = 4
QUEUE_BOUND = 20
SAMPLE_EVERY = 5
WARM_UP = 0.2
GROWTH_LIMIT = 0.10
SLOW_CLIENTS = 3
SLOW_BYTE_EVERY = 1.0
PAUSE = (0.02, 0.2)  # seconds between one client's requests
TIMEOUT = 60  # per request
PRIMING_THREADS, PRIMING_READS = 16, 20
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072"
WRONG_KEY = "soak-wrong-" + secrets.token_hex(16)  # a well-formed key the server does not know

# What each kind of request may get. 503 is allowed only as queue_full (checked when recorded).
ALLOWED = {
    "priming": {202}, "upload": {202, 503}, "idempotent retry": {202}, "poll": {200, 410}, "poll text": {200, 409, 410},
    "list": {200}, "delete": {204}, "other tenant's job": {404}, "not audio": {202, 503}, "missing file": {400, 503},
    "bad job id": {400}, "unknown route": {404}, "oversized field": {413, 422, 503}, "no key": {401},
    "wrong key": {401}, "metrics": {200},
}
WEIGHTS = {
    "upload": 6, "idempotent retry": 2, "poll": 22, "poll text": 6, "list": 10, "delete": 3, "other tenant's job": 3,
    "not audio": 2, "missing file": 3, "bad job id": 3, "unknown route": 3, "oversized field": 2, "no key": 2,
    "wrong key": 2, "metrics": 2,
}


class Ledger:
    """What the clients sent and got, shared by their threads; also what lets the main thread pause them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.paused = False
        self.in_flight = 0
        self.kinds = Counter()
        self.statuses = Counter()
        self.unexpected = []
        self.accepted = {}  # job id -> (tenant, expected end: "completed" or "failed")
        self.deleted = set()

    def record(self, kind, code, body):
        with self.lock:
            self.kinds[kind] += 1
            self.statuses[code] += 1
            allowed = code in ALLOWED[kind] and (code != 503 or error_code(body) == "queue_full")
            if not allowed:
                self.unexpected.append((kind, code, str(body)[:200]))

    def accept(self, job_id, tenant, expected):
        with self.lock:
            self.accepted.setdefault(job_id, (tenant, expected))

    def jobs_of(self, tenant):
        with self.lock:
            return [i for i, (t, _) in self.accepted.items() if t == tenant]

    def begin(self):
        """A client may start a request (True) unless paused; `end()` when it is done."""
        with self.lock:
            if self.paused:
                return False
            self.in_flight += 1
            return True

    def end(self):
        with self.lock:
            self.in_flight -= 1

    def pause(self, timeout=TIMEOUT + 5):
        """Stops the clients after their current request; returns once none is in flight."""
        with self.lock:
            self.paused = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.in_flight == 0:
                    return
            time.sleep(0.05)

    def resume(self):
        with self.lock:
            self.paused = False


def form(fields, file=None):
    """A multipart body of `fields` and, if given, a file part."""
    boundary = "soak-" + uuid.uuid4().hex[:12]
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    if file is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


class Client:
    """One tenant's client thread: random requests of every kind until `stop`."""

    def __init__(self, server, tenant, key, other, ledger, rng, clips):
        self.base, self.tenant, self.other, self.ledger, self.rng = server.base, tenant, other, ledger, rng
        self.auth = {"Authorization": f"Bearer {key}"}
        self.clips = clips
        self.mine = []  # this thread's live jobs
        self.keys = []  # (Idempotency-Key, job id, clip) of accepted uploads

    def call(self, kind, method, path, body=None, headers=None, auth=True):
        try:
            code, answer, _ = request(self.base, method, path, body, {**(self.auth if auth else {}), **(headers or {})}, TIMEOUT)
        except OSError as error:
            code, answer = 0, f"connection error: {error!r}"
        self.ledger.record(kind, code, answer)
        return code, answer

    def upload(self, kind, audio, fields=None, key=None, expected="completed"):
        body, headers = form(fields or {}, audio)
        if key:
            headers["Idempotency-Key"] = key
        code, answer = self.call(kind, "POST", "/transcribe", body, headers)
        if code == 202:
            job_id = answer["job_id"]
            self.ledger.accept(job_id, self.tenant, expected)
            if job_id not in self.mine and job_id not in self.ledger.deleted:
                self.mine.append(job_id)
        return code, answer

    def act(self, kind):
        rng = self.rng
        if kind == "upload":
            audio = rng.choice(self.clips)
            key = f"soak-{uuid.uuid4().hex}" if rng.random() < 0.3 else None
            code, answer = self.upload(kind, audio, {"language": "en"} if rng.random() < 0.5 else None, key)
            if code == 202 and key:
                self.keys.append((key, answer["job_id"], audio))
        elif kind == "idempotent retry" and self.keys:
            key, job_id, audio = rng.choice(self.keys)
            code, answer = self.upload(kind, audio, key=key)
            if code == 202 and answer["job_id"] != job_id:
                with self.ledger.lock:
                    self.ledger.unexpected.append((kind, code, f"a retry with key {key} made job {answer['job_id']}, not {job_id}"))
        elif kind == "poll" and self.mine:
            self.call(kind, "GET", f"/transcribe/{rng.choice(self.mine)}")
        elif kind == "poll text" and self.mine:
            self.call(kind, "GET", f"/transcribe/{rng.choice(self.mine)}?format=text")
        elif kind == "list":
            code, answer = self.call(kind, "GET", "/transcribe?limit=20")
            foreign = set(self.ledger.jobs_of(self.other))
            if code == 200 and any(job.get("job_id") in foreign for job in answer.get("jobs", [])):
                with self.ledger.lock:
                    self.ledger.unexpected.append((kind, code, "the list shows another tenant's job"))
        elif kind == "delete" and self.mine:
            job_id = self.mine.pop(rng.randrange(len(self.mine)))
            if self.call(kind, "DELETE", f"/transcribe/{job_id}")[0] == 204:
                with self.ledger.lock:
                    self.ledger.deleted.add(job_id)
        elif kind == "other tenant's job":
            theirs = self.ledger.jobs_of(self.other)
            if theirs:
                self.call(kind, "GET", f"/transcribe/{rng.choice(theirs)}")
        elif kind == "not audio":
            self.upload(kind, os.urandom(4096), expected="failed")
        elif kind == "missing file":
            body, headers = form({"language": "en"})
            self.call(kind, "POST", "/transcribe", body, headers)
        elif kind == "bad job id":
            self.call(kind, "GET", "/transcribe/not-a-job-id")
        elif kind == "unknown route":
            self.call(kind, "GET", f"/no/such/{uuid.uuid4().hex[:6]}")
        elif kind == "oversized field":
            body, headers = form({"prompt": "x" * (100 << 10)}, rng.choice(self.clips))
            self.call(kind, "POST", "/transcribe", body, headers)
        elif kind == "no key":
            self.call(kind, "GET", "/transcribe", auth=False)
        elif kind == "wrong key":
            self.call(kind, "GET", "/transcribe", headers={"Authorization": f"Bearer {WRONG_KEY}"}, auth=False)
        elif kind == "metrics":
            self.call(kind, "GET", "/metrics")

    def run(self):
        kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
        while not self.ledger.stop.is_set():
            if self.ledger.begin():
                try:
                    self.act(self.rng.choices(kinds, weights)[0])
                finally:
                    self.ledger.end()
            self.ledger.stop.wait(self.rng.uniform(*PAUSE))



def slow_clients(target, stop, outcomes):
    """SLOW_CLIENTS connections that send a request head a byte every SLOW_BYTE_EVERY seconds, never ending it;
    one the server closes is opened again. `outcomes` counts what ended them."""
    selector = selectors.DefaultSelector()
    head = b"GET /healthz HTTP/1.1\r\nHost: soak\r\nX-Slow: " + b"a" * 4000

    def open_one():
        connection = socket.create_connection(target, timeout=5)
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ, [0])  # bytes of `head` sent
        outcomes["opened"] += 1

    try:
        for _ in range(SLOW_CLIENTS):
            open_one()
        while not stop.is_set():
            deadline = time.monotonic() + SLOW_BYTE_EVERY
            while time.monotonic() < deadline and not stop.is_set():
                for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
                    try:
                        data = key.fileobj.recv(4096)
                    except ConnectionResetError:
                        data = None
                    outcomes["reset" if data is None else "closed" if not data else
                             "answered " + data.split(b" ", 2)[1].decode("latin-1", "replace")] += 1
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    open_one()
            for key in list(selector.get_map().values()):
                sent = key.data
                if sent[0] >= len(head):  # never end the head; start over on a new connection
                    outcomes["gave up (head at 4 KB)"] += 1
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    open_one()
                    continue
                try:
                    sent[0] += key.fileobj.send(head[sent[0]:sent[0] + 1])
                except OSError:
                    pass  # the read side sees the close
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()


def checkpoint(pid):
    """(RSS MB, open descriptors): medians of five reads 0.2 s apart."""
    reads = []
    for _ in range(5):
        reads.append((rss_mb(pid), open_fds(pid)))
        time.sleep(0.2)
    return statistics.median(r[0] for r in reads), statistics.median(r[1] for r in reads)


def rest_point(server, ledger):
    """Pauses the clients, lets the queue drain, and measures (RSS MB, open descriptors, seconds it took)."""
    started = time.monotonic()
    ledger.pause()
    settle(server.data, 240)
    time.sleep(1)  # connections of the last requests close
    rss, fds = checkpoint(server.pid)
    ledger.resume()
    return rss, fds, time.monotonic() - started


def prime(server, clients, ledger):
    """Before the clock starts: every clip once, and a file that is not audio, transcribed; then a burst of
    concurrent reads, so that pools the server grows on demand (SQLite reader connections: 2 descriptors each)
    are at their size before the warm-up ends, and their growth is not taken for a leak."""
    for client in clients[:2]:  # one of each tenant
        for audio in client.clips:
            client.upload("priming", audio)
        client.upload("priming", os.urandom(4096), expected="failed")
    check(settle(server.data, 240) is not None, "the priming jobs did not finish in 240 s")
    check(not ledger.unexpected, f"priming uploads: {ledger.unexpected}")
    first = clients[0]

    def reads(_):
        for _ in range(PRIMING_READS):
            request(server.base, "GET", "/transcribe?limit=20", headers=first.auth, timeout=TIMEOUT)
            request(server.base, "GET", f"/transcribe/{first.mine[0]}", headers=first.auth, timeout=TIMEOUT)
    with ThreadPoolExecutor(PRIMING_THREADS) as pool:
        list(pool.map(reads, range(PRIMING_THREADS)))


def settle(data, timeout):
    """Waits until every job in the store is terminal; returns the seconds it took, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(r["state"] in TERMINAL for r in rows(data)):
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def verify_jobs(data, ledger):
    """Problems with the jobs: lost, duplicated, not terminal, wrong tenant, unexpected end."""
    stored = {r["id"]: r for r in rows(data)}
    problems = []
    lost = [i for i in ledger.accepted if i not in stored]
    extra = [i for i in stored if i not in ledger.accepted]
    if lost:
        problems.append(f"{len(lost)} accepted jobs are not in the store: {lost[:3]}")
    if extra:
        problems.append(f"{len(extra)} jobs in the store no client was given (duplicates?): {extra[:3]}")
    for job_id, (tenant, expected) in ledger.accepted.items():
        row = stored.get(job_id)
        if not row:
            continue
        if row["tenant"] != tenant:
            problems.append(f"job {job_id} belongs to {row['tenant']!r}, not {tenant!r}")
        if row["state"] not in TERMINAL:
            problems.append(f"job {job_id} is still {row['state']}")
        elif job_id not in ledger.deleted and (row["state"] != expected or (
                expected == "failed" and row["error_code"] != "undecodable_audio")):
            problems.append(f"job {job_id} ended {row['state']} {row['error_code']}, expected {expected}")
    return problems, Counter(r["state"] for r in stored.values())


def run():
    duration = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    rng = seeded()
    work = tempfile.mkdtemp(prefix="steno-soak-")
    data = os.path.join(work, "data")
    keys = {"alice": "soak-alice-" + secrets.token_hex(16), "bob": "soak-bob-" + secrets.token_hex(16)}
    env = {"STENO_API_KEYS": ",".join(f"{t}={k}" for t, k in keys.items()), "STENO_MAX_QUEUED_JOBS": str(QUEUE_BOUND),
           "STENO_SHUTDOWN_GRACE": "0"}
    default_malloc = os.environ.get("SOAK_DEFAULT_MALLOC") == "1"
    if not default_malloc:
        env["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    clips = [read_clip(number) for number in sorted(CLIPS)]
    ledger = Ledger()
    slow = Counter()
    stop_slow = threading.Event()
    try:
        with Server(data, env=env) as server:
            server.wait_healthy()
            host, port = server.base.rsplit(":", 1)
            tenants = list(keys)
            clients = [Client(server, tenants[i % 2], keys[tenants[i % 2]], tenants[(i + 1) % 2], ledger,
                              random.Random(rng.random()), clips) for i in range(CLIENT_THREADS)]
            prime(server, clients, ledger)
            threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
            threads.append(threading.Thread(target=slow_clients, args=((host, int(port)), stop_slow, slow), daemon=True))
            sampler = Sampler(server.pid, SAMPLE_EVERY)
            started = time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(duration * WARM_UP)
            warm = rest_point(server, ledger)
            # The rest points do not count as traffic time.
            time.sleep(duration * (1 - WARM_UP))
            end = rest_point(server, ledger)
            ledger.stop.set()
            stop_slow.set()
            for thread in threads:
                thread.join(TIMEOUT + 5)
            elapsed = time.monotonic() - started
            samples = sampler.stop()
            settled = settle(data, 300)
            problems, states = verify_jobs(data, ledger)
            exit_code, _ = server.terminate()
            log = server.log_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    leaked = [name for name, key in [*keys.items(), ("wrong key", WRONG_KEY)] if key in log]
    rss_growth = (end[0] - warm[0]) / warm[0]
    fd_growth = (end[1] - warm[1]) / warm[1]
    requests_total = sum(ledger.kinds.values())
    traffic_seconds = elapsed - warm[2] - end[2]
    table(f"Soak: {duration} s of mixed traffic (2 tenants, {CLIENT_THREADS} client threads, {SLOW_CLIENTS} slow clients, "
          f"1 worker, queue bound {QUEUE_BOUND})", [
        ("requests in all / per second", f"{requests_total} / {requests_total / traffic_seconds:.1f}"),
        ("requests by kind", ", ".join(f"{k}: {v}" for k, v in ledger.kinds.most_common())),
        ("answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(ledger.statuses.items()))),
        ("unexpected answers (5xx other than queue_full, wrong status, connection errors)", len(ledger.unexpected)),
        ("slow header clients", ", ".join(f"{k}: {v}" for k, v in sorted(slow.items()))),
        ("server's malloc", "glibc defaults" if default_malloc else f"GLIBC_TUNABLES={MALLOC_TUNABLES}"),
        ("RSS at rest: warm-up end / end (growth, limit)", f"{warm[0]:.0f} MB / {end[0]:.0f} MB ({rss_growth:+.1%}, {GROWTH_LIMIT:.0%})"),
        ("open descriptors at rest: warm-up end / end (growth)", f"{warm[1]:.0f} / {end[1]:.0f} ({fd_growth:+.1%})"),
        ("seconds to come to rest: warm-up end / end", f"{warm[2]:.1f} / {end[2]:.1f}"),
        (f"RSS MB every {SAMPLE_EVERY} s (during traffic and rests)", " ".join(f"{s[1]:.0f}" for s in samples)),
        (f"open descriptors every {SAMPLE_EVERY} s", " ".join(str(s[2]) for s in samples)),
        ("jobs accepted / deleted by clients", f"{len(ledger.accepted)} / {len(ledger.deleted)}"),
        ("jobs at the end by state", ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))),
        ("seconds for the queue to drain after the traffic", f"{settled:.1f}" if settled is not None else "over 300 (gave up)"),
        ("problems with jobs (lost, duplicated, wrong end)", len(problems)),
        ("API keys in the server log", len(leaked)),
    ])
    check(not ledger.unexpected, f"{len(ledger.unexpected)} unexpected answers, e.g. {ledger.unexpected[:5]}")
    check(not problems, f"{len(problems)} problems with jobs, e.g. {problems[:5]}")
    check(rss_growth < GROWTH_LIMIT, f"RSS grew {rss_growth:.1%} after the warm-up")
    check(fd_growth < GROWTH_LIMIT, f"open descriptors grew {fd_growth:.1%} after the warm-up")
    check(not leaked, f"the server log holds the API key of {', '.join(leaked)}")
    check(ledger.accepted, "no upload was accepted")
    check(exit_code == 0, f"exit status {exit_code}")


if __name__ == "__main__":
    main(run)
