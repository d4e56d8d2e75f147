#!/usr/bin/env python3
"""Converts the weights of the GE2E speaker encoder of the PyPI package `resemblyzer` 0.1.4 (its pretrained.pt)
into a plain tensor file (the safetensors layout: an 8-byte little-endian header length, a JSON header of names,
shapes and byte ranges, then float32 data) that the engine reads natively.

    scripts/convert-speaker-encoder.py pretrained.pt OUTPUT.safetensors

pretrained.pt is a PyTorch checkpoint in the legacy (pre-1.6, non-zip) serialization: five pickles in a row
(magic number, protocol version, system info, the checkpoint object, the list of storage keys), then every
storage as an 8-byte little-endian element count followed by its raw elements. Tensors inside the checkpoint
object are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` calls whose storage is a
persistent id ("storage", storage type, key, device, element count, view). The LSTM weights of this checkpoint
are views into one shared (cuDNN flat) storage, so offsets and strides are honoured. The pickles are walked with
a restricted Unpickler that knows only these few globals, so nothing but Python's standard library is needed
and nothing in the file can run code.

Only `model_state` is converted (nn.LSTM(40, 256, 3) and nn.Linear(256, 256)); anything else in it, such as the
training-time similarity_weight/similarity_bias, is reported and left out.
"""
import collections
import json
import pickle
import struct
import sys
from array import array

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# model_state name -> shape the engine expects (PyTorch's own names; gates i, f, g, o in row order).
EXPECTED = {"linear.weight": [256, 256], "linear.bias": [256]}
for _layer in range(3):
    EXPECTED[f"lstm.weight_ih_l{_layer}"] = [1024, 40 if _layer == 0 else 256]
    EXPECTED[f"lstm.weight_hh_l{_layer}"] = [1024, 256]
    EXPECTED[f"lstm.bias_ih_l{_layer}"] = [1024]
    EXPECTED[f"lstm.bias_hh_l{_layer}"] = [1024]

# Storage class name -> (array typecode or None, element size in bytes). Float storages are read (and become
# float32); the others are only stepped over, as nothing converted can live in them.
STORAGE_TYPES = {"FloatStorage": ("f", 4), "DoubleStorage": ("d", 8), "HalfStorage": (None, 2),
                 "LongStorage": (None, 8), "IntStorage": (None, 4), "ShortStorage": (None, 2),
                 "CharStorage": (None, 1), "ByteStorage": (None, 1), "BoolStorage": (None, 1)}


class StorageRef:
    """A storage the pickle refers to; its elements follow the pickles and are filled in afterwards."""

    def __init__(self, type_name, key, device, count):
        self.type_name, self.key, self.device, self.count = type_name, key, device, count
        self.elements = None


class StorageType:
    def __init__(self, name):
        self.name = name


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, list(size), list(stride)

    def floats(self):
        """The elements in row-major order, following offset and strides."""
        elements = self.storage.elements
        if elements is None:
            raise ValueError(f"a {self.storage.type_name} cannot be converted to float32")
        count = 1
        for extent in self.size:
            count *= extent
        contiguous, expected = [], 1
        for extent in reversed(self.size):
            contiguous.insert(0, expected)
            expected *= extent
        if count == 0:
            return array("f")
        if all(s == c or e == 1 for s, c, e in zip(self.stride, contiguous, self.size)):
            if self.offset + count > len(elements):
                raise ValueError("tensor reaches past the end of its storage")
            return array("f", elements[self.offset:self.offset + count])
        result = array("f")
        index = [0] * len(self.size)
        for _ in range(count):
            result.append(elements[self.offset + sum(i * s for i, s in zip(index, self.stride))])
            for axis in reversed(range(len(index))):
                index[axis] += 1
                if index[axis] < self.size[axis]:
                    break
                index[axis] = 0
        return result


def rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return Tensor(storage, storage_offset, size, stride)


def rebuild_parameter(data, *_unused):
    return data


class PlainUnpickler(pickle.Unpickler):
    """For the pickles around the checkpoint object: plain data, no globals at all."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the checkpoint")


class CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the checkpoint")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, device, count, view = pid
        if view is not None:
            raise pickle.UnpicklingError(f"storage views are not supported ({key})")
        if key not in self.storages:
            self.storages[key] = StorageRef(storage_type.name, key, device, count)
        return self.storages[key]


def load(path):
    """The checkpoint object of a legacy-format PyTorch file, tensors as Tensor objects."""
    with open(path, "rb") as file:
        if file.read(2) == b"PK":
            sys.exit(f"convert-speaker-encoder: {path} is a zip-format checkpoint; expected the legacy format")
        file.seek(0)

        def plain():
            return PlainUnpickler(file).load()         # one unpickler per pickle: each may buffer ahead

        if plain() != MAGIC_NUMBER:
            sys.exit(f"convert-speaker-encoder: {path} is not a legacy PyTorch checkpoint")
        if plain() != PROTOCOL_VERSION:
            sys.exit(f"convert-speaker-encoder: {path} has an unknown protocol version")
        if not plain().get("little_endian"):
            sys.exit(f"convert-speaker-encoder: {path} was written big-endian")
        storages = {}
        checkpoint = CheckpointUnpickler(file, storages).load()
        for key in plain():                            # the storages, in this order
            (count,) = struct.unpack("<q", file.read(8))
            storage = storages.get(key)
            if storage is None or storage.type_name not in STORAGE_TYPES:
                sys.exit(f"convert-speaker-encoder: storage {key} is unknown or of an unknown type")
            if count != storage.count:
                sys.exit(f"convert-speaker-encoder: storage {key} holds {count} elements, {storage.count} expected")
            typecode, size = STORAGE_TYPES[storage.type_name]
            raw = file.read(count * size)
            if len(raw) != count * size:
                sys.exit(f"convert-speaker-encoder: {path} is truncated")
            if typecode is not None:
                storage.elements = array(typecode)
                storage.elements.frombytes(raw)
                if sys.byteorder != "little":
                    storage.elements.byteswap()
        if file.read(1):
            sys.exit(f"convert-speaker-encoder: {path} has trailing data")
    return checkpoint


def main() -> None:
    source, output = sys.argv[1], sys.argv[2]
    checkpoint = load(source)
    state = checkpoint["model_state"]
    others = [k for k in checkpoint if k != "model_state"]
    if others:
        print(f"convert-speaker-encoder: ignoring checkpoint entries {others}")
    header, offset, blobs = {}, 0, []
    for name in sorted(state):
        tensor = state[name]
        if name not in EXPECTED:
            print(f"convert-speaker-encoder: skipping {name} {tensor.size}")
            continue
        if tensor.size != EXPECTED[name]:
            sys.exit(f"convert-speaker-encoder: {name} is {tensor.size}, {EXPECTED[name]} expected")
        values = tensor.floats()
        if sys.byteorder != "little":
            values.byteswap()
        data = values.tobytes()
        header[name] = {"dtype": "F32", "shape": tensor.size, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    missing = set(EXPECTED) - set(header)
    if missing:
        sys.exit(f"convert-speaker-encoder: {source} lacks {sorted(missing)}")
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(output, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    print(f"convert-speaker-encoder: {len(header)} tensors, {offset} bytes -> {output}")


if __name__ == "__main__":
    main()
