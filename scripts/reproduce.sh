#!/usr/bin/env bash
# The reproduction of issue #24 (README "Results"): do the agents beat random on CIFAR-5?
# Resumable in both parts: every run is recorded in $OUT/PART.runs with its run id and, once its
# search and eval are through, in $OUT/PART.finished; rerunning skips what is finished and resumes
# what is not (`search --resume`; `eval` resumes its samples).
#
#   scripts/reproduce.sh table    Part 1, at the seed's budget on the benchmark table (seconds per
#                                 run): random / qlearning / ppo with `accuracy`, and ppo with
#                                 `size_penalty`, 2,700 episodes x 5 seeds each; eval (50 samples of
#                                 each frozen policy); compare with anytime plots. Then the check:
#                                 the TOP (5) best distinct architectures each configuration found
#                                 are trained for real at the proxy — into the table, by
#                                 bench/build_table.py, so they join it under its own protocol —
#                                 and at the seed's fidelity (25,000 images x 5 epochs), and
#                                 bench/table_check.py sets the search's answers beside both.
#   scripts/reproduce.sh real     Part 2, real training at the proxy (25,000 images x 2 epochs):
#                                 the same four configurations x 2 seeds at EPISODES each (default
#                                 12: about two hours of one core of this machine at ~70 s a
#                                 child), then eval (EVAL_SAMPLES, default 10) and compare. Then
#                                 every architecture it trained joins the benchmark table
#                                 (bench/build_table.py; skip with TABLE_ADD=0).
#
# The table's rows added by either part change the table file, so part 1 runs first, on the
# 1,000 uniform rollouts; a finished part-1 run is never resumed on the grown table (a resume
# would refuse it: the run records its table's checksum).
#
# Environment: NAS_HOST (default target/release/nas-host), NAS_DATA_DIR (cifar-10-batches-bin/),
# TABLE (default benchmarks/cifar5-25000x2.csv), OUT (default runs/reproduce), EPISODES, SEEDS,
# EVAL_SAMPLES, CHECK (0 skips part 1's real-training check), TOP (default 5), TABLE_ADD.
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
finished="$out/$part.finished"
touch "$state" "$finished"
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

# Trains the architectures of file $1 into the benchmark table at its proxy (skipping those it has).
add_to_table() {
  NAS_HOST="$bin" NAS_DATA_DIR="$data" ARCHS_FILE="$1" TABLE="$table" python3 bench/build_table.py
}

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
    elif ! grep -qx "$run" "$finished"; then
      "$bin" search --resume "$run" --db "$db" "${data_args[@]}" > /dev/null
    fi
    if ! grep -qx "$run" "$finished"; then
      "$bin" eval "$run" --samples "$samples" --db "$db" "${data_args[@]}" > "$out/$part-eval-$run.txt"
      echo "$run" >> "$finished"
    fi
    runs+=("$run")
  done
done
"$bin" compare "${runs[@]}" --db "$db" --plots "$out/$part-plots" --csv "$out/$part-compare.csv" | tee "$out/$part-compare.md"
ids="$(printf '%s\n' "${runs[@]}" | paste -sd, -)"

if [ "$part" = table ] && [ "${CHECK:-1}" = 1 ]; then
  # The table's verdict checked by real training: each configuration's TOP best distinct
  # architectures (by the answer the search got, recorded or predicted).
  top="$out/table-top.tsv"
  : > "$top"
  for entry in "${configs[@]}"; do
    read -r agent reward <<< "$entry"
    config_ids="$(awk -v a="$agent" -v r="$reward" -v e="$episodes" '$1 == a && $2 == r && $4 == e {print $5}' "$state" | paste -sd, -)"
    sqlite3 -separator $'\t' "$db" "SELECT '$agent', '$reward', e.architecture, MAX(e.accuracy), MAX(v.predicted)
        FROM episodes e JOIN evaluations v ON v.id = e.evaluation_id WHERE e.run_id IN ($config_ids)
        GROUP BY e.architecture ORDER BY MAX(e.accuracy) DESC LIMIT ${TOP:-5}" >> "$top"
  done
  cut -f3 "$top" | sort -u > "$out/table-top-archs.txt"
  # At the proxy, into the table (its protocol: seed 0, one thread).
  add_to_table "$out/table-top-archs.txt"
  # At the seed's fidelity (25,000 images x 5 epochs), same seed and threads.
  reference="$out/table-check-25000x5.jsonl"
  touch "$reference"
  while read -r arch; do
    # (Not `jq -e`: jq 1.6 exits 0 on an empty file.)
    [ "$(jq -s --arg a "$arch" 'any(.[]; .arch == $a)' "$reference")" = true ] && continue
    OMP_NUM_THREADS=1 "$bin" train-arch --dataset cifar5 --arch "$arch" --epochs 5 --seed 0 --data-dir "$data" --json |
      tail -n 1 | jq -c --arg a "$arch" '{arch: $a, accuracy, params, seconds}' >> "$reference"
  done < "$out/table-top-archs.txt"
  python3 bench/table_check.py "$top" "$table" "$reference" | tee "$out/table-check.md"
fi

if [ "$part" = real ] && [ "${TABLE_ADD:-1}" = 1 ]; then
  # Every architecture part 2 trained (episodes and eval samples) joins the benchmark table.
  sqlite3 "$db" "SELECT architecture FROM episodes WHERE run_id IN ($ids)
      UNION SELECT architecture FROM eval_samples WHERE run_id IN ($ids)" | sort -u > "$out/real-archs.txt"
  add_to_table "$out/real-archs.txt"
fi
