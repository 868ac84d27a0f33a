#!/usr/bin/env python3
"""Checks the benchmark table's verdict by real training (scripts/reproduce.sh table, issue #24).

    bench/table_check.py TOP.tsv TABLE.csv REFERENCE.jsonl [OTHER_SEED.csv]

TOP.tsv: per configuration, its best distinct architectures as the search saw them (agent, reward,
architecture, the answer the search got, 1 if the surrogate predicted it). TABLE.csv: the benchmark
table, which by now records each of them trained at the proxy (bench/build_table.py). REFERENCE.jsonl:
the same architectures trained at the seed's fidelity (25,000 images x 5 epochs). OTHER_SEED.csv: the
same architectures retrained at the proxy with another training seed (`SEED=1 bench/build_table.py`).

Prints, as Markdown, every architecture with its accuracies, then per configuration the mean of its
architectures' real accuracies, how far the surrogate's predictions were from the real proxy
accuracy (an agent searching a surrogate can steer towards its over-estimates), and how far every
answer was from another seed's training. That last one measures the winner's curse: a search keeps
the rows that trained lucky, and a recorded row's answer is exactly the table's, so only retraining
under another seed shows how much of the found accuracy was noise.
"""
import csv
import json
import statistics
import sys


def read_table(path: str) -> dict[str, list[float]]:
    """A benchmark table's accuracies by architecture (a list: a table may hold repeats)."""
    table: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            table.setdefault(row["architecture"], []).append(float(row["accuracy"]))
    return table


def mean(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def signed(differences: list[float]) -> str:
    return f"{statistics.mean(differences):+.4f} (n={len(differences)})" if differences else "—"


def main() -> int:
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    top_path, table_path, reference_path = sys.argv[1:4]
    proxy = read_table(table_path)
    other_seed = read_table(sys.argv[4]) if len(sys.argv) == 5 else {}
    reference = {}
    with open(reference_path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                reference[r["arch"]] = r["accuracy"]
    rows = []
    with open(top_path, newline="") as f:
        for agent, reward, arch, answer, predicted in csv.reader(f, delimiter="\t"):
            real = proxy.get(arch)
            rows.append({
                "config": agent if reward == "accuracy" else f"{agent} + {reward}",
                "arch": arch,
                "answer": float(answer),
                "predicted": predicted == "1",
                "proxy": statistics.mean(real) if real else None,
                "reference": reference.get(arch),
                "other_seed": statistics.mean(other_seed[arch]) if arch in other_seed else None,
            })

    def fmt(x):
        return "—" if x is None else f"{x:.4f}"

    print("| configuration | architecture | search's answer | real, proxy (25,000 × 2) | real, proxy, another seed | real, seed's fidelity (25,000 × 5) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        kind = "predicted" if r["predicted"] else "recorded"
        print(f"| {r['config']} | `{r['arch']}` | {r['answer']:.4f} ({kind}) | {fmt(r['proxy'])} | {fmt(r['other_seed'])} "
              f"| {fmt(r['reference'])} |")
    print()
    print("| configuration | archs | mean search answer | mean real proxy | mean real proxy, another seed | mean real seed's fidelity "
          "| predicted: mean (answer − real proxy) | mean (answer − another seed) |")
    print("|---|---|---|---|---|---|---|---|")
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        proxies = [r["proxy"] for r in mine if r["proxy"] is not None]
        references = [r["reference"] for r in mine if r["reference"] is not None]
        others = [r["other_seed"] for r in mine if r["other_seed"] is not None]
        errors = [r["answer"] - r["proxy"] for r in mine if r["predicted"] and r["proxy"] is not None]
        curse = [r["answer"] - r["other_seed"] for r in mine if r["other_seed"] is not None]
        print(
            f"| {config} | {len(mine)} | {statistics.mean(r['answer'] for r in mine):.4f} "
            f"| {fmt(mean(proxies))} | {fmt(mean(others))} | {fmt(mean(references))} "
            f"| {signed(errors)} | {signed(curse)} |"
        )
    missing = [r["arch"] for r in rows if r["proxy"] is None or r["reference"] is None
               or (len(sys.argv) == 5 and r["other_seed"] is None)]
    if missing:
        print(f"\n{len(missing)} architecture(s) not yet trained for real: rerun scripts/reproduce.sh table.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
