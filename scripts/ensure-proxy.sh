#!/usr/bin/env bash
# Usage: ensure-proxy.sh PREFIX
# Make JupyterHub's proxy, configurable-http-proxy, available as PREFIX/bin/configurable-http-proxy (PREFIX is
# the course's venv, whose bin/ the hub has on its PATH): installed from the npm registry with the machine's npm
# when missing. The version is pinned here, as the Python side is pinned by requirements.txt.
set -euo pipefail
prefix=$1
version=5.2.0  # 5.3's command-line parser needs node >= 22; 5.2 runs on node 20
if [[ -x "$prefix/bin/configurable-http-proxy" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "ensure-proxy: npm is missing; install node and npm (Debian: apt-get install nodejs npm) for JupyterHub's proxy" >&2
  exit 1
fi
npm install --global --prefix "$prefix" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$version" >&2
"$prefix/bin/configurable-http-proxy" --version >/dev/null
