#!/usr/bin/env bash
# The assessor benchmark (`make bench-assessor`): the same MNIST-3 search — PPO, seed 1, 5 epochs per
# child — without an assessor and with median_stop (its defaults: 5 completed children, stops from
# epoch 1). Reports each side's total training seconds (the children's own training time, summed
# from the store), wall time, children stopped, and the accuracy of the best architecture found;
# a best architecture that was stopped is retrained fully with `train-arch` (same protocol and
# seed), so both sides' figures are full-training accuracies. One search per side: with the
# assessor the agent sees other rewards and designs other children, which is the comparison a user
# makes. Results land in bench-out/assessor.jsonl and on stdout.
#   EPISODES (default 18), SEED (default 1), NAS_DATA_DIR (needs mnist/; default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
PY="$CACHE_DIR/torch-venv/bin/python"
BIN="${BIN:-target/release/nas-host}"
EPISODES="${EPISODES:-18}"
SEED="${SEED:-1}"
OUT=bench-out
mkdir -p "$OUT"
export NAS_DATA_DIR="${NAS_DATA_DIR:-../shared/data}"
$BIN datasets fetch mnist3 >/dev/null || { echo "the assessor benchmark needs MNIST in \$NAS_DATA_DIR/mnist" >&2; exit 1; }

echo "assessor benchmark: MNIST-3, PPO seed $SEED, $EPISODES episodes, 5 epochs per child, $(nproc) cores"
: > "$OUT/assessor.jsonl"
for assessor in none median_stop; do
  dir=$(mktemp -d)
  start=$(date +%s%N)
  $BIN search --dataset mnist3 --agent ppo --reward accuracy --assessor "$assessor" --episodes "$EPISODES" \
    --epochs 5 --seed "$SEED" --device cpu --db "$dir/nas.sqlite" --json > "$dir/episodes.jsonl"
  end=$(date +%s%N)
  "$PY" - "$dir/nas.sqlite" "$assessor" $(( (end - start) / 1000000 )) "$BIN" >> "$OUT/assessor.jsonl" <<'PYEOF'
import json, sqlite3, subprocess, sys
db, assessor, wall_ms, binary = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = sqlite3.connect(db)
trained, train_s, measure_s, stopped = c.execute(
    "SELECT COUNT(*), SUM(seconds), SUM(measure_seconds), SUM(stopped) FROM evaluations").fetchone()
arch, reward, accuracy, was_stopped = c.execute(
    "SELECT e.architecture, e.reward, e.accuracy, v.stopped FROM episodes e JOIN evaluations v ON v.id = e.evaluation_id "
    "ORDER BY e.reward DESC, e.idx LIMIT 1").fetchone()
full = accuracy
if was_stopped:
    out = subprocess.run([binary, "train-arch", "--arch", arch, "--dataset", "mnist3", "--epochs", "5", "--json"],
                         check=True, capture_output=True, text=True).stdout
    full = json.loads(out)["accuracy"]
print(json.dumps({"assessor": assessor, "wall_s": wall_ms / 1000, "children_trained": trained, "stopped": stopped,
                  "train_s": train_s, "measure_s": measure_s, "best": arch, "best_search_accuracy": accuracy,
                  "best_was_stopped": bool(was_stopped), "best_full_accuracy": full}))
PYEOF
  rm -rf "$dir"
  echo "  $assessor done"
done

"$PY" - "$OUT/assessor.jsonl" <<'PYEOF'
import json, sys
rows = {r["assessor"]: r for r in map(json.loads, open(sys.argv[1]))}
a, b = rows["none"], rows["median_stop"]
print("| assessor | children trained | stopped | training s | of which measuring s | wall s | best architecture | its accuracy (5 epochs) |")
print("|---|---|---|---|---|---|---|---|")
for r in (a, b):
    note = " (stopped in the search; retrained fully)" if r["best_was_stopped"] else ""
    print(f"| {r['assessor']} | {r['children_trained']} | {r['stopped']} | {r['train_s']:.1f} | {r['measure_s']:.1f} | {r['wall_s']:.1f} | `{r['best']}` | {r['best_full_accuracy']:.4f}{note} |")
print(f"\ntraining seconds median_stop / none: {b['train_s'] / a['train_s']:.2f}; "
      f"best accuracy median_stop − none: {b['best_full_accuracy'] - a['best_full_accuracy']:+.4f}")
PYEOF
