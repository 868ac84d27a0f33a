#!/usr/bin/env bash
# The dashboard benchmark (BENCHMARKS.md, "Dashboard"): headless Chromium opens the page of a run
# with 10,000 episodes and the runs page of a store with 100 runs, six times each; the times are
# the page's own performance.now() once its data is drawn and painted, from the start of
# navigation (so they include fetching the page, its scripts and the API, and drawing).
# Needs chromium and chromedriver (scripts/ensure-chromium.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-chromium.sh
cargo test --release -p nas-serve --test showcase -- --ignored --nocapture --exact bench_page_open
