#!/usr/bin/env bash
# Checks systemd/facegate.service with systemd-analyze verify. verify insists
# that ExecStart= exists and is executable, so the unit is checked as a copy
# pointing at the freshly built bin/facegate; any warning fails the check.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v systemd-analyze >/dev/null || { echo "verify-systemd: systemd-analyze missing (apt-get install systemd)" >&2; exit 1; }
[ -x bin/facegate ] || { echo "verify-systemd: build bin/facegate first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/bin/facegate|ExecStart=$PWD/bin/facegate|" systemd/facegate.service > "$tmp/facegate.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$tmp/facegate.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "verify-systemd: warnings:" >&2; echo "$out" >&2; exit 1; fi
echo "verify-systemd: systemd/facegate.service ok ($(systemd-analyze --version | head -1))"
