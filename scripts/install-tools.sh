#!/usr/bin/env bash
# Installs the real tools chunkload's tests drive (umoci and skopeo build and convert
# images; fuse3's fusermount3 serves the real-mode mount tests; busybox-static is the sandbox
# tests' image), from Debian's packages, when they are missing. Sourced by test.sh.
need=()
for tool in umoci skopeo; do command -v "$tool" >/dev/null || need+=("$tool"); done
command -v fusermount3 >/dev/null || need+=(fuse3)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
