#!/usr/bin/env bash
# Compares the three agents on the synthetic evaluator (optimum 1.0): mean reward of the last 100
# episodes, the first episode that reaches 95% of the optimum, and the first episode at which the
# 100-episode moving average does. Usage: scripts/compare-synthetic.sh [EPISODES] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
episodes="${1:-3000}"
seed="${2:-0}"
db="$(mktemp -d)/synthetic.sqlite"
echo "| agent | mean reward, last 100 | best reward | first episode ≥ 0.95 | first episode with 100-episode mean ≥ 0.95 | wall time |"
echo "|---|---|---|---|---|---|"
for agent in random qlearning ppo; do
  start=$(date +%s.%N)
  target/release/nas-host search --config configs/synthetic.toml --agent "$agent" --episodes "$episodes" \
    --seed "$seed" --db "$db" --no-cache --json > "$db.$agent.jsonl"
  end=$(date +%s.%N)
  python3 - "$db.$agent.jsonl" "$agent" "$start" "$end" <<'PY'
import json, sys
rewards = [json.loads(l)["reward"] for l in open(sys.argv[1])]
last = sum(rewards[-100:]) / min(100, len(rewards))
first = next((i for i, r in enumerate(rewards) if r >= 0.95), None)
ma = next((i for i in range(99, len(rewards)) if sum(rewards[i - 99:i + 1]) / 100 >= 0.95), None)
fmt = lambda v: "not within the run" if v is None else str(v)
print(f"| {sys.argv[2]} | {last:.3f} | {max(rewards):.3f} | {fmt(first)} | {fmt(ma)} | {float(sys.argv[4]) - float(sys.argv[3]):.1f} s |")
PY
done
