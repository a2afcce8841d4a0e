#!/usr/bin/env bash
# The README's test command. On a fresh machine it first installs the real tools the tests drive
# (umoci and skopeo build and convert the test images; the tests never skip without them), then
# checks formatting and lints and runs every test. Benches are compiled, not run, so they can't rot.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/install-tools.sh

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo bench --locked --no-run
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The summary comes even when tests fail (cargo test stops at the first failing test binary
# unless told --no-fail-fast); the script still exits with cargo's status.
status=0
cargo test --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line over every test binary (unit, integration, doc tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
