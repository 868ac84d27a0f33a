#!/usr/bin/env bash
# The reproduction of issue #24 (README "Results"): do the agents beat random on CIFAR-5?
# Resumable in both parts: every run is recorded in $OUT/PART.runs with its run id as soon as its
# first episode is (also when the search then fails or is killed) and, once its eval is through,
# in $OUT/PART.finished; rerunning skips what is finished and resumes what is not (`search
# --resume` unless the store says the search finished; `eval` resumes its samples).
#
#   scripts/reproduce.sh table    Part 1, at the seed's budget on the benchmark table (seconds per
#                                 run): random / qlearning / ppo with `accuracy`, and ppo with
#                                 `size_penalty`, 2,700 episodes x 5 seeds each; eval (50 samples of
#                                 each frozen policy); compare with anytime plots. Then the check:
#                                 the TOP (5) best distinct architectures each configuration found
#                                 are trained for real at the proxy — into the table, by
#                                 bench/build_table.py, so they join it under its own protocol —
#                                 at the proxy again with training seed 1 (into a table of that
#                                 seed's rows, OTHER_SEED_TABLE: how much of what the search found
#                                 was a lucky training), and at the seed's fidelity (25,000
#                                 images x 5 epochs); bench/table_check.py sets the search's
#                                 answers beside all three.
#   scripts/reproduce.sh real     Part 2, real training at the proxy (25,000 images x 2 epochs):
#                                 the same four configurations x 2 seeds at EPISODES each (default
#                                 24: about two hours of one core of this machine — 12 took 57
#                                 minutes with eval, ~23 s a child, on 2026-12-02), then eval
#                                 (EVAL_SAMPLES, default 10) and compare, each child on THREADS
#                                 libtorch threads (default 1: one core, as the table's rows were
#                                 trained, leaving the other to a table build). Then
#                                 every architecture it trained joins the benchmark table
#                                 (bench/build_table.py; skip with TABLE_ADD=0).
#
# The table's rows added by either part change the table file, so part 1 runs first, on the
# finished table of 1,000 uniform rollouts (it refuses to start on fewer rows, or while a
# build_table.py shard holds the table, unless PARTIAL=1); a finished part-1 run is never resumed
# on the grown table (a resume would refuse it: the run records its table's checksum).
#
# Environment: NAS_HOST (default target/release/nas-host), NAS_DATA_DIR (cifar-10-batches-bin/),
# TABLE (default benchmarks/cifar5-25000x2.csv), PROXY (the table's fidelity, default 25000x2),
# OUT (default runs/reproduce), EPISODES, SEEDS, EVAL_SAMPLES, THREADS, CHECK (0 skips part 1's
# real-training check), TOP (default 5), OTHER_SEED_TABLE (default $OUT/table-check-seed1.csv:
# not benchmarks/cifar5-PROXY-seed1.csv, whose rows are a uniform sample measuring seed noise,
# where a search's best rows would bias it), JOBS (the check's children at a time, default one per
# core), TABLE_ADD, PARTIAL.
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
    if [ "${PARTIAL:-0}" != 1 ]; then
      rows="$(python3 -c 'import csv, sys; print(len({r["architecture"] for r in csv.DictReader(open(sys.argv[1]))}))' "$table")"
      [ "$rows" -ge 1000 ] || { echo "$table has $rows architectures; part 1 waits for 1,000 (PARTIAL=1 runs a trial anyway)" >&2; exit 1; }
      for lock in "$table".*shard*.lock; do
        [ -e "$lock" ] || continue
        flock -n "$lock" true || { echo "a build_table.py still builds $table ($lock); part 1 waits for it (PARTIAL=1 runs a trial anyway)" >&2; exit 1; }
      done
    fi
    evaluator=(--evaluator "table:$table" --epochs 2); data_args=() ;;
  real)
    episodes="${EPISODES:-24}"; seeds="${SEEDS:-1 2}"; samples="${EVAL_SAMPLES:-10}"
    evaluator=(--evaluator train --epochs 2)
    data_args=(--data-dir "$data" --threads-per-worker "${THREADS:-1}") ;;
  *) echo "usage: scripts/reproduce.sh table|real" >&2; exit 2 ;;
esac

# Q-learning's ε schedule spans the seed's 2,700 episodes; `budget` scales it to this run's.
config="$out/$part-qlearning.toml"
printf '[plugins.qlearning]\nbudget = %s\n' "$episodes" > "$config"

# Trains the architectures of file $1 at the proxy into table $2 (default: the benchmark table) with
# training seed $3 (default 0), skipping those it has, as $4 (default 1) builds side by side, one
# shard each.
add_to_table() {
  local archs="$1" into="${2:-$table}" seed="${3:-0}" shards="${4:-1}" k
  for ((k = 0; k < shards; k++)); do
    NAS_HOST="$bin" NAS_DATA_DIR="$data" ARCHS_FILE="$archs" TABLE="$into" PROXY="${PROXY:-25000x2}" \
      SEED="$seed" SHARD="$k/$shards" python3 bench/build_table.py ||
      echo "some architectures of $archs were not trained into $into (see above); rerun to try them again" >&2 &
  done
  wait
}

# Reads a search's --json episodes on stdin; appends "$1 RUN" to $state at the first of them.
record_run() {
  local run
  run="$(jq -rn 'first(inputs | select(.run != null) | .run) // empty')"
  [ -z "$run" ] || echo "$1 $run" >> "$state"
  cat > /dev/null  # the rest of the episodes, so the search never writes into a closed pipe
}

runs=()
declare -A config_runs  # "agent reward" -> this invocation's run ids, comma-separated
for entry in "${configs[@]}"; do
  read -r agent reward <<< "$entry"
  for seed in $seeds; do
    key="$agent $reward $seed $episodes"
    run="$(awk -v k="$key" '$1" "$2" "$3" "$4 == k {print $5}' "$state")"
    if [ -z "$run" ]; then
      # The run's id goes to $state with its first episode, so a search that fails, or a script
      # killed midway (a session's end), leaves a run to resume rather than one to redo.
      status=0
      "$bin" search --config "$config" --dataset cifar5 --agent "$agent" --reward "$reward" \
        --seed "$seed" --episodes "$episodes" "${evaluator[@]}" "${data_args[@]}" --db "$db" --json \
        | tee "$out/$part-$agent-$reward-$seed-$episodes.jsonl" | record_run "$key" || status=$?
      [ "$status" = 0 ] || { echo "search $key failed (exit $status); rerun to resume it" >&2; exit "$status"; }
      run="$(awk -v k="$key" '$1" "$2" "$3" "$4 == k {print $5}' "$state")"
    elif ! grep -qx "$run" "$finished" && [ "$(sqlite3 "$db" "SELECT status FROM runs WHERE id = $run")" != finished ]; then
      "$bin" search --resume "$run" --db "$db" "${data_args[@]}" > /dev/null
    fi
    config_runs[$entry]="${config_runs[$entry]:+${config_runs[$entry]},}$run"
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
    sqlite3 -separator $'\t' "$db" "SELECT '$agent', '$reward', e.architecture, MAX(e.accuracy), MAX(v.predicted)
        FROM episodes e JOIN evaluations v ON v.id = e.evaluation_id WHERE e.run_id IN (${config_runs[$entry]})
        GROUP BY e.architecture ORDER BY MAX(e.accuracy) DESC, e.architecture LIMIT ${TOP:-5}" >> "$top"
  done
  # Cheapest first by the table's recorded seconds (unrecorded last), so a check cut short (a
  # session's end: it resumes) has checked the most architectures.
  cut -f3 "$top" | sort -u | python3 -c '
import csv, sys
seconds = {r["architecture"]: float(r["seconds"]) for r in csv.DictReader(l for l in open(sys.argv[1]) if not l.startswith("#"))}
archs = [a.strip() for a in sys.stdin if a.strip()]
print("\n".join(sorted(archs, key=lambda a: (seconds.get(a, float("inf")), a))))' "$table" > "$out/table-top-archs.txt"
  # The check's children train JOBS at a time (default: one per core), each on one thread as the
  # table's rows were: the table is finished, so no build needs a core.
  jobs="${JOBS:-$(nproc)}"
  # At the proxy, into the table (its protocol: seed 0, one thread).
  add_to_table "$out/table-top-archs.txt" "$table" 0 "$jobs"
  # At the proxy with training seed 1, in that seed's own table: a search keeps the rows that
  # trained lucky, which only another seed's training shows (the winner's curse). Its own table,
  # not benchmarks/cifar5-PROXY-seed1.csv: that one's uniform rows measure the seed noise of any
  # architecture (BENCHMARKS.md "Benchmark table"), and a search's best rows would bias it.
  other_seed_table="${OTHER_SEED_TABLE:-$out/table-check-seed1.csv}"
  add_to_table "$out/table-top-archs.txt" "$other_seed_table" 1 "$jobs"
  # At the seed's fidelity (25,000 images x 5 epochs), same seed and threads; job K of JOBS trains
  # every JOBS-th architecture, each appending its line (one write) when its child is through.
  reference="$out/table-check-25000x5.jsonl"
  touch "$reference"
  train_reference() {
    local arch
    while read -r arch; do
      # (Not `jq -e`: jq 1.6 exits 0 on an empty file.)
      [ "$(jq -s --arg a "$arch" 'any(.[]; .arch == $a)' "$reference")" = true ] && continue
      OMP_NUM_THREADS=1 "$bin" train-arch --dataset cifar5 --arch "$arch" --epochs 5 --seed 0 --data-dir "$data" --json < /dev/null |
        tail -n 1 | jq -c --arg a "$arch" '{arch: $a, accuracy, params, seconds}' >> "$reference" ||
        echo "$arch was not trained at 25,000 x 5 (see above); rerun to try it again" >&2
    done < <(awk -v k="$1" -v n="$jobs" '(NR - 1) % n == k' "$out/table-top-archs.txt")
  }
  for ((k = 0; k < jobs; k++)); do train_reference "$k" & done
  wait
  python3 bench/table_check.py "$top" "$table" "$reference" "$other_seed_table" | tee "$out/table-check.md"
fi

if [ "$part" = real ] && [ "${TABLE_ADD:-1}" = 1 ]; then
  # Every architecture part 2 trained (episodes and eval samples) joins the benchmark table.
  sqlite3 "$db" "SELECT architecture FROM episodes WHERE run_id IN ($ids)
      UNION SELECT architecture FROM eval_samples WHERE run_id IN ($ids)" | sort -u > "$out/real-archs.txt"
  add_to_table "$out/real-archs.txt"
fi
