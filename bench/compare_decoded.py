"""Compares nas-host's decode of a CIFAR-10 JPEG folder (its cache file) with a
cifar-10-batches-bin directory, image by image, matched by the JPEG each record came from.

    python bench/compare_decoded.py CACHE.nasd FOLDER BIN_DIR [--write OUT_DIR]

The binaries must be the ones ../shared/data/prepare-cifar10 writes (Pillow's decode of these
same JPEGs, in the class-then-file-name list shuffled with random.Random(0)): that order is
rebuilt and the labels checked. Prints how many pixel values differ and by how much: nas-host's
JPEG decoder (image-rs, zune-jpeg) against Pillow's (libjpeg-turbo).

With --write, also writes OUT_DIR/cifar-10-batches-bin/ holding nas-host's decode in the binaries'
record order: training on it differs from the folder only by the order of the images, and from
BIN_DIR only by the JPEG decoder.
"""

import json
import os
import random
import struct
import sys

import numpy as np

CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']


def read_cache(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"NASDSET\0"
        (version,) = struct.unpack("<I", f.read(4))
        (hlen,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(hlen))
        n = h["channels"] * h["height"] * h["width"]
        out = {}
        for split in ("train", "test"):
            count = h[split]
            images = np.frombuffer(f.read(count * n), dtype=np.uint8).reshape(count, n)
            labels = np.frombuffer(f.read(count), dtype=np.uint8)
            out[split] = (images, labels)
    assert h["classes"] == CLASSES, h["classes"]
    return out


def main():
    cache, folder, bins = sys.argv[1:4]
    write = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--write" else None
    if write:
        os.makedirs(os.path.join(write, "cifar-10-batches-bin"), exist_ok=True)
    nas = read_cache(cache)
    for split, files in (("train", [f"data_batch_{i}.bin" for i in range(1, 6)]), ("test", ["test_batch.bin"])):
        recs = np.concatenate([np.fromfile(os.path.join(bins, f), dtype=np.uint8).reshape(-1, 3073) for f in files])
        # nas-host's order: by class, then file name (as ImageFolder); prepare-cifar10 shuffled
        # that same list with random.Random(0).
        order = [(i, f"{split}/{c}/{f}") for i, c in enumerate(CLASSES) for f in sorted(os.listdir(os.path.join(folder, split, c)))]
        idx = list(range(len(order)))
        items = list(zip(idx, order))
        random.Random(0).shuffle(items)
        perm = np.array([k for k, _ in items])
        images, labels = nas[split]
        assert len(images) == len(recs) == len(perm)
        labels_match = bool(np.array_equal(labels[perm], recs[:, 0]))
        a = images[perm].astype(np.int16)
        b = recs[:, 1:].astype(np.int16)
        d = np.abs(a - b)
        same_images = int((d.max(axis=1) == 0).sum())
        if write:
            out = np.concatenate([labels[perm][:, None], images[perm]], axis=1)
            for i, f in enumerate(files):
                out[i * 10000:(i + 1) * 10000].tofile(os.path.join(write, "cifar-10-batches-bin", f))
        print(json.dumps({
            "split": split,
            "images": len(recs),
            "order_rebuilt_labels_match": labels_match,
            "images_identical": same_images,
            "pixel_values_differing": round(float((d > 0).mean()), 4),
            "mean_abs_diff": round(float(d.mean()), 3),
            "max_abs_diff": int(d.max()),
            "share_diff_le_1": round(float((d <= 1).mean()), 4),
            "mean_signed_diff_nas_minus_bin": round(float((a - b).mean()), 3),
        }))
    if write:
        with open(os.path.join(write, "cifar-10-batches-bin", "batches.meta.txt"), "w") as f:
            f.write("\n".join(CLASSES) + "\n\n")


if __name__ == "__main__":
    main()
