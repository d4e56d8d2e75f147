#!/usr/bin/env python3
"""A hostile client against a real `steno serve` with default limits: regression checks for the denial-of-service
holes a public endpoint must not have. Every check starts its own server (loopback, port 0, temporary data
directory) and is bounded in time and in what it sends.

- decode_bomb: a FLAC file of 24 h of silence (160 KB) whose STREAMINFO states no length (ffprobe: duration
  N/A), so nothing can refuse it before decoding. Decoded to 16 kHz float it would be 5.5 GB: the job must fail
  `audio_too_long` (default limit 4 h) while the server's resident memory stays within 300 MB of its idle
  figure (sampled every 0.2 s, and VmHWM at the end). A short real recording, as FLAC, still completes after it.
- connection_flood: 19,000 connections that send "GET /heal" and nothing more, held for 25 s (the ones the
  server closes are opened again). Meanwhile `GET /healthz` every second must answer 200 within 3 s (all but at
  most one), the process must survive, and a real job completes afterwards. The server bounds its connections
  (STENO_MAX_CONNECTIONS, default 3/4 of its open-file limit), gives a request head STENO_HEADER_TIMEOUT
  (default 10 s), and closes the oldest connections still waiting for their head when the budget is full.
- form_fields: 400 MB of 60 KB text fields, streamed, must be refused early (`413 form_too_large` long before
  the body ends), four times, with the server's memory growing less than 50 MB; and one part header line of
  64 MB must get `413 form_too_large` within 2 s (wall time and server CPU time).
- slow_upload: an upload body trickling 1 byte every 2.5 s (each byte resets an idle timer) must be cut off
  within 90 s, and its temporary file removed from <data>/tmp.
- descriptor_pressure: a server limited to 512 open files under a flood four times its connection budget while
  real uploads arrive: no 500, no duplicate id, every accepted job completes.
- malformed_http: a request line that is not HTTP gets `400` with a JSON body, `error.code` `bad_request`; a
  bad query parameter (`limit=abc`, `format=xml`) gets a 400 JSON error in the server's own words (no Swift
  decoding error text).

Usage: scripts/faults/hostile.sh [CHECK ...] (default: all, in the order above). STENO_MAX_CONNECTIONS,
STENO_HEADER_TIMEOUT, STENO_MIN_UPLOAD_RATE, STENO_IDLE_TIMEOUT and STENO_UPLOAD_STALL_TIMEOUT, when set, are passed to
the servers."""

import errno
import json
import os
import resource
import select
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter

from faultlib import (CLIPS, TERMINAL, Failure, Sampler, Server, check, cpu_seconds, error_code, main, open_fds,
                      peak_rss_mb, percentile, read_clip, request, rss_mb, status, submit, table, wait_until)

PASSED_THROUGH = ("STENO_MAX_CONNECTIONS", "STENO_HEADER_TIMEOUT", "STENO_MIN_UPLOAD_RATE", "STENO_IDLE_TIMEOUT",
                  "STENO_UPLOAD_STALL_TIMEOUT")
MB = 1 << 20


def start_server(work, env=None):
    settings = {k: os.environ[k] for k in PASSED_THROUGH if os.environ.get(k)}
    settings.update(env or {})
    server = Server(os.path.join(work, "data"), env=settings)
    server.wait_healthy()
    return server


def address(server):
    host, port = server.base.rsplit(":", 1)
    return host, int(port)


def wait_job(server, job_id, timeout, interval=0.2):
    """The job's status once terminal (fails after `timeout` seconds)."""
    def terminal():
        answer = status(server.base, job_id)
        return answer if answer.get("status") in TERMINAL else None
    return wait_until(terminal, timeout, interval, f"job {job_id} to finish")


def good_job(server, audio, what):
    """Uploads a real recording and waits for its transcript: the server still does its work."""
    code, body = submit(server.base, audio)
    check(code == 202, f"{what}: upload answered {code} {body}")
    answer = wait_job(server, body["job_id"], 180)
    check(answer["status"] == "completed" and answer["result"]["text"].strip(), f"{what}: {answer}")
    return answer


def temporary_files(server):
    directory = os.path.join(server.data, "tmp")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def tmp_emptied(server, timeout):
    """Whether <data>/tmp is empty within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while temporary_files(server):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# MARK: - Raw HTTP


def parse_answer(raw, closed=False):
    """(status, headers, body) once `raw` holds a whole HTTP answer (by Content-Length, chunked, or up to the close
    when `closed` and neither is given), else None."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = raw[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise Failure(f"not an HTTP answer: {bytes(raw[:200])!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = bytes(raw[end + 4:])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        decoded, rest = b"", body
        while True:
            size_end = rest.find(b"\r\n")
            if size_end < 0:
                return None
            size = int(rest[:size_end].split(b";")[0], 16)
            if len(rest) < size_end + 2 + size + 2:
                return None
            if size == 0:
                return int(parts[1]), headers, decoded
            decoded += rest[size_end + 2:size_end + 2 + size]
            rest = rest[size_end + 2 + size + 2:]
    if "content-length" not in headers:
        return (int(parts[1]), headers, body) if closed else None
    length = int(headers["content-length"])
    return (int(parts[1]), headers, body[:length]) if len(body) >= length else None


class Exchange:
    """What one raw request got: `status`/`headers`/`body` of the answer (None without one), `sent` bytes when it
    came, `seconds` from the first byte sent, and `ending`: answered, closed, reset or timeout."""

    def __init__(self):
        self.status = self.headers = self.body = None
        self.sent, self.seconds, self.ending, self.write_error = 0, 0.0, "timeout", None

    @property
    def json(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def code(self):
        return error_code(self.json)

    def describe(self):
        answer = f"{self.status} {self.code or ''}".strip() if self.status else self.ending
        return f"{answer} after {self.sent / MB:.1f} MB sent, {self.seconds:.2f} s"


def stream_request(target, pieces, timeout, pace=None):
    """Sends the byte strings of `pieces` (an iterable; the first is the request head) over one connection while
    reading: sending stops as soon as the server answers, closes or resets, and the answer is read even when a
    write failed (a server may answer and close before the body ends). `pace`, if given, is the pause after each
    piece. Bounded by `timeout` seconds."""
    result = Exchange()
    connection = socket.create_connection(target, timeout=5)
    connection.setblocking(False)
    pieces = iter(pieces)
    pending = memoryview(next(pieces))  # what is left of the piece being sent; None once all is sent
    received = bytearray()
    started = time.monotonic()
    deadline = started + timeout
    next_send = started
    try:
        while time.monotonic() < deadline:
            now = time.monotonic()
            writing = pending is not None and now >= next_send
            wait = 0.5 if writing or pending is None else min(0.5, next_send - now)
            readable, writable, _ = select.select([connection], [connection] if writing else [], [], wait)
            if readable:
                try:
                    data = connection.recv(1 << 16)
                except ConnectionResetError:
                    result.ending = "reset"
                    break
                if not data:
                    answer = parse_answer(received, closed=True)
                    if answer:
                        result.status, result.headers, result.body = answer
                    result.ending = "answered" if answer else "closed"
                    break
                received += data
                answer = parse_answer(received)
                if answer:
                    result.status, result.headers, result.body = answer
                    result.ending = "answered"
                    break
            elif writable:
                try:
                    count = connection.send(pending[:1 << 20])
                except (BrokenPipeError, ConnectionResetError) as error:
                    # The answer may be waiting to be read: read on for a few seconds more.
                    result.write_error = error.__class__.__name__
                    pending = None
                    deadline = min(deadline, time.monotonic() + 5)
                    continue
                result.sent += count
                pending = pending[count:]
                if not len(pending):
                    following = next(pieces, None)
                    pending = memoryview(following) if following is not None else None
                    next_send = time.monotonic() + (pace or 0)
    finally:
        result.seconds = time.monotonic() - started
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    return result


def upload_head(target, boundary, length):
    host, port = target
    return (f"POST /transcribe HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n").encode()


# MARK: - 1. Decode bomb

BOMB_SECONDS = 86400
BOMB_MEMORY_MB = 300
BOMB_ABORT_MB = 1500  # past this growth the check has failed: stop before the machine runs out of memory
BOMB_TIMEOUT = 180


def make_bomb(path):
    """24 h of 8 kHz silence as FLAC (blocks of 65,535 samples: a few bytes each), its stated length zeroed."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", str(BOMB_SECONDS),
                    "-c:a", "flac", "-frame_size", "65535", path], check=True, timeout=300)
    with open(path, "r+b") as f:
        head = bytearray(f.read(26))
        # "fLaC", a metadata block header (type 0 = STREAMINFO), then 2+2+3+3 bytes, then the 64-bit word whose
        # low 36 bits are the total number of samples.
        check(head[:4] == b"fLaC" and head[4] & 0x7F == 0, f"{path} does not start with a STREAMINFO block")
        (word,) = struct.unpack(">Q", head[18:26])
        f.seek(18)
        f.write(struct.pack(">Q", word & ~((1 << 36) - 1)))
    probed = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", path],
                            capture_output=True, text=True, timeout=60).stdout.strip()
    check(probed == "N/A", f"ffprobe still finds a duration in the bomb: {probed!r}")
    return probed


def to_flac(source, path):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", source, "-c:a", "flac", path], check=True, timeout=60)
    with open(path, "rb") as f:
        return f.read()


def watch_bomb(server, bomb_bytes, idle):
    """Uploads the bomb and polls its job until terminal, sampling the server's RSS every 0.2 s; stops early
    (killing the server) if the memory grows past idle + BOMB_ABORT_MB. Returns (last status, seconds, peak RSS
    of the samples, VmHWM, whether it stopped early)."""
    exceeded = threading.Event()

    def watch(rss, _):
        if rss - idle > BOMB_ABORT_MB:
            exceeded.set()
            return True
    sampler = Sampler(server.pid, 0.2, on_sample=watch)
    code, body = submit(server.base, bomb_bytes)
    check(code == 202, f"bomb upload answered {code} {body}")
    started = time.monotonic()
    answer = {}
    while time.monotonic() - started < BOMB_TIMEOUT and not exceeded.is_set():
        answer = status(server.base, body["job_id"])
        if answer.get("status") in TERMINAL:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    sampler.stop()
    try:
        hwm = peak_rss_mb(server.pid)
    except (OSError, Failure):  # the server is gone
        hwm = float("nan")
    if exceeded.is_set():
        server.kill()
    return answer, elapsed, sampler.peak_rss, hwm, exceeded.is_set()


def decode_bomb(work):
    os.makedirs(work, exist_ok=True)
    bomb = os.path.join(work, "bomb.flac")
    probed = make_bomb(bomb)
    with open(bomb, "rb") as f:
        bomb_bytes = f.read()
    with start_server(work) as server:
        time.sleep(1)
        idle = rss_mb(server.pid)
        answer, elapsed, sampled, hwm, exceeded = watch_bomb(server, bomb_bytes, idle)
        if exceeded:
            outcome = f"stopped after {elapsed:.1f} s: memory grew past idle + {BOMB_ABORT_MB} MB (server killed)"
        elif answer.get("status") in TERMINAL:
            outcome = f"{answer['status']} {error_code(answer) or ''} after {elapsed:.1f} s"
        else:
            outcome = f"still {answer.get('status')} after {elapsed:.0f} s"
        peak = max(sampled, hwm if hwm == hwm else 0)  # VmHWM counts the start-up too: the stricter figure
        figures = [("bomb file", f"{len(bomb_bytes) / 1024:.0f} KB FLAC, {BOMB_SECONDS / 3600:.0f} h of 8 kHz silence, "
                                 f"ffprobe duration {probed}"),
                   ("server RSS idle / peak of samples (every 0.2 s) / VmHWM", f"{idle:.0f} MB / {sampled:.0f} MB / {hwm:.0f} MB"),
                   ("peak − idle (limit)", f"{peak - idle:.0f} MB ({BOMB_MEMORY_MB} MB)"),
                   ("bomb job", outcome)]
        try:
            check(not exceeded, f"the server's memory grew past idle + {BOMB_ABORT_MB} MB decoding the bomb")
            check(answer.get("status") == "failed" and error_code(answer) == "audio_too_long",
                  f"bomb job: {outcome} (expected failed audio_too_long): {answer.get('error')}")
            check(peak - idle < BOMB_MEMORY_MB, f"the server's memory grew {peak - idle:.0f} MB decoding the bomb "
                  f"(limit {BOMB_MEMORY_MB} MB)")
            short = to_flac(CLIPS["0870"], os.path.join(work, "short.flac"))
            done = good_job(server, short, "a short FLAC after the bomb")
            figures.append(("short real FLAC after it", f"completed: {done['result']['text'].strip()[:50]!r}…"))
        finally:
            table("decode_bomb", figures)


# MARK: - 2. Connection flood

FLOOD_CONNECTIONS = 19000
FLOOD_HOLD = 25
FLOOD_RAMP_LIMIT = 60
CONNECTING_AT_ONCE = 1000
REOPEN_PER_SECOND = 2000
HEALTH_TIMEOUT = 3


class Flood:
    """Connections that send an unfinished request line and then nothing, on non-blocking sockets under one
    selector. `step()` opens what is missing (at most `CONNECTING_AT_ONCE` connecting at once, re-opens at most
    `REOPEN_PER_SECOND`) and notes what the server did to the held ones."""

    PAYLOAD = b"GET /heal"

    def __init__(self, target, count):
        self.target, self.count = target, count
        self.selector = selectors.DefaultSelector()
        self.connecting = {}  # socket -> when connect() started
        self.held = set()
        self.events = Counter()  # what happened to connections
        self.answers = Counter()  # first line of what the server sent on a held connection
        self.budget = 0.0  # re-opens allowed now (token bucket)
        self.last = time.monotonic()

    def _drop(self, connection):
        self.selector.unregister(connection)
        self.connecting.pop(connection, None)
        self.held.discard(connection)
        connection.close()

    def _open(self):
        try:
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as error:
            self.events[f"socket() failed: {errno.errorcode.get(error.errno, error.errno)}"] += 1
            return False
        connection.setblocking(False)
        result = connection.connect_ex(self.target)
        if result not in (0, errno.EINPROGRESS):
            self.events[f"refused at connect ({errno.errorcode.get(result, result)})"] += 1
            connection.close()
            return False
        self.selector.register(connection, selectors.EVENT_WRITE, "connecting")
        self.connecting[connection] = time.monotonic()
        return True

    def step(self, timeout=0.05):
        now = time.monotonic()
        first_round = self.events["connected"] < self.count
        self.budget = min(REOPEN_PER_SECOND, self.budget + (now - self.last) * REOPEN_PER_SECOND)
        self.last = now
        while len(self.held) + len(self.connecting) < self.count and len(self.connecting) < CONNECTING_AT_ONCE:
            if not first_round:
                if self.budget < 1:
                    break
                self.budget -= 1
            if not self._open():
                break
        for key, _ in self.selector.select(timeout):
            connection = key.fileobj
            if key.data == "connecting":
                failure = connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if failure:
                    self.events[f"refused at connect ({errno.errorcode.get(failure, failure)})"] += 1
                    self._drop(connection)
                    continue
                del self.connecting[connection]
                try:
                    connection.send(self.PAYLOAD)
                except OSError:
                    self.events["reset before the request line"] += 1
                    self._drop(connection)
                    continue
                self.selector.modify(connection, selectors.EVENT_READ, "held")
                self.held.add(connection)
                self.events["connected"] += 1
                continue
            try:
                data = connection.recv(4096)
            except ConnectionResetError:
                data = None
            if data is None:
                self.events["reset by the server"] += 1
            elif not data:
                self.events["closed by the server"] += 1
            else:
                self.events["answered, then closed"] += 1
                self.answers[data.split(b"\r\n", 1)[0].decode("latin-1")[:40]] += 1
            self._drop(connection)
        for connection, since in list(self.connecting.items()):
            if time.monotonic() - since > 15:
                self.events["connect timed out (15 s)"] += 1
                self._drop(connection)

    def close(self):
        for connection in list(self.held) + list(self.connecting):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._drop(connection)
        self.selector.close()


def health_probes(server, stop, results):
    """`GET /healthz` every second until `stop`: appends (ok, seconds, what) to `results`."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            code, _, _ = request(server.base, "GET", "/healthz", timeout=HEALTH_TIMEOUT)
            seconds = time.monotonic() - started
            results.append((code == 200 and seconds <= HEALTH_TIMEOUT, seconds, str(code)))
        except OSError as error:
            results.append((False, time.monotonic() - started, error.__class__.__name__))
        stop.wait(max(0.0, 1 - (time.monotonic() - started)))


def server_fd_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


def run_flood(server, count):
    """Opens `count` flood connections, holds them FLOOD_HOLD s (re-opening the ones the server closes) while
    probing /healthz every second. Returns (flood, ramp seconds, connections at the ramp's end, probes, held
    connections per second, server descriptors per second)."""
    flood = Flood(address(server), count)
    probes, stop = [], threading.Event()
    prober = threading.Thread(target=health_probes, args=(server, stop, probes), daemon=True)
    held, server_fds = [], []
    try:
        began = time.monotonic()
        while flood.events["connected"] < count and time.monotonic() - began < FLOOD_RAMP_LIMIT:
            flood.step()
        ramp, ramp_connected = time.monotonic() - began, flood.events["connected"]
        prober.start()
        hold_started = next_sample = time.monotonic()
        while time.monotonic() - hold_started < FLOOD_HOLD:
            flood.step()
            if time.monotonic() >= next_sample:
                held.append(len(flood.held))
                if server.process.poll() is None:
                    server_fds.append(open_fds(server.pid))
                next_sample += 1
    finally:
        stop.set()
        if prober.is_alive():
            prober.join()
        flood.close()
    return flood, ramp, ramp_connected, probes, held, server_fds


def connection_flood(work):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # before the server starts: it inherits it
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    count = min(FLOOD_CONNECTIONS, limit - 500)
    figures = [("flood connections (this script's open-file limit)", f"{count} ({limit})")]
    with start_server(work) as server:
        figures.append(("server open-file limit / STENO_MAX_CONNECTIONS / STENO_HEADER_TIMEOUT",
                        f"{server_fd_limit(server.pid)} / {os.environ.get('STENO_MAX_CONNECTIONS', 'default')} / "
                        f"{os.environ.get('STENO_HEADER_TIMEOUT', 'default')}"))
        flood, ramp, ramp_connected, probes, held, server_fds = run_flood(server, count)
        alive = server.process.poll() is None
        ok = [p for p in probes if p[0]]
        latencies = [p[1] for p in probes]
        ended = {k: v for k, v in flood.events.items() if k != "connected"}
        figures += [
            ("ramp: connections established / seconds", f"{ramp_connected} / {ramp:.1f} s"),
            ("held by the client during the hold, sampled each second: min / median / max",
             f"{min(held, default=0)} / {percentile(held, 0.5) if held else 0} / {max(held, default=0)}"),
            ("server open descriptors during the hold: max", max(server_fds, default="?")),
            ("connections in all / closed or refused by the server", f"{flood.events['connected']} / {sum(ended.values())}"),
            ("  by kind", ", ".join(f"{k}: {v}" for k, v in sorted(ended.items())) or "none"),
            ("  answers on held connections", ", ".join(f"{k!r}: {v}" for k, v in flood.answers.most_common(3)) or "none"),
            (f"/healthz during the hold: 200 within {HEALTH_TIMEOUT} s", f"{len(ok)} of {len(probes)}"
             + (f" (others: {', '.join(p[2] for p in probes if not p[0])})" if len(ok) < len(probes) else "")),
            ("/healthz latency p50 / max", f"{percentile(latencies, 0.5) * 1000:.0f} ms / {max(latencies, default=0) * 1000:.0f} ms"),
        ]
        try:
            check(alive, f"the server died during the flood: exit status {server.process.returncode}")
            check(len(probes) - len(ok) <= 1, f"{len(probes) - len(ok)} of {len(probes)} health probes failed")
            check(len(probes) >= FLOOD_HOLD - 5, f"only {len(probes)} health probes ran in {FLOOD_HOLD} s")
            time.sleep(1)
            done = good_job(server, read_clip("0880"), "a job after the flood")
            figures.append(("a real job after the flood", f"completed: {done['result']['text'].strip()[:50]!r}"))
        finally:
            table("connection_flood", figures)


# MARK: - 3. Form fields

FIELDS_TOTAL = 400 * MB
FIELD_BYTES = 60 * 1024
FIELD_ROUNDS = 4
EARLY_BYTES = 100 * MB  # "long before all 400 MB": the answer must come before this much is sent
FIELD_MEMORY_MB = 50
HEADER_LINE_BYTES = 64 * MB
HEADER_SECONDS = 2


def many_fields(target, audio):
    """The request head and body pieces of ~400 MB of 60 KB fields, then a file, generated as sent."""
    boundary = "hostile-" + uuid.uuid4().hex[:12]
    value = b"a" * FIELD_BYTES

    def field(i):
        return f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n'.encode() + value + b"\r\n"

    fields = FIELDS_TOTAL // len(field(0))
    tail = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + audio + f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(field(i)) for i in range(fields)) + len(tail)

    def pieces():
        yield upload_head(target, boundary, length)
        for i in range(fields):
            yield field(i)
        yield tail
    return pieces(), fields, length


def long_header_line(target, audio):
    """A part whose Content-Disposition line is 64 MB long, sent in 1 MB pieces."""
    boundary = "hostile-" + uuid.uuid4().hex[:12]
    start = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
    chunk = b"a" * MB
    rest = b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + audio + f"\r\n--{boundary}--\r\n".encode()
    length = len(start) + HEADER_LINE_BYTES + len(rest)

    def pieces():
        yield upload_head(target, boundary, length) + start
        for _ in range(HEADER_LINE_BYTES // MB):
            yield chunk
        yield rest
    return pieces()


def form_fields(work):
    figures = []
    with start_server(work) as server:
        target = address(server)
        audio = read_clip("0880")
        time.sleep(1)
        before = rss_mb(server.pid)
        results = []
        try:
            for round_ in range(FIELD_ROUNDS):
                pieces, fields, length = many_fields(target, audio)
                result = stream_request(target, pieces, timeout=120)
                results.append(result)
                figures.append((f"{fields} fields of 60 KB ({length / MB:.0f} MB), round {round_ + 1}", result.describe()
                                + (f" ({result.write_error} while writing)" if result.write_error else "")))
                check(result.status == 413 and result.code == "form_too_large",
                      f"round {round_ + 1}: expected 413 form_too_large, got {result.describe()}: {result.body!r:.200}")
                check(result.sent < EARLY_BYTES, f"round {round_ + 1}: the refusal came only after {result.sent / MB:.0f} MB")
            time.sleep(2)
            after = rss_mb(server.pid)
            figures.append(("server RSS before / after the rounds (growth limit)",
                            f"{before:.0f} MB / {after:.0f} MB ({FIELD_MEMORY_MB} MB)"))
            check(after - before < FIELD_MEMORY_MB, f"the server's memory grew {after - before:.0f} MB over {FIELD_ROUNDS} rounds")

            cpu_before = cpu_seconds(server.pid)
            result = stream_request(target, long_header_line(target, audio), timeout=60)
            cpu_at_answer = cpu_seconds(server.pid) - cpu_before
            time.sleep(1)
            cpu_after = cpu_seconds(server.pid) - cpu_before
            figures.append(("one part header line of 64 MB", result.describe()))
            figures.append(("  server CPU time: at the answer / 1 s later", f"{cpu_at_answer:.2f} s / {cpu_after:.2f} s"))
            check(result.status == 413 and result.code == "form_too_large",
                  f"64 MB header line: expected 413 form_too_large, got {result.describe()}: {result.body!r:.200}")
            check(result.seconds < HEADER_SECONDS and cpu_after < HEADER_SECONDS,
                  f"64 MB header line: {result.seconds:.2f} s wall, {cpu_after:.2f} s of server CPU (limit {HEADER_SECONDS} s)")
            check(request(server.base, "GET", "/healthz")[0] == 200, "healthz after the form checks")
        finally:
            table("form_fields", figures)


# MARK: - 4. Slow upload

TRICKLE_EVERY = 2.5
TRICKLE_LIMIT = 90


def slow_upload(work):
    figures = []
    with start_server(work) as server:
        target = address(server)
        boundary = "hostile-" + uuid.uuid4().hex[:12]
        prelude = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                   f"Content-Type: application/octet-stream\r\n\r\n").encode()
        body_bytes = 1000
        ending = f"\r\n--{boundary}--\r\n".encode()
        head = upload_head(target, boundary, len(prelude) + body_bytes + len(ending)) + prelude
        seen_temporary = []

        def pieces():
            yield head
            for i in range(body_bytes):
                if i == 2:
                    seen_temporary.extend(temporary_files(server))
                yield b"a"
            yield ending
        result = stream_request(target, pieces(), timeout=TRICKLE_LIMIT, pace=TRICKLE_EVERY)
        cleaned = tmp_emptied(server, 10) if result.ending != "timeout" else False
        figures += [
            (f"upload trickling 1 byte every {TRICKLE_EVERY} s", f"{result.ending}"
             + (f" {result.status} {result.code}" if result.status else "") + f" after {result.seconds:.1f} s "
             f"({result.sent - len(head)} body bytes)"),
            ("temporary files while trickling / after", f"{len(seen_temporary)} / {len(temporary_files(server))}"),
        ]
        try:
            check(result.ending != "timeout", f"the trickling upload was not cut off within {TRICKLE_LIMIT} s")
            check(result.status in (None, 408), f"the trickling upload got {result.status} {result.body!r:.200}")
            check(cleaned, f"temporary files left in tmp/: {temporary_files(server)}")
            check(request(server.base, "GET", "/healthz")[0] == 200, "healthz after the slow upload")
        finally:
            table("slow_upload", figures)


# MARK: - 5. Malformed HTTP

FOREIGN_WORDS = ("DecodingError", "Swift", '"codingPath')


def malformed_http(work):
    figures = []
    problems = []
    with start_server(work) as server:
        target = address(server)
        garbage = stream_request(target, [b"HELLO\r\n\r\n"], timeout=10)
        figures.append(("'HELLO\\r\\n\\r\\n'", f"{garbage.status or garbage.ending} {garbage.code or ''} {garbage.body!r:.120}"))
        if not (garbage.status == 400 and garbage.code == "bad_request"):
            problems.append(f"garbage got {garbage.status or garbage.ending} {garbage.body!r:.200} (expected 400 bad_request JSON)")

        for path in ("/transcribe?limit=abc", f"/transcribe/{uuid.uuid4()}?format=xml"):
            code, body, headers = request(server.base, "GET", path, timeout=10)
            message = body.get("error", {}).get("message", "") if isinstance(body, dict) and isinstance(body.get("error"), dict) else ""
            figures.append((f"GET {path}", f"{code} {error_code(body)}: {message[:150]!r}"))
            if code != 400 or not error_code(body) or not message:
                problems.append(f"GET {path}: {code} {body!r:.200} (expected 400 with a JSON error)")
            elif any(word in message for word in FOREIGN_WORDS):
                problems.append(f"GET {path}: the message is not in the server's words: {message[:300]!r}")
        check(request(server.base, "GET", "/healthz")[0] == 200, "healthz after malformed requests")
    table("malformed_http", figures)
    check(not problems, "; ".join(problems))


# MARK: - 6. Descriptor pressure

PRESSURE_NOFILE = 512
PRESSURE_FLOOD = 2000
PRESSURE_JOBS = 8


def descriptor_pressure(work):
    """A server whose open-file limit is small (512, so its budget is 384 connections) under a flood four times
    that size, while real uploads arrive (FLAC, so each job starts ffmpeg with its pipes and a spool file): every
    upload gets 202 (or 503 with Retry-After, never 500), every id is new, and every accepted job completes —
    running short of descriptors must not fail a good job."""
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    clips = [to_flac(CLIPS[n], os.path.join(work, f"{n}.flac")) for n in ["0870", "0880"]]
    settings = {k: os.environ[k] for k in PASSED_THROUGH if os.environ.get(k)}
    server = Server(os.path.join(work, "data"), env=settings, prefix=["prlimit", f"--nofile={PRESSURE_NOFILE}:{PRESSURE_NOFILE}"])
    with server:
        server.wait_healthy()
        figures = [("server open-file limit", server_fd_limit(server.pid))]
        check(server_fd_limit(server.pid) == str(PRESSURE_NOFILE), "prlimit did not apply")
        answers, ids = Counter(), []
        stop = threading.Event()

        def uploader():
            for index in range(PRESSURE_JOBS):
                if stop.is_set():
                    break
                code, body = submit(server.base, clips[index % 2], timeout=30)
                answers[(code, error_code(body))] += 1
                if code == 202:
                    ids.append(body["job_id"])
                time.sleep(0.5)

        thread = threading.Thread(target=uploader, daemon=True)
        flood = Flood(address(server), PRESSURE_FLOOD)
        try:
            thread.start()
            began = time.monotonic()
            while thread.is_alive() and time.monotonic() - began < 120:
                flood.step()
        finally:
            stop.set()
            flood.close()
            thread.join(timeout=60)
        figures += [("flood connections opened / closed by the server",
                     f"{flood.events['connected']} / {sum(v for k, v in flood.events.items() if k != 'connected')}"),
                    ("upload answers", ", ".join(f"{c} {e or ''}".strip() + f": {n}" for (c, e), n in sorted(answers.items())))]
        try:
            check(server.process.poll() is None, "the server died under descriptor pressure")
            check(all(code in (202, 503) for code, _ in answers), f"uploads answered {dict(answers)}")
            check(len(set(ids)) == len(ids), f"duplicate job ids: {ids}")
            check(len(ids) >= PRESSURE_JOBS // 2, f"only {len(ids)} of {PRESSURE_JOBS} uploads were accepted")
            outcomes = Counter()
            for job_id in ids:
                answer = wait_job(server, job_id, 300)
                outcomes[answer["status"] if answer["status"] != "failed" else f"failed {answer['error']['code']}"] += 1
            figures.append(("accepted jobs", ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))))
            check(outcomes.get("completed", 0) == len(ids), f"not every accepted job completed: {dict(outcomes)}")
        finally:
            table("descriptor_pressure", figures)


CHECKS = {"decode_bomb": decode_bomb, "connection_flood": connection_flood, "form_fields": form_fields,
          "slow_upload": slow_upload, "malformed_http": malformed_http, "descriptor_pressure": descriptor_pressure}


def run():
    names = sys.argv[1:] or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        sys.exit(f"unknown check {', '.join(unknown)}; choose from: {', '.join(CHECKS)}")
    work = tempfile.mkdtemp(prefix="steno-hostile-")
    outcomes = []
    try:
        for name in names:
            started = time.monotonic()
            print(f"\n## {name}", flush=True)
            try:
                CHECKS[name](os.path.join(work, name))
                outcomes.append((name, f"passed ({time.monotonic() - started:.0f} s)"))
            except Failure as failure:
                print(f"{name} FAILED: {failure}", flush=True)
                outcomes.append((name, f"FAILED ({time.monotonic() - started:.0f} s): {failure}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table("Hostile clients", outcomes)
    failed = [name for name, outcome in outcomes if outcome.startswith("FAILED")]
    check(not failed, f"{len(failed)} of {len(outcomes)} checks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(run)
