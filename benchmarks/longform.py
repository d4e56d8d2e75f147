#!/usr/bin/env python3
"""Long-form accuracy check: Steno against faster-whisper float32 on a recording of over ten minutes.

Short clips never reach what decides accuracy on real recordings: windows that follow each other, the previous
text conditioning the next window, and the temperature fallback running out on repetitive text. This check
builds a recording that exercises all three and fails when Steno's word error rate is more than --max-gap
points above faster-whisper's on it (same model, beam and threads; Whisper's normalizer; benchmarks/wer.py).

With --language es or fr, the Spanish or French prompts of the same packages, with the multilingual base model.

The recording: the English phone-system prompts of Debian's asterisk-core-sounds-en-wav (real speech, one
speaker, many repeated phrases such as "followed by the pound key"), in name order, joined by sox with 0.8 s
pauses until at least --minutes, resampled to 16 kHz. With --vad, every sixth pause lasts 4 s instead (long enough
for voice-activity detection to cut there), and both run with it: Steno's default, faster-whisper's
`vad_filter=True`. The reference is the package's own list of what each
prompt says (core-sounds-en.txt.gz). Prompts that are tones or music ("[...]" in the list) are left out.

    benchmarks/longform.py [--minutes 10] [--vad] [--max-gap 0.3] [--steno PATH] [--model DIR] [--threads N]

Deterministic: the same package gives the same file. Writes .fixtures/longform/ (gitignored).
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The prompts of each language: Debian's asterisk-core-sounds-<lang>-wav and the package's list of what each says.
VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June"}
OUT = ROOT / ".fixtures" / "longform"
PAUSE_S = 0.8
LONG_PAUSE_S, LONG_PAUSE_EVERY = 4.0, 6


def sounds(language: str) -> tuple[Path, Path]:
    """The prompts' folder and the package's transcript list for a language."""
    return (Path("/usr/share/asterisk/sounds") / VOICES[language],
            Path(f"/usr/share/doc/asterisk-core-sounds-{language}/core-sounds-{language}.txt.gz"))


def prompts(language: str) -> list[tuple[Path, str]]:
    """(file, transcript) of every spoken top-level prompt, in name order."""
    folder, listing = sounds(language)
    texts = {}
    for line in gzip.open(listing, "rt", encoding="utf-8", errors="replace"):
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$", line)
        if match and "[" not in match.group(2):
            texts[match.group(1)] = match.group(2)
    return [(folder / f"{name}.wav", text) for name, text in sorted(texts.items()) if (folder / f"{name}.wav").is_file()]


def duration(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)


def build(minutes: float, long_pauses: bool = False, language: str = "en") -> Path:
    """The joined recording and its manifest (wer.py's format); returns the manifest."""
    variant = f"{minutes:g}min" + ("-pauses" if long_pauses else "")
    manifest = OUT / f"manifest-{language}-{variant}.tsv"
    if manifest.exists():
        return manifest
    folder, listing = sounds(language)
    if not folder.is_dir() or not listing.exists():
        sys.exit(f"longform: asterisk-core-sounds-{language}-wav is missing (scripts/setup.sh installs it)")
    OUT.mkdir(parents=True, exist_ok=True)
    chosen, texts, total = [], [], 0.0
    for path, text in prompts(language):
        if total >= minutes * 60:
            break
        chosen.append(path)
        texts.append(text)
        total += duration(path) + (LONG_PAUSE_S if long_pauses and len(chosen) % LONG_PAUSE_EVERY == 0 else PAUSE_S)
    if total < minutes * 60:
        sys.exit(f"longform: the prompts last only {total:.0f} s")
    recording = OUT / f"{language}-prompts-{variant}.wav"
    with tempfile.TemporaryDirectory() as work:
        pause = Path(work) / "pause.wav"
        # The prompts are 8 kHz mono 16-bit: the pause is made the same, and the whole is resampled once.
        long_pause = Path(work) / "long-pause.wav"
        for file, seconds in ((pause, PAUSE_S), (long_pause, LONG_PAUSE_S)):
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(file), "trim", "0", str(seconds)], check=True)
        pieces = [str(p) for index, path in enumerate(chosen, start=1)
                  for p in (path, long_pause if long_pauses and index % LONG_PAUSE_EVERY == 0 else pause)]
        subprocess.run(["sox", *pieces, "-r", "16000", str(recording)], check=True)
    seconds = duration(recording)
    reference = " ".join(texts).replace("\t", " ")
    manifest.write_text("path\treference\tduration\tgroup\tsource\n"
                        f"{recording.name}\t{reference}\t{seconds:.1f}\tlong\treal\n")
    print(f"longform: {len(chosen)} prompts, {seconds:.1f} s, {len(reference.split())} words -> {recording}", file=sys.stderr)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--max-gap", type=float, default=0.3, help="points of WER steno may lose to faster-whisper")
    parser.add_argument("--steno", help="steno binary (wer.py's default otherwise)")
    parser.add_argument("--model", help="default tiny.en for English, the multilingual base model otherwise")
    parser.add_argument("--language", choices=sorted(VOICES), default="en",
                        help="the prompts' language; given to both sides")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--vad", action="store_true", help="the recording with long pauses, voice-activity detection on both")
    args = parser.parse_args()

    model = args.model or str(ROOT / "models" / ("tiny.en" if args.language == "en" else "whisper-base"))
    manifest = build(args.minutes, long_pauses=args.vad, language=args.language)
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        command = [sys.executable, str(ROOT / "benchmarks" / "wer.py"), "--manifest", str(manifest), "--systems",
                   "steno,fw-float32", "--model", model, "--language", args.language, "--threads", str(args.threads), "--beam", str(args.beam),
                   "--json", report.name, "--show-errors"]
        if args.steno:
            command += ["--steno", args.steno]
        if args.vad:
            command.append("--vad")
        subprocess.run(command, check=True)
        totals = json.loads(Path(report.name).read_text())["totals"]
    long = next(v for k, v in totals.items() if k.startswith("long"))
    steno, peer = long["steno"]["wer"] * 100, long["fw-float32"]["wer"] * 100
    gap = steno - peer
    verdict = gap <= args.max_gap
    print(f"\nlong form ({args.language}{', VAD' if args.vad else ''}): steno {steno:.2f}% vs faster-whisper float32 {peer:.2f}%: gap {gap:+.2f} points "
          f"(allowed {args.max_gap}): {'ok' if verdict else 'TOO FAR'}")
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
