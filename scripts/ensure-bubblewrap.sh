#!/usr/bin/env bash
# Make bubblewrap (`bwrap`) available for grading as an ordinary user (convcourse.grading.sandbox.bwrap)
# and for the tests that grade as ordinary accounts. Debian's package, installed with apt when run as root.
set -euo pipefail
if command -v bwrap >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-bubblewrap: no apt-get on this machine; install bubblewrap so that the bwrap command exists" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "ensure-bubblewrap: not root and no password-less sudo; run: sudo apt-get install bubblewrap" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq bubblewrap
command -v bwrap >/dev/null
