"""The safetensors layout written and read by hand (the `safetensors` package is not
available on Debian): an 8-byte little-endian header length N, N bytes of JSON
({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}) padded with spaces
to a multiple of 8, then each tensor's raw little-endian bytes, row-major.

write() lays the file out as the reference implementation (huggingface/safetensors,
tensor.rs `prepare`) does: tensors sorted by dtype, the reference's Dtype enum from last to
first (widest first), then by name; contiguous data offsets; `__metadata__` first, its keys
sorted (the reference keeps them in a hash map, so any order is valid; sorted is the one
moonml writes). Used by spec/fixtures/gen_safetensors.py and the tools/ scripts.
"""
import json
import struct

import numpy as np
import torch

# The reference's Dtype enum, in order (files put later entries first).
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
               "I32", "U32", "F32", "F64", "I64", "U64"]

TORCH = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
    "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
NAME = {v: k for k, v in TORCH.items()}


def tensor_bytes(t):
    """Row-major little-endian bytes of a torch tensor (any strides)."""
    t = t.contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.bool:
        return t.numpy().astype(np.uint8).tobytes()
    a = t.numpy()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def serialize(tensors, metadata=None):
    """Bytes of a safetensors file. tensors: name -> torch tensor (written in its dtype)."""
    items = sorted(tensors.items(),
                   key=lambda kv: (-DTYPE_ORDER.index(NAME[kv[1].dtype]), kv[0].encode()))
    header = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata, key=str.encode)}
    offset, blobs = 0, []
    for name, t in items:
        data = tensor_bytes(t)
        header[name] = {"dtype": NAME[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(serialize(tensors, metadata))


def read(path):
    """(tensors, metadata) of a safetensors file, checking that the data is covered exactly."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = buf[8 + n:]
    out, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        assert b == end, f"{name}: offset {b}, expected {end}"
        end = e
        dt = TORCH[info["dtype"]]
        raw = bytearray(data[b:e])
        if dt in (torch.float16, torch.bfloat16):
            t = torch.frombuffer(raw, dtype=torch.int16).view(dt) if raw else torch.empty(0, dtype=dt)
        elif raw:
            t = torch.frombuffer(raw, dtype=dt)
        else:
            t = torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).clone()
    assert end == len(data), f"data holds {len(data)} bytes, tensors cover {end}"
    return out, metadata
