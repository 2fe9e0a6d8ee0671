#!/usr/bin/env bash
# Make Debian's chromium available at /usr/bin/chromium for the browser tests (Playwright's own
# browser download cannot be used here, so the browser comes from apt).
exec "$(dirname "$0")/ensure-apt.sh" /usr/bin/chromium chromium
