"""Shared pieces of the benchmark scripts: requirements, the corpus manifest, and how to run each transcriber."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_MANIFEST = REPO_ROOT / ".fixtures" / "manifest.tsv"
DEFAULT_MODEL = REPO_ROOT / "models" / "tiny.en"
DEFAULT_STENO = REPO_ROOT / ".build" / "release" / "steno"
FALLBACK_STENO = REPO_ROOT / "Engine" / ".build" / "release" / "steno-transcribe"

# Modules the scripts import, all from benchmarks/requirements.txt.
_REQUIRED_MODULES = ("faster_whisper", "jiwer", "whisper_normalizer")


def ensure_requirements() -> None:
    """Installs benchmarks/requirements.txt with pip when one of its modules cannot be imported."""
    missing = [name for name in _REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    print(f"bench: installing Python requirements (missing: {', '.join(missing)})", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(BENCH_DIR / "requirements.txt")],
        check=True,
    )
    importlib.invalidate_caches()


def ensure_fixtures(manifest: Path) -> None:
    """Builds the corpus when the default manifest is asked for and absent (fixtures.sh is idempotent)."""
    if manifest.exists():
        return
    if manifest.resolve() != DEFAULT_MANIFEST:
        sys.exit(f"bench: manifest {manifest} does not exist")
    subprocess.run([str(BENCH_DIR / "fixtures.sh")], check=True)


@dataclass(frozen=True)
class Clip:
    path: Path          # absolute path of the audio file
    name: str           # path relative to the manifest's folder, as written in the manifest
    reference: str
    duration: float     # seconds
    group: str          # short | long
    source: str         # real | tts | mixed


def load_manifest(manifest: Path) -> list[Clip]:
    base = manifest.resolve().parent
    with manifest.open(newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            Clip(base / r["path"], r["path"], r["reference"], float(r["duration"]), r["group"], r["source"])
            for r in rows
        ]


def resolve_steno(explicit: str | None) -> Path | None:
    """The steno binary: --steno if given, else .build/release/steno, else Engine/.build/release/steno-transcribe."""
    if explicit:
        return Path(explicit).resolve()
    for candidate in (DEFAULT_STENO, FALLBACK_STENO):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def steno_command(binary: Path, files: list[Path], model: Path, beam: int,
                  threads: int | None = None, verbose: bool = False, extra: list[str] = (),
                  vad: bool | None = False) -> list[str]:
    """`steno transcribe FILE... --model M --beam B --format text [--threads N] [--verbose] [--[no-]vad]`.

    The stand-alone `steno-transcribe` binary is the transcribe command itself, so it takes no subcommand.
    Steno detects voice activity by default and faster-whisper does not: comparisons pass `vad` to both
    (`None` passes no flag, for builds from before the option).
    """
    argv = [str(binary)]
    if binary.name != "steno-transcribe":
        argv.append("transcribe")
    argv += [str(f) for f in files]
    argv += ["--model", str(model), "--beam", str(beam), "--format", "text"]
    if threads is not None:
        argv += ["--threads", str(threads)]
    if verbose:
        argv.append("--verbose")
    if vad is not None:
        argv.append("--vad" if vad else "--no-vad")
    return argv + list(extra)


def parse_fw_system(name: str) -> tuple[str, bool] | None:
    """`fw-COMPUTE[-mkl]` -> (CTranslate2 compute type, force Intel MKL?); None for any other name.

    CTranslate2 picks Intel MKL only on Intel CPUs; elsewhere (AMD) float32 products go through oneDNN, which is
    several times slower for Whisper's decoder here. `-mkl` sets CT2_USE_MKL=1 to use the MKL bundled in its wheel.
    """
    if not name.startswith("fw-"):
        return None
    compute_type, mkl = name[3:], False
    if compute_type.endswith("-mkl"):
        compute_type, mkl = compute_type[: -len("-mkl")], True
    return compute_type, mkl


def fw_command(files: list[Path], model: Path, beam: int, compute_type: str, threads: int,
               jsonl: bool = False, vad: bool = False, language: str | None = None) -> list[str]:
    """The faster-whisper counterpart of steno_command, as a process of its own (see fw_transcribe.py)."""
    argv = [sys.executable, str(BENCH_DIR / "fw_transcribe.py"), *[str(f) for f in files],
            "--model", str(model), "--beam", str(beam), "--compute-type", compute_type, "--threads", str(threads)]
    return (argv + (["--jsonl"] if jsonl else []) + (["--vad-filter"] if vad else [])
            + (["--language", language] if language else []))


def thread_env(threads: int, force_mkl: bool = False) -> dict[str, str]:
    """Environment for a measured process: BLAS/OpenMP pools sized to the thread count under test."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.pop("CT2_USE_MKL", None)
    if force_mkl:
        env["CT2_USE_MKL"] = "1"
    return env


@dataclass
class Run:
    wall: float         # seconds, process start to exit
    rss_mb: float       # peak resident set of that very process (not of the script)
    stdout: str
    stderr: str


def run_process(argv: list[str], env: dict[str, str], who: str) -> Run:
    """Runs argv to completion with its own wall time and peak RSS (ru_maxrss from wait4); exits the calling
    script, named `who` in the message, when the process fails or prints nothing."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        run = Run(wall, usage.ru_maxrss / 1024, out.read().decode(errors="replace"),
                  err.read().decode(errors="replace"))
    if code != 0 or not run.stdout.strip():
        sys.exit(f"{who}: {' '.join(argv[:3])} ... failed (exit {code}):\n{run.stderr[-2000:]}")
    return run
