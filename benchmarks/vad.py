#!/usr/bin/env python3
"""Voice-activity detection cost: Steno's native Silero VAD against faster-whisper's (ONNX Runtime), same files.

For each file, Steno transcribes it with VAD on (`steno transcribe --verbose`), which reports the seconds spent
in the VAD and in the whole transcription: the VAD's share of the transcription time is the figure the engine
issue bounds (under 2 %). faster-whisper's `get_speech_timestamps` (its bundled Silero v6 ONNX model, the same
default parameters) runs on the same decoded audio in this process, for the side-by-side ratio. Medians of
--repeats runs; both sides get the same thread count.

    benchmarks/vad.py [--repeats 3] [--threads 2] [--model DIR] [FILE...]

Default files: the developer corpus' long file and, if built, the long-form recordings (benchmarks/longform.py).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402


def steno_run(binary: Path, file: Path, model: Path, threads: int) -> tuple[float, float, float]:
    """(audio seconds, VAD seconds, transcription wall seconds) of one `steno transcribe --verbose` run."""
    argv = bench_common.steno_command(binary, [file], model, 5, threads=threads, verbose=True, vad=True)
    done = subprocess.run(argv, capture_output=True, text=True, env=bench_common.thread_env(threads))
    if done.returncode != 0:
        sys.exit(f"vad: steno failed on {file}: {done.stderr[-500:]}")
    total = re.search(r"([\d.]+) s of audio in ([\d.]+) s", done.stderr)
    vad = re.search(r"vad ([\d.]+) s", done.stderr)
    if not total or not vad:
        sys.exit(f"vad: no timings in steno's output: {done.stderr[-500:]}")
    return float(total.group(1)), float(vad.group(1)), float(total.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--model", type=Path, default=bench_common.DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steno", help="steno binary (default .build/release/steno)")
    args = parser.parse_args()
    bench_common.ensure_requirements()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    from faster_whisper.audio import decode_audio
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    steno = bench_common.resolve_steno(args.steno)
    if steno is None:
        sys.exit("vad: no steno binary (make build)")
    files = args.files or [p for p in (bench_common.REPO_ROOT / ".fixtures" / "long" / "joined.wav",
                                       *sorted((bench_common.REPO_ROOT / ".fixtures" / "longform").glob("*.wav")))
                           if p.exists()]
    if not files:
        sys.exit("vad: no files (benchmarks/fixtures.sh builds the corpus)")

    print(f"VAD cost, model {args.model.name}, {args.threads} threads, medians of {args.repeats} runs")
    header = (f"{'file':<32} {'audio s':>8} {'steno vad s':>12} {'transcribe s':>13} {'vad share':>10} "
              f"{'fw vad s':>9} {'fw/steno':>9}")
    print(header)
    print("-" * len(header))
    shares = []
    for file in files:
        runs = [steno_run(steno, file, args.model, args.threads) for _ in range(args.repeats)]
        audio_seconds = runs[0][0]
        vad_s = statistics.median(r[1] for r in runs)
        wall_s = statistics.median(r[2] for r in runs)
        samples = decode_audio(str(file))
        fw_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            get_speech_timestamps(samples, VadOptions())
            fw_times.append(time.perf_counter() - start)
        fw_s = statistics.median(fw_times)
        share = vad_s / wall_s
        shares.append(share)
        print(f"{file.name:<32} {audio_seconds:>8.1f} {vad_s:>12.3f} {wall_s:>13.2f} {share * 100:>9.2f}% "
              f"{fw_s:>9.3f} {fw_s / max(vad_s, 1e-9):>8.2f}x")
    print(f"\nlargest VAD share of transcription time: {max(shares) * 100:.2f}% (bound 2%)")


if __name__ == "__main__":
    main()
