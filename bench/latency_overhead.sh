#!/usr/bin/env bash
# What measuring each child's latency (`[cost]`, on by default) adds to a search: a short MNIST-3
# search with the default protocol (5 epochs, batch 100) and the default `[cost]` (batch 1, 5
# warm-up and 30 timed forward passes), then, from the store, each child's training seconds beside
# the seconds its latency measurement took (`cost.latency.seconds`). The decision rule of issue #28:
# measurement stays on by default only while it costs at most 2% of a typical child's training.
#   EPISODES (default 6), SEED (default 1),
#   NAS_DATA_DIR (needs mnist/; default ../shared/data), BIN (default target/release/nas-host).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
PY="$CACHE_DIR/torch-venv/bin/python"
BIN="${BIN:-target/release/nas-host}"
EPISODES="${EPISODES:-6}"
SEED="${SEED:-1}"
export NAS_DATA_DIR="${NAS_DATA_DIR:-../shared/data}"
$BIN datasets fetch mnist3 >/dev/null || { echo "needs MNIST in \$NAS_DATA_DIR/mnist" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "latency overhead: MNIST-3, random agent seed $SEED, $EPISODES episodes, default protocol, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
$BIN search --dataset mnist3 --agent random --reward accuracy --episodes "$EPISODES" --seed "$SEED" \
  --device cpu --db "$dir/nas.sqlite" --json > "$dir/episodes.jsonl"
"$PY" - "$dir/nas.sqlite" <<'PYEOF'
import json, sqlite3, statistics, sys
c = sqlite3.connect(sys.argv[1])
rows = [(a, s, json.loads(cost)) for a, s, cost in c.execute(
    "SELECT architecture, seconds, cost FROM evaluations WHERE failure IS NULL AND cost IS NOT NULL")]
shares = []
for arch, seconds, cost in rows:
    lat = cost["latency"]
    shares.append(lat["seconds"] / seconds)
    print(f"  {arch:45s} train {seconds:7.2f} s  measure {1e3 * lat['seconds']:7.1f} ms  "
          f"latency {lat['median_ms']:.4f} ms (p90 {lat['p90_ms']:.4f})  {100 * lat['seconds'] / seconds:.3f}%")
train = sum(s for _, s, _ in rows)
measure = sum(c["latency"]["seconds"] for _, _, c in rows)
print(f"{len(rows)} children: training {train:.1f} s, measuring {measure:.3f} s = {100 * measure / train:.3f}% "
      f"(per child: median {100 * statistics.median(shares):.3f}%, max {100 * max(shares):.3f}%)")
PYEOF
