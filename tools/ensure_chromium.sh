#!/usr/bin/env bash
# Make Debian's headless Chromium available for the browser tests: the report (tests/edge/report/)
# and the operator page (tests/edge/hmi/, over the DevTools protocol).
# Prints the browser's path and exits 0 when it is there (or was installed); exits 1 with the reason
# when it cannot be installed (not root, no apt-get, the package not found). Installs only
# Debian's package `chromium` (no browser download of its own); runs `apt-get update` once when
# the package lists do not know it yet.
set -euo pipefail
for name in chromium chromium-browser; do
    if path=$(command -v "$name" 2>/dev/null); then
        echo "$path"
        exit 0
    fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: no chromium and no apt-get to install it" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure_chromium: no chromium; installing it needs root (apt-get install chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show chromium >/dev/null 2>&1; then
    apt-get update -qq >&2
fi
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
command -v chromium
