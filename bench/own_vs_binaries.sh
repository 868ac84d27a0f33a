#!/usr/bin/env bash
# Accuracy on the CIFAR-10 JPEG folder against the cifar-10-batches-bin files (issue #23;
# BENCHMARKS.md, "Accuracy on the JPEG folder and on the binary files"): each
# architecture trained with the default protocol (`nas-host train-arch`, 5 epochs, seed SEED)
# on `--dataset FOLDER` and on `--dataset cifar10 --data-dir DATA_DIR`, one child at a time,
# alternating; then the binaries once more with seed SEED2 (how much the same architecture moves
# with the seed alone, for scale). One JSON line per child to RESULTS; a (architecture, side,
# seed, EXTRA) already there is skipped, so a rerun resumes, and a rerun with SEED=1 SEED2= adds
# the folder at seed 1.
#
#   bench/own_vs_binaries.sh
#
# Environment:
#   NAS_HOST   the binary (default target/release/nas-host)
#   FOLDER     default /tmp/cifar10-jpeg;  DATA_DIR  default ~/.cache/nas-host/data
#   SEED       default 0;  SEED2  default 1 ("" leaves the second seed out)
#   THREADS    OMP_NUM_THREADS for each child (default 1)
#   RESULTS    default bench/results/own-images.jsonl
#   EXTRA      extra train-arch flags on both sides (e.g. "--train-subset 10000"), recorded
#   ARCHS_FILE architectures, one a line (default: the three below)
#   PAUSE      a file: while it exists, no new child starts (the running one finishes)
#   DECODED_DIR  a data dir written by `bench/compare_decoded.py ... --write DIR` (nas-host's
#              decode of the folder in the binaries' record order): each architecture is also
#              trained on it at SEED (side "nas-decode-binaries"), which differs from the folder
#              only by the order of the images and from DATA_DIR only by the JPEG decoder
set -euo pipefail
main() {
cd "$(dirname "$0")/.."
bin="${NAS_HOST:-target/release/nas-host}"
folder="${FOLDER:-/tmp/cifar10-jpeg}"
data="${DATA_DIR:-$HOME/.cache/nas-host/data}"
seed="${SEED:-0}"
seed2="${SEED2-1}"
threads="${THREADS:-1}"
results="${RESULTS:-bench/results/own-images.jsonl}"
extra="${EXTRA:-}"
pause="${PAUSE:-}"
decoded="${DECODED_DIR:-}"
archs=("conv(32,3) pool(2,2) fc(128)" "conv(64,1)" "conv(20,5) pool(3,2) conv(32,3)")
[ -z "${ARCHS_FILE:-}" ] || mapfile -t archs < "$ARCHS_FILE"
mkdir -p "$(dirname "$results")"
touch "$results"
sha="$(sha256sum "$bin" | cut -c1-16)"

child() { # ARCH SIDE SEED
    local arch="$1" side="$2" s="$3"
    if grep -qF "\"arch\":\"$arch\",\"side\":\"$side\",\"seed\":$s,\"extra\":\"$extra\"" "$results"; then
        echo "have: $arch $side seed $s"; return
    fi
    while [ -n "$pause" ] && [ -e "$pause" ]; do sleep 5; done
    local dataset=(--dataset "$folder")
    [ "$side" = binaries ] && dataset=(--dataset cifar10 --data-dir "$data")
    [ "$side" = nas-decode-binaries ] && dataset=(--dataset cifar10 --data-dir "$decoded")
    local load0 t0 t1 json
    load0="$(cut -d' ' -f1 /proc/loadavg)"
    t0="$(date +%s.%N)"
    # shellcheck disable=SC2086
    json="$(OMP_NUM_THREADS="$threads" "$bin" train-arch "${dataset[@]}" --arch "$arch" --seed "$s" --device cpu $extra --json)"
    t1="$(date +%s.%N)"
    printf '{"arch":"%s","side":"%s","seed":%s,"extra":"%s","wall_s":%.1f,"load_before":%s,"binary_sha256":"%s","date":"%s","result":%s}\n' \
        "$arch" "$side" "$s" "$extra" "$(echo "$t1 - $t0" | bc)" "$load0" "$sha" "$(date -Is)" "$json" | tee -a "$results"
}

for arch in "${archs[@]}"; do
    child "$arch" folder "$seed"
    child "$arch" binaries "$seed"
    [ -z "$decoded" ] || child "$arch" nas-decode-binaries "$seed"
done
if [ -n "$seed2" ]; then
    for arch in "${archs[@]}"; do
        child "$arch" binaries "$seed2"
    done
fi
}
main "$@"
