#!/usr/bin/env python3
"""Checks the benchmark table's verdict by real training (scripts/reproduce.sh table, issue #24).

    bench/table_check.py TOP.tsv TABLE.csv REFERENCE.jsonl

TOP.tsv: per configuration, its best distinct architectures as the search saw them (agent, reward,
architecture, the answer the search got, 1 if the surrogate predicted it). TABLE.csv: the benchmark
table, which by now records each of them trained at the proxy (bench/build_table.py). REFERENCE.jsonl:
the same architectures trained at the seed's fidelity (25,000 images x 5 epochs).

Prints, as Markdown, every architecture with the three accuracies, then per configuration the mean
of its architectures' real accuracies (proxy and seed's fidelity), and how far the surrogate's
predictions were from the real proxy accuracy: an agent searching a surrogate can steer towards
its over-estimates, which this shows.
"""
import csv
import json
import statistics
import sys


def main() -> int:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    top_path, table_path, reference_path = sys.argv[1:]
    with open(table_path, newline="") as f:
        proxy: dict[str, list[float]] = {}
        for row in csv.DictReader(f):
            proxy.setdefault(row["architecture"], []).append(float(row["accuracy"]))
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
            })

    def fmt(x):
        return "—" if x is None else f"{x:.4f}"

    print("| configuration | architecture | search's answer | real, proxy (25,000 × 2) | real, seed's fidelity (25,000 × 5) |")
    print("|---|---|---|---|---|")
    for r in rows:
        kind = "predicted" if r["predicted"] else "recorded"
        print(f"| {r['config']} | `{r['arch']}` | {r['answer']:.4f} ({kind}) | {fmt(r['proxy'])} | {fmt(r['reference'])} |")
    print()
    print("| configuration | archs | mean search answer | mean real proxy | mean real seed's fidelity | predicted: mean (answer − real proxy) |")
    print("|---|---|---|---|---|---|")
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        proxies = [r["proxy"] for r in mine if r["proxy"] is not None]
        references = [r["reference"] for r in mine if r["reference"] is not None]
        errors = [r["answer"] - r["proxy"] for r in mine if r["predicted"] and r["proxy"] is not None]
        print(
            f"| {config} | {len(mine)} | {statistics.mean(r['answer'] for r in mine):.4f} "
            f"| {fmt(statistics.mean(proxies) if proxies else None)} "
            f"| {fmt(statistics.mean(references) if references else None)} "
            f"| {f'{statistics.mean(errors):+.4f} (n={len(errors)})' if errors else '—'} |"
        )
    missing = [r["arch"] for r in rows if r["proxy"] is None or r["reference"] is None]
    if missing:
        print(f"\n{len(missing)} architecture(s) not yet trained for real: rerun scripts/reproduce.sh table.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
