"""One pass of torchvision over an ImageFolder-layout folder (train/ then test/), as a user
would otherwise read it: ImageFolder + DataLoader(batch_size=256, num_workers=N), every image
decoded once. Prints one JSON line: the seconds from building the ImageFolders (their folder
scan included) to the last batch, and the images seen. Python and torch start-up are not
counted (nas-host's side is also timed inside its process).

    python bench/torchvision_pass.py FOLDER --transform pil-to-tensor|to-tensor --workers N
"""

import argparse
import json
import os
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--transform", choices=["pil-to-tensor", "to-tensor"], default="pil-to-tensor")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    a = p.parse_args()
    # PILToTensor: uint8 CHW, what nas-host's cache holds (the fair counterpart).
    # ToTensor: float32 in [0, 1], the seed's pipeline.
    tf = transforms.PILToTensor() if a.transform == "pil-to-tensor" else transforms.ToTensor()

    t0 = time.perf_counter()
    images = 0
    checksum = 0
    for split in ("train", "test"):
        ds = datasets.ImageFolder(os.path.join(a.folder, split), transform=tf)
        loader = DataLoader(ds, batch_size=a.batch_size, shuffle=False, num_workers=a.workers)
        for x, y in loader:
            images += x.shape[0]
            checksum += int(y.sum())
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "side": "torchvision-" + a.transform,
        "workers": a.workers,
        "seconds": round(seconds, 3),
        "images": images,
        "images_per_s": round(images / seconds),
        "label_sum": checksum,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
