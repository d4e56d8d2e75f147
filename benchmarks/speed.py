#!/usr/bin/env python3
"""Speed and peak memory of `steno transcribe` next to faster-whisper (float32 and int8), on the same files with the
same thread count and beam. Run through benchmarks/engine.sh, which builds the corpus and the SGEMM probe first.

Workloads (from the corpus manifest):
  short  every short clip of 2-10 s, transcribed by ONE process (model loaded once). The model load is counted
         apart: each repeat runs the process three times, on the first clip alone (A), on it twice (C), and on it
         followed by all the others (B). The clips after the first took B - A, so speed = their audio / (B - A);
         the first clip, warm, took C - A, so load+startup = A - (C - A). Every system is measured the same way,
         from outside, so none needs to do more than take several files in one call.
  long   the one long file (>= 5 min), one process; speed = audio / wall, load included.

Speed is the real-time factor as audio seconds / wall seconds (×real time: higher is faster). Peak memory is the
process's peak resident set (ru_maxrss from wait4). Each figure is the median over --repeats runs, interleaved
across systems so that the noise of a shared machine hits all of them alike; [min-max] follow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from bench_common import Clip, Run  # noqa: E402

GFLOPS_LINE = re.compile(r"encoder:\s*([0-9]+(?:\.[0-9]+)?)\s*GFLOP/s")


@dataclass
class System:
    name: str
    argv: Callable[[list[Path]], list[str]]
    env: dict[str, str]
    gflops: list[float] = field(default_factory=list)              # encoder GFLOP/s seen across runs
    backend: str = ""                                               # CTranslate2's CPU backend, for fw-*
    short: list[dict[str, float]] = field(default_factory=list)     # one entry per repeat
    long: list[dict[str, float]] = field(default_factory=list)


def run_process(argv: list[str], env: dict[str, str]) -> Run:
    return bench_common.run_process(argv, env, "speed")


def median_range(values: list[float], fmt: str) -> str:
    if not values:
        return "-"
    med = format(statistics.median(values), fmt)
    return med if len(values) == 1 else f"{med} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


def build_systems(args: argparse.Namespace) -> list[System]:
    steno = bench_common.resolve_steno(args.steno)
    default = ["fw-float32", "fw-float32-mkl", "fw-int8"]
    names = args.systems.split(",") if args.systems else (["steno"] if steno else []) + default
    if not args.systems and not steno:
        print("speed: no steno binary found (build it, or pass --steno PATH); measuring faster-whisper only",
              file=sys.stderr)
    systems = []
    for name in filter(None, names):
        fw = bench_common.parse_fw_system(name)
        if name == "steno":
            if steno is None or not steno.exists():
                sys.exit(f"speed: steno binary not found ({args.steno or bench_common.DEFAULT_STENO})")
            systems.append(System(name, lambda files: bench_common.steno_command(
                steno, files, args.model, args.beam, threads=args.threads, verbose=True, extra=args.steno_arg,
                vad=args.vad),
                bench_common.thread_env(args.threads)))
        elif name == "steno-before":
            # Another build of steno (a change's parent, say), measured in the same run for a before/after figure.
            before = Path(args.steno_before) if args.steno_before else None
            if before is None or not before.exists():
                sys.exit("speed: steno-before needs --steno-before PATH (a steno or steno-transcribe binary)")
            systems.append(System(name, lambda files: bench_common.steno_command(
                before, files, args.model, args.beam, threads=args.threads, verbose=True, extra=args.steno_arg,
                vad=args.vad if args.before_has_vad else None),
                bench_common.thread_env(args.threads)))
        elif fw:
            systems.append(System(name, lambda files, ct=fw[0]: bench_common.fw_command(
                files, args.model, args.beam, ct, args.threads, vad=args.vad), bench_common.thread_env(args.threads, fw[1])))
        else:
            sys.exit(f"speed: unknown system {name!r}")
    return systems


def measure_short(system: System, clips: list[Clip]) -> dict[str, float]:
    """Three runs of one process: the first clip (A), it twice (C), and all the clips (B)."""
    first, rest = clips[0], clips[1:]
    alone = run_process(system.argv([first.path]), system.env)
    twice = run_process(system.argv([first.path, first.path]), system.env)
    batch = run_process(system.argv([c.path for c in clips]), system.env)
    for text in (alone.stderr, twice.stderr, batch.stderr):
        system.gflops += [float(x) for x in GFLOPS_LINE.findall(text)]
    rest_wall = batch.wall - alone.wall          # the other clips, model loaded and warm
    return {
        "speed": sum(c.duration for c in rest) / rest_wall if rest_wall > 0 else float("nan"),
        "ms_per_clip": rest_wall / len(rest) * 1000,
        "load_s": alone.wall - (twice.wall - alone.wall),   # A minus the first clip's warm time (C - A)
        "rss_mb": batch.rss_mb,
        "wall_alone": alone.wall,
        "wall_twice": twice.wall,
        "wall_batch": batch.wall,
    }


def measure_long(system: System, clip: Clip) -> dict[str, float]:
    run = run_process(system.argv([clip.path]), system.env)
    system.gflops += [float(x) for x in GFLOPS_LINE.findall(run.stderr)]
    return {"speed": clip.duration / run.wall, "wall": run.wall, "rss_mb": run.rss_mb}


def fw_encoder_gflops(args: argparse.Namespace, compute_type: str, env: dict[str, str]) -> tuple[float | None, str]:
    """CTranslate2's encoder GFLOP/s, and the CPU backend it chose (from its verbose log)."""
    argv = [sys.executable, str(bench_common.BENCH_DIR / "fw_transcribe.py"), "--encoder-gflops",
            "--model", str(args.model), "--compute-type", compute_type, "--threads", str(args.threads)]
    run = run_process(argv, {**env, "CT2_VERBOSE": "1"})
    match = GFLOPS_LINE.search(run.stdout)
    backend = "; ".join(m.strip() for m in re.findall(r"\]\s+-\s+((?:Selected ISA|Use Intel MKL|SGEMM backend|"
                                                       r"GEMM_S8 backend)[^\n]*)", run.stderr))
    return (float(match.group(1)) if match else None), backend


def ratio_cell(steno: list[dict[str, float]], other: list[dict[str, float]], key: str) -> str:
    if not steno or not other:
        return "-"
    return f"{statistics.median(r[key] for r in steno) / statistics.median(r[key] for r in other):.2f}"


SGEMM_LINE = re.compile(r"sgemm (\S+): peak ([0-9.]+) GFLOP/s, median ([0-9.]+) GFLOP/s")


def summarize_sgemm(outputs: list[str]) -> str:
    """Per shape: the best peak over all repeats and the median of the repeats' medians."""
    if not outputs:
        return ""
    peaks: dict[str, list[float]] = {}
    medians: dict[str, list[float]] = {}
    for output in outputs:
        for shape, peak, median in SGEMM_LINE.findall(output):
            peaks.setdefault(shape, []).append(float(peak))
            medians.setdefault(shape, []).append(float(median))
    lines = [outputs[0].splitlines()[0]]      # the OpenBLAS configuration line
    for shape in peaks:
        lines.append(f"sgemm {shape}: peak {max(peaks[shape]):.1f} GFLOP/s, median "
                     f"{median_range(medians[shape], '.1f')} GFLOP/s ({len(outputs)} runs)")
    return "\n".join(lines)


def report(args, systems: list[System], short: list[Clip], long: Clip | None, sgemm: str | None) -> None:
    w = max(12, *(len(s.name) + 1 for s in systems))
    print(f"\nSpeed: model {args.model}, beam {args.beam}, {args.threads} threads, {args.repeats} repeats "
          f"(median [min-max])")
    if short:
        audio = sum(c.duration for c in short[1:])
        print(f"\n(a) {len(short)} short clips of {min(c.duration for c in short):.1f}-"
              f"{max(c.duration for c in short):.1f} s in one process; speed over the {len(short) - 1} after the "
              f"first ({audio:.1f} s of audio), load+startup apart")
        print(f"{'system':<{w}} {'speed ×RT':>22} {'ms per clip':>22} {'load+startup s':>22} {'peak RSS MB':>22}")
        for s in systems:
            print(f"{s.name:<{w}} {median_range([r['speed'] for r in s.short], '.1f'):>22} "
                  f"{median_range([r['ms_per_clip'] for r in s.short], '.0f'):>22} "
                  f"{median_range([r['load_s'] for r in s.short], '.2f'):>22} "
                  f"{median_range([r['rss_mb'] for r in s.short], '.0f'):>22}")
    if long:
        print(f"\n(b) long file {long.name}, {long.duration:.1f} s, one process (load included)")
        print(f"{'system':<{w}} {'speed ×RT':>22} {'wall s':>22} {'peak RSS MB':>22}")
        for s in systems:
            print(f"{s.name:<{w}} {median_range([r['speed'] for r in s.long], '.1f'):>22} "
                  f"{median_range([r['wall'] for r in s.long], '.1f'):>22} "
                  f"{median_range([r['rss_mb'] for r in s.long], '.0f'):>22}")

    steno = next((s for s in systems if s.name == "steno"), None)
    others = [s for s in systems if s.name != "steno"]
    if steno and others:
        print("\nsteno / faster-whisper (speed ratio > 1: steno faster; RSS ratio < 1: steno smaller)")
        print(f"{'':<{w + 3}} {'short speed':>12} {'long speed':>12} {'short RSS':>12} {'long RSS':>12}")
        for o in others:
            print(f"{'vs ' + o.name:<{w + 3}} {ratio_cell(steno.short, o.short, 'speed'):>12} "
                  f"{ratio_cell(steno.long, o.long, 'speed'):>12} {ratio_cell(steno.short, o.short, 'rss_mb'):>12} "
                  f"{ratio_cell(steno.long, o.long, 'rss_mb'):>12}")

    print("\nEncoder GFLOP/s (one 30-s window) next to OpenBLAS's SGEMM on this machine")
    if sgemm:
        for line in sgemm.strip().splitlines():
            print(f"  {line}")
    for s in systems:
        source = ("its --verbose 'encoder:' lines" if s.name.startswith("steno") else
                  "CTranslate2 encode timed by fw_transcribe.py" + (", int8 ops" if "int8" in s.name else ""))
        value = median_range(s.gflops, ".1f") if s.gflops else "- (no 'encoder: X GFLOP/s' on stderr)"
        print(f"  {s.name:<{w}} encoder: {value} GFLOP/s ({source})")
    for s in systems:
        if s.backend:
            print(f"  {s.name} runs CTranslate2 with: {s.backend}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=bench_common.DEFAULT_MANIFEST)
    parser.add_argument("--model", type=Path, default=bench_common.DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--systems", help="comma-separated: steno, fw-float32, fw-float32-mkl, fw-int8, "
                                          "fw-int8-mkl (default: steno when its binary exists, fw-float32, "
                                          "fw-float32-mkl, fw-int8)")
    parser.add_argument("--steno", help="steno binary (default .build/release/steno, else Engine/.build/...)")
    parser.add_argument("--steno-before", help="a second steno binary for the steno-before system (before/after a change)")
    parser.add_argument("--steno-arg", action="append", default=[], help="extra argument for steno (repeatable)")
    parser.add_argument("--vad", action="store_true",
                        help="voice-activity detection on every system (faster-whisper's vad_filter=True); else off")
    parser.add_argument("--before-has-vad", action="store_true",
                        help="the steno-before build knows --vad/--no-vad (builds from before it do not)")
    parser.add_argument("--workloads", default="short,long", help="short, long or both")
    parser.add_argument("--min-clip", type=float, default=2.0, help="shortest clip of the short workload (s)")
    parser.add_argument("--max-clip", type=float, default=10.0, help="longest clip of the short workload (s)")
    parser.add_argument("--sgemm", type=Path, help="the compiled sgemm_peak probe (engine.sh passes it)")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    args = parser.parse_args()

    bench_common.ensure_requirements()
    bench_common.ensure_fixtures(args.manifest)
    clips = bench_common.load_manifest(args.manifest)
    workloads = set(args.workloads.split(","))
    short = [c for c in clips if c.group == "short" and args.min_clip <= c.duration <= args.max_clip]
    short = short if "short" in workloads else []
    long = next((c for c in clips if c.group == "long"), None) if "long" in workloads else None
    if "short" in workloads and len(short) < 2:
        sys.exit("speed: the short workload needs at least two clips")
    systems = build_systems(args)
    sgemm_outputs = []
    for repeat in range(args.repeats):
        if args.sgemm:   # once per repeat, so that the machine's load at the time shows in its spread too
            sgemm_outputs.append(subprocess.run([str(args.sgemm), str(args.threads)], capture_output=True, text=True,
                                                check=True, env=bench_common.thread_env(args.threads)).stdout)
        for s in systems:
            print(f"speed: repeat {repeat + 1}/{args.repeats}: {s.name}", file=sys.stderr)
            if short:
                s.short.append(measure_short(s, short))
            if long:
                s.long.append(measure_long(s, long))
            if not s.name.startswith("steno"):
                value, backend = fw_encoder_gflops(args, bench_common.parse_fw_system(s.name)[0], s.env)
                if value is not None:
                    s.gflops.append(value)
                s.backend = backend or s.backend

    sgemm = summarize_sgemm(sgemm_outputs)
    report(args, systems, short, long, sgemm)
    if args.json:
        args.json.write_text(json.dumps({
            "model": str(args.model), "beam": args.beam, "threads": args.threads, "repeats": args.repeats,
            "short_clips": [c.name for c in short], "long_file": long.name if long else None,
            "sgemm": sgemm_outputs,
            "systems": {s.name: {"short": s.short, "long": s.long, "encoder_gflops": s.gflops,
                                 "ctranslate2_backend": s.backend} for s in systems},
        }, indent=2))


if __name__ == "__main__":
    main()
