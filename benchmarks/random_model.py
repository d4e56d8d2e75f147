#!/usr/bin/env python3
"""Writes random-weight Whisper models (small, medium, large-v3, large-v3-turbo) in CTranslate2 format.

    random_model.py --size small|medium|large-v3|large-v3-turbo --out DIR [--seed N] [--dtype float16]
    random_model.py --all --out-root DIR [--seed N] [--dtype float16]     # DIR/small, DIR/medium, ...

What it is for: measuring the speed and memory of Steno's engine on the shapes of the larger Whisper models, none
of which can be installed on this machine. The weights are random, so transcripts are meaningless (gibberish,
often decoded to the 448-token limit with temperature fallbacks, i.e. more decoder work than real speech).
Only the tensor shapes, dtypes and the tokenizer files are real.

The model.bin layout mirrors models/tiny.en/model.bin (CTranslate2 binary version 6, spec "WhisperSpec" revision 3,
little-endian, no padding): u32 version, string spec name, u32 spec revision, u32 variable count, then the variables
sorted by name (string name, u8 rank, u32 dims, u8 dtype id [0 float32, 1 int8, 2 int16, 4 float16, 5 bfloat16],
u32 byte count, raw row-major bytes), then u32 alias count and (alias, target) string pairs; a string is a u16
length including a trailing NUL, the UTF-8 bytes and the NUL. The variables (d = width, f = 4d):
  encoder/conv1/weight [d, mels, 3], encoder/conv2/weight [d, d, 3] (+ /bias [d]),
  encoder/position_encodings/encodings [1500, d], encoder/layer_norm/{gamma,beta} [d], encoder/num_heads (int16),
  encoder/layer_i/self_attention/{layer_norm/{gamma,beta}, linear_0 (fused QKV) [3d, d], linear_1 [d, d]},
  encoder/layer_i/ffn/{layer_norm, linear_0 [f, d], linear_1 [d, f]},
  decoder/embeddings/weight [vocab, d] (the output projection too: alias decoder/projection/weight),
  decoder/position_encodings/encodings [448, d], decoder/layer_norm, decoder/num_heads (int16),
  decoder/layer_i/self_attention (as the encoder's), decoder/layer_i/attention/{layer_norm, linear_0 (query) [d, d],
  linear_1 (fused KV) [2d, d], linear_2 [d, d]}, decoder/layer_i/ffn (as the encoder's), every Linear with a bias,
  and tiny.en's scalars: decoder/activation int8 3 (GELU), decoder/alibi int8 0, decoder/alignment_heads int16 1,
  decoder/alignment_layer int16 -1, decoder/pre_norm int8 1, decoder/scale_embeddings int8 0,
  decoder/start_from_zero_embedding int8 0. (Newer converters, as for models/whisper-base, also write
  decoder/alibi_use_positive_positions and decoder/scale_alibi, both int8 0; the engine reads neither.)
Weights, biases and position encodings are normal(0, 0.02) (encoder positions too, not Whisper's sinusoids: speed
does not depend on them); layer-norm gammas are 1 and betas 0. Each variable has its own generator seeded from
(--seed, crc32 of its name), and is generated and written in row chunks, so the peak memory is a few tens of MB
whatever the model size, and the same seed gives the same file.

--dtype is any float layout the engine's loader (Engine/Sources/StenoEngine/Model/ModelFile.swift) reads:
float16 (default; what tiny.en and base are), float32, bfloat16, and CTranslate2's int8 quantizations:
int8_float32 (alias int8) and int8_float16 store every `.../weight` of rank >= 2 (Linear, Conv1D, Embeddings) as
int8 with a float32 `<name>_scale` of one scale per output row (real = q / scale, scale = 127 / max|row|, as
scripts/make-int8-model.py and CTranslate2 do), and the other float variables as float32 or float16.

Tokenizer files. Vocabulary 51865 (small, medium): models/whisper-base's vocabulary (written as vocabulary.txt,
one token per line; base ships it as vocabulary.json, which the engine reads equally), tokenizer.json copied
unchanged, and config.json with base's lang_ids, suppress_ids and suppress_ids_begin. Vocabulary 51866 (large-v3,
large-v3-turbo): large-v3 added a 100th language token, <|yue|>, right after the 99 language tokens (id 50358), so
every later special token moves up by one (<|translate|> 50359, <|transcribe|> 50360, <|startoflm|> 50361,
<|startofprev|> 50362, <|nospeech|> 50363, <|notimestamps|> 50364, <|0.00|> 50365 ... <|30.00|> 51865). The script
inserts <|yue|> into base's vocabulary and tokenizer.json added_tokens (special, like the other language tokens),
renumbers the later added tokens and the post-processor's <|notimestamps|> id, and writes config.json with lang_ids
50259..50358 and base's suppress_ids with every id >= 50358 shifted by one (this equals large-v3's published
suppress_tokens). This is what the engine's SpecialTokens (Engine/Sources/StenoEngine/Text/SpecialTokens.swift)
expects for 51866 tokens. The BPE text part (ids 0..50256) and merges are the same in all multilingual models.
config.json's alignment_heads are the real ones of each model (openai/whisper's _ALIGNMENT_HEADS, decoded), so
word timestamps cost what they would with the real model.

Only the standard library and numpy are used.
"""
import argparse
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_MODEL = os.path.join(REPO, "models", "whisper-base")

AUDIO_POSITIONS = 1500
TEXT_POSITIONS = 448
STD = 0.02
CHUNK_ELEMENTS = 1 << 22  # rows generated at a time: about 16 MB of float32

# OpenAI Whisper dimensions, plus the (decoder layer, head) alignment heads of openai/whisper's _ALIGNMENT_HEADS.
SIZES = {
    "small": dict(width=768, encoder_layers=12, decoder_layers=12, heads=12, mels=80, vocabulary=51865,
                  alignment_heads=[[5, 3], [5, 9], [8, 0], [8, 4], [8, 7], [8, 8], [9, 0], [9, 7], [9, 9], [10, 5]]),
    "medium": dict(width=1024, encoder_layers=24, decoder_layers=24, heads=16, mels=80, vocabulary=51865,
                   alignment_heads=[[13, 15], [15, 4], [15, 15], [16, 1], [20, 0], [23, 4]]),
    "large-v3": dict(width=1280, encoder_layers=32, decoder_layers=32, heads=20, mels=128, vocabulary=51866,
                     alignment_heads=[[7, 0], [10, 17], [12, 18], [13, 12], [16, 1], [17, 14], [19, 11], [21, 4],
                                      [24, 1], [25, 6]]),
    "large-v3-turbo": dict(width=1280, encoder_layers=32, decoder_layers=4, heads=20, mels=128, vocabulary=51866,
                           alignment_heads=[[2, 4], [2, 11], [3, 3], [3, 6], [3, 11], [3, 14]]),
}

FLOAT32, INT8, INT16, FLOAT16, BFLOAT16 = 0, 1, 2, 4, 5
BYTE_WIDTH = {FLOAT32: 4, INT8: 1, INT16: 2, FLOAT16: 2, BFLOAT16: 2}
# --dtype: (dtype of quantizable weights, dtype of every other float variable)
DTYPES = {
    "float16": (FLOAT16, FLOAT16),
    "float32": (FLOAT32, FLOAT32),
    "bfloat16": (BFLOAT16, BFLOAT16),
    "int8_float32": (INT8, FLOAT32),
    "int8": (INT8, FLOAT32),
    "int8_float16": (INT8, FLOAT16),
}

FIRST_LANGUAGE = 50259  # <|en|> in multilingual vocabularies
YUE = 50358  # where large-v3 puts <|yue|>: after the 99 languages of the original multilingual vocabulary


# ---- the variables -------------------------------------------------------------------------------------------

class Variable:
    """kind: "normal" (random), "ones", "zeros", or "scalar" (value, dtype given)."""

    def __init__(self, name, shape, kind, dtype=None, value=None):
        self.name, self.shape, self.kind, self.dtype, self.value = name, list(shape), kind, dtype, value

    @property
    def quantizable(self):
        return self.name.rsplit("/", 1)[-1] == "weight" and len(self.shape) >= 2


def variables(size):
    s = SIZES[size]
    d, f, mels = s["width"], 4 * s["width"], s["mels"]
    out = []

    def linear(prefix, outputs, inputs):
        out.append(Variable(prefix + "/weight", [outputs, inputs], "normal"))
        out.append(Variable(prefix + "/bias", [outputs], "normal"))

    def norm(prefix):
        out.append(Variable(prefix + "/gamma", [d], "ones"))
        out.append(Variable(prefix + "/beta", [d], "zeros"))

    def ffn(prefix):
        norm(prefix + "/layer_norm")
        linear(prefix + "/linear_0", f, d)
        linear(prefix + "/linear_1", d, f)

    def self_attention(prefix):
        norm(prefix + "/layer_norm")
        linear(prefix + "/linear_0", 3 * d, d)
        linear(prefix + "/linear_1", d, d)

    out.append(Variable("encoder/conv1/weight", [d, mels, 3], "normal"))
    out.append(Variable("encoder/conv1/bias", [d], "normal"))
    out.append(Variable("encoder/conv2/weight", [d, d, 3], "normal"))
    out.append(Variable("encoder/conv2/bias", [d], "normal"))
    out.append(Variable("encoder/position_encodings/encodings", [AUDIO_POSITIONS, d], "normal"))
    for i in range(s["encoder_layers"]):
        self_attention(f"encoder/layer_{i}/self_attention")
        ffn(f"encoder/layer_{i}/ffn")
    norm("encoder/layer_norm")
    out.append(Variable("encoder/num_heads", [], "scalar", INT16, s["heads"]))

    out.append(Variable("decoder/embeddings/weight", [s["vocabulary"], d], "normal"))
    out.append(Variable("decoder/position_encodings/encodings", [TEXT_POSITIONS, d], "normal"))
    for i in range(s["decoder_layers"]):
        prefix = f"decoder/layer_{i}"
        self_attention(prefix + "/self_attention")
        norm(prefix + "/attention/layer_norm")
        linear(prefix + "/attention/linear_0", d, d)
        linear(prefix + "/attention/linear_1", 2 * d, d)
        linear(prefix + "/attention/linear_2", d, d)
        ffn(prefix + "/ffn")
    norm("decoder/layer_norm")
    out.append(Variable("decoder/num_heads", [], "scalar", INT16, s["heads"]))
    for name, dtype, value in [("activation", INT8, 3), ("alibi", INT8, 0), ("alignment_heads", INT16, 1),
                               ("alignment_layer", INT16, -1), ("pre_norm", INT8, 1), ("scale_embeddings", INT8, 0),
                               ("start_from_zero_embedding", INT8, 0)]:
        out.append(Variable("decoder/" + name, [], "scalar", dtype, value))
    return out


ALIASES = [("decoder/projection/weight", "decoder/embeddings/weight")]


# ---- writing -------------------------------------------------------------------------------------------------

def write_string(f, text):
    encoded = text.encode("utf-8")
    f.write(struct.pack("<H", len(encoded) + 1) + encoded + b"\0")


def write_header(f, name, shape, dtype):
    write_string(f, name)
    f.write(struct.pack("<B", len(shape)))
    if shape:
        f.write(struct.pack(f"<{len(shape)}I", *shape))
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    size = count * BYTE_WIDTH[dtype]
    if size >= 1 << 32:
        sys.exit(f"{name}: {size} bytes do not fit the format's u32 size field")
    f.write(struct.pack("<BI", dtype, size))


def encode(values, dtype):
    """float32 array -> little-endian bytes of dtype (float16, float32 or bfloat16, round to nearest even)."""
    if dtype == FLOAT32:
        return values.astype("<f4", copy=False).tobytes()
    if dtype == FLOAT16:
        return values.astype("<f2").tobytes()
    if dtype == BFLOAT16:
        bits = values.astype(np.float32, copy=False).view(np.uint32)
        rounded = (bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16
        return rounded.astype("<u2").tobytes()
    raise ValueError(dtype)


def row_chunks(variable, seed):
    """The variable's float32 values as [rows, columns] chunks of whole rows."""
    shape = variable.shape or [1]
    rows, columns = shape[0], int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    rng = np.random.default_rng([seed, zlib.crc32(variable.name.encode())])
    step = max(1, CHUNK_ELEMENTS // columns)
    for begin in range(0, rows, step):
        n = min(step, rows - begin)
        if variable.kind == "normal":
            chunk = rng.standard_normal((n, columns), dtype=np.float32)
            chunk *= np.float32(STD)
        elif variable.kind == "ones":
            chunk = np.ones((n, columns), dtype=np.float32)
        else:
            chunk = np.zeros((n, columns), dtype=np.float32)
        yield chunk


def write_model(path, size, dtype_name, seed):
    weight_dtype, other_dtype = DTYPES[dtype_name]
    specs = sorted(variables(size), key=lambda v: v.name)
    # The variable count comes first, so the int8 scales are counted up front.
    quantized = {v.name for v in specs if v.kind == "normal" and v.quantizable and weight_dtype == INT8}
    names = sorted([v.name for v in specs] + [n + "_scale" for n in quantized])
    by_name = {v.name: v for v in specs}
    pending_scales = {}
    total = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6))
        write_string(f, "WhisperSpec")
        f.write(struct.pack("<I", 3))
        f.write(struct.pack("<I", len(names)))
        for name in names:
            if name in pending_scales:  # "<w>_scale" sorts right after "<w>"
                scale = pending_scales.pop(name)
                write_header(f, name, [len(scale)], FLOAT32)
                f.write(scale.astype("<f4").tobytes())
                continue
            v = by_name[name]
            if v.kind == "scalar":
                write_header(f, name, [], v.dtype)
                f.write(np.array(v.value, dtype="i1" if v.dtype == INT8 else "<i2").tobytes())
                continue
            if name in quantized:
                write_header(f, name, v.shape, INT8)
                scales = []
                for chunk in row_chunks(v, seed):
                    amax = np.abs(chunk).max(axis=1)
                    amax[amax == 0] = 127.0
                    scale = (np.float32(127) / amax).astype(np.float32)
                    f.write(np.rint(chunk * scale[:, None]).astype(np.int8).tobytes())
                    scales.append(scale)
                pending_scales[name + "_scale"] = np.concatenate(scales)
            else:
                dtype = weight_dtype if v.quantizable else other_dtype
                write_header(f, name, v.shape, dtype)
                for chunk in row_chunks(v, seed):
                    f.write(encode(chunk, dtype))
            total += int(np.prod(v.shape, dtype=np.int64))
        f.write(struct.pack("<I", len(ALIASES)))
        for alias, target in ALIASES:
            write_string(f, alias)
            write_string(f, target)
    return total, len(names)


# ---- tokenizer files -----------------------------------------------------------------------------------------

def read_base_vocabulary():
    json_path = os.path.join(BASE_MODEL, "vocabulary.json")
    if os.path.exists(json_path):
        with open(json_path, encoding="utf-8") as f:
            return json.load(f)
    with open(os.path.join(BASE_MODEL, "vocabulary.txt"), encoding="utf-8", newline="\n") as f:
        return f.read().split("\n")[:-1]


def write_tokenizer_files(directory, size):
    s = SIZES[size]
    vocabulary = read_base_vocabulary()
    with open(os.path.join(BASE_MODEL, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if len(vocabulary) != 51865 or vocabulary[50257] != "<|endoftext|>" or vocabulary[YUE] != "<|translate|>":
        sys.exit(f"{BASE_MODEL}: not the 51865-token multilingual vocabulary this script expects")
    tokenizer_path = os.path.join(BASE_MODEL, "tokenizer.json")
    config["alignment_heads"] = s["alignment_heads"]
    if s["vocabulary"] == 51865:
        shutil.copyfile(tokenizer_path, os.path.join(directory, "tokenizer.json"))
    else:
        assert s["vocabulary"] == 51866
        vocabulary = vocabulary[:YUE] + ["<|yue|>"] + vocabulary[YUE:]
        with open(tokenizer_path, encoding="utf-8") as f:
            tokenizer = json.load(f)
        added = []
        for token in tokenizer["added_tokens"]:
            if token["id"] == YUE:
                added.append(dict(token, content="<|yue|>"))
            if token["id"] >= YUE:
                token = dict(token, id=token["id"] + 1)
            added.append(token)
        tokenizer["added_tokens"] = added
        for entry in tokenizer.get("post_processor", {}).get("special_tokens", {}).values():
            entry["ids"] = [i + 1 if i >= YUE else i for i in entry["ids"]]
        with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer, f, ensure_ascii=False)
        config["lang_ids"] = list(range(FIRST_LANGUAGE, YUE + 1))
        config["suppress_ids"] = [i + 1 if i >= YUE else i for i in config["suppress_ids"]]
        config["suppress_ids_begin"] = [i + 1 if i >= YUE else i for i in config["suppress_ids_begin"]]
    assert len(vocabulary) == s["vocabulary"]
    if any("\n" in t or "\r" in t for t in vocabulary):
        sys.exit("a token contains a line break; vocabulary.txt cannot hold it")
    with open(os.path.join(directory, "vocabulary.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in vocabulary))
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


# ---- main ----------------------------------------------------------------------------------------------------

def make(size, directory, seed, dtype):
    os.makedirs(directory, exist_ok=True)
    for stale in ("vocabulary.json",):  # the engine prefers it over vocabulary.txt
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))
    write_tokenizer_files(directory, size)
    partial = os.path.join(directory, "model.bin.partial")
    try:
        parameters, count = write_model(partial, size, dtype, seed)
        os.replace(partial, os.path.join(directory, "model.bin"))
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    bytes_ = os.path.getsize(os.path.join(directory, "model.bin"))
    print(f"{directory}: random {size} ({dtype}, seed {seed}), {count} variables, "
          f"{parameters / 1e6:.1f} M parameters, model.bin {bytes_ / 1e6:.1f} MB", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--size", choices=sorted(SIZES))
    which.add_argument("--all", action="store_true", help="write every size, into --out-root/<size>")
    parser.add_argument("--out", help="model directory to write (with --size)")
    parser.add_argument("--out-root", help="parent directory of the models (with --all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=list(DTYPES), default="float16")
    args = parser.parse_args()
    if args.size:
        if not args.out:
            parser.error("--size needs --out DIR")
        make(args.size, args.out, args.seed, args.dtype)
    else:
        if not args.out_root:
            parser.error("--all needs --out-root DIR")
        for size in SIZES:
            make(size, os.path.join(args.out_root, size), args.seed, args.dtype)


if __name__ == "__main__":
    main()
