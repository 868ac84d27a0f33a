#!/usr/bin/env python3
"""How well one benchmark table's accuracies agree with another's on the architectures both hold.

    bench/table_agreement.py A.csv B.csv

With B the same architectures trained with another seed (bench/build_table.py SEED=1), this is the
ceiling for any surrogate of A: no predictor of seed 0's accuracies can beat seed 1's run of the
very same architecture by much. Prints n, Kendall's τ-b, Spearman's ρ and the mean absolute
difference; no dependencies beyond Python.
"""
import csv
import statistics
import sys


def accuracies(path: str) -> dict[str, float]:
    rows: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["architecture"], []).append(float(row["accuracy"]))
    return {arch: statistics.mean(values) for arch, values in rows.items()}


def kendall_tau_b(x: list[float], y: list[float]) -> float:
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            ties_x += dx == 0
            ties_y += dy == 0
            if dx and dy:
                if (dx > 0) == (dy > 0):
                    concordant += 1
                else:
                    discordant += 1
    pairs = len(x) * (len(x) - 1) // 2
    return (concordant - discordant) / ((pairs - ties_x) * (pairs - ties_y)) ** 0.5


def ranks(values: list[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions), as Spearman's ρ needs."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2
        i = j + 1
    return result


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = accuracies(sys.argv[1]), accuracies(sys.argv[2])
    common = [arch for arch in a if arch in b]
    if len(common) < 3:
        sys.exit(f"{len(common)} architectures in both tables: too few to compare")
    x, y = [a[arch] for arch in common], [b[arch] for arch in common]
    rho = statistics.correlation(ranks(x), ranks(y))
    mad = statistics.mean(abs(p - q) for p, q in zip(x, y))
    print(f"{len(common)} architectures in both: Kendall τ-b {kendall_tau_b(x, y):.3f}, "
          f"Spearman ρ {rho:.3f}, mean |difference| {mad:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
