#!/usr/bin/env bash
# Reads of one large file through `chunkload mount` and from `chunkload extract` output, page
# cache dropped before each cold read (docs/performance.md, "Real mode"). Root; run in a directory
# holding realistic.manifest, store, key and rootfs (default /tmp/real, as
# scripts/compare-strace-fuse.sh prepares it; F names the file, default pyarrow's
# libarrow.so.2000, 66.4 MB). RUNS (default 5) rounds of:
#   mount-cold           fresh mount, empty cache dir, defaults (read-ahead auto: the next chunks
#                        of the file load on two prefetch workers per core)
#   mount-cold-ra0       the same with --read-ahead-chunks 0: one chunk at a time, as before
#   old-cold             the same with $OLD_BIN (another build, e.g. main's), if set
#   random-*             fresh mount, cold: 64 preads of 4 KiB at seeded random offsets, one after
#                        the other (ms per read), for the default, ra0 and $OLD_BIN
#   mount-warm-memory    same mount, page cache dropped: every chunk from the memory tier
#   mount-warm-disk      new mount on that cache dir, page cache dropped: chunks from the disk tier
#   mount-pagecache      the same read again: the kernel's page cache, the agent not asked
#   extract-cold / extract-pagecache: the extracted file, cold and from the page cache
#   store-files-pN       the disk's own bound: the image's stored chunk files (every chunk a cold
#                        read of F fetches, when F is most of the image), in image order, read by N
#                        parallel `cat`s (N = 1, 2, 8), page cache dropped: MB/s of chunk bytes
#   mount-cold-warmstore a fresh mount and empty cache dir after those files were read into the
#                        page cache: the mount's own work with the store's disk out of the way
# Each line carries the 1-minute load average at its start; compare rows of one round. As root,
# the mount and the readers run at real-time priority (`chrt -f 50`; RT=0 turns it off), so that
# other jobs on a shared machine (compilers) do not decide the figures.
set -euo pipefail
rt=()
if [ "$(id -u)" = 0 ] && [ "${RT:-1}" != 0 ] && command -v chrt >/dev/null; then rt=(chrt -f 50); fi
B=$(realpath "${BIN:-$(dirname "$0")/../target/release/chunkload}")
OLD=${OLD_BIN:+$(realpath "$OLD_BIN")}
cd "${OUT:-/tmp/real}"
F=${F:-usr/local/lib/python3.11/dist-packages/pyarrow/libarrow.so.2000}
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
rd() { "${rt[@]}" dd if="$1" of=/dev/null bs=1M 2>&1 | tail -1 | awk '{print $(NF-1), $NF}'; }
rnd() {
  "${rt[@]}" python3 - "$1" <<'PY'
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
rng = random.Random(19)
offsets = [rng.randrange(0, size - 4096) for _ in range(64)]
t = time.perf_counter()
for o in offsets:
    assert len(os.pread(fd, 4096, o)) == 4096
print("%.2f ms/read" % ((time.perf_counter() - t) * 1000 / len(offsets)))
PY
}
load() { cut -d' ' -f1 /proc/loadavg; }
"$B" manifest show realistic.manifest --chunks --json | python3 -c '
import json, sys
for c in json.load(sys.stdin)["chunks"]:
    n = c["name"]
    print("store/chunks/%s/%s/%s" % (n[:2], n[2:4], n))' > chunk-files.txt
chunk_bytes=$(xargs stat -c %s < chunk-files.txt | awk '{s += $1} END {print s}')
files() { local n=$1 t0 t1; drop; t0=$(date +%s%N)
  "${rt[@]}" xargs -P "$n" -n 1 cat < chunk-files.txt > /dev/null; t1=$(date +%s%N)
  awk -v b="$chunk_bytes" -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f MB/s\n", b * 1000 / ns}'; }
mkdir -p mnt
mountit() { local bin=$1 cache=$2; shift 2
  "${rt[@]}" "$bin" mount realistic.manifest --store store --key key mnt --cache-dir "$cache" "$@" > mount.log 2>&1 &
  for _ in $(seq 200); do mountpoint -q mnt && break; sleep 0.05; done; }
umountit() { kill -TERM %1; wait %1 || true; }
cold() { local what=$1 bin=$2; shift 2
  rm -rf cache; mountit "$bin" cache "$@"; drop
  echo "run $run load $(load) $what $(rd "mnt/$F")"
  umountit; }
random() { local what=$1 bin=$2; shift 2
  rm -rf cache; mountit "$bin" cache "$@"; drop
  echo "run $run load $(load) $what $(rnd "mnt/$F")"
  umountit; }
for run in $(seq "${RUNS:-5}"); do
  cold mount-cold "$B"
  cold mount-cold-ra0 "$B" --read-ahead-chunks 0
  [ -n "$OLD" ] && cold old-cold "$OLD"
  random random-default "$B"
  random random-ra0 "$B" --read-ahead-chunks 0
  [ -n "$OLD" ] && random random-old "$OLD"
  rm -rf cache; mountit "$B" cache; rd "mnt/$F" > /dev/null
  drop; echo "run $run load $(load) mount-warm-memory $(rd "mnt/$F")"
  umountit
  mountit "$B" cache; drop
  echo "run $run load $(load) mount-warm-disk $(rd "mnt/$F")"
  echo "run $run load $(load) mount-pagecache $(rd "mnt/$F")"
  umountit
  for n in 1 2 8; do echo "run $run load $(load) store-files-p$n $(files "$n")"; done
  rm -rf cache; mountit "$B" cache; drop; xargs cat < chunk-files.txt > /dev/null
  echo "run $run load $(load) mount-cold-warmstore $(rd "mnt/$F")"
  umountit
  drop; echo "run $run load $(load) extract-cold $(rd "rootfs/$F")"
  echo "run $run load $(load) extract-pagecache $(rd "rootfs/$F")"
done
