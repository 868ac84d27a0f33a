#!/usr/bin/env bash
# The hardware-aware search of issue #28 against an accuracy-only one at the same budget: two
# MNIST-3 searches (same agent, seed, episodes and protocol), one rewarded by `accuracy`, one by
# `latency_target` (MnasNet's soft constraint, w = -0.07, target TARGET_MS on this CPU). Prints each
# search's best-rewarded child with its accuracy and measured latency, the latency of all its
# children in its second half (what the agent converged towards), and writes the compare plots
# (accuracy vs latency / multiply-adds with each run's Pareto set) into bench-out/latency-search/.
#   EPISODES (default 30), EPOCHS (default 1), SEED (default 1), AGENT (default qlearning, with
#   its epsilon schedule scaled to the budget), TARGET_MS (default 0.5), TRAIN_SUBSET (training
#   images per child, default 3000 of 18623: a cheap proxy so both searches fit a short budget),
#   NAS_DATA_DIR (needs mnist/; default ../shared/data), BIN (default target/release/nas-host).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
PY="$CACHE_DIR/torch-venv/bin/python"
BIN="${BIN:-target/release/nas-host}"
EPISODES="${EPISODES:-30}"
EPOCHS="${EPOCHS:-1}"
SEED="${SEED:-1}"
AGENT="${AGENT:-qlearning}"
TARGET_MS="${TARGET_MS:-0.5}"
TRAIN_SUBSET="${TRAIN_SUBSET:-3000}"
OUT=bench-out/latency-search
mkdir -p "$OUT"
export NAS_DATA_DIR="${NAS_DATA_DIR:-../shared/data}"
$BIN datasets fetch mnist3 >/dev/null || { echo "needs MNIST in \$NAS_DATA_DIR/mnist" >&2; exit 1; }
db="$OUT/nas.sqlite"
rm -f "$db"
cat > "$OUT/search.toml" <<TOML
dataset = "mnist3"
evaluator = "train"
[train]
epochs = $EPOCHS
train_subset = $TRAIN_SUBSET
[plugins.qlearning]
budget = $EPISODES
[plugins.latency_target]
target_ms = $TARGET_MS
TOML
echo "latency search: MNIST-3, $AGENT seed $SEED, $EPISODES episodes, $EPOCHS epoch(s) on $TRAIN_SUBSET images, target $TARGET_MS ms, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for reward in accuracy latency_target; do
  start=$(date +%s)
  $BIN search --config "$OUT/search.toml" --agent "$AGENT" --reward "$reward" --episodes "$EPISODES" --seed "$SEED" \
    --device cpu --db "$db" --no-cache --json > "$OUT/$reward.jsonl"
  echo "$reward: $(( $(date +%s) - start )) s"
done
$BIN compare 1 2 --db "$db" --plots "$OUT" > "$OUT/compare.md"
$BIN report 2 --db "$db" --out "$OUT/report-latency_target" > /dev/null
"$PY" - "$db" <<'PYEOF'
import json, sqlite3, statistics, sys
c = sqlite3.connect(sys.argv[1])
runs = c.execute("SELECT id FROM runs ORDER BY id").fetchall()
for (run,) in runs:
    rows = c.execute(
        "SELECT e.idx, e.reward, v.accuracy, v.latency_ms, v.mult_adds, e.architecture FROM episodes e "
        "JOIN evaluations v ON v.id = e.evaluation_id WHERE e.run_id = ? ORDER BY e.idx", (run,)).fetchall()
    ok = [r for r in rows if r[3] is not None]
    best = max(ok, key=lambda r: r[1])
    half = ok[len(ok) // 2:]
    print(f"run {run}: best-rewarded `{best[5]}` accuracy {best[2]:.4f} latency {best[3]:.4f} ms "
          f"({best[4]:,} multiply-adds); second half: median latency {statistics.median(r[3] for r in half):.4f} ms, "
          f"median accuracy {statistics.median(r[2] for r in half):.4f} ({len(half)} children)")
PYEOF
sed -n '/Accuracy and cost/,$p' "$OUT/compare.md" | head -30
