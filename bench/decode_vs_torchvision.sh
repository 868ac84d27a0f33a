#!/usr/bin/env bash
# Decoding a folder once (issue #23; BENCHMARKS.md, "Own images: decoding a folder once"):
# torchvision's ImageFolder + DataLoader reading every image of the folder once, against
# nas-host's first decode (fresh empty cache each time) and its cached load, in one run with the
# sides interleaved, REPS times; then the medians and the ratios.
#
#   bench/decode_vs_torchvision.sh [FOLDER]        (default /tmp/cifar10-jpeg)
#
# FOLDER is in ImageFolder layout with train/<class>/… and test/<class>/… (the CIFAR-10 JPEGs:
# tar xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp). Before the timed runs every file is read
# once, so both sides read from the page cache.
#
# Sides, each repetition in this order:
#   torchvision PILToTensor  ImageFolder(train) + ImageFolder(test), transforms.PILToTensor()
#                            (uint8 CHW: what nas-host's cache holds), DataLoader(batch_size=256,
#                            num_workers=WORKERS), one pass; timed inside Python from building
#                            the ImageFolders (their folder scan) to the last batch
#   nas-host                 the decode_bench example (datasets/examples/decode_bench.rs): first
#                            decode (scan, headers, parallel decode, fingerprint key, cache
#                            write) into an empty cache dir, then the cached load; in-process
#   torchvision ToTensor     as the first, with transforms.ToTensor() (float32, the seed's
#                            pipeline); TO_TENSOR=0 leaves it out
#
# Environment:
#   VENV       Python with torch and torchvision (default ~/.cache/nas-host/torch-venv;
#              `make` installs torchvision==0.26.0 there)
#   WORKERS    DataLoader workers (default 4 where nproc >= 4, else 2)
#   REPS       repetitions (default 3)
#   TO_TENSOR  1 (default) or 0
#   OUT        the log (default bench-out/decode-vs-torchvision-DATE.txt)
set -euo pipefail
main() {
cd "$(dirname "$0")/.."
folder="${1:-/tmp/cifar10-jpeg}"
venv="${VENV:-$HOME/.cache/nas-host/torch-venv}"
py="$venv/bin/python"
reps="${REPS:-3}"
to_tensor="${TO_TENSOR:-1}"
if [ -z "${WORKERS:-}" ]; then
    if [ "$(nproc)" -ge 4 ]; then WORKERS=4; else WORKERS=2; fi
fi
mkdir -p bench-out
out="${OUT:-bench-out/decode-vs-torchvision-$(date +%Y%m%d-%H%M%S).txt}"
[ -d "$folder/train" ] && [ -d "$folder/test" ] || { echo "no $folder/train and $folder/test" >&2; exit 2; }
"$py" -c "import torchvision" || { echo "no torchvision in $venv: $venv/bin/pip install torchvision==0.26.0" >&2; exit 2; }

cargo build --release --quiet -p nas-datasets --example decode_bench
bench_bin="${CARGO_TARGET_DIR:-target}/release/examples/decode_bench"

log() { echo "$*" | tee -a "$out"; }
log "# decode_vs_torchvision $(date -Is) folder=$folder workers=$WORKERS reps=$reps nproc=$(nproc)"
log "# commit $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
log "# $("$py" -c 'import torch, torchvision, PIL; print("torch", torch.__version__, "torchvision", torchvision.__version__, "pillow", PIL.__version__)')"
log "# files $(find "$folder" -type f | wc -l); reading them all once (page cache)"
find "$folder" -type f -print0 | xargs -0 cat > /dev/null

caches=()
trap 'rm -rf "${caches[@]}"' EXIT
for rep in $(seq 1 "$reps"); do
    log "# rep $rep load:$(uptime | sed 's/.*load average://')"
    log "$("$py" bench/torchvision_pass.py "$folder" --transform pil-to-tensor --workers "$WORKERS")"
    cache="$(mktemp -d /tmp/decode-bench-cache.XXXXXX)"
    caches+=("$cache")
    nas="$("$bench_bin" "$folder" "$cache")"
    first="$(sed -n 's/^first decode *\([0-9.]*\) s.*/\1/p' <<<"$nas")"
    cached="$(sed -n 's/^cached load *\([0-9.]*\) s.*/\1/p' <<<"$nas")"
    scan="$(sed -n 's/^of which scan *\([0-9.]*\) s.*/\1/p' <<<"$nas")"
    threads="$(sed -n 's/^threads *\([0-9]*\).*/\1/p' <<<"$nas")"
    log "{\"side\": \"nas-host\", \"threads\": $threads, \"first_s\": $first, \"cached_s\": $cached, \"scan_s\": $scan}"
    rm -rf "$cache"
    if [ "$to_tensor" = 1 ]; then
        log "$("$py" bench/torchvision_pass.py "$folder" --transform to-tensor --workers "$WORKERS")"
    fi
done
log "# end load:$(uptime | sed 's/.*load average://')"

"$py" - "$out" <<'EOF' | tee -a "$out"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(side, key="seconds"):
    v = [r[key] for r in rows if r["side"] == side]
    return (statistics.median(v), v) if v else (None, v)
tv, tv_all = med("torchvision-pil-to-tensor")
tt, tt_all = med("torchvision-to-tensor")
first, first_all = med("nas-host", "first_s")
cached, cached_all = med("nas-host", "cached_s")
print(f"torchvision PILToTensor  median {tv:.2f} s  {tv_all}")
if tt is not None:
    print(f"torchvision ToTensor     median {tt:.2f} s  {tt_all}")
print(f"nas-host first decode    median {first:.2f} s  {first_all}")
print(f"nas-host cached load     median {cached:.3f} s  {cached_all}")
print(f"ratio first decode  vs PILToTensor {tv / first:.1f}x (goal >= 2x)"
      + (f", vs ToTensor {tt / first:.1f}x" if tt is not None else ""))
print(f"ratio cached load   vs PILToTensor {tv / cached:.0f}x (goal >= 20x)"
      + (f", vs ToTensor {tt / cached:.0f}x" if tt is not None else ""))
# Per repetition (each side's neighbours in time), for the spread.
tvs = [r["seconds"] for r in rows if r["side"] == "torchvision-pil-to-tensor"]
nas = [r for r in rows if r["side"] == "nas-host"]
print("per repetition first / cached ratio:",
      ", ".join(f"{t / n['first_s']:.1f}x / {t / n['cached_s']:.0f}x" for t, n in zip(tvs, nas)))
EOF
echo "log: $out"
}
main "$@"
