#!/usr/bin/env python3
"""Builds the CIFAR-5 benchmark table (issue #24; README "Results", BENCHMARKS.md "Benchmark table").

Trains every architecture of bench/table-archs.txt at the chosen proxy fidelity (bench/fidelity.sh
picked it: the cheapest with Spearman rho >= 0.8 against the seed's 25,000 images x 5 epochs) with
`nas-host train-arch`, one child at a time, and appends one CSV row per architecture to the table
(`--evaluator table:FILE` reads it): architecture, accuracy, params, mult_adds, seconds, dataset,
protocol. Resumes: architectures already in the table are skipped, so rerun the same command after
a kill, a reboot or a session's end. A diverged child is a row (accuracy 0, as a search scores it);
a crash without a result is not, and is tried again on the next run.

Environment: NAS_HOST (default target/release/nas-host; NAS_HOST.commit names its commit),
NAS_DATA_DIR (directory with cifar-10-batches-bin/), PROXY (IMAGESxEPOCHS, default 25000x2),
THREADS (libtorch threads per child, default 1), ARCHS_FILE, TABLE, LIMIT (stop after this many new
rows; default all), SEED (the training seed, default 0; another seed's rows go in a table of their
own — by default benchmarks/cifar5-PROXY-seedSEED.csv — as a table is one protocol's record:
BENCHMARKS.md "Benchmark table" measures seed noise so), SHARD (K/N: train only the K-th of every N
architectures of ARCHS_FILE, counting from 0, so N builds, one per core, share the table; default
0/1).

Builds append to the same table under a lock held while a row is written, and each checks the
table again before training an architecture and before writing its row, so builds of other shards,
other architecture files or another N never write an architecture twice. Each (architecture file,
shard) takes its own process lock, so the same one is never built twice at once. A row's protocol
does not name the shard: every child trains alone on THREADS threads whatever runs beside it.
"""
import csv
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ["architecture", "accuracy", "params", "mult_adds", "seconds", "dataset", "protocol"]
FULL = 25000  # CIFAR-5's whole training split


class RowLock:
    """The table's write lock: held while the header or one row is written, so shards never interleave."""

    def __init__(self, table: Path):
        self.path = f"{table}.lock"

    def __enter__(self):
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def recorded(table: Path, locked: bool = False) -> tuple[set[str], set[str]]:
    """The architectures in the table, and the training seeds (`seedN`) its protocols name. Read
    under the table's write lock (`locked`: the caller holds it), so no half-written row is read."""
    def read():
        with table.open(newline="") as f:
            rows = list(csv.DictReader(f))
        seeds = {word for row in rows for word in row["protocol"].split() if word.startswith("seed")}
        return {row["architecture"] for row in rows}, seeds
    if locked:
        return read()
    with RowLock(table):
        return read()


def main() -> int:
    binary = os.environ.get("NAS_HOST", str(ROOT / "target/release/nas-host"))
    data = os.environ.get("NAS_DATA_DIR", str(Path.home() / ".cache/nas-host/data"))
    proxy = os.environ.get("PROXY", "25000x2")
    threads = os.environ.get("THREADS", "1")
    seed = int(os.environ.get("SEED", "0"))
    archs_file = Path(os.environ.get("ARCHS_FILE", ROOT / "bench/table-archs.txt"))
    default_table = f"benchmarks/cifar5-{proxy}.csv" if seed == 0 else f"benchmarks/cifar5-{proxy}-seed{seed}.csv"
    table = Path(os.environ.get("TABLE", ROOT / default_table))
    limit = int(os.environ.get("LIMIT", "0")) or None
    shard, shards = (int(x) for x in os.environ.get("SHARD", "0/1").split("/"))
    if not 0 <= shard < shards:
        sys.exit(f"SHARD={shard}/{shards}: K must be in 0..N-1")
    images, epochs = (int(x) for x in proxy.split("x"))
    commit_file = Path(binary + ".commit")
    commit = commit_file.read_text().strip() if commit_file.exists() else "unknown"
    if not Path(data, "cifar-10-batches-bin", "test_batch.bin").exists():
        sys.exit(f"no CIFAR-10 in {data} (set NAS_DATA_DIR; ../shared/data/prepare-cifar10 DIR writes it)")
    protocol = f"cifar5 {proxy} relu lr0.001 batch100 per-channel seed{seed} threads{threads} nas-host {commit}"

    archs = [l.strip() for l in archs_file.read_text().splitlines() if l.strip() and not l.startswith("#")]
    table.parent.mkdir(parents=True, exist_ok=True)
    shard_lock = open(f"{table}.{archs_file.stem}.shard{shard}of{shards}.lock", "w")
    try:
        fcntl.flock(shard_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"another build_table.py is building shard {shard}/{shards} of {archs_file} into {table}")
    with RowLock(table):
        if not table.exists():
            with table.open("w", newline="") as f:
                csv.DictWriter(f, FIELDS).writeheader()
    done, seeds = recorded(table)
    if seeds - {f"seed{seed}"}:
        sys.exit(f"{table} holds rows of {', '.join(sorted(seeds))}, not seed{seed}: a table is one protocol's "
                 f"record; give SEED={seed} a TABLE of its own")
    todo = [a for i, a in enumerate(archs) if i % shards == shard and a not in done]
    print(f"{time.strftime('%FT%T')} {len(done)} rows in {table}, {len(todo)} to train at {proxy} "
          f"(shard {shard}/{shards}); {protocol}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    added = errors = 0
    for i, arch in enumerate(todo):
        if limit is not None and added >= limit:
            break
        if arch in recorded(table)[0]:
            continue  # another build trained it meanwhile
        cmd = [binary, "train-arch", "--dataset", "cifar5", "--arch", arch, "--epochs", str(epochs),
               "--seed", str(seed), "--data-dir", data, "--json"]
        if images != FULL:
            cmd += ["--train-subset", str(images)]
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = run.stdout.strip().splitlines()
        try:
            result = json.loads(lines[-1])
            assert isinstance(result.get("accuracy"), (int, float))
            assert run.returncode == 0 or result.get("failure")
        except (IndexError, ValueError, AssertionError):
            errors += 1
            print(f"{time.strftime('%FT%T')} ERROR: no result for {arch} (exit {run.returncode}): {run.stderr.strip()[-300:]}", flush=True)
            continue
        shape = json.loads(subprocess.run([binary, "show-arch", "--dataset", "cifar5", arch, "--json"],
                                          capture_output=True, text=True, check=True).stdout)
        row = {
            "architecture": arch,
            "accuracy": result["accuracy"],
            "params": result["params"],
            "mult_adds": sum(r["mult_adds"] for r in shape["rows"]),
            "seconds": round(result["seconds"], 3),
            "dataset": "cifar5",
            "protocol": protocol,
        }
        with RowLock(table):
            if arch in recorded(table, locked=True)[0]:
                print(f"{time.strftime('%FT%T')} {arch}: another build wrote it first; this result is dropped", flush=True)
                continue
            with table.open("a", newline="") as f:
                csv.DictWriter(f, FIELDS).writerow(row)
        added += 1
        print(f"{time.strftime('%FT%T')} [shard {shard}/{shards}: {added}/{len(todo)}] {arch}: accuracy {row['accuracy']:.4f}, {row['seconds']:.1f} s", flush=True)
    print(f"{time.strftime('%FT%T')} build_table.py: {added} rows added, {errors} errors", flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
