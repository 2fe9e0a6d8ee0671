#!/usr/bin/env bash
# Usage: ensure-apt.sh COMMAND PACKAGE
# Make COMMAND (a name on PATH or an absolute path) available, installing Debian's PACKAGE with apt
# when it is missing: as root, or through password-less sudo. Nothing else is downloaded.
set -euo pipefail
command_name=$1 package=$2
if command -v "$command_name" >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure-apt: no apt-get on this machine; install $package so that $command_name exists" >&2
  exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "ensure-apt: not root and no password-less sudo; run: sudo apt-get install $package" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "$package"
command -v "$command_name" >/dev/null
