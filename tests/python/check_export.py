"""Loads a model written by `nas-host export` with each real consumer and checks it.

    python check_export.py EXPORT_DIR [--split SPLIT.safetensors]

- TorchScript (`torch.jit.load`), `model.py` + `weights.safetensors`, and onnxruntime on
  `model.onnx` each reproduce the logits nas-host computed for the batch in `check.safetensors`
  (absolute tolerance 1e-4).
- With `--split`, a file holding `images` (uint8 [N, C, H, W]) and `labels` (int64 [N]): the
  accuracy of the TorchScript model on it, through `model.preprocess`, equals `model.json`'s.

Prints one JSON line with what it measured; exits non-zero on any disagreement.
"""
import argparse
import importlib.util
import json
import pathlib
import sys

import numpy as np
import onnxruntime
import torch
from safetensors.torch import load_file

TOLERANCE = 1e-4


def load_model_py(directory):
    spec = importlib.util.spec_from_file_location("exported_model", directory / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=pathlib.Path)
    parser.add_argument("--split", type=pathlib.Path)
    args = parser.parse_args()
    directory = args.directory
    card = json.loads((directory / "model.json").read_text())
    check = load_file(directory / "check.safetensors")
    inputs, expected = check["input"], check["logits"]

    torch.set_grad_enabled(False)
    scripted = torch.jit.load(str(directory / "model.pt"))
    module = load_model_py(directory)
    plain = module.load(directory)
    session = onnxruntime.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    got = {
        "torchscript": scripted(inputs),
        "model_py": plain(inputs),
        "onnx": torch.from_numpy(session.run(["logits"], {"input": inputs.numpy()})[0]),
    }
    result = {"batch": int(inputs.shape[0])}
    failed = False
    for name, logits in got.items():
        error = float((logits - expected).abs().max())
        result[f"{name}_max_abs_error"] = error
        if logits.shape != expected.shape or not error <= TOLERANCE:
            failed = True

    if args.split is not None:
        split = load_file(args.split)
        images, labels = split["images"], split["labels"]
        correct = 0
        for start in range(0, len(labels), 500):
            x = module.preprocess(images[start : start + 500])
            correct += int((scripted(x).argmax(1) == labels[start : start + 500]).sum())
        accuracy = correct / len(labels)
        result["python_accuracy"] = accuracy
        result["recorded_accuracy"] = card["accuracy"]
        if abs(accuracy - card["accuracy"]) > 1e-9:
            failed = True
    print(json.dumps(result))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
