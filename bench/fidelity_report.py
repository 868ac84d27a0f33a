#!/usr/bin/env python3
"""The fidelity table (issue #24; BENCHMARKS.md, "Fidelity") from bench/fidelity.sh's results.

For every fidelity (training images x epochs) it compares each architecture's accuracy with the
same architecture's accuracy at the reference fidelity (25,000 x 5, the seed's), over the
architectures that have both rows: Spearman rho (with a 95% interval, Fisher's z with Bonett and
Wright's standard error) and Kendall tau (tau-b), both from scipy; mean seconds per child (all
children of that fidelity) and that cost as a fraction of the reference's on the architectures
that have both. Failed children
count with accuracy 0, as a search scores them. Works on partial results; then it says how many
architectures each figure rests on.

    python3 bench/fidelity_report.py [bench/results/fidelity.jsonl] [--reference 25000x5] [--min-n 10]

Needs scipy (e.g. a venv: python3 -m venv ~/.cache/nas-host/fidelity-venv &&
~/.cache/nas-host/fidelity-venv/bin/pip install scipy).
"""
import argparse
import json
import math
import statistics
import sys
from collections import defaultdict

from scipy.stats import kendalltau, spearmanr


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a cut line; fidelity.sh reruns that child
            if r.get("accuracy") is None:
                continue
            rows[(r["arch"], r["fidelity"])] = r  # a later row for the same key wins
    return rows


def rho_interval(rho, n):
    """95% interval of Spearman's rho: Fisher's z with Bonett and Wright's (2000) standard error."""
    if n <= 3 or abs(rho) >= 1:
        return (float("nan"), float("nan"))
    z = math.atanh(rho)
    se = math.sqrt((1 + rho * rho / 2) / (n - 3))
    return (math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se))


def cost(fid):
    images, epochs = fid.split("x")
    return int(images) * int(epochs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", default="bench/results/fidelity.jsonl")
    ap.add_argument("--reference", default="25000x5")
    ap.add_argument("--threshold", type=float, default=0.8, help="rho a proxy must reach (default 0.8)")
    ap.add_argument("--min-n", type=int, default=10, help="architectures a verdict needs (default 10)")
    args = ap.parse_args()

    rows = load(args.results)
    by_fid = defaultdict(dict)
    for (arch, fid), r in rows.items():
        by_fid[fid][arch] = r
    ref = by_fid.get(args.reference, {})
    archs = {a for a, _ in rows}
    commits = sorted({r.get("binary_commit", "unknown") for r in rows.values()})
    threads = sorted({r.get("threads") for r in rows.values()}, key=str)
    print(
        f"{len(rows)} children in {args.results}: {len(archs)} architectures, "
        f"{len(ref)} with the reference {args.reference}; binary commit(s) {', '.join(commits)}; "
        f"libtorch threads {', '.join(map(str, threads))}\n"
    )
    print("| fidelity (images × epochs) | archs with both | Spearman ρ (95% interval) | Kendall τ | mean s/child | cost vs reference (same archs) |")
    print("|---|---|---|---|---|---|")
    results = []
    for fid in sorted(by_fid, key=cost):
        mine = by_fid[fid]
        both = sorted(set(mine) & set(ref))
        secs = statistics.mean(r["seconds"] for r in mine.values())
        if fid == args.reference:
            print(f"| {fid} (reference) | {len(mine)} | – | – | {secs:.1f} | 1.00× |")
            continue
        if len(both) < 3:
            print(f"| {fid} | {len(both)} | – | – | {secs:.1f} (n={len(mine)}) | – |")
            continue
        x = [mine[a]["accuracy"] for a in both]
        y = [ref[a]["accuracy"] for a in both]
        rho = spearmanr(x, y).statistic
        tau = kendalltau(x, y).statistic
        both_secs = statistics.mean(mine[a]["seconds"] for a in both)
        ref_secs = statistics.mean(ref[a]["seconds"] for a in both)
        ratio = both_secs / ref_secs
        results.append((fid, len(both), rho, tau, ratio))
        lo, hi = rho_interval(rho, len(both))
        print(f"| {fid} | {len(both)} | {rho:.3f} ({lo:.2f} to {hi:.2f}) | {tau:.3f} | {secs:.1f} | {ratio:.2f}× |")
    print()
    if ref:
        accs = sorted(r["accuracy"] for r in ref.values())
        failed = sum(1 for r in ref.values() if r.get("failure"))
        print(
            f"Reference accuracies: {accs[0]:.4f} to {accs[-1]:.4f} (median {statistics.median(accs):.4f}); "
            f"{failed} failed children. Seconds: each child's own training and evaluation time.\n"
        )
    ok = [r for r in results if r[1] >= args.min_n]
    passing = [r for r in ok if r[2] >= args.threshold]
    if passing:
        fid, n, rho, _, ratio = min(passing, key=lambda r: cost(r[0]))
        print(f"Cheapest proxy with ρ ≥ {args.threshold}: {fid} (ρ {rho:.3f} over {n} architectures, {ratio:.2f}× the reference's cost).")
    elif ok:
        fid, n, rho, _, ratio = max(ok, key=lambda r: r[2])
        print(f"No proxy reaches ρ ≥ {args.threshold}; the best found is {fid} (ρ {rho:.3f} over {n} architectures, {ratio:.2f}× the reference's cost).")
    else:
        print(f"No verdict yet: no fidelity has {args.min_n} architectures with the reference.")
    missing = sorted({f for f in ["2500x1", "5000x1", "5000x2"] if f not in by_fid})
    if missing:
        print(f"Not measured yet: {', '.join(missing)} (training-set subsets need a binary with --train-subset).")


if __name__ == "__main__":
    sys.exit(main())
