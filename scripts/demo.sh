#!/usr/bin/env bash
# `make demo`: a short real search — MNIST-3, masked PPO, size penalty — then its report. Offline
# (MNIST neither in NAS_DATA_DIR/./data nor downloadable) it runs on the synthetic dataset instead
# and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/nas-host
DB="${NAS_DB:-runs/nas.sqlite}"
dataset=mnist3
if ! $BIN datasets fetch mnist3 >/dev/null 2>runs.fetch.log; then
  echo "MNIST-3 is not available here ($(tail -n 3 runs.fetch.log | tr '\n' ' '))"
  echo ">>> offline: running the demo on the synthetic dataset instead (point NAS_DATA_DIR at MNIST for the real one)"
  dataset=synthetic
fi
rm -f runs.fetch.log
$BIN search --config configs/demo.toml --dataset "$dataset" --db "$DB"
run=$($BIN runs --db "$DB" | awk 'NR>1 {id=$1} END {print id}')
$BIN report "$run" --db "$DB"
# The best architecture as a trained, portable model (TorchScript, ONNX, safetensors + model.py).
$BIN export "$run" --db "$DB" --out "runs/export-$run" --force
echo "next: $BIN eval $run --db $DB   (trains the frozen policy's samples)"
echo "dashboard: $BIN serve --db $DB   (then open http://127.0.0.1:8080/run/$run)"
