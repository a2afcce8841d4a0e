#!/usr/bin/env bash
# Installs the real tools chunkload's tests and demo drive (umoci and skopeo build and convert
# images), from Debian's packages, when they are missing. Sourced by test.sh.
need=()
for tool in umoci skopeo; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
