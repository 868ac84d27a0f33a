#!/usr/bin/env bash
# How often children collapse to chance under each training protocol (BENCHMARKS.md, "Collapse"):
# 30 random CIFAR-5 architectures, 1 epoch each, under ReLU at lr 0.01, ReLU at lr 0.001 (the
# default) and the seed-exact protocol. Needs CIFAR-10 in the binary layout (see scripts/bench.sh).
#   ARCHS (default 30), EPOCHS (default 1), NAS_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE_DIR/target}" LIBTORCH_USE_PYTORCH=1 PATH="$CACHE_DIR/torch-venv/bin:$PATH"
data="${NAS_DATA_DIR:-$CACHE_DIR/data}"
mkdir -p bench-out
cargo build --quiet --release --example collapse -p nas-host
"$CARGO_TARGET_DIR/release/examples/collapse" --data-dir "$data" --archs "${ARCHS:-30}" --epochs "${EPOCHS:-1}" \
  > bench-out/collapse.jsonl
