#!/usr/bin/env bash
# Make sure a headless Chromium (Debian's chromium package) is on PATH; install it if we are
# root. Used by the tests that render the HTML report.
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium (headless rendering of the HTML report)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "the HTML report tests need chromium on PATH (sudo apt-get install chromium)" >&2
exit 1
