#!/usr/bin/env python3
"""Word error rate of Steno and faster-whisper on the benchmark corpus, side by side.

Every transcript and reference goes through Whisper's EnglishTextNormalizer (PyPI `whisper-normalizer`) before
scoring; totals are corpus WER (all edits / all reference words of the subset), not a mean of per-file WERs.

Systems (--systems, comma-separated):
  fw-float32, fw-int8   faster-whisper (fw_transcribe.py, one model load): --model, beam --beam, that compute
                        type, cpu_threads --threads, its transcribe() defaults otherwise (timestamps on,
                        temperature fallback, no VAD); add -mkl (fw-float32-mkl) to force CTranslate2's Intel MKL
  steno                 `steno transcribe FILE --model M --beam B --format text`, one process per file
                        (binary: --steno, else .build/release/steno, else Engine/.build/release/steno-transcribe)
  NAME=TEMPLATE         any command (--command, repeatable): TEMPLATE is run by the shell with {file} replaced
                        by the quoted audio path; its stdout is the transcript
Default: fw-float32, fw-int8, and steno when its binary exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from bench_common import Clip  # noqa: E402


@dataclass
class System:
    name: str
    transcribe: Callable[[Path], str]


def faster_whisper_system(name: str, args: argparse.Namespace) -> System:
    """Runs fw_transcribe.py once per system over all files (one model load), then answers from its output."""
    compute_type, mkl = bench_common.parse_fw_system(name)
    cache: dict[str, str] = {}

    def transcribe(audio: Path) -> str:
        if not cache:
            files = [c.path for c in args.clips]
            done = subprocess.run(bench_common.fw_command(files, args.model, args.beam, compute_type, args.threads,
                                                          jsonl=True, vad=args.vad, language=args.language),
                                  env=bench_common.thread_env(args.threads, mkl), capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed (exit {done.returncode}): {done.stderr.strip()[-1000:]}")
            cache.update((r["file"], r["text"]) for r in map(json.loads, done.stdout.splitlines()))
        return cache[str(audio)]

    return System(name, transcribe)


def command_system(name: str, argv_for: Callable[[Path], list[str] | str], env: dict[str, str],
                   shell: bool = False) -> System:
    def transcribe(audio: Path) -> str:
        done = subprocess.run(argv_for(audio), shell=shell, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed on {audio} (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        return done.stdout.strip()

    return System(name, transcribe)


def build_systems(args: argparse.Namespace) -> list[System]:
    steno = bench_common.resolve_steno(args.steno)
    names = args.systems.split(",") if args.systems else ["fw-float32", "fw-int8"] + (["steno"] if steno else [])
    if not args.systems and not steno:
        print("wer: no steno binary found (build it, or pass --steno PATH); comparing faster-whisper only",
              file=sys.stderr)
    systems = []
    for name in filter(None, names):
        if bench_common.parse_fw_system(name):
            systems.append(faster_whisper_system(name, args))
        elif name == "steno":
            if steno is None or not steno.exists():
                sys.exit(f"wer: steno binary not found ({args.steno or bench_common.DEFAULT_STENO})")
            systems.append(command_system("steno", lambda f: bench_common.steno_command(
                steno, [f], args.model, args.beam, vad=args.vad,
                extra=args.steno_arg + (["--language", args.language] if args.language else [])), bench_common.thread_env(args.threads)))
        else:
            sys.exit(f"wer: unknown system {name!r}")
    for spec in args.command:
        name, _, template = spec.partition("=")
        if not template or "{file}" not in template:
            sys.exit(f"wer: --command wants NAME=TEMPLATE with {{file}} in it, got {spec!r}")
        systems.append(command_system(name, lambda f, t=template: t.replace("{file}", shlex.quote(str(f))),
                                      bench_common.thread_env(args.threads), shell=True))
    return systems


def subsets(clips: list[Clip]) -> dict[str, list[int]]:
    """The totals the table reports: recorded speech (the accuracy criterion), synthetic clips, the long file."""
    pick = lambda keep: [i for i, c in enumerate(clips) if keep(c)]  # noqa: E731
    named = {
        "real recordings": pick(lambda c: c.source == "real"),
        "espeak-ng clips": pick(lambda c: c.source == "tts"),
        "long file": pick(lambda c: c.group == "long"),
        "all files": list(range(len(clips))),
    }
    return {k: v for k, v in named.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, default=bench_common.DEFAULT_MANIFEST)
    parser.add_argument("--model", type=Path, default=bench_common.DEFAULT_MODEL)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="faster-whisper cpu_threads; OMP/OpenBLAS/MKL_NUM_THREADS of every system (default: all cores)")
    parser.add_argument("--systems", help="comma-separated: fw-float32, fw-int8, fw-float32-mkl, steno "
                                          "(default: see above)")
    parser.add_argument("--steno", help="steno binary (default .build/release/steno, else Engine/.build/...)")
    parser.add_argument("--steno-arg", action="append", default=[], help="extra argument for steno (repeatable)")
    parser.add_argument("--language", help="language of the speech, given to both sides (default: each detects it); "
                                           "other than en, Whisper's BasicTextNormalizer scores")
    parser.add_argument("--vad", action="store_true",
                        help="voice-activity detection on both sides (steno's default; faster-whisper's vad_filter=True); "
                             "without it, steno runs with --no-vad as faster-whisper's default")
    parser.add_argument("--command", action="append", default=[], metavar="NAME=TEMPLATE",
                        help="another transcriber, e.g. 'x=mytool {file}' (repeatable)")
    parser.add_argument("--group", choices=["short", "long", "all"], default="all")
    parser.add_argument("--source", choices=["real", "tts", "all"], default="all",
                        help="only recorded (real) or synthetic (tts) short clips; the long file is mixed")
    parser.add_argument("--show-errors", action="store_true", help="print normalized reference and hypotheses "
                                                                   "of every file some system got wrong")
    parser.add_argument("--json", type=Path, help="also write every transcript and WER to this file")
    parser.add_argument("--assert-no-worse", nargs=2, metavar=("A", "B"),
                        help="exit 1 unless system A's WER on the real recordings is <= system B's")
    args = parser.parse_args()

    bench_common.ensure_requirements()
    bench_common.ensure_fixtures(args.manifest)
    import jiwer  # after ensure_requirements, which may have just installed it
    if args.language in (None, "en"):
        from whisper_normalizer.english import EnglishTextNormalizer
        normalize, normalizer_name = EnglishTextNormalizer(), "EnglishTextNormalizer"
    else:
        # Whisper's normalizer for other languages; accents off, as some references are written without them.
        from whisper_normalizer.basic import BasicTextNormalizer
        normalize, normalizer_name = BasicTextNormalizer(remove_diacritics=True), "BasicTextNormalizer without diacritics"
    clips = [c for c in bench_common.load_manifest(args.manifest)
             if args.group in ("all", c.group) and args.source in ("all", c.source)]
    args.clips = clips
    systems = build_systems(args)
    if not systems:
        sys.exit("wer: no system to run")

    hypotheses: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for system in systems:
        print(f"wer: transcribing {len(clips)} files with {system.name}", file=sys.stderr)
        start = time.perf_counter()
        hypotheses[system.name] = [system.transcribe(c.path) for c in clips]
        seconds[system.name] = time.perf_counter() - start

    refs = [normalize(c.reference) for c in clips]
    norm_hyps = {s: [normalize(h) for h in hs] for s, hs in hypotheses.items()}

    def wer(system: str, indices: list[int]) -> tuple[float, int]:
        out = jiwer.process_words([refs[i] for i in indices], [norm_hyps[system][i] for i in indices])
        return out.wer, out.substitutions + out.deletions + out.insertions

    names = [s.name for s in systems]
    width = max(len(c.name) for c in clips)
    col = max(12, *(len(n) + 2 for n in names))
    header = f"{'file':<{width}} {'sec':>6} {'words':>5}" + "".join(f"{n:>{col}}" for n in names)
    print(f"\nWER (Whisper {normalizer_name}), model {args.model}, beam {args.beam}"
          + (f", language {args.language}" if args.language else ""))
    print(header)
    print("-" * len(header))
    for i, c in enumerate(clips):
        cells = "".join(f"{wer(n, [i])[0] * 100:>{col - 1}.1f}%" for n in names)
        print(f"{c.name:<{width}} {c.duration:>6.1f} {len(refs[i].split()):>5}{cells}")
    print("-" * len(header))
    totals = {}
    for label, indices in subsets(clips).items():
        words = sum(len(refs[i].split()) for i in indices)
        results = {n: wer(n, indices) for n in names}
        totals[label] = {n: {"wer": w, "errors": e, "words": words} for n, (w, e) in results.items()}
        cells = "".join(f"{results[n][0] * 100:>{col - 1}.2f}%" for n in names)
        print(f"{'TOTAL ' + label + f' ({len(indices)})':<{width}} {'':>6} {words:>5}{cells}")
    print(f"{'transcription wall time (s)':<{width + 13}}" + "".join(f"{seconds[n]:>{col}.1f}" for n in names))

    if args.show_errors:
        for i, c in enumerate(clips):
            wrong = [n for n in names if norm_hyps[n][i] != refs[i]]
            if wrong:
                pad = max(len(n) for n in ["reference", *names])
                print(f"\n{c.name}\n  {'reference':<{pad}} {refs[i]}")
                for n in wrong:
                    print(f"  {n:<{pad}} {norm_hyps[n][i]}")

    if args.json:
        args.json.write_text(json.dumps({
            "model": str(args.model), "beam": args.beam, "threads": args.threads,
            "files": [{"path": c.name, "reference": c.reference, "duration": c.duration,
                       "transcripts": {n: hypotheses[n][i] for n in names},
                       "wer": {n: wer(n, [i])[0] for n in names}} for i, c in enumerate(clips)],
            "totals": totals,
        }, indent=2))

    if args.assert_no_worse:
        a, b = args.assert_no_worse
        real = totals.get("real recordings")
        if real is None or a not in real or b not in real:
            sys.exit(f"wer: --assert-no-worse needs both {a} and {b} run on the real recordings")
        verdict = real[a]["wer"] <= real[b]["wer"]
        print(f"\n{a} {real[a]['wer'] * 100:.2f}% vs {b} {real[b]['wer'] * 100:.2f}% on real recordings: "
              f"{'no worse' if verdict else 'WORSE'}")
        sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
