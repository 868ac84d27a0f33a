#!/usr/bin/env bash
# The GPU check (about 5–8 minutes on one GPU): the CUDA training path on CIFAR-5, then how many
# workers one GPU takes. Prints seconds per epoch and accuracy of conv(32,3) pool(5,3) over 5
# epochs, then children per hour of a 1-epoch CIFAR-5 search of EPISODES (64) children with 1, 2, 4
# and 8 workers sharing GPU 0 (every side designs the same children: 8 environments, `sync`).
# Needs the nas-host binary and plugins (make build, or carried to the GPU machine) and libtorch's
# CUDA libraries: LD_LIBRARY_PATH with torch/lib, found from python3's torch when unset.
#   BIN (default target/release/nas-host), EPISODES (64), NAS_DATA_DIR (with cifar-10-batches-bin/,
#   else prepared from ../shared/data or shared/data with prepare-cifar10).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-target/release/nas-host}"
EPISODES="${EPISODES:-64}"
OUT="${OUT:-bench-out}"
mkdir -p "$OUT"
if [ -z "${LD_LIBRARY_PATH:-}" ] && torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))" 2>/dev/null); then
  export LD_LIBRARY_PATH="$torch_lib"
fi
data="${NAS_DATA_DIR:-data}"
if [ ! -f "$data/cifar-10-batches-bin/test_batch.bin" ]; then
  for prep in ../shared/data/prepare-cifar10 shared/data/prepare-cifar10; do
    if [ -x "$prep" ]; then data="$(mktemp -d)"; "$prep" "$data" >/dev/null; break; fi
  done
fi
export NAS_DATA_DIR="$data"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

echo "== CUDA training: CIFAR-5, conv(32,3) pool(5,3), 5 epochs"
$BIN train-arch --dataset cifar5 --arch "conv(32,3) pool(5,3)" --epochs 5 --device cuda --json | tee "$OUT/gpu-train.json"

echo "== CIFAR-5 search, $EPISODES children of 1 epoch, workers sharing GPU 0"
echo "| workers | children trained | wall s | children per hour |"
echo "|---|---|---|---|"
for workers in 1 2 4 8; do
  db=$(mktemp -d)/nas.sqlite
  start=$(date +%s%N)
  $BIN search --dataset cifar5 --agent ppo --reward accuracy --episodes "$EPISODES" --epochs 1 --seed 1 \
    --envs 8 --schedule sync --workers "$workers" --gpus 0 --device cuda --db "$db" --json > "$db.jsonl" 2> "$db.log" \
    || { echo "search with $workers workers failed:"; tail -n 5 "$db.log"; exit 1; }
  end=$(date +%s%N)
  trained=$(grep -c '"cache_hit":false' "$db.jsonl" || true)
  ms=$(( (end - start) / 1000000 ))
  echo "| $workers | $trained | $(( ms / 1000 )) | $(( trained * 3600000 / ms )) |"
  echo "{\"workers\":$workers,\"trained\":$trained,\"ms\":$ms}" >> "$OUT/gpu-workers.jsonl"
done
