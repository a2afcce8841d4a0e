#!/usr/bin/env bash
# The crypto-stage target of docs/performance.md, measured side by side: this CPU's OpenSSL
# SHA-256 and AES-256-CTR speeds give the bound 1 / (2/sha + 1/aes) (two SHA-256 passes and one
# AES pass per byte), and criterion's `convergent/sealer` (what a convert worker runs, one core)
# is compared with it.
#
#   scripts/measure-crypto.sh [ROUNDS]      (default 3)
#
# Method: each round runs OpenSSL (16 KiB blocks, 3 s each) and then the sealer bench, all pinned
# to one core at real-time priority when run as root (`taskset -c 1 chrt -f 99`), so the two
# see the same core and drift in machine load hits both. Prints one line per round.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bench=$(cargo bench --bench crypto --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*crypto-[^"]*\)".*/\1/p' | tail -1)
pin=()
if [ "$(id -u)" = 0 ] && command -v chrt >/dev/null && [ "$(nproc)" -gt 1 ]; then
  pin=(taskset -c 1 chrt -f 99)
fi
# OpenSSL's figure for 16384-byte blocks, in MB/s (it prints kB/s in units of 1000 bytes).
ossl() {
  "${pin[@]}" openssl speed -seconds 3 -bytes 16384 -evp "$1" 2>/dev/null |
    awk -v alg="$1" 'tolower($1) == alg { v = $NF; sub(/k$/, "", v); printf "%.0f", v / 1000 }'
}
# The sealer's median and mean time per 512 KiB chunk, as MB/s (the mean counts every
# interruption the machine inflicted; the median is the steady state).
sealer() {
  "${pin[@]}" "$bench" --bench --warm-up-time 1 --measurement-time 5 'convergent/sealer' >/dev/null 2>&1
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(" ".join("%.0f" % (512*1024/e[k]["point_estimate"]*1e3) for k in ("median","mean")))' \
    target/criterion/convergent/sealer/new/estimates.json
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(openssl version)"
echo "pinned: ${pin[*]:-no (not root)}"
printf '%-6s %9s %9s %7s %13s %13s\n' round sha256 aes256ctr bound sealer_median sealer_mean
for r in $(seq 1 "$rounds"); do
  sha=$(ossl sha256)
  aes=$(ossl aes-256-ctr)
  read -r med mean < <(sealer)
  python3 -c 'import sys; r,s,a,m,n=sys.argv[1:]; s,a,m,n=map(float,(s,a,m,n)); b=1/(2/s+1/a); print(f"{r:<6} {s:>9.0f} {a:>9.0f} {b:>7.0f} {m:>5.0f} {100*m/b:>5.1f}% {n:>5.0f} {100*n/b:>5.1f}%")' \
    "$r" "$sha" "$aes" "$med" "$mean"
done
echo "(MB/s = 10^6 bytes per second; bound = 1 / (2/sha256 + 1/aes256ctr))"
