#!/usr/bin/env bash
# The README's main command until `chunkload demo` lands: builds the release binary, builds the
# kitchen-sink test image with umoci (every flattening rule in four layers), inspects it, and
# extracts it next to umoci's own unpack so you can compare.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install-tools.sh
cargo build --release --quiet
out=${1:-out/demo}
rm -rf "$out" && mkdir -p "$out"
bash tests/fixtures/kitchen-sink.sh "$out/images" >/dev/null
bin=target/release/chunkload
echo "== chunkload inspect $out/images/oci:ks"
$bin inspect "$out/images/oci:ks"
echo
echo "== chunkload extract $out/images/oci:ks $out/rootfs"
$bin extract "$out/images/oci:ks" "$out/rootfs"
umoci unpack --image "$out/images/oci:ks" "$out/umoci-bundle" >/dev/null
# diff reports special files it cannot compare; anything else is a real difference.
differences=$(diff -r --no-dereference "$out/rootfs" "$out/umoci-bundle/rootfs" 2>&1 \
  | grep -v -e 'is a fifo while' -e 'is a character special file while' || true)
if [ -z "$differences" ]; then
  echo "umoci unpack of the same image: identical tree ($out/umoci-bundle/rootfs)"
else
  echo "umoci unpack of the same image differs:"; echo "$differences"; exit 1
fi

echo
echo "== convergent chunks: convert the image, then the same image as a docker archive"
$bin keygen "$out/customer.key" >/dev/null
$bin convert "$out/images/oci:ks" --store "$out/store" --key "$out/customer.key" -o "$out/ks.manifest"
$bin convert "$out/images/docker.tar" --store "$out/store" --key "$out/customer.key" -o "$out/ks-docker.manifest" \
  | grep -E "chunks|written"
echo "(same flattened image, same block image: every chunk already present)"
echo
echo "== the manifest is readable without the key (for garbage collection)"
$bin manifest show "$out/ks.manifest" | head -12
echo
echo "== rebuild the root filesystem from chunks alone"
$bin extract "$out/ks.manifest" "$out/rootfs-from-chunks" --store "$out/store" --key "$out/customer.key"

echo
echo "== one cold start, replayed: a synthetic start trace (6.4% of the image's bytes, seeded)"
$bin trace synth --image "$out/images/oci:ks" -o "$out/start.jsonl"
for caches in "cold cold" "cold warm" "warm warm"; do
  set -- $caches
  echo "-- worker cache $1, AZ cache $2"
  $bin replay "$out/ks.manifest" --store "$out/store" --key "$out/customer.key" --trace "$out/start.jsonl" \
    --l1 "$1" --l2 "$2" --image "$out/images/oci:ks" | sed -n '2,/^effective scenario/p' | grep -v '^effective scenario'
done
echo "(the effective scenario and seed are printed in full without the filter; see docs/replay-model.md)"
