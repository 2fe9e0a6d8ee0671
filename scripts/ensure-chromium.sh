#!/usr/bin/env bash
# Make Debian's chromium available at /usr/bin/chromium for tests/test_browser.py.
# Playwright's own browser download cannot be used here, so the browser comes from apt.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: no apt-get on this machine; install chromium so that /usr/bin/chromium exists" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "ensure-chromium: not root and no password-less sudo; run: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium
test -x /usr/bin/chromium
