#!/usr/bin/env python3
"""Writes the seed corpora for the libFuzzer harnesses: make_corpus.py OUTDIR.

One folder per format under OUTDIR. Seeds are small valid files (plus a few edge cases)
so that the fuzzer starts from inputs that reach deep into each parser. Standard library
only; the output is the same on every run.

  idx/       byte 0 picks the dtype (fuzz_idx.c), then an IDX file, plain or gzip
  ratings/   byte 0 picks the format and skip_bad (fuzz_ratings.c), then a rating file
  safetensors/ png/ json/
             whole files, no leading byte: seeds for the harnesses of the loaders still to
             come (src/io/safetensors.c, png.c, json.c); see fuzz/README.md
"""
import gzip
import hashlib
import json
import os
import struct
import sys
import zlib


def write_all(outdir, name, seeds):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    for data in seeds:
        h = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(d, h), "wb") as f:
            f.write(data)
    return len(seeds)


# ---------------------------------------------------------------- IDX

IDX_TYPES = {  # code: (struct format, values)
    0x08: ("B", [0, 1, 127, 255]),
    0x09: ("b", [0, -1, 127, -128]),
    0x0B: (">h", [0, -1, 32767, -32768]),
    0x0C: (">i", [0, -1, 2**31 - 1, -(2**31)]),
    0x0D: (">f", [0.0, -1.5, 3.25e38, float("nan")]),
    0x0E: (">d", [0.0, -1.5, 1e308, float("inf")]),
}


def idx_file(code, shape, values=None):
    fmt, pool = IDX_TYPES[code]
    n = 1
    for s in shape:
        n *= s
    values = values if values is not None else [pool[k % len(pool)] for k in range(n)]
    head = bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", s) for s in shape)
    return head + b"".join(struct.pack(fmt, v) for v in values)


def idx_seeds():
    files = []
    for code in IDX_TYPES:
        files.append(idx_file(code, [4]))
        files.append(idx_file(code, [2, 3]))
    files.append(idx_file(0x08, [2, 1, 3, 3]))  # MNIST-like: N x rows x cols (+1 dim)
    files.append(idx_file(0x08, [0]))  # empty
    files.append(idx_file(0x08, [3, 0, 2]))
    files.append(idx_file(0x08, [1, 1, 1, 1, 1, 1, 1, 1]))  # 8 dims
    files.append(idx_file(0x08, [5])[:-2])  # truncated data
    files.append(idx_file(0x08, [2]) + b"\x00")  # trailing byte
    files.append(bytes([0, 0, 0x08, 1]))  # truncated header
    gz = [gzip.compress(f, mtime=0) for f in files[:6]]
    seeds = []
    for k, f in enumerate(files + gz):
        seeds.append(bytes([k % 4]) + f)  # rotate through the dtypes
    return seeds


# ---------------------------------------------------------------- ratings

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def ratings_seeds():
    ml100k = fixture("rec_small.data")
    ml1m = fixture("rec_ratings.dat")
    mlcsv = fixture("rec_ratings.csv")
    generic = fixture("rec_generic.csv")
    per_format = {
        0: [ml100k, b"1\t2\t3\t4\r\n5\t6\t1\t0\n", b"1\t2\t3.5\t4", b""],
        1: [ml1m, b"1::2::5::1\n1::3::1::2\n"],
        2: [mlcsv, b"userId,movieId,rating,timestamp\n"],
        3: [generic, b"a,b,1\nc,d,2,3\n", b"u,i,1e3\nu,i,-0\n"],
        4: [b"user;item;rating\nx;y;1\nx;z;2;5\n"],
        5: [b"1\t2\t10\n3\t4\t1\t7\n"],
        6: [b"a||b||2\nc||d||3||4\n"],
        7: [b"a b 2\nc  d  3\n"],
    }
    seeds = []
    for fmt, files in per_format.items():
        for f in files:
            seeds.append(bytes([fmt]) + f)
            seeds.append(bytes([fmt | 8]) + f + b"bad line\n")  # skip_bad
    return seeds


# ---------------------------------------------------------------- safetensors

def safetensors_file(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    fmts = {"F32": "<f", "F64": "<d", "I64": "<q", "U8": "<B", "BOOL": "<?"}
    for name, (dtype, shape, values) in tensors.items():
        data = b"".join(struct.pack(fmts[dtype], v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def safetensors_seeds():
    return [
        safetensors_file({"weight": ("F32", [2, 3], [1, 2, 3, 4, 5, 6]),
                          "bias": ("F32", [2], [0.5, -0.5])}),
        safetensors_file({"x": ("F64", [], [3.5])}, {"format": "pt"}),
        safetensors_file({"ids": ("I64", [3], [1, 2, 3]), "mask": ("BOOL", [2], [True, False])}),
        safetensors_file({"empty": ("F32", [0, 4], [])}),
        safetensors_file({"model.1.weight": ("F32", [1, 1], [2.0])},
                         {"moonml": json.dumps({"class": "SVD", "n_factors": 2})}),
        safetensors_file({}),
    ]


# ---------------------------------------------------------------- PNG

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_file(width, height, color_type, bit_depth, interlace=0, palette=None, trns=None):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row_bytes = (width * channels * bit_depth + 7) // 8
    raw = b""
    for y in range(height):
        row = bytes(((x * 37 + y * 11) & 0xFF) if bit_depth >= 8 else ((x + y) & 1) * 0x55
                    for x in range(row_bytes))
        raw += bytes([y % 5]) + row  # cycle through the five filter types
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type,
                                          0, 0, interlace))
    if palette is not None:
        out += png_chunk(b"PLTE", palette)
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    out += png_chunk(b"IEND", b"")
    return out


def png_seeds():
    pal = bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    return [
        png_file(3, 2, 0, 8),  # gray
        png_file(4, 4, 0, 1),  # 1-bit gray
        png_file(3, 3, 0, 16),  # 16-bit gray
        png_file(2, 3, 2, 8),  # RGB
        png_file(2, 2, 2, 16),
        png_file(3, 2, 3, 8, palette=pal),  # palette
        png_file(5, 1, 3, 2, palette=pal, trns=bytes([0, 128])),
        png_file(2, 2, 4, 8),  # gray + alpha
        png_file(2, 2, 6, 8),  # RGBA
        png_file(9, 9, 6, 8, interlace=1),  # Adam7
        png_file(1, 1, 0, 8),
    ]


# ---------------------------------------------------------------- JSON

def json_seeds():
    docs = [
        {"format": "pt"},
        {"class": "SVD", "params": {"n_factors": 2, "lr_all": 0.005, "biased": True},
         "users": ["196", "186"], "items": [242, 302], "scale": [1, 5]},
        [1, -2.5e-3, 1e308, None, True, False, "x\u00e9\n\"", [], {}],
        {"nested": [[[[{"a": [1]}]]]]},
    ]
    seeds = [json.dumps(d).encode() for d in docs]
    seeds += [b"", b"{", b'{"a":1,}', b'"\\ud800"', b"[" * 64 + b"]" * 64, b"1e999"]
    return seeds


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py OUTDIR")
    out = sys.argv[1]
    counts = {
        "idx": write_all(out, "idx", idx_seeds()),
        "ratings": write_all(out, "ratings", ratings_seeds()),
        "safetensors": write_all(out, "safetensors", safetensors_seeds()),
        "png": write_all(out, "png", png_seeds()),
        "json": write_all(out, "json", json_seeds()),
    }
    print("seeds in %s: %s" % (out, ", ".join("%s %d" % kv for kv in counts.items())))


if __name__ == "__main__":
    main()
