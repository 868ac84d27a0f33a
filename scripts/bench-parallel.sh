#!/usr/bin/env bash
# The parallel-search benchmark (`make bench-parallel`, also part of `make bench`): the same MNIST-3
# search — PPO, 2 environments, `sync`, 1 epoch per child — trained by one worker using every core
# versus one single-thread worker per core. Both sides design exactly the same children (same seed,
# same number of environments), so only how they are trained differs. Repetitions are interleaved;
# medians are reported. Results land in bench-out/parallel.jsonl and on stdout.
#   EPISODES (default 24), REPS (default 3), NAS_DATA_DIR (needs mnist/; default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
PY="$CACHE_DIR/torch-venv/bin/python"
BIN="${BIN:-target/release/nas-host}"
EPISODES="${EPISODES:-24}"
REPS="${REPS:-3}"
OUT=bench-out
mkdir -p "$OUT"
export NAS_DATA_DIR="${NAS_DATA_DIR:-../shared/data}"
cores=$(nproc)
$BIN datasets fetch mnist3 >/dev/null || { echo "the parallel benchmark needs MNIST in \$NAS_DATA_DIR/mnist" >&2; exit 1; }

echo "parallel benchmark: MNIST-3, $EPISODES episodes, 1 epoch, 2 environments (sync), $REPS interleaved repetitions, $cores cores"
: > "$OUT/parallel.jsonl"
for rep in $(seq "$REPS"); do
  for split in "1x$cores" "${cores}x1"; do
    workers=${split%x*}; threads=${split#*x}
    db=$(mktemp -d)/nas.sqlite
    start=$(date +%s%N)
    $BIN search --dataset mnist3 --agent ppo --reward accuracy --episodes "$EPISODES" --epochs 1 --seed 1 \
      --envs 2 --schedule sync --workers "$workers" --threads-per-worker "$threads" --device cpu \
      --db "$db" --json > "$db.episodes.jsonl"
    end=$(date +%s%N)
    trained=$(grep -c '"cache_hit":false' "$db.episodes.jsonl" || true)
    echo "{\"split\":\"$split\",\"workers\":$workers,\"threads\":$threads,\"ms\":$(( (end - start) / 1000000 )),\"trained\":$trained}" >> "$OUT/parallel.jsonl"
    rm -rf "$(dirname "$db")"
  done
  echo "  repetition $rep done"
done

"$PY" - "$OUT/parallel.jsonl" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    r["seconds"] = r["ms"] / 1000
splits = list(dict.fromkeys(r["split"] for r in rows))
rate = {s: statistics.median(3600 * r["trained"] / r["seconds"] for r in rows if r["split"] == s) for s in splits}
wall = {s: statistics.median(r["seconds"] for r in rows if r["split"] == s) for s in splits}
print("| workers × threads | children trained | wall s (median) | children per hour (median) | vs 1 worker |")
print("|---|---|---|---|---|")
for s in splits:
    trained = rows[[r["split"] for r in rows].index(s)]["trained"]
    print(f"| {s.replace('x', ' × ')} | {trained} | {wall[s]:.1f} | {rate[s]:.0f} | {rate[s] / rate[splits[0]]:.2f}x |")
PYEOF
