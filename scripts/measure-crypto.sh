#!/usr/bin/env bash
# The crypto-stage target of docs/performance.md, measured side by side: this CPU's OpenSSL
# SHA-256 and AES-256-CTR speeds give the bound 1 / (2/sha + 1/aes) (two SHA-256 passes and one
# AES pass per byte), and criterion's `convergent/sealer` (what a convert worker runs, one core)
# is compared with it, once per AES-256-CTR kernel this CPU can run (CHUNKLOAD_CRYPTO_PATH forces
# each: avx512, avx2-vaes, aesni, portable; crypto/path.rs).
#
#   scripts/measure-crypto.sh [ROUNDS] [PATHS]    (default 3 rounds, every path the CPU runs;
#                                                  PATHS e.g. "avx2-vaes aesni")
#
# Method: each round runs OpenSSL (16 KiB blocks, 3 s each) and then the sealer bench on every
# path, all pinned to one core at real-time priority when run as root (`taskset -c 1 chrt -f 99`),
# so they see the same core and drift in machine load hits all of them. One line per round and
# path, with the 1-minute load average when the round started: figures taken under load are
# comparable within a round (share of the bound), less so across rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bench=$(cargo bench --bench crypto --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*crypto-[^"]*\)".*/\1/p' | tail -1)
pin=()
if [ "$(id -u)" = 0 ] && command -v chrt >/dev/null && [ "$(nproc)" -gt 1 ]; then
  pin=(taskset -c 1 chrt -f 99)
fi
# The bench names the CPU's features and the kernels it can run before it does anything else.
info=$("$bench" --bench --list 2>&1 >/dev/null || true)
paths=${2:-$(printf '%s\n' "$info" | sed -n 's/^kernels this CPU runs: //p' | tr -d ,)}
# OpenSSL's figure for 16384-byte blocks, in MB/s (it prints kB/s in units of 1000 bytes).
ossl() {
  "${pin[@]}" openssl speed -seconds 3 -bytes 16384 -evp "$1" 2>/dev/null |
    awk -v alg="$1" 'tolower($1) == alg { v = $NF; sub(/k$/, "", v); printf "%.0f", v / 1000 }'
}
# The sealer's median and mean time per 512 KiB chunk on kernel $1, as MB/s (the mean counts
# every interruption the machine inflicted; the median is the steady state), and the kernel the
# bench reported it ran.
sealer() {
  local ran
  ran=$(CHUNKLOAD_CRYPTO_PATH=$1 "${pin[@]}" "$bench" --bench --warm-up-time 1 --measurement-time 5 \
    'convergent/sealer' 2>&1 >/dev/null | sed -n 's/.*aes-256-ctr kernel: \([^ ;]*\).*/\1/p' | head -1)
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(" ".join("%.0f" % (512*1024/e[k]["point_estimate"]*1e3) for k in ("median","mean")))' \
    target/criterion/convergent/sealer/new/estimates.json
  echo "$ran"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(openssl version)"
printf '%s\n' "$info" | grep -m1 '^chunkload crypto bench' | sed 's/^chunkload crypto bench: //'
echo "pinned: ${pin[*]:-no (not root)}; paths: $paths"
printf '%-5s %5s %9s %9s %7s %-10s %-10s %14s %14s\n' round load sha256 aes256ctr bound path ran sealer_median sealer_mean
for r in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  sha=$(ossl sha256)
  aes=$(ossl aes-256-ctr)
  for p in $paths; do
    { read -r med mean; read -r ran; } < <(sealer "$p")
    python3 -c 'import sys; r,l,s,a,p,ran,m,n=sys.argv[1:]; s,a,m,n=map(float,(s,a,m,n)); b=1/(2/s+1/a); print(f"{r:<5} {l:>5} {s:>9.0f} {a:>9.0f} {b:>7.0f} {p:<10} {ran:<10} {m:>6.0f} {100*m/b:>6.1f}% {n:>6.0f} {100*n/b:>6.1f}%")' \
      "$r" "$load" "$sha" "$aes" "$p" "${ran:-?}" "$med" "$mean"
  done
done
echo "(MB/s = 10^6 bytes per second; bound = 1 / (2/sha256 + 1/aes256ctr); path = forced kernel, ran = the kernel the bench reported)"
