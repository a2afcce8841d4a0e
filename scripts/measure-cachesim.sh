#!/usr/bin/env bash
# Side by side, in one run: `chunkload cachesim` and libCacheSim's `cachesim` on the same
# 10-million-request Zipf trace (oracleGeneral), LRU at one size, requests per second from wall
# time (and CPU time), then the agreement of every shared policy at three sizes.
#
#   scripts/measure-cachesim.sh [LIBCACHESIM_CACHESIM_BINARY]
#
# libCacheSim is built outside the project: fetch github.com/1a1a11a/libCacheSim into a scratch
# directory, apply the one-line print of raw counts below (its own output rounds ratios to four
# decimals), and build with cmake (needs cmake, libglib2.0-dev, libzstd-dev). Give the path of the
# resulting _build/bin/cachesim, or set LCS. Nothing of libCacheSim is part of this project.
#
# The print patch, after the `fprintf(output_file, "%s", output_str);` of bin/cachesim/main.c:
#   printf("COUNTS %s %lu %lld %lld %lld %lld\n", result[i].cache_name,
#          (unsigned long)result[i].cache_size, (long long)result[i].n_req,
#          (long long)result[i].n_miss, (long long)result[i].n_req_byte,
#          (long long)result[i].n_miss_byte);
set -euo pipefail
cd "$(dirname "$0")/.."
LCS=${1:-${LCS:-/tmp/libcachesim/src/_build/bin/cachesim}}
[ -x "$LCS" ] || { echo "no libCacheSim cachesim at $LCS (see the header of this script)" >&2; exit 1; }
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
REQUESTS=${REQUESTS:-10000000}
OBJECTS=${OBJECTS:-1000000}
ALPHA=${ALPHA:-0.9}
SIZE=${SIZE:-100000}   # objects: 10% of the distinct objects
cargo build --release --quiet --bin chunkload --example zipf_trace
CL=$PWD/target/release/chunkload
# libCacheSim writes result files into its working directory: run it from the scratch one.
LCS_RUN=(env -C "$WORK" "$LCS")
# libCacheSim picks the reader by name: the file name must contain "oracleGeneral".
TRACE=$WORK/zipf.oracleGeneral.bin
[ -f "$TRACE" ] || target/release/examples/zipf_trace "$TRACE" "$REQUESTS" "$OBJECTS" "$ALPHA"
cat "$TRACE" > /dev/null   # both read it from the page cache

echo "## machine"
lscpu | grep -E '^(Model name|CPU\(s\)|Thread|L2|L3)' || true
grep -o -w -E 'avx2|avx512f|sse4_2|bmi2' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

run() { # label, command...: prints label, wall s, user s, sys s
  /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" "${@:2}" > /dev/null 2>&1
  echo "$1 $(cat "$WORK/time.txt")"
}
echo "## LRU, $REQUESTS requests, cache $SIZE objects (--ignore-obj-size), three rounds alternating"
for round in 1 2 3; do
  run "chunkload" "$CL" cachesim "$TRACE" --algorithms lru --sizes "$SIZE" --ignore-obj-size
  run "libcachesim" "${LCS_RUN[@]}" "$TRACE" oracleGeneral lru "$SIZE" --ignore-obj-size 1 --report-interval 100000000
done | awk -v n="$REQUESTS" '{ wall[$1] += $2; cpu[$1] += $3 + $4; k[$1]++; printf "%-12s wall %6.2f s  cpu %6.2f s  %6.2f M req/s\n", $1, $2, $3 + $4, n / $2 / 1e6 }
  END { printf "mean: chunkload %.2f M req/s, libCacheSim %.2f M req/s: %.1fx (CPU time: %.1fx)\n",
        n * k["chunkload"] / wall["chunkload"] / 1e6, n * k["libcachesim"] / wall["libcachesim"] / 1e6,
        wall["libcachesim"] / wall["chunkload"], cpu["libcachesim"] / cpu["chunkload"] }'

echo "## agreement: miss and byte-miss counts at three sizes, in bytes"
SIZES=${AGREE_SIZES:-104857600,1073741824,4294967296}
"${LCS_RUN[@]}" "$TRACE" oracleGeneral lru,fifo,lfu,arc,s3fifo,random,belady "$SIZES" --num-thread 2 2>/dev/null \
  | awk '/^COUNTS/ { n = tolower($2); sub(/-.*/, "", n); if (n == "s3fifo") n = "s3-fifo"; print n, $3, $5, $4, $7, $6 }' | sort > "$WORK/lcs.txt"
"$CL" cachesim "$TRACE" --algorithms lru,fifo,lfu,arc,s3-fifo,random,belady --sizes "$SIZES" --out "$WORK/cl" > /dev/null
tail -n +2 "$WORK/cl/cachesim.csv" | awk -F, '{ print $1, $3, $6, $5, $9, $8 }' | sort > "$WORK/cl.txt"
# Fields after the key: misses, requests, miss bytes, request bytes; libCacheSim's, then chunkload's.
join <(awk '{ print $1 "@" $2, $3, $4, $5, $6 }' "$WORK/lcs.txt" | sort) <(awk '{ print $1 "@" $2, $3, $4, $5, $6 }' "$WORK/cl.txt" | sort) \
  | awk '{ split($1, a, "@"); d = 100 * ($6 / $7 - $2 / $3); db = 100 * ($8 / $9 - $4 / $5);
           printf "%-8s %11s  misses: libCacheSim %9d chunkload %9d (%+.3f pp)  byte miss ratio %+.3f pp\n", a[1], a[2], $2, $6, d, db }'
echo "work files in $WORK"
