#!/usr/bin/env bash
# Records one Python start in the realistic image twice, with strace (in a chroot of the extracted
# root, as tests/data/traces/record-python-import.sh does) and through the FUSE mount (`chunkload
# trace record`), and prints what docs/real-mode.md compares: trace stats, pages and chunks of the
# block image, and replays. Run as root from the repository root; needs strace, fuse3 and the
# realistic image (images/build-realistic.sh). Everything goes to $OUT (default /tmp/real).
set -euo pipefail
IMAGE=${IMAGE:-images/realistic/oci:latest}
case $IMAGE in /*) ;; *) IMAGE=$PWD/$IMAGE ;; esac
OUT=${OUT:-/tmp/real}
CMD=${CMD:-import numpy, pandas, pyarrow}
BIN=$PWD/target/release/chunkload
cargo build --release
mkdir -p "$OUT"
cd "$OUT"
[ -f key ] || "$BIN" keygen key
[ -f realistic.manifest ] || "$BIN" convert "$IMAGE" --store store --key key -o realistic.manifest
[ -d rootfs ] || "$BIN" extract -q realistic.manifest --store store --key key rootfs

strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close -o py.strace \
    chroot rootfs /usr/bin/python3 -c "$CMD"
"$BIN" trace import-strace py.strace --root "$OUT/rootfs" --command "python3 -c \"$CMD\"" -o strace.jsonl

# Cold recording, then two on a warm disk cache (gaps then are CPU time, not the mount's loads).
rm -rf wcache
"$BIN" trace record realistic.manifest --store store --key key --cache-dir wcache -o fuse.jsonl -- python3 -c "$CMD"
"$BIN" trace record realistic.manifest --store store --key key --cache-dir wcache -o fuse-warm.jsonl -- python3 -c "$CMD"

for t in strace fuse; do "$BIN" trace stats "$t.jsonl"; done
for m in ignore whole; do "$BIN" trace map strace.jsonl --image "$IMAGE" --mmap "$m"; done
"$BIN" trace map fuse.jsonl --image "$IMAGE"

# Per-file view: bytes the kernel read of files strace only saw mapped, or not at all.
python3 - <<'PY'
import collections, json
def per(path, op):
    d = collections.defaultdict(int)
    for line in list(open(path))[1:]:
        r = json.loads(line)
        if r["op"] == op:
            d[r["path"]] += r["len"]
    return d
fr, sr, sm = per("fuse.jsonl", "read"), per("strace.jsonl", "read"), per("strace.jsonl", "mmap")
mapped = [p for p in sm if p in fr]
unseen = [p for p in fr if p not in sr and p not in sm]
plain = [p for p in sr if p not in sm]
print(f"mapped files: {len(mapped)}, mapped {sum(sm[p] for p in mapped)} B, read through FUSE {sum(fr[p] for p in mapped)} B")
print(f"read through FUSE, invisible to strace: {unseen} {sum(fr[p] for p in unseen)} B")
print(f"read-only files: {len(plain)}, strace {sum(sr[p] for p in plain)} B, FUSE {sum(fr.get(p, 0) for p in plain)} B")
PY

printf '[guest]\nread_ahead_pages = 0\n' > fuse-scenario.toml
# --cpu-scale 0: only the time reads stall on chunks, free of the recordings' CPU-time noise.
replay() { "$BIN" replay realistic.manifest --store store --key key --cpu-scale 0 --trace "$@"; }
replay strace.jsonl --mmap ignore
replay strace.jsonl --mmap whole
replay fuse-warm.jsonl --scenario fuse-scenario.toml
