#!/usr/bin/env bash
# `make bench`: training speed of nas-host against PyTorch on CIFAR-5 with conv(32,3) pool(5,3), and
# the cost of plugin calls through the sandbox. Runs are interleaved and repeated (median), since a
# shared machine's speed drifts. Results land in bench-out/ and on stdout.
#   EPOCHS (default 5), REPS (default 3), NAS_DATA_DIR (needs cifar-10-batches-bin/; prepared from
#   ../shared/data when it has prepare-cifar10).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
PY="$CACHE_DIR/torch-venv/bin/python"
EPOCHS="${EPOCHS:-5}"
REPS="${REPS:-3}"
OUT=bench-out
mkdir -p "$OUT"

data="${NAS_DATA_DIR:-data}"
if [ ! -f "$data/cifar-10-batches-bin/test_batch.bin" ]; then
  if [ -x ../shared/data/prepare-cifar10 ]; then
    data="$CACHE_DIR/data"
    [ -f "$data/cifar-10-batches-bin/test_batch.bin" ] || ../shared/data/prepare-cifar10 "$data"
  else
    echo "make bench needs CIFAR-10 in the official binary layout: set NAS_DATA_DIR to a directory with cifar-10-batches-bin/" >&2
    exit 1
  fi
fi
# The seed's protocol loads images through torchvision; it matches PyTorch 2.11.0.
"$PY" -c "import torchvision" 2>/dev/null || "$CACHE_DIR/torch-venv/bin/pip" install --quiet torchvision==0.26.0

echo "training benchmark: CIFAR-5, conv(32,3) pool(5,3), $EPOCHS epochs, $REPS interleaved repetitions"
: > "$OUT/training.jsonl"
for rep in $(seq "$REPS"); do
  NAS_DATA_DIR="$data" target/release/nas-host train-arch --dataset cifar5 --arch "conv(32,3) pool(5,3)" \
    --epochs "$EPOCHS" --device cpu --json | sed 's/^{/{"mode":"nas-host",/' >> "$OUT/training.jsonl"
  "$PY" bench/reference.py --data-dir "$data" --epochs "$EPOCHS" --modes tensors,dataloader >> "$OUT/training.jsonl"
  echo "  repetition $rep done"
done

"$PY" - "$OUT/training.jsonl" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(mode, key):
    return statistics.median(r[key] for r in rows if r["mode"] == mode)
nas = med("nas-host", "seconds_per_epoch")
print(f"| run | s/epoch (median) | accuracy (median) | nas-host speed-up |")
print(f"|---|---|---|---|")
for mode, label in [("nas-host", "nas-host (libtorch via tch)"), ("tensors", "PyTorch loop over pre-loaded tensors"), ("dataloader", "PyTorch DataLoader + ToTensor only (the seed's pipeline)")]:
    s = med(mode, "seconds_per_epoch")
    print(f"| {label} | {s:.2f} | {med(mode, 'accuracy'):.4f} | {s / nas:.2f}x |")
PYEOF

echo
echo "plugin call benchmark (PPO agent, 38 actions):"
cargo run --quiet --release --example plugin_bench | tee "$OUT/plugins.json"

echo
# Parallel search (MNIST-3): one worker with every core vs one single-thread worker per core.
bash scripts/bench-parallel.sh
