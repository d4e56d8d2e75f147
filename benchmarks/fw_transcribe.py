#!/usr/bin/env python3
"""faster-whisper, run the way the benchmarks compare Steno against it.

As a command it mirrors `steno transcribe FILE...`: one model load, then each file in turn, one transcript line per
file on stdout (a JSON object {"file", "text"} per line with --jsonl); with --verbose, timings on stderr. With --encoder-gflops it instead times the CTranslate2 encoder on
one 30-second window and prints its achieved GFLOP/s, for comparison with Steno's `encoder: X GFLOP/s`.

Decoding uses faster-whisper's own transcribe() defaults (temperature fallback, condition on previous text,
timestamps on, no VAD unless --vad-filter, then with its default VadOptions) with only the beam size, compute
type and thread count set. CTranslate2's CPU backend is
its own choice unless CT2_USE_MKL is set in the environment (see bench_common.parse_fw_system).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402

# Encoder depth of each Whisper width (tiny, base, small, medium, large), for the FLOP count below.
LAYERS_BY_WIDTH = {384: 4, 512: 6, 768: 12, 1024: 24, 1280: 32}


class FasterWhisper:
    """One loaded faster-whisper model with the benchmark's settings."""

    def __init__(self, model: Path, compute_type: str, threads: int, beam: int, vad_filter: bool = False,
                 language: str | None = None):
        from faster_whisper import WhisperModel

        self.beam = beam
        self.vad_filter = vad_filter
        self.language = language
        self.model = WhisperModel(str(model), device="cpu", compute_type=compute_type,
                                  cpu_threads=threads, num_workers=1, local_files_only=True)

    def transcribe(self, audio: Path) -> str:
        # transcribe() is lazy: the segments are decoded while they are iterated.
        segments, _ = self.model.transcribe(str(audio), beam_size=self.beam, without_timestamps=False,
                                          vad_filter=self.vad_filter, language=self.language)
        return "".join(segment.text for segment in segments).strip()


def encoder_flops(n_mels: int, width: int) -> float:
    """Multiply-adds ×2 of the Whisper encoder on one 30-s window (3000 mel frames -> 1500 positions).

    Counts the two convolutions and, per layer, the Q/K/V and output projections, the attention scores and
    weighted sum, and the 4×width MLP; layer norms, GELU and softmax are left out (a few percent at most).
    """
    frames, ctx = 3000, 1500
    layers = LAYERS_BY_WIDTH[width]
    conv = 2 * frames * width * n_mels * 3 + 2 * ctx * width * width * 3
    per_layer = 2 * ctx * width * (3 * width + width + 8 * width) + 2 * 2 * ctx * ctx * width
    return float(conv + layers * per_layer)


def encoder_gflops(fw: FasterWhisper, repeats: int) -> tuple[float, float]:
    """Median seconds and GFLOP/s of the encoder on one 30-s window of the long fixture (or silence)."""
    import numpy as np

    extractor = fw.model.feature_extractor
    audio = np.zeros(extractor.n_samples, dtype=np.float32)
    long_file = bench_common.REPO_ROOT / ".fixtures" / "long" / "joined.wav"
    if long_file.exists():
        from faster_whisper.audio import decode_audio

        speech = decode_audio(str(long_file))[: extractor.n_samples]
        audio[: len(speech)] = speech
    features = extractor(audio)[:, : extractor.nb_max_frames]
    output = fw.model.encode(features)            # warm-up: first call allocates
    width = output.shape[-1]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fw.model.encode(features)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return seconds, encoder_flops(features.shape[0], width) / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--model", type=Path, default=bench_common.DEFAULT_MODEL)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--compute-type", default="float32", help="float32, int8, ... (CTranslate2 compute type)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="timings on stderr")
    parser.add_argument("--language", help="language code (default: detected)")
    parser.add_argument("--vad-filter", action="store_true", help="faster-whisper's vad_filter=True (Silero VAD)")
    parser.add_argument("--jsonl", action="store_true", help='one {"file": ..., "text": ...} object per line')
    parser.add_argument("--encoder-gflops", action="store_true", help="time the encoder instead of transcribing")
    parser.add_argument("--repeats", type=int, default=5, help="encoder timings for --encoder-gflops")
    args = parser.parse_args()
    bench_common.ensure_requirements()

    start = time.perf_counter()
    fw = FasterWhisper(args.model, args.compute_type, args.threads, args.beam, args.vad_filter, args.language)
    if args.verbose:
        print(f"load: {time.perf_counter() - start:.3f} s", file=sys.stderr)
    if args.encoder_gflops:
        seconds, gflops = encoder_gflops(fw, args.repeats)
        print(f"encoder: {gflops:.1f} GFLOP/s ({seconds * 1000:.0f} ms per 30-s window)")
        return
    for path in args.files:
        start = time.perf_counter()
        text = fw.transcribe(path)
        print(json.dumps({"file": str(path), "text": text}) if args.jsonl else text, flush=True)
        if args.verbose:
            print(f"file: {path} {time.perf_counter() - start:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
