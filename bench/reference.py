#!/usr/bin/env python3
"""PyTorch reference for `make bench`: the same architecture, data and protocol as
`nas-host train-arch`, trained two ways:

  dataloader  the seed's data pipeline: torchvision's CIFAR10 item path (a PIL image per item
              through ToTensor only, so pixels in [0, 1], as the seed had them) and a torch
              DataLoader (batch 100, shuffled every epoch)
  tensors     a plain loop over pre-loaded tensors (shuffled by one gather per epoch, then sliced),
              standardised per channel as nas-host's default protocol is

Both: conv(32,3) -> ReLU -> maxpool(5,3) -> linear classifier with PyTorch's default
initialisation, Adam (lr 0.001 as nas-host's default, --lr to change), cross entropy, accuracy on the test split. Prints one JSON line per
mode: {"mode", "accuracy", "seconds", "seconds_per_epoch"}.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn


def load_cifar(data_dir, classes):
    root = os.path.join(data_dir, "cifar-10-batches-bin")

    def read(names):
        raw = np.concatenate([np.fromfile(os.path.join(root, n), dtype=np.uint8) for n in names]).reshape(-1, 3073)
        labels, images = raw[:, 0].astype(np.int64), raw[:, 1:].reshape(-1, 3, 32, 32)
        keep = labels < classes
        return images[keep], labels[keep]

    train = read([f"data_batch_{i}.bin" for i in range(1, 6)])
    test = read(["test_batch.bin"])
    return train, test


def to_tensors(images, labels, mean=None, std=None):
    x = torch.from_numpy(images).float() / 255.0
    if mean is None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / std, torch.from_numpy(labels), mean, std


class ImageDataset(torch.utils.data.Dataset):
    """torchvision's CIFAR10.__getitem__ with the seed's transform: a PIL image per item through
    ToTensor() alone (the seed did not normalise)."""

    def __init__(self, images, labels):
        from torchvision import transforms

        self.images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # HWC, as torchvision keeps them
        self.labels = labels
        self.transform = transforms.ToTensor()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def model(classes):
    return nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(5, 3), nn.Flatten(), nn.Linear(32 * 9 * 9, classes)
    )


def accuracy(net, x, y):
    with torch.no_grad():
        correct = sum((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(y), 1000))
    return correct / len(y)


def run(mode, train, test, classes, epochs, seed, lr):
    torch.manual_seed(seed)
    xtr, ytr, mean, std = to_tensors(*train)
    xte, yte, _, _ = to_tensors(*test, mean, std)
    if mode == "dataloader":
        # Evaluated on the inputs it was trained on: [0, 1] pixels.
        xte = torch.from_numpy(test[0]).float() / 255.0
    net = model(classes)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    if mode == "dataloader":
        dataset = ImageDataset(train[0], train[1])
        loader = torch.utils.data.DataLoader(dataset, batch_size=100, shuffle=True)
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
    else:
        n = len(ytr)
        for _ in range(epochs):
            perm = torch.randperm(n)
            xs, ys = xtr[perm], ytr[perm]
            for i in range(0, n, 100):
                opt.zero_grad()
                loss_fn(net(xs[i:i + 100]), ys[i:i + 100]).backward()
                opt.step()
    acc = accuracy(net, xte, yte)
    seconds = time.perf_counter() - start
    return {"mode": mode, "accuracy": acc, "seconds": seconds, "seconds_per_epoch": seconds / epochs}


def self_test():
    """The seed's pipeline gives each image as ToTensor() alone would: CHW floats in [0, 1], the
    pixel values / 255, with no normalisation (run by `make test`)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    images[0, :, 0, 0] = (0, 128, 255)
    dataset = ImageDataset(images, np.arange(4) % 2)
    for i in range(4):
        x, y = dataset[i]
        assert x.shape == (3, 32, 32) and y == i % 2
        assert torch.allclose(x, torch.from_numpy(images[i]).float() / 255.0), "pixels must be in [0, 1], as ToTensor gives them"
    print("reference.py self-test: the seed's pipeline is ToTensor only")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir")
    p.add_argument("--self-test", action="store_true", help="check the seed's data pipeline and exit")
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.001, help="Adam's learning rate (nas-host's default)")
    p.add_argument("--modes", default="dataloader,tensors")
    a = p.parse_args()
    if a.self_test:
        return self_test()
    if not a.data_dir:
        p.error("--data-dir is required")
    train, test = load_cifar(a.data_dir, a.classes)
    for mode in a.modes.split(","):
        print(json.dumps(run(mode, train, test, a.classes, a.epochs, a.seed, a.lr)), flush=True)


if __name__ == "__main__":
    main()
