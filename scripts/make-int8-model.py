#!/usr/bin/env python3
"""Writes a re-quantized copy of a CTranslate2 Whisper model directory, for the engine's model-variant tests.

    make-int8-model.py SOURCE_DIR DEST_DIR [--quantization int8_float32|float32]

int8_float32 (default) quantizes the way CTranslate2's converter does (`ModelSpec._quantize` in
`ctranslate2/specs/model_spec.py`): every weight of a Linear, Conv1D or Embeddings layer (the variables named
`.../weight`, rank >= 2) becomes int8 with a float32 `<name>_scale` holding one scale per output row,
scale = 127 / max|row| (conv weights [out, in, k] are flattened to [out, in*k] first); every other float variable
(biases, layer norms, position encodings) becomes float32. float32 converts every float variable to float32.
Integer scalars and aliases are kept as they are; `<alias>_scale` is resolved by the reader through the alias.
The other files of the directory (config.json, vocabulary, tokenizer.json) are copied unchanged.

Format (binary version <= 6, little-endian, no padding): u32 version, string spec name, u32 spec revision,
u32 variable count, variables sorted by name (string name, u8 rank, u32 dims, u8 dtype, u32 byte count, bytes),
u32 alias count, (alias, target) string pairs. A string is a u16 length including a trailing NUL, then the bytes.
Only the standard library and numpy are used.
"""
import argparse
import os
import shutil
import struct
import sys
import tempfile

import numpy as np

# dtype ids of CTranslate2's DataType enum, in order.
DTYPES = [np.dtype("<f4"), np.dtype("i1"), np.dtype("<i2"), np.dtype("<i4"), np.dtype("<f2"), None]
FLOAT32, INT8, FLOAT16, BFLOAT16 = 0, 1, 4, 5


class Reader:
    def __init__(self, data):
        self.data = data
        self.offset = 0

    def take(self, count):
        if self.offset + count > len(self.data):
            sys.exit(f"model.bin is truncated at byte {self.offset}")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def string(self):
        return bytes(self.take(self.u16())[:-1]).decode("utf-8")


def read_model(path):
    """Returns (version, spec name, revision, {name: (dtype id, numpy array)}, [(alias, target)])."""
    with open(path, "rb") as f:
        reader = Reader(memoryview(f.read()))
    version = reader.u32()
    if version != 6:
        sys.exit(f"{path}: binary version {version}; this script reads version 6 only")
    spec, revision = reader.string(), reader.u32()
    variables = {}
    for _ in range(reader.u32()):
        name = reader.string()
        shape = [reader.u32() for _ in range(reader.u8())]
        dtype_id = reader.u8()
        raw = reader.take(reader.u32())
        if dtype_id == BFLOAT16:
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
            dtype_id = FLOAT32
        else:
            values = np.frombuffer(raw, dtype=DTYPES[dtype_id])
        variables[name] = (dtype_id, values.reshape(shape))
    aliases = [(reader.string(), reader.string()) for _ in range(reader.u32())]
    if reader.offset != len(reader.data):
        sys.exit(f"{path}: {len(reader.data) - reader.offset} unexpected bytes after the aliases")
    return version, spec, revision, variables, aliases


def is_quantizable(name, values):
    # Linear, Conv1D and Embeddings specs have a `weight_scale` slot; in a Whisper model those are exactly the
    # variables named `.../weight` (layer norms use gamma/beta, position encodings `encodings`).
    return name.rsplit("/", 1)[-1] == "weight" and values.ndim >= 2


def quantize_rows(values):
    """CTranslate2's int8 quantization: one scale per output row, scale = 127 / max|row|."""
    matrix = values.astype(np.float32).reshape(values.shape[0], -1)
    amax = np.amax(np.absolute(matrix), axis=1)
    amax[amax == 0] = 127.0
    amax = np.maximum(amax, np.float32(127) / np.finfo(np.float32).max)
    scale = (np.float32(127.0) / amax).astype(np.float32)
    quantized = np.rint(matrix * np.expand_dims(scale, 1)).astype(np.int8)
    return quantized.reshape(values.shape), scale


def convert(variables, quantization):
    out = {}
    for name, (dtype_id, values) in variables.items():
        is_float = dtype_id in (FLOAT32, FLOAT16)
        if not is_float or values.ndim == 0:
            out[name] = (dtype_id, values)  # integer variables and scalars are never converted
        elif quantization == "int8_float32" and is_quantizable(name, values):
            quantized, scale = quantize_rows(values)
            out[name] = (INT8, quantized)
            out[name + "_scale"] = (FLOAT32, scale)
        else:
            out[name] = (FLOAT32, values.astype(np.float32))
    return out


def write_model(path, version, spec, revision, variables, aliases):
    def string(f, text):
        encoded = text.encode("utf-8")
        f.write(struct.pack("<H", len(encoded) + 1) + encoded + b"\0")

    with open(path, "wb") as f:
        f.write(struct.pack("<I", version))
        string(f, spec)
        f.write(struct.pack("<I", revision))
        f.write(struct.pack("<I", len(variables)))
        for name in sorted(variables):
            dtype_id, values = variables[name]
            string(f, name)
            f.write(struct.pack("<B", values.ndim))
            f.write(struct.pack(f"<{values.ndim}I", *values.shape))
            raw = np.ascontiguousarray(values, dtype=DTYPES[dtype_id]).tobytes()
            f.write(struct.pack("<B", dtype_id))
            f.write(struct.pack("<I", len(raw)))
            f.write(raw)
        f.write(struct.pack("<I", len(aliases)))
        for alias, target in sorted(aliases):
            string(f, alias)
            string(f, target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="CTranslate2 Whisper model directory (model.bin, config.json, vocabulary)")
    parser.add_argument("destination", help="directory to create; replaced if it exists")
    parser.add_argument("--quantization", choices=["int8_float32", "float32"], default="int8_float32")
    args = parser.parse_args()

    version, spec, revision, variables, aliases = read_model(os.path.join(args.source, "model.bin"))
    converted = convert(variables, args.quantization)

    # Build next to the destination and move it into place, so a reader never sees a half-written model.
    destination = os.path.abspath(args.destination)
    parent = os.path.dirname(destination)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".partial-", dir=parent)
    os.chmod(staging, 0o755)
    try:
        for entry in sorted(os.listdir(args.source)):
            source_file = os.path.join(args.source, entry)
            if entry != "model.bin" and os.path.isfile(source_file):
                shutil.copyfile(source_file, os.path.join(staging, entry))
        write_model(os.path.join(staging, "model.bin"), version, spec, revision, converted, aliases)
        if os.path.isdir(destination):
            shutil.rmtree(destination)
        os.rename(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    quantized = sum(1 for name in converted if name.endswith("_scale"))
    size = os.path.getsize(os.path.join(destination, "model.bin"))
    print(f"{destination}: {args.quantization}, {len(converted)} variables ({quantized} quantized to int8), "
          f"{len(aliases)} aliases, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
