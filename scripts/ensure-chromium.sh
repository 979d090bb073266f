#!/usr/bin/env bash
# Make sure Debian's Chromium is installed at /usr/bin/chromium: the side panel's browser tests
# and benchmark drive it with Playwright (executable_path), which never downloads a browser.
# Idempotent: does nothing when /usr/bin/chromium exists; otherwise installs the Debian
# `chromium` package non-interactively (needs root or sudo).
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "ensure-chromium: Chromium is not installed and this user cannot run apt-get" \
    "(not root, no sudo). Install Debian's 'chromium' package." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq >/dev/null
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x /usr/bin/chromium
