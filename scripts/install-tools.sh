#!/usr/bin/env bash
# Installs the real tools chunkload's tests drive (umoci and skopeo build and convert images;
# fuse3's fusermount3 serves the real-mode mount tests; busybox-static is the sandbox tests' image;
# slurm-wlm and munge are the one-node SLURM
# cluster tests/integration/slurm.rs starts; chromium renders the HTML reports headless in
# tests/integration/browser.rs), from Debian's packages, when they are missing.
# Idempotent and quiet: nothing runs when every tool is there. Sourced by test.sh.
need=()
for tool in umoci skopeo; do command -v "$tool" >/dev/null || need+=("$tool"); done
command -v fusermount3 >/dev/null || need+=(fuse3)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
# The daemons live in /usr/sbin, which a non-login PATH may lack.
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
for tool in slurmctld slurmd sbatch; do have "$tool" || { need+=(slurm-wlm); break; }; done
have munged || need+=(munge)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
