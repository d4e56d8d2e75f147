#!/usr/bin/env python3
"""Converts the weights of Silero VAD v6.2 (16 kHz) from the ONNX file of the PyPI wheel `silero-vad` into a
plain tensor file (the safetensors layout: an 8-byte little-endian header length, a JSON header of names,
shapes and byte ranges, then float32 data) that the engine reads natively.

    scripts/convert-silero-vad.py silero_vad_16k_op15.onnx OUTPUT.safetensors

The ONNX file, not the wheel's own silero_vad_16k.safetensors: that one holds a different checkpoint from the
model silero-vad runs (docs/notes/silero-vad-v6.md). The ONNX protobuf is walked by hand (a few fields of
ModelProto → GraphProto → TensorProto), so nothing but Python's standard library is needed.
"""
import json
import struct
import sys

# The initializers of silero_vad_16k_op15.onnx, renamed to the engine's names.
NAMES = {
    "model.stft.forward_basis_buffer": "stft.basis",
    "model.encoder.0.reparam_conv.weight": "conv1.weight", "model.encoder.0.reparam_conv.bias": "conv1.bias",
    "model.encoder.1.reparam_conv.weight": "conv2.weight", "model.encoder.1.reparam_conv.bias": "conv2.bias",
    "model.encoder.2.reparam_conv.weight": "conv3.weight", "model.encoder.2.reparam_conv.bias": "conv3.bias",
    "model.encoder.3.reparam_conv.weight": "conv4.weight", "model.encoder.3.reparam_conv.bias": "conv4.bias",
    "model.decoder.rnn.weight_ih": "lstm.weight_ih", "model.decoder.rnn.weight_hh": "lstm.weight_hh",
    "model.decoder.rnn.bias_ih": "lstm.bias_ih", "model.decoder.rnn.bias_hh": "lstm.bias_hh",
    "model.decoder.decoder.2.weight": "output.weight", "model.decoder.decoder.2.bias": "output.bias",
}


def fields(data: bytes):
    """(field number, wire type, value) of one protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            length, i = varint(data, i)
            value, i = data[i:i + length], i + length
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire} not expected")
        yield number, wire, value


def varint(data: bytes, i: int):
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7


def tensors(model: bytes) -> dict:
    graph = next(v for n, w, v in fields(model) if n == 7)          # ModelProto.graph
    found = {}
    for number, _, value in fields(graph):
        if number != 5:                                              # GraphProto.initializer
            continue
        dims, name, raw, floats, dtype = [], None, None, [], None
        for n, w, v in fields(value):
            if n == 1:                                               # TensorProto.dims (packed or not)
                if w == 2:
                    j = 0
                    while j < len(v):
                        d, j = varint(v, j)
                        dims.append(d)
                else:
                    dims.append(v)
            elif n == 2:
                dtype = v                                            # 1 = FLOAT
            elif n == 8:
                name = v.decode()
            elif n == 9:
                raw = v
            elif n == 4 and w == 2:
                floats = list(struct.unpack(f"<{len(v) // 4}f", v))
        if name in NAMES:
            if dtype != 1:
                sys.exit(f"convert-silero-vad: {name} is not float32")
            found[NAMES[name]] = (dims, raw if raw is not None else struct.pack(f"<{len(floats)}f", *floats))
    return found


def main() -> None:
    source, output = sys.argv[1], sys.argv[2]
    found = tensors(open(source, "rb").read())
    missing = set(NAMES.values()) - set(found)
    if missing:
        sys.exit(f"convert-silero-vad: {source} lacks {sorted(missing)}")
    header, offset, blobs = {}, 0, []
    for name in sorted(found):
        dims, data = found[name]
        header[name] = {"dtype": "F32", "shape": dims, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(output, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    print(f"convert-silero-vad: {len(found)} tensors, {offset} bytes -> {output}")


if __name__ == "__main__":
    main()
