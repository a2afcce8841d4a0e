#!/usr/bin/env bash
# Whole-process timings of chunkload against umoci unpack on the same image, side by side in one
# run, as docs/performance.md reports them.
#
#   scripts/measure-vs-umoci.sh [IMAGE] [RUNS]      (default: images/realistic/oci:latest, 3 runs)
#
# Method: runs alternate (umoci, chunkload extract, chunkload convert) so drift in machine load
# hits all three alike, each tool after a `sync` (below). Needs root (both tools then apply
# ownership) and umoci.
#
# Where: on a fresh ext4 made for the measurement, on a loop device in direct-I/O mode over a
# preallocated file (FRESH_FS=0 measures in $TMPDIR instead). The reference VM's root filesystem
# is mounted with `discard`: after a large deletion it sends the disk a storm of discards that
# slows file creation and syncs for minutes, and ext4 also avoids reusing recently deleted inodes.
# On the fresh filesystem each run's output is deleted and trimmed before the next run (the trim
# only punches holes in the image file), so every run starts from the same state.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-images/realistic/oci:latest}
runs=${2:-3}
cargo build --release --quiet
bin=$PWD/target/release/chunkload
mnt=""
loopdev=""
fsimg=""
cleanup() {
  if [ -n "$mnt" ]; then
    umount "$mnt" || true
    [ -n "$loopdev" ] && losetup -d "$loopdev" || true
    rm -f "$fsimg"
    rmdir "$mnt" || true
  else
    rm -rf "$work"
  fi
}
if [ "${FRESH_FS:-1}" != 0 ] && [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
  fsimg=$(mktemp "${MEASURE_DIR:-/var/tmp}/chunkload-measure.XXXXXX.img")
  mnt=$(mktemp -d /tmp/chunkload-measure.XXXXXX)
  trap cleanup EXIT
  fallocate -l 12G "$fsimg"
  mkfs.ext4 -q -F "$fsimg"
  loopdev=$(losetup --direct-io=on -f --show "$fsimg")
  mount "$loopdev" "$mnt"
  work=$mnt
  clean_each_run=1
  where="fresh ext4 on $loopdev (direct I/O over $fsimg)"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/measure.XXXXXX")
  trap cleanup EXIT
  clean_each_run=""
  where="$work ($(df --output=fstype "$work" | tail -1))"
fi
"$bin" keygen "$work/key" >/dev/null
# Each tool starts with nothing of the others still in flight: a `sync` (not timed) first, else the
# one that syncs its own output (convert makes every chunk durable) waits behind the writeback of
# the previous tool's dirty data, which that tool's own wall time never paid for.
#
# Then 2 GiB of memory is touched and freed (not timed). The reference VM reports free memory to
# its host (virtio-balloon free page reporting), which may take it back; the first write to such
# a page then costs a fault in the host, and a tool that happens to get those pages for its page
# cache pays several times the normal kernel time for its writes (seen: convert's system time
# 0.5 s -> 2 s, depending on what ran before it). Freshly freed pages are reused first, so every
# tool starts with the same warm memory.
warm() { head -c 2G /dev/zero > /dev/shm/chunkload-measure-warm; rm -f /dev/shm/chunkload-measure-warm; }
t() { sync; warm; /usr/bin/time -f "%e %U %S" -o "$work/t" "$@" >/dev/null 2>&1; cat "$work/t"; }
echo "image: $image"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(uname -r)"
echo "umoci: $(umoci --version)"
echo "output on: $where"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %-22s %8s %8s %8s\n' run tool wall_s user_s sys_s
for i in $(seq 1 "$runs"); do
  read -r w u s < <(t umoci unpack --image "$image" "$work/umoci-$i")
  printf '%-4s %-22s %8s %8s %8s\n' "$i" "umoci unpack" "$w" "$u" "$s"
  read -r w u s < <(t "$bin" extract -q "$image" "$work/extract-$i")
  printf '%-4s %-22s %8s %8s %8s\n' "$i" "chunkload extract" "$w" "$u" "$s"
  read -r w u s < <(t "$bin" convert "$image" --store "$work/store-$i" --key "$work/key" -o "$work/m-$i")
  printf '%-4s %-22s %8s %8s %8s\n' "$i" "chunkload convert" "$w" "$u" "$s"
  if [ -n "$clean_each_run" ]; then
    rm -rf "$work/umoci-$i" "$work/extract-$i" "$work/store-$i" "$work/m-$i"
    sync; fstrim "$work" 2>/dev/null || true; sleep 2
  fi
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
