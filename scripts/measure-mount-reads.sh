#!/usr/bin/env bash
# Sequential reads of one large file (pyarrow's libarrow.so.2000, 66.4 MB) through `chunkload
# mount` and from `chunkload extract` output, page cache dropped before each cold read
# (docs/performance.md, "Real mode"). Root; run in the directory scripts/compare-strace-fuse.sh
# prepared (default /tmp/real: realistic.manifest, store, key, rootfs). RUNS (default 5) rounds of:
#   mount-cold         fresh mount, empty cache dir: every chunk from the store
#   mount-cold-ra4     the same with --read-ahead-chunks 4
#   mount-warm-memory  same mount, page cache dropped: every chunk from the memory tier
#   mount-warm-disk    new mount on that cache dir, page cache dropped: chunks from the disk tier
#   mount-pagecache    the same read again: the kernel's page cache, the agent not asked
#   extract-cold / extract-pagecache: the extracted file, cold and from the page cache
set -euo pipefail
B=$(realpath "${BIN:-$(dirname "$0")/../target/release/chunkload}")
cd "${OUT:-/tmp/real}"
F=usr/local/lib/python3.11/dist-packages/pyarrow/libarrow.so.2000
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
rd() { dd if="$1" of=/dev/null bs=1M 2>&1 | tail -1 | awk '{print $(NF-1), $NF}'; }
mkdir -p mnt
mountit() { $B mount realistic.manifest --store store --key key mnt --cache-dir "$1" "${@:2}" > mount.log 2>&1 &
  for i in $(seq 100); do mountpoint -q mnt && break; sleep 0.05; done; }
umountit() { kill -TERM %1; wait %1 || true; }
for run in $(seq "${RUNS:-5}"); do
  rm -rf cache; mountit cache; drop
  echo "run $run mount-cold $(rd mnt/$F)"
  drop; echo "run $run mount-warm-memory $(rd mnt/$F)"
  umountit
  rm -rf cache; mountit cache --read-ahead-chunks 4; drop
  echo "run $run mount-cold-ra4 $(rd mnt/$F)"
  umountit
  mountit cache; drop
  echo "run $run mount-warm-disk $(rd mnt/$F)"
  echo "run $run mount-pagecache $(rd mnt/$F)"
  umountit
  drop; echo "run $run extract-cold $(rd rootfs/$F)"
  echo "run $run extract-pagecache $(rd rootfs/$F)"
done
