#!/usr/bin/env python3
"""Speaker diarization of `steno transcribe --speakers`: DER, speaker count, word attribution, speed and memory.

Scored with a standard scorer, pyannote.metrics' DiarizationErrorRate (PyPI `pyannote.metrics`, benchmark only),
with a forgiveness collar of 0.25 s on each side of every reference boundary — pyannote's `collar` is the collar's
total width, centred on the boundary, so `collar=0.5` — overlap scored (`skip_overlap=False`) and the whole file
as the evaluated map (UEM), so speech found in silence counts as false alarm. Pooled DER = all errors / all
reference speech of the set (pyannote's accumulated value), not a mean of per-file figures.

    python3 benchmarks/diarization.py                       # everything below; needs the steno binary
    python3 benchmarks/diarization.py --skip-speed          # accuracy only
    python3 benchmarks/diarization.py --only speed --repeats 5
    python3 benchmarks/diarization.py --self-check          # the scorer and the fixtures, no steno needed

What it measures (each target in brackets; the script exits 1 when a measured one is missed):
  (a) DER on pyannote's own sample (`pyannote/audio/sample/sample.wav`, 30 s, two speakers, with overlap) and its
      `sample.rttm`, both from the PyPI wheel pyannote-audio (PYANNOTE_AUDIO below; only downloaded and unzipped,
      nothing of it runs) [DER <= 15 %].
  (b) DER on 10 synthetic conversations of 2, 3 and 4 speakers (3 + 3 + 4), 60-180 s each, assembled from real
      recordings of six different people shipped in Debian packages (VOICES below) [pooled DER <= 10 %], and the
      number of speakers found against the truth when the count is not given [right in >= 9 of 10]. Each is run
      twice: without a count, and with `--speakers-expected N`; both are reported.
  (c) Word attribution on the same conversations: the share of the transcript's words whose speaker label, after
      the optimal (Hungarian) mapping of Steno's labels to the true speakers (pyannote's `optimal_mapping`), is
      the true speaker at the word's midpoint. Words whose midpoint is in no true turn (in a pause) are left out
      and counted apart [>= 95 %].
  (d) Speed and memory on a 10-minute conversation of the same kind (4 speakers): `steno transcribe` with and
      without `--speakers`, every other option the same (`--word-timestamps --format json`, VAD on, --threads);
      median of --repeats runs each, the two taking turns [--speakers adds <= 20 % wall time]; peak RSS of the
      process (ru_maxrss from wait4) with tiny.en [< 400 MB]. The load average and the busiest other processes
      are printed with the figures.

Steno is run as `steno transcribe FILE --model M --speakers [--speakers-expected N] --word-timestamps --format json
--threads T`; the hypothesis turns are the JSON's `speaker_turns` (what `--format rttm` prints), else its segments'
`speaker` spans; the words are `segments[].words[]` with their `speaker`. Binary: --steno, else .build/release/steno,
else Engine/.build/release/steno-transcribe (no `transcribe` subcommand).

The conversations (built in the set-up, deterministic: same packages, same bytes; cached in .fixtures/diarization/,
gitignored, rebuilt when a source package, sox or the assembly code below changes): every turn is one real utterance
(an asterisk prompt or a LibriVox/pocketsphinx sentence) or a piece of one cut at a pause of >= 0.2 s, 1-15 s of
speech, trimmed of leading and trailing silence, brought to the same loudness (-24 dBFS +- 2 dB), through the same 8 kHz
telephone band (the asterisk prompts are 8 kHz; the LibriVox sentences are brought down to it) and resampled by
sox to 16 kHz mono; pauses between turns 0.1-0.8 s; a speaker keeps the floor for the next turn with probability
0.2, else the next is drawn among the others, weighted by 1 / (their speech so far + 10 s); seeded random (Python's `random`, per conversation). A -66 dBFS noise floor covers the whole file. The truth
RTTM (`SPEAKER c01 1 start duration <NA> <NA> label <NA> <NA>`) has one line per turn, exact to the sample;
a JSON beside it says where every turn comes from.

--self-check runs the whole scoring path without Steno: Steno-like JSON made from the truth (DER must be 0,
speakers found = truth, words 100 %), the same with the labels rotated in every second turn (DER must be > 0),
boundaries shifted by 0.2 s (inside the +-0.25 s collar: DER 0) and 0.35 s (outside: DER > 0), and every DER
checked against an independent frame-level scorer (1 ms frames, scipy's Hungarian assignment).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402

ROOT = bench_common.REPO_ROOT
OUT = ROOT / ".fixtures" / "diarization"
SR = 16000
# Part of the cache's stamp, with the source package versions and a hash of the assembly's code.
FIXTURE_VERSION = 1

# pyannote's sample, as shipped in this wheel (the sample moved in and out of the wheel across versions).
PYANNOTE_AUDIO = "4.0.7"
SAMPLE_SHA256 = {
    "sample.wav": "c319b4abca767b124e41432d364fd7df006cb26bb79d09326c487d606a134e6e",
    "sample.rttm": "d78fe62c69d8e6dcbb42c26adfce83faccb374c5a1e6d987fe37f85f1c173c87",
}

COLLAR = 0.5           # pyannote's collar: total width, centred on each reference boundary -> +-0.25 s
TARGETS = {"sample_der": 0.15, "conversation_der": 0.10, "count_right": 9, "words": 0.95,
           "overhead": 0.20, "rss_mb": 400.0}


@dataclass(frozen=True)
class Voice:
    """One person's recordings: `label` names the speaker in the truth RTTM."""
    label: str
    person: str
    package: str        # the Debian package that ships the recordings
    folder: str
    language: str


ASTERISK = Path("/usr/share/asterisk/sounds")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
# Six different people, by the packages' own credits (/usr/share/doc/<package>/copyright). The Spanish prompts of
# asterisk-core-sounds-es-wav are left out: they are Allison Smith again (es_MX_f_Allison).
VOICES = {v.label: v for v in (
    Voice("allison", "Allison Smith (f)", "asterisk-core-sounds-en-wav", str(ASTERISK / "en_US_f_Allison"), "en"),
    Voice("june", "June Wallack (f)", "asterisk-core-sounds-fr-wav", str(ASTERISK / "fr_CA_f_June"), "fr"),
    Voice("carlo", "Carlo Flora (m)", "asterisk-core-sounds-it-wav", str(ASTERISK / "it_IT_m_Carlo"), "it"),
    Voice("menardi", "the female voice of Marco Menardi and Paola Dal Zot's prompts (f)",
          "asterisk-prompt-it-menardi-wav", str(ASTERISK / "it_IT_f_Menardi"), "it"),
    Voice("ivrvoice", "the female voice of ivrvoice.ru, provided by Maxim Topal (f)", "asterisk-core-sounds-ru-wav",
          str(ASTERISK / "ru_RU_f_IvrvoiceRU"), "ru"),
    Voice("librivox", "the LibriVox reader of Sense and Sensibility, ch. 1 (m)", "pocketsphinx-testdata",
          str(POCKETSPHINX / "librivox"), "en"),
)}
# Prompts that are tones or noises, not speech (the packages' lists mark them "[...]" or "<beep ...>").
NOT_SPEECH = {"beep", "beeperr", "ascending-2tone", "descending-2tone", "confbridge-join", "confbridge-leave",
              "tt-monkeys"}


@dataclass(frozen=True)
class Plan:
    name: str
    speakers: tuple[str, ...]
    min_s: float        # the turns stop after this much (a seeded draw between 60 and 170 s) ...
    max_s: float        # ... and never pass this


def plans() -> list[Plan]:
    """The 10 conversations (3 of 2 speakers, 3 of 3, 4 of 4) and the 10-minute one of the speed test."""
    casts = [("allison", "june"), ("carlo", "ivrvoice"), ("menardi", "allison"),
             ("allison", "carlo", "menardi"), ("june", "ivrvoice", "librivox"), ("ivrvoice", "menardi", "june"),
             ("allison", "june", "carlo", "ivrvoice"), ("menardi", "ivrvoice", "allison", "librivox"),
             ("june", "carlo", "menardi", "allison"), ("carlo", "librivox", "ivrvoice", "june")]
    draw = random.Random(f"steno-diarization-{FIXTURE_VERSION}-lengths")
    out = [Plan(f"c{i:02d}", cast, round(draw.uniform(60, 170), 1), 180.0) for i, cast in enumerate(casts, start=1)]
    return out + [Plan("long-600s", ("allison", "june", "carlo", "ivrvoice"), 600.0, 615.0)]


# ----------------------------------------------------------------------------------------------------------------
# Set-up: requirements, pyannote's sample, the conversations


def ensure_pyannote_metrics() -> None:
    """pip-installs pyannote.metrics (its pin in requirements.txt) when it cannot be imported."""
    if importlib.util.find_spec("pyannote") and importlib.util.find_spec("pyannote.metrics"):
        return
    pin = next((line.split("#")[0].strip() for line in (bench_common.BENCH_DIR / "requirements.txt").read_text().splitlines()
                if line.startswith("pyannote.metrics")), "pyannote.metrics")
    print(f"diarization: installing {pin}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", pin], check=True)
    importlib.invalidate_caches()


def ensure_packages() -> None:
    """apt-get installs the Debian packages of the voices when some are missing (as root; else says which)."""
    missing = [v.package for v in VOICES.values() if not Path(v.folder).is_dir()]
    missing = sorted(set(missing))
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"diarization: missing Debian packages: {' '.join(missing)} (apt-get install them)")
    print(f"diarization: installing {' '.join(missing)}", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_sample() -> tuple[Path, Path]:
    """pyannote's sample.wav and sample.rttm, unzipped from the pyannote-audio wheel into .fixtures/diarization/."""
    folder = OUT / f"pyannote-audio-{PYANNOTE_AUDIO}"
    paths = {name: folder / name for name in SAMPLE_SHA256}
    if all(p.exists() and sha256(p) == SAMPLE_SHA256[n] for n, p in paths.items()):
        return paths["sample.wav"], paths["sample.rttm"]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", work,
                        f"pyannote-audio=={PYANNOTE_AUDIO}"], check=True)
        wheel = next(Path(work).glob("pyannote_audio-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name, path in paths.items():
                path.write_bytes(archive.read(f"pyannote/audio/sample/{name}"))
    for name, path in paths.items():
        if sha256(path) != SAMPLE_SHA256[name]:
            sys.exit(f"diarization: {path} is not the sample of pyannote-audio {PYANNOTE_AUDIO} (sha256 differs)")
    return paths["sample.wav"], paths["sample.rttm"]


def decode(path: Path) -> np.ndarray:
    """A recording as 16 kHz mono float32 through the telephone band of the asterisk prompts (8 kHz): the 16 kHz
    LibriVox reading goes down to 8 kHz first, so that bandwidth tells no speaker apart. sox, its default
    high-quality resampler; float output, so no dither."""
    raw = subprocess.run(["sox", "-V1", str(path), "-t", "f32", "-e", "floating-point", "-c", "1", "-",
                          "rate", "8000", "rate", str(SR)], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<f4").copy()


FRAME, HOP = 400, 160                 # 25 ms frames every 10 ms


def frame_db(x: np.ndarray) -> np.ndarray:
    n = max(0, (len(x) - FRAME) // HOP + 1)
    if n == 0:
        return np.full(1, -120.0)
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(n)[:, None]
    return 10 * np.log10(np.mean(x[idx] ** 2, axis=1) + 1e-12)


def active(x: np.ndarray) -> np.ndarray:
    """Frames of speech: within 35 dB of the utterance's loudest frame and above -55 dBFS."""
    db = frame_db(x)
    return db > max(db.max() - 35.0, -55.0)


def trim(x: np.ndarray, margin: float = 0.02) -> tuple[int, int] | None:
    """(first, end) sample of the speech in x, with a 20 ms margin; None when there is none."""
    act = np.flatnonzero(active(x))
    if len(act) == 0:
        return None
    pad = int(margin * SR)
    return max(0, act[0] * HOP - pad), min(len(x), act[-1] * HOP + FRAME + pad)


@dataclass
class Piece:
    voice: str
    source: str
    offset: float       # seconds into the source recording
    audio: np.ndarray   # 16 kHz float32, trimmed, loudness not yet set

    @property
    def seconds(self) -> float:
        return len(self.audio) / SR


def pieces_of(voice: str, source: Path, x: np.ndarray, longest: float = 15.0, shortest: float = 1.0) -> list[Piece]:
    """The utterance as turns of 1-15 s: whole when it fits, else cut in the middle of pauses of >= 0.2 s."""
    span = trim(x)
    if span is None:
        return []
    a, b = span
    act = active(x)
    quiet_cuts = []
    run = 0
    for i, on in enumerate(act):
        run = 0 if on else run + 1
        if run and (i + 1 == len(act) or act[i + 1]) and run >= 20:    # the end of a pause of >= 0.2 s
            middle = (i - run + 1 + i) * HOP // 2 + FRAME // 2
            if a < middle < b:
                quiet_cuts.append(middle)
    bounds, pos = [], a
    while (b - pos) / SR > longest:
        fits = [c for c in quiet_cuts if shortest * SR <= c - pos <= longest * SR]
        if not fits:
            break
        bounds.append((pos, fits[-1]))
        pos = fits[-1]
    else:
        bounds.append((pos, b))
    out = []
    for start, end in bounds:
        inner = trim(x[start:end])
        if inner is None:
            continue
        s, e = start + inner[0], start + inner[1]
        if shortest <= (e - s) / SR <= longest:
            out.append(Piece(voice, str(source), s / SR, x[s:e]))
    return out


def sources(voice: Voice) -> list[Path]:
    folder = Path(voice.folder)
    return [p for p in sorted(folder.glob("*.wav")) if p.stem not in NOT_SPEECH]


def package_versions() -> dict[str, str]:
    names = sorted({v.package for v in VOICES.values()})
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *names], capture_output=True, text=True)
    versions = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    sox = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout.strip()
    # The assembly's own code: an edit to it rebuilds the conversations as a package update does.
    code = "".join(inspect.getsource(f) for f in (plans, decode, frame_db, active, trim, pieces_of, sources, assemble,
                                                  write_wav, write_rttm)) + repr(sorted(VOICES.items())) + repr(sorted(NOT_SPEECH))
    return {**versions, "sox": sox, "numpy": np.__version__, "fixture": str(FIXTURE_VERSION),
            "code": hashlib.sha256(code.encode()).hexdigest()[:16]}


@dataclass
class Turn:
    start: float
    end: float
    speaker: str
    source: str = ""
    offset: float = 0.0


def assemble(plan: Plan, material: dict[str, list[Piece]]) -> tuple[np.ndarray, list[Turn]]:
    """One conversation: the samples and its turns (seconds, exact to the sample)."""
    rng = random.Random(f"steno-diarization-{FIXTURE_VERSION}-{plan.name}")
    queues = {s: rng.sample(material[s], len(material[s])) for s in plan.speakers}
    lead = int(0.5 * SR)
    chunks: list[tuple[int, np.ndarray]] = []
    turns: list[Turn] = []
    position = lead
    order = list(plan.speakers)
    rng.shuffle(order)                  # everyone speaks once first, in a random order
    speaker = None
    spoken = dict.fromkeys(plan.speakers, 0.0)
    while True:
        if order:
            speaker = order.pop(0)
        elif speaker is not None and queues[speaker] and rng.random() < 0.2:
            pass                        # keeps the floor
        else:
            others = [s for s in plan.speakers if s != speaker and queues[s]]
            if not others:
                break
            # Anyone else, the less they have said the likelier (weight 1 / (their speech + 10 s)).
            speaker = rng.choices(others, weights=[1 / (spoken[s] + 10.0) for s in others])[0]
        if not queues[speaker]:
            break
        piece = queues[speaker].pop()
        gain_db = -24.0 + rng.uniform(-2.0, 2.0)
        db = frame_db(piece.audio)
        speech_db = 10 * np.log10(np.mean(10 ** (db[active(piece.audio)] / 10)))     # loudness of its speech frames
        gain = 10 ** ((gain_db - speech_db) / 20)
        peak = float(np.max(np.abs(piece.audio))) * gain
        if peak > 0.98:
            gain *= 0.98 / peak
        if turns:
            position += int(round(rng.uniform(0.1, 0.8) * SR))
        if (position + len(piece.audio)) / SR > plan.max_s - 0.5:
            break
        chunks.append((position, (piece.audio * gain).astype(np.float32)))
        turns.append(Turn(position / SR, (position + len(piece.audio)) / SR, speaker, piece.source, round(piece.offset, 3)))
        position += len(piece.audio)
        spoken[speaker] += piece.seconds
        if position / SR >= plan.min_s:
            break
    total = position + lead
    mix = np.zeros(total, dtype=np.float32)
    for at, samples in chunks:
        mix[at:at + len(samples)] += samples
    noise = np.random.default_rng(zlib.crc32(plan.name.encode())).standard_normal(total).astype(np.float32)
    mix += noise * np.float32(10 ** (-66 / 20))
    return mix, turns


def write_wav(path: Path, x: np.ndarray) -> None:
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(pcm.tobytes())


def write_rttm(path: Path, uri: str, turns: list[Turn]) -> None:
    path.write_text("".join(f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
                            for t in turns))


@dataclass
class Recording:
    name: str
    wav: Path
    rttm: Path
    duration: float
    speakers: int


def ensure_conversations(rebuild: bool = False) -> list[Recording]:
    """The 10 conversations and the 10-minute one, built when absent or stale; returns all 11 (long one last)."""
    folder = OUT / "conversations"
    stamp = folder / "stamp.json"
    versions = package_versions()
    wanted = plans()
    fresh = (not rebuild and stamp.exists() and json.loads(stamp.read_text()) == versions
             and all((folder / f"{p.name}.wav").exists() and (folder / f"{p.name}.rttm").exists() for p in wanted))
    if not fresh:
        ensure_packages()
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        material: dict[str, list[Piece]] = {}
        for label, voice in VOICES.items():
            material[label] = [piece for path in sources(voice) for piece in pieces_of(label, path, decode(path))]
        for plan in wanted:
            mix, turns = assemble(plan, material)
            write_wav(folder / f"{plan.name}.wav", mix)
            write_rttm(folder / f"{plan.name}.rttm", plan.name, turns)
            (folder / f"{plan.name}.json").write_text(json.dumps({
                "duration": len(mix) / SR, "speakers": list(plan.speakers),
                "turns": [dataclasses.asdict(t) for t in turns]}, indent=1))
        stamp.write_text(json.dumps(versions, indent=1))
        print(f"diarization: built {len(wanted)} conversations in {time.perf_counter() - started:.0f} s -> {folder}",
              file=sys.stderr)
    out = []
    for plan in wanted:
        info = json.loads((folder / f"{plan.name}.json").read_text())
        out.append(Recording(plan.name, folder / f"{plan.name}.wav", folder / f"{plan.name}.rttm", info["duration"],
                             len(set(t["speaker"] for t in info["turns"]))))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Scoring


def read_rttm(path: Path):
    from pyannote.core import Annotation, Segment
    annotation = Annotation(uri=path.stem)
    for i, line in enumerate(path.read_text().splitlines()):
        fields = line.split()
        if len(fields) >= 8 and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            annotation[Segment(start, start + duration), i] = fields[7]
    return annotation


@dataclass
class Word:
    start: float
    end: float
    speaker: str | None


@dataclass
class Hypothesis:
    turns: list[tuple[float, float, str]]
    words: list[Word]
    speakers: int               # how many speakers Steno says it found


def parse_steno_json(text: str) -> Hypothesis:
    """Steno's `--format json` result: speaker_turns (else the segments' speakers), words with their speaker."""
    result = json.loads(text)
    segments = result.get("segments") or []
    if result.get("speaker_turns") is not None:
        turns = [(float(t["start"]), float(t["end"]), str(t["speaker"])) for t in result["speaker_turns"]]
    else:
        turns = [(float(s["start"]), float(s["end"]), str(s["speaker"])) for s in segments if s.get("speaker")]
    words = [Word(float(w["start"]), float(w["end"]), w.get("speaker") or s.get("speaker"))
             for s in segments for w in (s.get("words") or [])]
    found = len(result["speakers"]) if result.get("speakers") is not None else len({t[2] for t in turns})
    return Hypothesis(turns, words, found)


def annotation_of(turns: list[tuple[float, float, str]], uri: str):
    from pyannote.core import Annotation, Segment
    annotation = Annotation(uri=uri)
    for i, (start, end, speaker) in enumerate(turns):
        if end > start:
            annotation[Segment(start, end), i] = speaker
    return annotation


@dataclass
class Score:
    name: str
    duration: float
    truth_speakers: int
    found: int
    der: float
    components: dict
    words: int = 0              # words scored (midpoint in a true turn)
    words_right: int = 0
    words_outside: int = 0      # midpoint in no true turn: left out
    words_unlabelled: int = 0   # scored, but without a speaker label (counted wrong)

    @property
    def word_share(self) -> float:
        return self.words_right / self.words if self.words else float("nan")


def score(name: str, reference, duration: float, hypothesis: Hypothesis, metric) -> Score:
    """DER (metric accumulates it over the set) and word attribution of one recording."""
    from pyannote.core import Segment, Timeline
    uem = Timeline([Segment(0.0, duration)], uri=reference.uri)
    hyp = annotation_of(hypothesis.turns, reference.uri)
    components = metric(reference, hyp, uem=uem, detailed=True)
    mapping = metric.optimal_mapping(reference, hyp, uem=uem) if len(hyp) else {}
    result = Score(name, duration, len(reference.labels()), hypothesis.speakers,
                   components["diarization error rate"], components)
    ref_turns = [(s.start, s.end, label) for s, _, label in reference.itertracks(yield_label=True)]
    for word in hypothesis.words:
        middle = (word.start + word.end) / 2
        truth = {label for start, end, label in ref_turns if start <= middle < end}
        if not truth:
            result.words_outside += 1
            continue
        result.words += 1
        if word.speaker is None:
            result.words_unlabelled += 1
        elif mapping.get(word.speaker) in truth:
            result.words_right += 1
    return result


def independent_der(reference, hyp_turns: list[tuple[float, float, str]], duration: float, collar: float) -> float:
    """DER on 1 ms frames with its own collar and Hungarian mapping: a cross-check of pyannote's figure."""
    from scipy.optimize import linear_sum_assignment
    n = int(round(duration * 1000))
    ref_turns = [(s.start, s.end, label) for s, _, label in reference.itertracks(yield_label=True)]

    def matrix(turns):
        labels = sorted({t[2] for t in turns})
        m = np.zeros((len(labels), n), dtype=bool)
        for start, end, label in turns:
            m[labels.index(label), max(0, int(round(start * 1000))):min(n, int(round(end * 1000)))] = True
        return m

    ref, hyp = matrix(ref_turns), matrix(hyp_turns)
    scored = np.ones(n, dtype=bool)
    half = int(round(collar / 2 * 1000))
    for start, end, _ in ref_turns:
        for t in (start, end):
            c = int(round(t * 1000))
            scored[max(0, c - half):min(n, c + half)] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    overlap = (ref[:, None, :] & hyp[None, :, :]).sum(axis=2) if len(hyp) else np.zeros((len(ref), 0))
    rows, cols = linear_sum_assignment(-overlap) if overlap.size else ([], [])
    correct = sum(int(overlap[r, c]) for r, c in zip(rows, cols))
    nr, nh = ref.sum(axis=0), hyp.sum(axis=0)
    total = int(nr.sum())
    error = int(np.maximum(nr, nh).sum()) - correct
    return error / total if total else 0.0


# ----------------------------------------------------------------------------------------------------------------
# Running Steno


def steno_argv(binary: Path, file: Path, args: argparse.Namespace, speakers: bool, expected: int | None) -> list[str]:
    argv = [str(binary)] + ([] if binary.name == "steno-transcribe" else ["transcribe"])
    argv += [str(file), "--model", str(args.model), "--word-timestamps", "--format", "json",
             "--threads", str(args.threads)]
    if speakers:
        argv.append("--speakers")
        if expected is not None:
            argv += ["--speakers-expected", str(expected)]
        if args.speaker_model:
            argv += ["--speaker-model", str(args.speaker_model)]
    return argv + list(args.steno_arg)


def what_else_runs() -> str:
    """Load averages and the busiest processes other than this one and its children."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ps = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True)
    me = os.getpid()
    busy = []
    for line in ps.stdout.splitlines():
        pid, ppid, cpu, comm = line.split(None, 3)
        if int(pid) != me and int(ppid) != me and float(cpu) >= 5.0:
            busy.append(f"{comm} {cpu}%")
    return f"load average {load}; other processes at >= 5 % CPU (ps, over their lifetime): {', '.join(busy[:5]) or 'none'}"


# ----------------------------------------------------------------------------------------------------------------
# Reports


def pct(x: float) -> str:
    return "-" if x != x else f"{x * 100:.1f}"


def print_table(title: str, scores: list[Score], pooled: float) -> None:
    width = max(12, *(len(s.name) for s in scores))
    header = (f"{'file':<{width}} {'sec':>6} {'spk':>4} {'found':>5} {'DER %':>7} {'miss %':>7} {'FA %':>6} "
              f"{'conf %':>7} {'words':>6} {'right %':>8} {'outside':>7}")
    print(f"\n{title}")
    print(header)
    print("-" * len(header))
    for s in scores:
        c, total = s.components, s.components["total"] or 1.0
        print(f"{s.name:<{width}} {s.duration:>6.1f} {s.truth_speakers:>4} {s.found:>5} {pct(s.der):>7} "
              f"{pct(c['missed detection'] / total):>7} {pct(c['false alarm'] / total):>6} {pct(c['confusion'] / total):>7} "
              f"{s.words:>6} {pct(s.word_share):>8} {s.words_outside:>7}")
    print("-" * len(header))
    words = sum(s.words for s in scores)
    right = sum(s.words_right for s in scores)
    miss, fa, conf, total = (sum(s.components[k] for s in scores)
                             for k in ("missed detection", "false alarm", "confusion", "total"))
    count_right = sum(s.found == s.truth_speakers for s in scores)
    print(f"{'TOTAL':<{width}} {sum(s.duration for s in scores):>6.0f} {'':>4} {f'{count_right}/{len(scores)}':>5} "
          f"{pct(pooled):>7} {pct(miss / total):>7} {pct(fa / total):>6} {pct(conf / total):>7} {words:>6} "
          f"{pct(right / words if words else float('nan')):>8} {sum(s.words_outside for s in scores):>7}")
    unlabelled = sum(s.words_unlabelled for s in scores)
    if unlabelled:
        print(f"({unlabelled} scored words had no speaker label and count as wrong)")


def new_metric():
    from pyannote.metrics.diarization import DiarizationErrorRate
    return DiarizationErrorRate(collar=COLLAR, skip_overlap=False)


def scorer_line() -> str:
    import pyannote.metrics
    return (f"pyannote.metrics {pyannote.metrics.__version__} DiarizationErrorRate(collar={COLLAR}, skip_overlap=False): "
            f"+-{COLLAR / 2:g} s around each reference boundary, overlap scored, UEM = the whole file")


def accuracy(binary: Path, args: argparse.Namespace, sample: Recording, conversations: list[Recording]) -> dict:
    env = bench_common.thread_env(args.threads)
    report: dict = {}
    for mode, given in (("count not given", False), ("count given (--speakers-expected N)", True)):
        results = {}
        for group, recordings in (("sample", [sample]), ("conversations", conversations)):
            metric = new_metric()
            scores = []
            for rec in recordings:
                print(f"diarization: {rec.name} ({mode})", file=sys.stderr)
                run = bench_common.run_process(steno_argv(binary, rec.wav, args, True, rec.speakers if given else None), env, "diarization")
                hyp = parse_steno_json(run.stdout)
                scores.append(score(rec.name, read_rttm(rec.rttm), rec.duration, hyp, metric))
                if args.keep_output:
                    keep = OUT / "results" / ("given" if given else "free")
                    keep.mkdir(parents=True, exist_ok=True)
                    (keep / f"{rec.name}.json").write_text(run.stdout)
            results[group] = (scores, abs(metric))
        print_table(f"{mode}: pyannote sample (pyannote-audio {PYANNOTE_AUDIO})", *results["sample"])
        print_table(f"{mode}: {len(conversations)} synthetic conversations", *results["conversations"])
        report[mode] = {g: {"pooled_der": pooled, "files": [dataclasses.asdict(s) for s in scores]}
                        for g, (scores, pooled) in results.items()}
    return report


def speed(binary: Path, args: argparse.Namespace, long: Recording) -> dict:
    env = bench_common.thread_env(args.threads)
    runs: dict[str, list[bench_common.Run]] = {"without --speakers": [], "with --speakers": []}
    before = what_else_runs()
    for repeat in range(args.repeats):
        for label, speakers in (("without --speakers", False), ("with --speakers", True)):
            print(f"diarization: speed, {long.name}, {label}, run {repeat + 1}/{args.repeats}", file=sys.stderr)
            runs[label].append(bench_common.run_process(steno_argv(binary, long.wav, args, speakers, None), env, "diarization"))
    after = what_else_runs()

    def mr(values, fmt):
        return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}-{format(max(values), fmt)}]"

    print(f"\nSpeed and memory: {long.name} ({long.duration:.1f} s, {long.speakers} speakers), model {args.model}, "
          f"--threads {args.threads}, --word-timestamps --format json, VAD on; median [min-max] of {args.repeats}")
    print(f"{'':<20} {'wall s':>22} {'x real time':>12} {'peak RSS MB':>22}")
    for label, rs in runs.items():
        walls = [r.wall for r in rs]
        print(f"{label:<20} {mr(walls, '.2f'):>22} {long.duration / statistics.median(walls):>12.1f} "
              f"{mr([r.rss_mb for r in rs], '.0f'):>22}")
    base, diar = (statistics.median(r.wall for r in runs[k]) for k in runs)
    overhead = diar / base - 1
    rss = max(r.rss_mb for r in runs["with --speakers"])
    print(f"ratio with / without --speakers: {diar / base:.3f} (diarization adds {overhead * 100:+.1f} %)")
    print(f"machine: before: {before}\n         after:  {after}")
    return {"file": str(long.wav), "duration": long.duration, "overhead": overhead, "peak_rss_mb": rss,
            "runs": {k: [{"wall": r.wall, "rss_mb": r.rss_mb} for r in rs] for k, rs in runs.items()},
            "machine_before": before, "machine_after": after}


def verdicts(report: dict) -> bool:
    lines, ok = [], True

    def check(name: str, value: str, passed: bool) -> None:
        nonlocal ok
        ok &= passed
        lines.append(f"  {name:<62} {value:>14}  {'ok' if passed else 'MISSED'}")

    free = report.get("accuracy", {}).get("count not given")
    given = report.get("accuracy", {}).get("count given (--speakers-expected N)")
    if free:
        for mode, res in (("count not given", free), ("count given", given)):
            s = res["sample"]["pooled_der"]
            check(f"sample DER <= {TARGETS['sample_der'] * 100:.0f} % ({mode})", f"{s * 100:.2f} %", s <= TARGETS["sample_der"])
            c = res["conversations"]["pooled_der"]
            check(f"conversations pooled DER <= {TARGETS['conversation_der'] * 100:.0f} % ({mode})", f"{c * 100:.2f} %",
                  c <= TARGETS["conversation_der"])
            files = res["conversations"]["files"]
            words = sum(f["words"] for f in files)
            share = sum(f["words_right"] for f in files) / words if words else 0.0
            check(f"words attributed right >= {TARGETS['words'] * 100:.0f} % ({mode})", f"{share * 100:.2f} %",
                  share >= TARGETS["words"])
        files = free["conversations"]["files"]
        right = sum(f["found"] == f["truth_speakers"] for f in files)
        check(f"speaker count right, count not given (>= {TARGETS['count_right']} of {len(files)})", f"{right}/{len(files)}",
              right >= TARGETS["count_right"])
    if "speed" in report:
        sp = report["speed"]
        check(f"--speakers adds <= {TARGETS['overhead'] * 100:.0f} % wall time", f"{sp['overhead'] * 100:+.1f} %",
              sp["overhead"] <= TARGETS["overhead"])
        check(f"peak RSS with --speakers < {TARGETS['rss_mb']:.0f} MB", f"{sp['peak_rss_mb']:.0f} MB",
              sp["peak_rss_mb"] < TARGETS["rss_mb"])
    print("\nTargets:")
    print("\n".join(lines))
    return ok


# ----------------------------------------------------------------------------------------------------------------
# --self-check


def fake_steno_json(turns: list[tuple[float, float, str]], duration: float) -> str:
    """What Steno would print if it were right: one segment per turn, a word every 0.35 s, speaker_turns."""
    segments = []
    for i, (start, end, speaker) in enumerate(turns):
        words, t = [], start
        while t + 0.3 <= end:
            words.append({"start": round(t, 3), "end": round(t + 0.3, 3), "word": " w", "probability": 1.0,
                          "speaker": speaker})
            t += 0.35
        segments.append({"id": i, "start": start, "end": end, "text": " w" * len(words), "speaker": speaker,
                         "words": words})
    time_of: dict[str, float] = {}
    for start, end, speaker in turns:
        time_of[speaker] = time_of.get(speaker, 0.0) + end - start
    return json.dumps({"text": "", "language": "en", "duration": duration, "segments": segments,
                       "speakers": [{"label": k, "speaking_time": v} for k, v in time_of.items()],
                       "speaker_turns": [{"start": s, "end": e, "speaker": k} for s, e, k in turns]})


def self_check(sample: Recording, conversations: list[Recording]) -> bool:
    from pyannote.core import Annotation, Segment, Timeline
    ok = True
    print(f"\nSelf-check of the scoring (no Steno): {scorer_line()}")

    # The collar on one turn [1, 3]: a start found 0.24 s late is forgiven, 0.26 s late is not.
    reference = Annotation(uri="collar")
    reference[Segment(1.0, 3.0)] = "A"
    for late, expect_zero in ((0.24, True), (0.26, False)):
        metric = new_metric()
        hyp = annotation_of([(1.0 + late, 3.0, "x")], "collar")
        c = metric(reference, hyp, uem=Timeline([Segment(0, 4)], uri="collar"), detailed=True)
        passed = (c["missed detection"] == 0) == expect_zero
        ok &= passed
        print(f"  one turn [1, 3], found from {1 + late:.2f}: missed {c['missed detection']:.3f} s of scored "
              f"{c['total']:.3f} s -> {'forgiven' if c['missed detection'] == 0 else 'counted'} "
              f"({'ok' if passed else 'WRONG'})")

    rows = []
    for group, recordings in (("sample", [sample]), ("conversations", conversations)):
        variants = {"truth": [], "labels rotated in every 2nd turn": [], "shifted +0.20 s": [], "shifted +0.35 s": []}
        metrics = {k: new_metric() for k in variants}
        agree = True
        for rec in recordings:
            reference = read_rttm(rec.rttm)
            truth = sorted((s.start, s.end, label) for s, _, label in reference.itertracks(yield_label=True))
            renamed = {label: f"SPEAKER_{i + 1}" for i, label in enumerate(sorted(reference.labels()))}
            names = sorted(renamed.values())
            cases = {
                "truth": [(s, e, renamed[k]) for s, e, k in truth],
                "labels rotated in every 2nd turn": [
                    (s, e, names[(names.index(renamed[k]) + (i % 2)) % len(names)]) for i, (s, e, k) in enumerate(truth)],
                "shifted +0.20 s": [(s + 0.2, e + 0.2, renamed[k]) for s, e, k in truth],
                "shifted +0.35 s": [(s + 0.35, e + 0.35, renamed[k]) for s, e, k in truth],
            }
            for case, turns in cases.items():
                hyp = parse_steno_json(fake_steno_json(turns, rec.duration))
                s = score(rec.name, reference, rec.duration, hyp, metrics[case])
                mine = independent_der(reference, turns, rec.duration, COLLAR)
                agree &= abs(mine - s.der) < 0.002
                variants[case].append((s, mine))
        for case, results in variants.items():
            scores = [s for s, _ in results]
            pooled = abs(metrics[case])
            words = sum(s.words for s in scores)
            share = sum(s.words_right for s in scores) / words
            counts = sum(s.found == s.truth_speakers for s in scores)
            worst_gap = max(abs(m - s.der) for s, m in results)
            if case in ("truth", "shifted +0.20 s"):
                passed = pooled == 0.0 and (case != "truth" or (share == 1.0 and counts == len(scores)))
            else:
                passed = pooled > 0.0
            ok &= passed
            rows.append((group, case, pooled, share, f"{counts}/{len(scores)}", worst_gap, passed))
        ok &= agree
    width = max(len(r[1]) for r in rows)
    print(f"\n  {'set':<13} {'hypothesis':<{width}} {'DER %':>7} {'words right %':>14} {'count right':>11} "
          f"{'|DER - independent|':>20}")
    for group, case, pooled, share, counts, gap, passed in rows:
        print(f"  {group:<13} {case:<{width}} {pooled * 100:>7.2f} {share * 100:>14.1f} {counts:>11} "
              f"{gap * 100:>19.3f}%  {'ok' if passed else 'WRONG'}")
    print("\n  Rotated labels: the words of the rotated turns keep the rotated label, so their share falls with "
          "the DER's confusion.")
    stats(conversations)
    print(f"\nself-check: {'passed' if ok else 'FAILED'}")
    return ok


def stats(conversations: list[Recording]) -> None:
    """What the conversations are: lengths, turns, speakers, pauses."""
    print("\nConversations (.fixtures/diarization/conversations/):")
    print(f"  {'file':<10} {'sec':>6} {'spk':>4} {'turns':>6} {'changes':>8} {'turn s (min/median/max)':>24} "
          f"{'pause s (min/max)':>18}  speakers (speech s)")
    for rec in conversations:
        info = json.loads(rec.wav.with_suffix(".json").read_text())
        turns = info["turns"]
        lengths = [t["end"] - t["start"] for t in turns]
        pauses = [b["start"] - a["end"] for a, b in zip(turns, turns[1:])]
        changes = sum(a["speaker"] != b["speaker"] for a, b in zip(turns, turns[1:]))
        speech: dict[str, float] = {}
        for t in turns:
            speech[t["speaker"]] = speech.get(t["speaker"], 0.0) + t["end"] - t["start"]
        who = ", ".join(f"{k} {v:.0f}" for k, v in speech.items())
        print(f"  {rec.name:<10} {rec.duration:>6.1f} {rec.speakers:>4} {len(turns):>6} {changes:>8} "
              f"{min(lengths):>8.1f}/{statistics.median(lengths):.1f}/{max(lengths):.1f}{'':>5} "
              f"{min(pauses):>8.2f}/{max(pauses):.2f}{'':>4}  {who}")


# ----------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steno", help="steno binary (default .build/release/steno, else Engine/.build/...)")
    parser.add_argument("--model", type=Path, default=bench_common.DEFAULT_MODEL)
    parser.add_argument("--speaker-model", type=Path, help="passed to steno as --speaker-model (default: steno's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="steno --threads (default: all cores)")
    parser.add_argument("--steno-arg", action="append", default=[], help="extra argument for steno (repeatable)")
    parser.add_argument("--only", choices=["accuracy", "speed"], help="run one half only")
    parser.add_argument("--skip-speed", action="store_true", help="no speed test (as --only accuracy)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each speed measurement (median reported)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the conversations even when up to date")
    parser.add_argument("--keep-output", action="store_true",
                        help="keep steno's JSON of every run in .fixtures/diarization/results/")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--self-check", action="store_true",
                        help="score the truth, corrupted truth and shifted truth through the whole path; no steno")
    args = parser.parse_args()

    ensure_pyannote_metrics()
    wav, rttm = ensure_sample()
    sample = Recording("sample", wav, rttm, 30.0, 2)
    with wave.open(str(wav)) as w:
        sample.duration = w.getnframes() / w.getframerate()
    recordings = ensure_conversations(args.rebuild)
    conversations, long = recordings[:-1], recordings[-1]

    if args.self_check:
        sys.exit(0 if self_check(sample, conversations + [long]) else 1)

    binary = bench_common.resolve_steno(args.steno)
    if binary is None or not binary.exists():
        sys.exit(f"diarization: steno binary not found ({args.steno or bench_common.DEFAULT_STENO}); "
                 "build it, pass --steno PATH, or run --self-check")
    print(f"DER scorer: {scorer_line()}")
    print(f"steno: {binary}, model {args.model}, --threads {args.threads}")
    stats(conversations + [long])
    report: dict = {"scorer": scorer_line(), "steno": str(binary), "model": str(args.model), "threads": args.threads}
    if args.only in (None, "accuracy"):
        report["accuracy"] = accuracy(binary, args, sample, conversations)
    if args.only in (None, "speed") and not args.skip_speed:
        report["speed"] = speed(binary, args, long)
    passed = verdicts(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
