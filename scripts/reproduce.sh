#!/usr/bin/env bash
# The reproduction of issue #24 (README "Results"): do the agents beat random on CIFAR-5?
# Resumable in both parts: every run is recorded in $STATE with its run id; rerunning skips what is
# finished and resumes what is not (`search --resume`, `eval` resumes its samples).
#
#   scripts/reproduce.sh table    Part 1, at the seed's budget on the benchmark table (seconds per
#                                 run): random / qlearning / ppo with `accuracy`, and ppo with
#                                 `size_penalty`, 2,700 episodes x 5 seeds each; eval (50 samples of
#                                 each frozen policy); compare with anytime plots; then the top 5
#                                 architectures each configuration found trained for real at the
#                                 proxy and at the seed's fidelity, to check the table's verdict.
#   scripts/reproduce.sh real     Part 2, real training at the proxy (25,000 images x 2 epochs):
#                                 the same four configurations x 2 seeds at EPISODES each (default
#                                 12: about two hours of this 2-core machine at ~70 s a child),
#                                 then eval (EVAL_SAMPLES, default 10) and compare.
#
# Environment: NAS_HOST (default target/release/nas-host), NAS_DATA_DIR (cifar-10-batches-bin/),
# TABLE (default benchmarks/cifar5-25000x2.csv), OUT (default runs/reproduce), EPISODES, SEEDS,
# EVAL_SAMPLES, CHECK (0 skips part 1's real-training check).
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:?usage: scripts/reproduce.sh table|real}"
bin="${NAS_HOST:-target/release/nas-host}"
data="${NAS_DATA_DIR:-$HOME/.cache/nas-host/data}"
table="${TABLE:-benchmarks/cifar5-25000x2.csv}"
out="${OUT:-runs/reproduce}"
mkdir -p "$out"
db="$out/$part.sqlite"
state="$out/$part.runs"
touch "$state"
configs=("random accuracy" "qlearning accuracy" "ppo accuracy" "ppo size_penalty")

case "$part" in
  table)
    episodes="${EPISODES:-2700}"; seeds="${SEEDS:-1 2 3 4 5}"; samples="${EVAL_SAMPLES:-50}"
    [ -f "$table" ] || { echo "no benchmark table at $table (bench/build_table.py builds it)" >&2; exit 1; }
    evaluator=(--evaluator "table:$table" --epochs 2); data_args=() ;;
  real)
    episodes="${EPISODES:-12}"; seeds="${SEEDS:-1 2}"; samples="${EVAL_SAMPLES:-10}"
    evaluator=(--evaluator train --epochs 2); data_args=(--data-dir "$data") ;;
  *) echo "usage: scripts/reproduce.sh table|real" >&2; exit 2 ;;
esac

# Q-learning's ε schedule spans the seed's 2,700 episodes; `budget` scales it to this run's.
config="$out/$part-qlearning.toml"
printf '[plugins.qlearning]\nbudget = %s\n' "$episodes" > "$config"

runs=()
for entry in "${configs[@]}"; do
  read -r agent reward <<< "$entry"
  for seed in $seeds; do
    key="$agent $reward $seed $episodes"
    run="$(awk -v k="$key" '$1" "$2" "$3" "$4 == k {print $5}' "$state")"
    if [ -z "$run" ]; then
      run="$("$bin" search --config "$config" --dataset cifar5 --agent "$agent" --reward "$reward" \
        --seed "$seed" --episodes "$episodes" "${evaluator[@]}" "${data_args[@]}" --db "$db" --json \
        | jq -r 'select(.run != null) | .run' | tail -n 1)"
      echo "$key $run" >> "$state"
    else
      "$bin" search --resume "$run" --db "$db" "${data_args[@]}" > /dev/null
    fi
    "$bin" eval "$run" --samples "$samples" --db "$db" "${data_args[@]}" > "$out/$part-eval-$run.txt"
    runs+=("$run")
  done
done
"$bin" compare "${runs[@]}" --db "$db" --plots "$out/$part-plots" --csv "$out/$part.csv" | tee "$out/$part-compare.md"

if [ "$part" = table ] && [ "${CHECK:-1}" = 1 ]; then
  # The table's verdict checked by real training: each configuration's 5 best distinct
  # architectures, at the proxy and at the seed's fidelity (25,000 images x 5 epochs).
  check="$out/table-check.jsonl"
  touch "$check"
  for entry in "${configs[@]}"; do
    read -r agent reward <<< "$entry"
    ids="$(awk -v a="$agent" -v r="$reward" '$1 == a && $2 == r {print $5}' "$state" | paste -sd, -)"
    sqlite3 "$db" "SELECT architecture FROM episodes WHERE run_id IN ($ids) GROUP BY architecture ORDER BY MAX(accuracy) DESC LIMIT 5" |
    while read -r arch; do
      for epochs in 2 5; do
        jq -e --arg a "$arch" --argjson e "$epochs" 'select(.arch == $a and .epochs == $e)' "$check" > /dev/null 2>&1 && continue
        OMP_NUM_THREADS=1 "$bin" train-arch --dataset cifar5 --arch "$arch" --epochs "$epochs" --data-dir "$data" --json |
          tail -n 1 | jq -c --arg agent "$agent" --arg reward "$reward" --arg a "$arch" --argjson e "$epochs" \
            '{agent: $agent, reward: $reward, arch: $a, epochs: $e, accuracy, params, seconds}' >> "$check"
      done
    done
  done
  echo "real-training check of the table's best: $check"
fi
