#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser test (test/gateway/dashboard.test.ts), which
# drives it with playwright-core. Does nothing when /usr/bin/chromium is already there. Needs root
# (or sudo) and apt-get; exits non-zero when it cannot install, so the caller can skip with a reason.
set -euo pipefail
BIN=/usr/bin/chromium
if [ -x "$BIN" ]; then echo "chromium: $BIN"; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then echo "install-chromium: apt-get not found (not Debian/Ubuntu)" >&2; exit 1; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
  else echo "install-chromium: not root and no password-less sudo" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
# a fresh image has empty package lists: apt-cache then does not know the package
if ! apt-cache show chromium >/dev/null 2>&1; then $SUDO apt-get update -q; fi
$SUDO apt-get install -y -q --no-install-recommends chromium
[ -x "$BIN" ] || { echo "install-chromium: $BIN missing after install" >&2; exit 1; }
echo "chromium: $BIN"
