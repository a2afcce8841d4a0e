#!/usr/bin/env bash
# Records the committed traces of tests/data/traces/ (run as root from the repository root; needs
# strace and the realistic image built by images/build-realistic.sh).
#
#   python-import.jsonl      `python3 -c "import pandas, pyarrow.parquet, boto3"` in the realistic image
#   fixture-threads.strace   raw strace of fixture-threads.py (threads importing modules concurrently,
#                            so <unfinished ...>/<... resumed> pairs; a non-UTF-8 file name, lseek
#                            SEEK_SET/CUR/END, pread64, fcntl(F_DUPFD), a failed open, a pipe): the
#                            importer's test fixture, traced with dup/fcntl added to the syscall set.
#
# Nothing is mounted in the chroot: python3 starts without /dev and /proc (it then reads no
# /proc files and opens no /dev/null), so the trace holds only the image's own files. The first
# ~50 accesses are the host's `chroot` binary loading its libraries before chroot(); the importer
# drops them as outside the root.
set -euo pipefail

IMAGE=${IMAGE:-images/realistic/oci:latest}
ROOT=${ROOT:-/tmp/rootfs-realistic}
OUT=tests/data/traces
BIN=target/release/chunkload

cargo build --release
rm -rf "$ROOT"
"$BIN" extract "$IMAGE" "$ROOT"

strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close -o /tmp/py.strace \
    chroot "$ROOT" /usr/bin/python3 -c "import pandas, pyarrow.parquet, boto3"
"$BIN" trace import-strace /tmp/py.strace --root "$ROOT" \
    --command 'python3 -c "import pandas, pyarrow.parquet, boto3"' -o "$OUT/python-import.jsonl"

# The fixture reads this 10000-byte file with a Latin-1 (not UTF-8) name.
printf 'x%.0s' $(seq 1 10000) > "$ROOT/tmp/$(printf 'caf\xe9')"
cp "$OUT/fixture-threads.py" "$ROOT/tmp/fixture-cmd.py"
strace -f -tt -y -e trace=openat,read,pread64,mmap,lseek,close,dup,dup2,dup3,fcntl \
    -o "$OUT/fixture-threads.strace" chroot "$ROOT" /usr/bin/python3 /tmp/fixture-cmd.py
