"""Shared fixtures: the nas-host binary (the CLI side of every comparison) and small data."""

import os
import pathlib
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def nas_host_bin() -> str:
    """The CLI the tests compare the package with: $NAS_HOST, else the repository's build."""
    path = os.environ.get("NAS_HOST") or str(REPO / "target" / "release" / "nas-host")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no nas-host binary at {path}: run `make build` (or set NAS_HOST)")
    return path


@pytest.fixture
def cli(nas_host_bin, tmp_path):
    """Runs the CLI with the repository's plugins and returns its stdout."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [nas_host_bin, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "NAS_LOG": "warn"},
        )
        assert done.returncode == 0, f"nas-host {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory) -> pathlib.Path:
    """A 3-class, 16×16 grey dataset whose classes differ in where a bright square sits, small
    enough to train a child in about a second."""
    rng = np.random.default_rng(7)

    def images(count):
        labels = rng.integers(0, 3, size=count)
        x = rng.integers(0, 60, size=(count, 16, 16), dtype=np.uint8)
        for i, label in enumerate(labels):
            row = 2 + 5 * int(label)
            x[i, row : row + 4, 4:12] = 220
        return x, labels.astype(np.uint8)

    x_train, y_train = images(300)
    x_test, y_test = images(90)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path
