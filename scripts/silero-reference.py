#!/usr/bin/env python3
"""Writes the Silero VAD v6 reference fixture that the engine's native (Swift) VAD is pinned against.

    scripts/silero-reference.py [--output PATH]

Run once, by hand; the fixture it writes is committed and the tests only read it. Nothing here runs in CI.

What it does:
  1. Installs into the running interpreter whatever is missing: a CPU build of torch, silero-vad (pinned below),
     onnxruntime and numpy. silero-vad's Python API needs torch even for its ONNX model (`utils_vad.py` and
     `model.py` import it unconditionally), so torch cannot be avoided. The CPU wheel is taken from pip's
     find-links directories (this workplace keeps one in /opt/wheels); only if there is none is plain `torch`
     installed from the default index, which on Linux is the large CUDA build.
  2. Decodes the LibriVox recording (Debian package pocketsphinx-testdata) to 16 kHz mono float32 with ffmpeg,
     and makes a second input from it with 3 s of digital silence before and after (covers speech/non-speech
     transitions). The padded input is checked to equal 48000 zeros + the first input + 48000 zeros.
  3. Runs the model exactly as silero-vad's `get_speech_timestamps` does for 16 kHz: the model's state is reset
     per file, the audio is cut into 512-sample windows (the last one zero-padded), each window is prefixed with
     the previous window's last 64 samples (zeros for the first window), and the LSTM state is carried from window
     to window. The per-window probabilities are recorded by wrapping the model passed to `get_speech_timestamps`,
     and are checked against an explicit loop over the ONNX session.
  4. Records the speech timestamps (in samples) that `get_speech_timestamps` returns for each parameter set in
     PARAMETER_SETS, and writes everything to a small JSON fixture.

The model is the ONNX one (`load_silero_vad(onnx=True)`, silero_vad/data/silero_vad.onnx); the TorchScript model
of the same release is run too and its largest difference is recorded. Note: the wheel's
silero_vad_16k.safetensors holds weights that differ from both (a different checkpoint), so a port must take
its weights from the ONNX/JIT files to match this fixture.
"""
import argparse
import glob
import hashlib
import importlib
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys

SILERO_VAD_VERSION = "6.2.3"  # the newest 6.2.x on PyPI when the fixture was made
SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64
PAD_SECONDS = 3

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPOSITORY, "Engine/Tests/StenoEngineTests/Fixtures/silero-reference.json")
RECORDING = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"

# Parameters of get_speech_timestamps. neg_threshold None means the library's default, max(threshold - 0.15,
# 0.01); the fixture records the resolved value.
PARAMETER_SETS = {
    # silero-vad's own defaults (get_speech_timestamps in silero_vad/utils_vad.py).
    "silero-defaults": dict(threshold=0.5, neg_threshold=None, min_speech_duration_ms=250,
                            max_speech_duration_s=float("inf"), min_silence_duration_ms=100, speech_pad_ms=30),
    # faster-whisper's VadOptions defaults (faster_whisper/vad.py).
    "faster-whisper-defaults": dict(threshold=0.5, neg_threshold=None, min_speech_duration_ms=0,
                                    max_speech_duration_s=float("inf"), min_silence_duration_ms=2000,
                                    speech_pad_ms=400),
    # silero-vad's defaults with a finite maximum, so that the max-speech splitting path is exercised too.
    "silero-defaults-max-speech-2s": dict(threshold=0.5, neg_threshold=None, min_speech_duration_ms=250,
                                          max_speech_duration_s=2.0, min_silence_duration_ms=100,
                                          speech_pad_ms=30),
}


def pip_install(*arguments):
    command = [sys.executable, "-m", "pip", "install", "--quiet", *arguments]
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def installed_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def local_cpu_torch_wheel():
    """The newest torch CPU wheel for this interpreter in pip's find-links directories, or None."""
    directories = []
    for value in [os.environ.get("PIP_FIND_LINKS", "")] + pip_config_values("find-links"):
        directories += [d for d in value.split() if os.path.isdir(d)]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheels = sorted({w for d in directories for w in glob.glob(os.path.join(d, f"torch-*+cpu-{tag}-{tag}-*.whl"))})
    return wheels[-1] if wheels else None


def pip_config_values(key):
    result = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    values = []
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.endswith("." + key):
            values.append(value.strip().strip("'\""))
    return values


def ensure_packages():
    if installed_version("torch") is None:
        wheel = local_cpu_torch_wheel()
        if wheel:
            pip_install(wheel)
        else:
            print("warning: no torch CPU wheel in pip's find-links; installing torch from the default index",
                  file=sys.stderr)
            pip_install("torch")
    if installed_version("silero-vad") != SILERO_VAD_VERSION:
        pip_install(f"silero-vad=={SILERO_VAD_VERSION}")
    missing = [name for name in ("onnxruntime", "numpy") if installed_version(name) is None]
    if missing:
        pip_install(*missing)
    importlib.invalidate_caches()


def ffmpeg_command(filters):
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", RECORDING, "-map", "0:a:0"]
    if filters:
        command += ["-af", filters]
    return command + ["-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"]


def decode(command):
    import numpy as np
    output = subprocess.run(command, check=True, capture_output=True).stdout
    return np.frombuffer(output, dtype="<f4").copy()


def sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


class RecordingModel:
    """Passes every call through to the model and keeps each window's probability."""

    def __init__(self, model):
        self.model = model
        self.probabilities = []

    def reset_states(self):
        self.probabilities = []
        self.model.reset_states()

    def __call__(self, chunk, sampling_rate):
        output = self.model(chunk, sampling_rate)
        self.probabilities.append(output.item())
        return output


def explicit_loop(session, audio):
    """The same windows run directly on the ONNX session: zero state and context, 64 samples carried over."""
    import numpy as np
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, CONTEXT), dtype=np.float32)
    probabilities = []
    for start in range(0, len(audio), WINDOW):
        window = np.zeros((1, WINDOW), dtype=np.float32)
        piece = audio[start:start + WINDOW]
        window[0, :len(piece)] = piece
        model_input = np.concatenate([context, window], axis=1)
        output, state = session.run(None, {"input": model_input, "state": state,
                                           "sr": np.array(SAMPLE_RATE, dtype=np.int64)})
        context = model_input[:, -CONTEXT:]
        probabilities.append(float(output[0, 0]))
    return probabilities


def speech_timestamps(silero_vad, model, audio, parameters):
    import torch
    return silero_vad.get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=SAMPLE_RATE,
                                            **parameters)


def write_fixture(path, fixture):
    """JSON with the probability lists wrapped at 12 numbers a line, everything else indented normally."""
    placeholders = {}
    for index, item in enumerate(fixture["inputs"]):
        key = f"@@probabilities{index}@@"
        rows = [", ".join(f"{p:.6f}" for p in item["probabilities"][i:i + 12])
                for i in range(0, len(item["probabilities"]), 12)]
        placeholders[json.dumps(key)] = "[\n        " + ",\n        ".join(rows) + "\n      ]"
        item["probabilities"] = key
    text = json.dumps(fixture, indent=2, allow_nan=False)
    for key, value in placeholders.items():
        text = text.replace(key, value)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    arguments = parser.parse_args()

    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is missing (apt-get install ffmpeg)")
    if not os.path.exists(RECORDING):
        sys.exit(f"{RECORDING} is missing (apt-get install pocketsphinx-testdata)")
    ensure_packages()

    import numpy as np
    import onnxruntime
    import torch
    silero_vad = importlib.import_module("silero_vad")
    data = os.path.join(os.path.dirname(silero_vad.__file__), "data")

    onnx_model = silero_vad.load_silero_vad(onnx=True)
    jit_model = silero_vad.load_silero_vad(onnx=False)

    padding = PAD_SECONDS * SAMPLE_RATE
    sources = [
        ("librivox-0870", ffmpeg_command(None), "the recording as it is"),
        (f"librivox-0870-silence-{PAD_SECONDS}s", ffmpeg_command(
            f"adelay=delays={PAD_SECONDS * 1000}:all=1,apad=pad_dur={PAD_SECONDS}"),
         f"{padding} zero samples + librivox-0870 + {padding} zero samples"),
    ]
    audio = {name: decode(command) for name, command, _ in sources}
    plain = audio["librivox-0870"]
    padded = audio[sources[1][0]]
    expected = np.concatenate([np.zeros(padding, np.float32), plain, np.zeros(padding, np.float32)])
    if not np.array_equal(padded, expected):
        sys.exit("the padded input is not zeros + recording + zeros")

    resolved = {}
    for name, parameters in PARAMETER_SETS.items():
        neg = parameters["neg_threshold"]
        resolved[name] = dict(parameters, neg_threshold=max(parameters["threshold"] - 0.15, 0.01)
                              if neg is None else neg)

    inputs = []
    for name, command, equivalent in sources:
        samples = audio[name]
        recorder = RecordingModel(onnx_model)
        timestamps = {}
        probabilities = None
        for set_name, parameters in PARAMETER_SETS.items():
            timestamps[set_name] = speech_timestamps(silero_vad, recorder, samples, parameters)
            if probabilities is None:
                probabilities = list(recorder.probabilities)
            elif recorder.probabilities != probabilities:
                sys.exit(f"{name}: the probabilities changed between runs (state not reset?)")
        windows = -(-len(samples) // WINDOW)
        if len(probabilities) != windows:
            sys.exit(f"{name}: {len(probabilities)} probabilities for {windows} windows")
        if explicit_loop(onnx_model.session, samples) != probabilities:
            sys.exit(f"{name}: the explicit window loop disagrees with get_speech_timestamps")

        jit_recorder = RecordingModel(jit_model)
        jit_timestamps = speech_timestamps(silero_vad, jit_recorder, samples, PARAMETER_SETS["silero-defaults"])
        jit_difference = float(np.max(np.abs(np.array(jit_recorder.probabilities) - np.array(probabilities))))

        thresholds = {v["threshold"] for v in resolved.values()} | {v["neg_threshold"] for v in resolved.values()}
        margins = [abs(p - t) for p in probabilities for t in thresholds]
        inputs.append({
            "name": name,
            "command": shlex.join(command),
            "equivalent": equivalent,
            "sample_count": int(len(samples)),
            "window_count": windows,
            "probabilities": [round(p, 6) for p in probabilities],
            "timestamps": timestamps,
            "closest_probability_to_a_threshold": round(min(margins), 6),
            "jit_max_abs_difference": jit_difference,
            "jit_timestamps_equal": jit_timestamps == timestamps["silero-defaults"],
        })
        p = np.array(probabilities)
        print(f"{name}: {len(samples)} samples, {windows} windows, probability min {p.min():.4f} "
              f"max {p.max():.4f}, JIT differs by at most {jit_difference:.2e}")
        for set_name, spans in timestamps.items():
            print(f"  {set_name}: {[(s['start'], s['end']) for s in spans]}")

    fixture = {
        "about": "Silero VAD v6 (16 kHz) reference: per-window speech probabilities and get_speech_timestamps "
                 "results, written by scripts/silero-reference.py; do not edit by hand",
        "silero_vad_version": importlib.metadata.version("silero-vad"),
        "onnxruntime_version": onnxruntime.__version__,
        "torch_version": torch.__version__,
        "model": {
            "loader": "silero_vad.load_silero_vad(onnx=True)",
            "file": "silero_vad/data/silero_vad.onnx",
            "sha256": sha256(os.path.join(data, "silero_vad.onnx")),
            "jit_file_sha256": sha256(os.path.join(data, "silero_vad.jit")),
            "safetensors_file_sha256": sha256(os.path.join(data, "silero_vad_16k.safetensors")),
            "note": "silero_vad_16k.safetensors in the same wheel holds different weights; "
                    "these probabilities come from the ONNX/JIT weights",
        },
        "sampling_rate": SAMPLE_RATE,
        "window_samples": WINDOW,
        "context_samples": CONTEXT,
        "procedure": "state reset per input; 512-sample windows, the last one zero-padded; each model input is "
                     "the previous window's last 64 samples (zeros at first) followed by the window; state "
                     "carried between windows. probabilities[i] is for samples [512 i, 512 i + 512), rounded "
                     "to 6 decimals; timestamps are computed from the unrounded values",
        # JSON has no infinity: written as the string "Infinity" (Swift's JSONDecoder reads it with
        # nonConformingFloatDecodingStrategy .convertFromString).
        "parameter_sets": {name: {key: ("Infinity" if value == float("inf") else value)
                                  for key, value in parameters.items()}
                           for name, parameters in resolved.items()},
        "inputs": inputs,
    }
    write_fixture(arguments.output, fixture)
    print(f"wrote {arguments.output} ({os.path.getsize(arguments.output)} bytes)")


if __name__ == "__main__":
    main()
