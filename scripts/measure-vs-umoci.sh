#!/usr/bin/env bash
# Whole-process timings of chunkload against umoci unpack on the same image, side by side in one
# run, as docs/performance.md reports them.
#
#   scripts/measure-vs-umoci.sh [IMAGE] [RUNS]      (default: images/realistic/oci:latest, 3 runs)
#
# Method: runs alternate (umoci, chunkload extract, chunkload convert) so drift in machine load
# hits all three alike. Every run writes into a fresh directory and nothing is deleted until the
# end: ext4 avoids reusing recently deleted inodes, so creating files right after an `rm -rf` of
# thousands of others costs far more than on a settled filesystem and would skew whichever tool runs
# next. Needs root (both tools then apply ownership) and umoci.
#
# On a root filesystem mounted with `discard` (as on the reference VM), deleting earlier runs'
# output sends a storm of discards to the disk that slows whichever tool runs next for minutes.
# Measure instead on a fresh ext4 on a loop device in direct-I/O mode over a preallocated file,
# and set CLEAN_EACH_RUN=1 to delete (and trim) each run's output before the next:
#
#   fallocate -l 12G /work/measure.img && mkfs.ext4 -q /work/measure.img
#   mount "$(losetup --direct-io=on -f --show /work/measure.img)" /mnt/measure
#   TMPDIR=/mnt/measure CLEAN_EACH_RUN=1 scripts/measure-vs-umoci.sh images/realistic/oci:latest 5
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-images/realistic/oci:latest}
runs=${2:-3}
cargo build --release --quiet
bin=$PWD/target/release/chunkload
work=$(mktemp -d "${TMPDIR:-/tmp}/measure.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin" keygen "$work/key" >/dev/null
t() { /usr/bin/time -f "%e %U %S" -o "$work/t" "$@" >/dev/null 2>&1; cat "$work/t"; }
echo "image: $image"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -r)"
echo "umoci: $(umoci --version)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %-22s %8s %8s %8s\n' run tool wall_s user_s sys_s
for i in $(seq 1 "$runs"); do
  read -r w u s < <(t umoci unpack --image "$image" "$work/umoci-$i")
  printf '%-4s %-22s %8s %8s %8s\n' "$i" "umoci unpack" "$w" "$u" "$s"
  read -r w u s < <(t "$bin" extract -q "$image" "$work/extract-$i")
  printf '%-4s %-22s %8s %8s %8s\n' "$i" "chunkload extract" "$w" "$u" "$s"
  read -r w u s < <(t "$bin" convert "$image" --store "$work/store-$i" --key "$work/key" -o "$work/m-$i")
  printf '%-4s %-22s %8s %8s %8s\n' "$i" "chunkload convert" "$w" "$u" "$s"
  if [ -n "${CLEAN_EACH_RUN:-}" ]; then
    rm -rf "$work/umoci-$i" "$work/extract-$i" "$work/store-$i" "$work/m-$i"
    sync; fstrim "$work" 2>/dev/null || true; sleep 2
  fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
