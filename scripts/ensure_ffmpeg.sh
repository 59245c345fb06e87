#!/usr/bin/env bash
# Installs ffmpeg from Debian when it is missing (video benchmarks sample frames with it).
set -euo pipefail
command -v ffmpeg >/dev/null 2>&1 && exit 0
echo "== installing ffmpeg (Debian)"
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
