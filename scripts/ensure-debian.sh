#!/usr/bin/env bash
# ensure-debian.sh PACKAGE COMMAND...: make sure the COMMANDs are on PATH, installing Debian's
# PACKAGE if we are root. The Makefile uses it for ffmpeg (ffmpeg + ffprobe), the HTML report's
# tests for chromium.
set -euo pipefail
package=$1
shift
missing=0
for command in "$@"; do
  command -v "$command" >/dev/null || missing=1
done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's $package ($*)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$package" >/dev/null
  exit 0
fi
echo "emotrack needs $* on PATH. Install them, e.g.:" >&2
echo "  sudo apt-get install $package      (Debian/Ubuntu)" >&2
echo "  brew install $package              (macOS)" >&2
exit 1
