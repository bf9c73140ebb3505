"""Weights from moonml to PyTorch: reads a state dict that moonml saved with
ml.save(model:state_dict{to = "pytorch"}, path) and the JSON that spec/model_io_spec.lua
writes beside it (the layers, the inputs and moonml's outputs), builds the same
nn.Sequential in PyTorch, loads the weights and compares the outputs. It also writes the
tensors again with the reference layout (tools/st_format.py) and checks that the bytes equal
moonml's file.

  make test                                        (the spec writes build/moonml_mlp.*)
  /usr/bin/python3 tools/check_moonml_weights.py [build/moonml_mlp]

Exits 1 when anything differs.
"""
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_format  # noqa: E402


def main():
    stem = sys.argv[1] if len(sys.argv) > 1 else "build/moonml_mlp"
    with open(stem + ".json") as f:
        info = json.load(f)
    sd, metadata = st_format.read(stem + ".safetensors")
    mods = [getattr(nn, spec[0])(*spec[1:]) for spec in info["layers"]]
    model = nn.Sequential(*mods).eval()
    missing, unexpected = model.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    x = torch.tensor(info["x"], dtype=torch.float32)
    want = torch.tensor(info["y"], dtype=torch.float32)
    with torch.no_grad():
        got = model(x)
    err = (got - want).abs().max().item()
    print("%s.safetensors: %d tensors (%s), metadata %s" %
          (stem, len(sd), ", ".join("%s %s" % (k, list(v.shape)) for k, v in sd.items()), metadata))
    print("PyTorch outputs vs moonml's for %d inputs: max abs difference %.3g" % (x.shape[0], err))
    with open(stem + ".safetensors", "rb") as f:
        same = f.read() == st_format.serialize(sd, metadata)
    print("the file equals the reference layout byte for byte: %s" % same)
    ok = err <= 1e-5 and same
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
