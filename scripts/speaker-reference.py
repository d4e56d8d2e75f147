#!/usr/bin/env python3
"""Writes the GE2E speaker-encoder reference fixture that the engine's native (Swift) speaker embeddings are
pinned against: resemblyzer 0.1.4's VoiceEncoder, run for real, on two recordings of different speakers.

    scripts/speaker-reference.py [--output PATH]

Run once, by hand; the fixture it writes is committed and the tests only read it. Nothing here runs in CI.

How the committed fixture was made (Debian 12, Python 3.11.7):

    python3 -m venv /tmp/rzenv
    /tmp/rzenv/bin/python scripts/speaker-reference.py

which installed into the venv (see ensure_packages): torch 2.13.0+cpu (the CPU wheel from pip's find-links
directory /opt/wheels, with its small dependencies from PyPI), librosa 0.11.0, numpy 2.4.6, scipy 1.17.1,
webrtcvad-wheels 2.0.14.post1 (resemblyzer's __init__ imports webrtcvad; the `webrtcvad` sdist would need a C
compiler) and resemblyzer 0.1.4 with --no-deps (so that pip does not build that sdist). Decoding used ffmpeg
5.1.9 (Debian 5.1.9-0+deb12u1). The fixture records these versions itself.

What it does, per recording:
  1. Reads 16 kHz mono 16-bit samples as int16 / 32768 (float32). The LibriVox recording (pocketsphinx-testdata)
     is already 16 kHz mono s16 and is read as it is (checked); the Asterisk prompt (asterisk-core-sounds-en-wav,
     8 kHz) is resampled by ffmpeg into a temporary raw s16le file, with the command recorded in the fixture.
     There is deliberately no resemblyzer.preprocess_wav: no volume normalisation, no silence trimming.
  2. Runs VoiceEncoder.embed_utterance(wav, return_partials=True) (rate 1.3, min_coverage 0.75) and repeats its
     steps explicitly (compute_partial_slices; zero-padding of the samples to the last slice's end; the power mel
     spectrogram of audio.wav_to_mel_spectrogram; the network on each 160-frame slice; mean, L2 normalisation),
     checking that both agree exactly.
  3. Checks the port's assumptions independently in float64 numpy: the mel spectrogram from a hand-written STFT
     (periodic Hann, zero padding, |X|^2) and librosa's filterbank, and the network from the converted tensor file
     models/speaker-encoder/ge2e.safetensors (scripts/install-speaker-model.sh; the wheel's checkpoint is
     converted into a temporary file if it is not installed). Their largest differences are recorded.
  4. Writes sample counts, a few full mel frames, the slices, every partial embedding and the utterance embedding
     (floats rounded to 7 significant digits), and the cosine similarity of the two utterance embeddings.
"""
import argparse
import glob
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import wave

RESEMBLYZER_VERSION = "0.1.4"
SAMPLE_RATE = 16000
RATE = 1.3            # embed_utterance's defaults
MIN_COVERAGE = 0.75
MEL_FRAMES_KEPT = [0, 1, 2, 100, -1]

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(REPOSITORY, "Engine/Tests/StenoEngineTests/Fixtures/ge2e-reference.json")
TENSOR_FILE = os.path.join(REPOSITORY, "models/speaker-encoder/ge2e.safetensors")
CONVERTER = os.path.join(REPOSITORY, "scripts/convert-speaker-encoder.py")
RECORDINGS = [
    # (name, path, resample with ffmpeg?)
    ("librivox-0880", "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
     False),
    ("asterisk-en-demo-thanks", "/usr/share/asterisk/sounds/en/demo-thanks.wav", True),
]


def pip_install(*arguments):
    command = [sys.executable, "-m", "pip", "install", "--quiet", *arguments]
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def installed_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def pip_config_values(key):
    result = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    values = []
    for line in result.stdout.splitlines():
        name, _, value = line.partition("=")
        if name.endswith("." + key):
            values.append(value.strip().strip("'\""))
    return values


def local_cpu_torch_wheel():
    """The newest torch CPU wheel for this interpreter in pip's find-links directories, or None."""
    directories = []
    for value in [os.environ.get("PIP_FIND_LINKS", "")] + pip_config_values("find-links"):
        directories += [d for d in value.split() if os.path.isdir(d)]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheels = sorted({w for d in directories for w in glob.glob(os.path.join(d, f"torch-*+cpu-{tag}-{tag}-*.whl"))})
    return wheels[-1] if wheels else None


def ensure_packages():
    if installed_version("torch") is None:
        wheel = local_cpu_torch_wheel()
        if wheel:
            pip_install(wheel)
        else:
            # PyPI's Linux torch wheel depends on the large CUDA packages; the network needs none of them.
            print("warning: no torch CPU wheel in pip's find-links; installing PyPI's torch without its CUDA "
                  "dependencies", file=sys.stderr)
            pip_install("--no-deps", "torch")
            pip_install("filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec")
    missing = [name for name in ("librosa", "numpy", "scipy") if installed_version(name) is None]
    if installed_version("webrtcvad") is None and installed_version("webrtcvad-wheels") is None:
        missing.append("webrtcvad-wheels")
    if missing:
        pip_install(*missing)
    if installed_version("resemblyzer") != RESEMBLYZER_VERSION:
        pip_install("--no-deps", f"resemblyzer=={RESEMBLYZER_VERSION}")
    importlib.invalidate_caches()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_s16_wav(path):
    """The PCM bytes of a 16 kHz mono 16-bit WAV file; anything else is refused."""
    with wave.open(path, "rb") as file:
        if (file.getnchannels(), file.getsampwidth(), file.getframerate(), file.getcomptype()) != (1, 2, SAMPLE_RATE,
                                                                                                   "NONE"):
            sys.exit(f"{path} is not 16 kHz mono 16-bit PCM")
        return file.readframes(file.getnframes())


def source_format(path):
    with wave.open(path, "rb") as file:
        return f"WAV, {file.getframerate()} Hz, {file.getnchannels()} channel(s), {8 * file.getsampwidth()}-bit PCM"


def resample_with_ffmpeg(path, directory):
    """The command and the s16le bytes of ffmpeg's 16 kHz mono resampling of the file."""
    output = os.path.join(directory, os.path.basename(path) + ".s16le")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", path,
               "-ar", str(SAMPLE_RATE), "-ac", "1", "-f", "s16le", output]
    subprocess.run(command, check=True)
    with open(output, "rb") as file:
        data = file.read()
    command[-1] = "OUTPUT.s16le"
    return shlex.join(command), data


def rounded(values):
    return [float(f"{float(v):.7g}") for v in values]


def read_tensor_file(path):
    import numpy as np
    with open(path, "rb") as file:
        data = file.read()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + length])
    return {name: np.frombuffer(data[8 + length + entry["data_offsets"][0]:8 + length + entry["data_offsets"][1]],
                                dtype="<f4").reshape(entry["shape"]).astype(np.float64)
            for name, entry in header.items()}


def numpy_mel(wav, basis):
    """librosa.feature.melspectrogram's conventions written out: centred frames (n_fft // 2 zeros either side),
    periodic Hann window of n_fft samples, |rfft|^2, then the mel filterbank; float64."""
    import numpy as np
    n_fft, hop = 400, 160
    padded = np.pad(wav.astype(np.float64), n_fft // 2)
    count = 1 + len(wav) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[t * hop:t * hop + n_fft] * window for t in range(count)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return power @ basis.T


def numpy_network(weights, mels):
    """nn.LSTM(40, 256, 3, batch_first=True) (gates i, f, g, o), the last layer's final hidden state, Linear,
    ReLU and L2 normalisation; float64, one 160-frame partial at a time."""
    import numpy as np

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    result = []
    for partial in mels:
        sequence = partial.astype(np.float64)
        for layer in range(3):
            w_ih, w_hh = weights[f"lstm.weight_ih_l{layer}"], weights[f"lstm.weight_hh_l{layer}"]
            bias = weights[f"lstm.bias_ih_l{layer}"] + weights[f"lstm.bias_hh_l{layer}"]
            projected = sequence @ w_ih.T + bias
            h, c, outputs = np.zeros(256), np.zeros(256), []
            for x in projected:
                gates = x + w_hh @ h
                i, f, g, o = sigmoid(gates[:256]), sigmoid(gates[256:512]), np.tanh(gates[512:768]), \
                    sigmoid(gates[768:])
                c = f * c + i * g
                h = o * np.tanh(c)
                outputs.append(h)
            sequence = np.array(outputs)
        raw = np.maximum(0, weights["linear.weight"] @ sequence[-1] + weights["linear.bias"])
        result.append(raw / np.linalg.norm(raw))
    return np.array(result)


def write_fixture(path, fixture):
    """JSON with number lists wrapped at 8 a line, everything else indented normally."""
    placeholders = {}

    def wrap(values, indent):
        key = f"@@list{len(placeholders)}@@"
        rows = [", ".join(repr(v) for v in values[i:i + 8]) for i in range(0, len(values), 8)]
        pad = " " * indent
        placeholders[json.dumps(key)] = "[\n" + pad + (",\n" + pad).join(rows) + "\n" + " " * (indent - 2) + "]"
        return key

    for item in fixture["recordings"]:
        for frame in item["mel_frames"]:
            frame["values"] = wrap(frame["values"], 12)
        for partial in item["partials"]:
            partial["embedding"] = wrap(partial["embedding"], 12)
        item["embedding"] = wrap(item["embedding"], 8)
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
    for _, path, _ in RECORDINGS:
        if not os.path.exists(path):
            sys.exit(f"{path} is missing (apt-get install pocketsphinx-testdata asterisk-core-sounds-en-wav)")
    ensure_packages()

    import librosa
    import numpy as np
    import scipy
    import torch
    resemblyzer = importlib.import_module("resemblyzer")
    from resemblyzer import audio, hparams
    from resemblyzer.voice_encoder import VoiceEncoder

    encoder = VoiceEncoder(device="cpu", verbose=False)
    encoder.eval()
    checkpoint = os.path.join(os.path.dirname(resemblyzer.__file__), "pretrained.pt")
    with open(checkpoint, "rb") as file:
        checkpoint_sha256 = sha256(file.read())

    # The mel conventions as used: resemblyzer passes only y, sr, n_fft, hop_length and n_mels, so everything
    # else is librosa's default, read here from the installed librosa rather than assumed.
    spectrogram_defaults = {name: p.default for name, p in
                            inspect.signature(librosa.feature.melspectrogram).parameters.items()
                            if p.default is not inspect.Parameter.empty}
    filter_defaults = {name: p.default for name, p in inspect.signature(librosa.filters.mel).parameters.items()
                       if p.default is not inspect.Parameter.empty}
    n_fft = int(hparams.sampling_rate * hparams.mel_window_length / 1000)
    hop = int(hparams.sampling_rate * hparams.mel_window_step / 1000)
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=n_fft, n_mels=hparams.mel_n_channels, dtype=np.float64)

    with tempfile.TemporaryDirectory() as directory:
        tensor_file = TENSOR_FILE
        if not os.path.exists(tensor_file):
            tensor_file = os.path.join(directory, "ge2e.safetensors")
            subprocess.run([sys.executable, CONVERTER, checkpoint, tensor_file], check=True)
        weights = read_tensor_file(tensor_file)
        for name, value in encoder.state_dict().items():
            if not np.array_equal(weights[name], value.numpy().astype(np.float64)):
                sys.exit(f"{tensor_file}: {name} differs from the checkpoint torch loads")

        recordings, embeddings = [], []
        for name, path, resample in RECORDINGS:
            if resample:
                command, pcm = resample_with_ffmpeg(path, directory)
            else:
                command, pcm = None, read_s16_wav(path)
            wav = (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)

            embedding, partials, wav_slices = encoder.embed_utterance(wav, return_partials=True, rate=RATE,
                                                                      min_coverage=MIN_COVERAGE)
            # The same steps written out (voice_encoder.py, embed_utterance).
            slices, mel_slices = encoder.compute_partial_slices(len(wav), RATE, MIN_COVERAGE)
            padded = wav
            if slices[-1].stop >= len(wav):
                padded = np.pad(wav, (0, slices[-1].stop - len(wav)), "constant")
            mel = audio.wav_to_mel_spectrogram(padded)
            with torch.no_grad():
                explicit = encoder(torch.from_numpy(np.array([mel[s] for s in mel_slices]))).numpy()
            mean = np.mean(explicit, axis=0)
            if not (np.array_equal(explicit, partials) and np.array_equal(mean / np.linalg.norm(mean, 2), embedding)
                    and [s.start for s in slices] == [s.start for s in wav_slices]):
                sys.exit(f"{name}: the explicit steps disagree with embed_utterance")

            reference_mel = numpy_mel(padded, basis)
            mel_difference = float(np.max(np.abs(reference_mel - mel)) / np.max(mel))
            reference_partials = numpy_network(weights, np.array([mel[s] for s in mel_slices]))
            network_difference = float(np.max(np.abs(reference_partials - partials)))

            frames = sorted({f % len(mel) for f in MEL_FRAMES_KEPT})
            recordings.append({
                "name": name,
                "source": path,
                "source_format": source_format(path),
                "ffmpeg_command": command,
                "samples": "int16 little-endian / 32768.0 as float32; no resemblyzer.preprocess_wav "
                           "(no volume normalisation, no silence trimming)",
                "sample_count": int(len(wav)),
                "samples_sha256": sha256(pcm),
                "padded_sample_count": int(len(padded)),
                "mel_frame_count": int(len(mel)),
                "mel_frames": [{"index": int(f), "values": rounded(mel[f])} for f in frames],
                "partials": [{"mel_frames": [int(m.start), int(m.stop)], "samples": [int(w.start), int(w.stop)],
                              "embedding": rounded(p)} for m, w, p in zip(mel_slices, wav_slices, partials)],
                "embedding": rounded(embedding),
                "float64_check": {
                    "mel_max_abs_difference_over_max_mel": mel_difference,
                    "partial_embedding_max_abs_difference": network_difference,
                },
            })
            embeddings.append(embedding.astype(np.float64))
            print(f"{name}: {len(wav)} samples (padded to {len(padded)}), {len(mel)} mel frames, "
                  f"{len(partials)} partials {[(int(m.start), int(m.stop)) for m in mel_slices]}; float64 check: mel "
                  f"{mel_difference:.2e} (relative), embeddings {network_difference:.2e}")

    cosine = float(embeddings[0] @ embeddings[1] / (np.linalg.norm(embeddings[0]) * np.linalg.norm(embeddings[1])))
    print(f"cosine similarity {recordings[0]['name']} / {recordings[1]['name']}: {cosine:.7f}")
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    fixture = {
        "about": "GE2E speaker encoder reference (resemblyzer VoiceEncoder.embed_utterance on raw samples), "
                 "written by scripts/speaker-reference.py; do not edit by hand",
        "resemblyzer_version": importlib.metadata.version("resemblyzer"),
        "checkpoint_sha256": checkpoint_sha256,
        "torch_version": torch.__version__,
        "librosa_version": librosa.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "ffmpeg_version": ffmpeg_version,
        "mel": {
            "call": f"librosa.feature.melspectrogram(y=wav, sr={hparams.sampling_rate}, n_fft={n_fft}, "
                    f"hop_length={hop}, n_mels={hparams.mel_n_channels}), astype(float32), transposed to "
                    f"frames x {hparams.mel_n_channels}; power mel, not log",
            "sampling_rate": hparams.sampling_rate,
            "n_fft": n_fft,
            "win_length": n_fft if spectrogram_defaults["win_length"] is None else spectrogram_defaults["win_length"],
            "hop_length": hop,
            "n_mels": hparams.mel_n_channels,
            "window": f"{spectrogram_defaults['window']} (periodic, scipy.signal.get_window fftbins=True)",
            "center": spectrogram_defaults["center"],
            "pad_mode": spectrogram_defaults["pad_mode"],
            "padding": f"{n_fft // 2} samples either side when center is true; frame count 1 + samples // {hop}",
            "power": spectrogram_defaults["power"],
            "filterbank": {"htk": filter_defaults["htk"], "norm": filter_defaults["norm"],
                           "fmin": filter_defaults["fmin"], "fmax": "sr / 2 (%g)" % (SAMPLE_RATE / 2)
                           if filter_defaults["fmax"] is None else filter_defaults["fmax"],
                           "bins": 1 + n_fft // 2},
        },
        "embed_utterance": {
            "rate": RATE,
            "min_coverage": MIN_COVERAGE,
            "partial_frames": hparams.partials_n_frames,
            "samples_per_frame": hop,
            "frame_step": int(np.round((SAMPLE_RATE / RATE) / hop)),
            "procedure": "slices from compute_partial_slices(sample_count, rate, min_coverage): n_frames = "
                         "ceil((samples + 1) / 160), slices [i, i + 160) for i in range(0, max(1, n_frames - 160 + "
                         "frame_step + 1), frame_step), the last dropped if (samples - its first sample) / 25600 "
                         "< min_coverage and there are others; the samples are zero-padded to the last slice's end "
                         "(samples[1] * 160) before the mel spectrogram is taken; each slice's 160 mel frames go "
                         "through the network (final hidden state of the 3rd LSTM layer, Linear, ReLU, L2 "
                         "normalisation); the utterance embedding is the L2-normalised mean of the partials",
        },
        "float64_check": "mel from a numpy STFT with librosa's float64 filterbank, network in float64 numpy from "
                         "models/speaker-encoder/ge2e.safetensors; differences against the float32 values above",
        "recordings": recordings,
        "cosine_similarity": round(cosine, 7),
    }
    write_fixture(arguments.output, fixture)
    print(f"wrote {arguments.output} ({os.path.getsize(arguments.output)} bytes)")


if __name__ == "__main__":
    main()
