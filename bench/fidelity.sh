#!/usr/bin/env bash
# Fidelity check (issue #24; BENCHMARKS.md, "Fidelity"): trains the fixed set of random CIFAR-5
# architectures in bench/fidelity-archs.txt at the seed's fidelity (25,000 training images,
# 5 epochs: the reference) and at cheaper ones (images x epochs), one `nas-host train-arch` per
# (architecture, fidelity), and appends one JSON line per child to bench/results/fidelity.jsonl.
# Resumes: a (architecture, fidelity) already in the results file is skipped, so rerun the same
# command after a kill, a reboot or with a new binary. bench/fidelity_report.py turns the file
# into the table (Spearman rho, Kendall tau, seconds per child).
#
# Subset fidelities (fewer than 25,000 images) run only when the binary's `train-arch` has
# `--train-subset` (checked with --help); until then they are skipped and stay missing, and a
# rerun with a newer binary fills them in.
#
# Order: architecture by architecture, each one's missing fidelities cheapest first. Every
# finished architecture adds a complete pair (proxy, reference) for every fidelity, so the
# correlations are usable (and grow more certain) after the first ten or so architectures;
# running all cheap fidelities first would give no correlation until the references began.
#
# Environment:
#   NAS_HOST         the binary (default target/release/nas-host)
#   NAS_HOST_COMMIT  the commit it was built from, recorded on every row (default: the contents
#                    of "$NAS_HOST.commit" if present, else "unknown")
#   NAS_DATA_DIR     directory with cifar-10-batches-bin/ (default ~/.cache/nas-host/data;
#                    ../shared/data/prepare-cifar10 DIR writes it)
#   THREADS          libtorch threads per child (default 1; recorded on every row)
#   FIDELITIES       space-separated IMAGESxEPOCHS (default "2500x1 5000x1 5000x2 25000x1 25000x2 25000x5")
#   ARCHS_FILE       default bench/fidelity-archs.txt;  RESULTS  default bench/results/fidelity.jsonl
#   SEED             training seed of every child (default 0, the tool's default)
set -euo pipefail
# The whole script is one function, read in full before it runs: editing or checking out this
# file while a run is in progress does not change what that run executes.
main() {
cd "$(dirname "$0")/.."
CACHE_DIR="${CACHE_DIR:-$HOME/.cache/nas-host}"
bin="${NAS_HOST:-target/release/nas-host}"
data="${NAS_DATA_DIR:-$CACHE_DIR/data}"
threads="${THREADS:-1}"
seed="${SEED:-0}"
archs_file="${ARCHS_FILE:-bench/fidelity-archs.txt}"
results="${RESULTS:-bench/results/fidelity.jsonl}"
fidelities="${FIDELITIES:-2500x1 5000x1 5000x2 25000x1 25000x2 25000x5}"
full=25000 # CIFAR-5's whole training split

[ -x "$bin" ] || { echo "no binary at $bin (set NAS_HOST)" >&2; exit 1; }
[ -f "$data/cifar-10-batches-bin/test_batch.bin" ] || { echo "no CIFAR-10 in $data (set NAS_DATA_DIR)" >&2; exit 1; }
commit="${NAS_HOST_COMMIT:-}"
if [ -z "$commit" ]; then
  if [ -f "$bin.commit" ]; then commit="$(tr -d '[:space:]' < "$bin.commit")"; else commit=unknown; fi
fi
bin_sha="$(sha256sum "$bin" | cut -c1-16)"
mkdir -p "$(dirname "$results")"
touch "$results"

# One run at a time per results file.
exec 9>"$results.lock"
flock -n 9 || { echo "another fidelity.sh is running on $results" >&2; exit 1; }

export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
subset_flag=no
if "$bin" train-arch --help 2>/dev/null | grep -q -- '--train-subset'; then subset_flag=yes; fi

mapfile -t archs < <(grep -v '^\s*#' "$archs_file" | sed '/^\s*$/d')
echo "$(date -Is) fidelity.sh: ${#archs[@]} architectures, fidelities: $fidelities; binary $bin ($commit, sha256 $bin_sha); --train-subset: $subset_flag; $threads thread(s); results $results"

# Cheapest first: sort by images x epochs.
read -r -a order <<< "$(for f in $fidelities; do echo "$(( ${f%x*} * ${f#*x} )) $f"; done | sort -n | awk '{print $2}' | tr '\n' ' ')"

# Rows already there (a line that does not parse, e.g. cut by a full disk, is ignored).
declare -A have=()
while IFS= read -r key; do have["$key"]=1; done \
  < <(jq -R -r 'fromjson? | select(.accuracy != null) | "\(.arch)|\(.fidelity)"' "$results")
echo "$(date -Is) ${#have[@]} rows already in $results"

ran=0 skipped_subset=0 errors=0
for i in "${!archs[@]}"; do
  arch="${archs[$i]}"
  for fid in "${order[@]}"; do
    images="${fid%x*}" epochs="${fid#*x}"
    [ -n "${have["$arch|$fid"]:-}" ] && continue
    extra=()
    if [ "$images" -ne "$full" ]; then
      if [ "$subset_flag" = no ]; then skipped_subset=$((skipped_subset + 1)); continue; fi
      extra=(--train-subset "$images")
    fi
    echo "$(date -Is) [$((i + 1))/${#archs[@]}] $fid  $arch"
    status=0
    out="$("$bin" train-arch --dataset cifar5 --arch "$arch" --epochs "$epochs" --seed "$seed" \
      "${extra[@]}" --data-dir "$data" --json)" || status=$?
    out="$(tail -n 1 <<< "$out")"
    # train-arch prints its JSON and then exits non-zero when the child failed (diverged): that is
    # a result (accuracy 0, as a search scores it). No JSON (a crash, a kill) is not recorded.
    if [ -z "$out" ] || ! jq -e 'type == "object" and (.accuracy | type == "number")' <<< "$out" > /dev/null 2>&1 \
      || { [ "$status" -ne 0 ] && ! jq -e '.failure != null' <<< "$out" > /dev/null 2>&1; }; then
      echo "$(date -Is) ERROR: train-arch exited $status without a result for $fid $arch; not recorded" >&2
      errors=$((errors + 1)); continue
    fi
    jq -c --arg arch "$arch" --arg fid "$fid" --argjson idx "$i" --argjson images "$images" \
      --argjson epochs "$epochs" --argjson threads "$threads" --arg commit "$commit" \
      --arg sha "$bin_sha" --arg date "$(date -Is)" --arg host "$(hostname)" \
      '{arch_index: $idx, arch: $arch, fidelity: $fid, train_images: $images, epochs: $epochs,
        accuracy, params, seconds, seconds_per_epoch, failure, device, protocol,
        threads: $threads, binary_commit: $commit, binary_sha256: $sha, date: $date, host: $host}' \
      <<< "$out" >> "$results"
    tail -n 1 "$results" | jq -r '"  accuracy \(.accuracy)  params \(.params)  \(.seconds * 100 | round / 100) s"'
    have["$arch|$fid"]=1
    ran=$((ran + 1))
  done
done
echo "$(date -Is) fidelity.sh: done; $ran children trained now, $skipped_subset subset rows skipped (binary lacks --train-subset), $errors errors"
[ "$errors" -eq 0 ]
}
main "$@"
exit $?
