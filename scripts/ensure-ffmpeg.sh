#!/usr/bin/env bash
# Make sure ffmpeg and ffprobe (Debian's ffmpeg package) are on PATH; install them if we are root.
set -euo pipefail
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's ffmpeg (ffmpeg + ffprobe)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  exit 0
fi
echo "emotrack needs ffmpeg and ffprobe on PATH. Install them, e.g.:" >&2
echo "  sudo apt-get install ffmpeg      (Debian/Ubuntu)" >&2
echo "  brew install ffmpeg              (macOS)" >&2
exit 1
