#!/usr/bin/env bash
# What the README's two commands need from the machine (issue 14).
#
# usage: apt-deps.sh run|test
#
#   run   what `make run` and `make deps` need: go, gcc, Python 3.11 with its
#         venv module (Debian: python3-venv), nm (binutils), npm (Node 20).
#   test  also every Debian package in .ci/apt-packages (`make test`).
#
# Go, gcc, Python and Node are the README's prerequisites: missing, they are
# named and the script fails. A missing Debian package is installed with
# apt-get when running as root or with password-less sudo; otherwise the
# script prints the apt-get command to run and fails. Nothing is installed
# when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: apt-deps.sh run|test}

fail() { echo "apt-deps: $*" >&2; exit 1; }

# The prerequisites this script does not install.
need=()
command -v go >/dev/null || need+=("Go 1.26 (https://go.dev/dl/)")
command -v gcc >/dev/null || need+=("gcc (apt-get install gcc)")
command -v npm >/dev/null || need+=("Node 20 with npm")
if ! command -v python3 >/dev/null; then
  need+=("Python 3.11 as python3")
elif [ "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != 3.11 ]; then
  need+=("Python 3.11 as python3 (found $(python3 --version 2>&1); the venv and the cgo flags expect 3.11)")
fi
if [ ${#need[@]} -gt 0 ]; then
  printf 'apt-deps: make %s needs, before anything else:\n' "$mode" >&2
  printf '  - %s\n' "${need[@]}" >&2
  exit 1
fi

# Debian packages, missing ones only.
pkgs=()
python3 -c 'import ensurepip, venv' 2>/dev/null || pkgs+=(python3-venv)
command -v nm >/dev/null || pkgs+=(binutils)
if [ "$mode" = test ]; then
  command -v dpkg-query >/dev/null || fail "make test needs the Debian packages in .ci/apt-packages; no dpkg-query here to check them"
  while read -r p; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || pkgs+=("$p")
  done < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' .ci/apt-packages | grep -v '^$')
elif [ "$mode" != run ]; then
  fail "usage: apt-deps.sh run|test"
fi
[ ${#pkgs[@]} -eq 0 ] && exit 0

cmd=(apt-get install -y -qq --no-install-recommends "${pkgs[@]}")
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  fail "make $mode needs the Debian packages ${pkgs[*]}; install them (root or sudo needed) with:
  sudo apt-get update && sudo ${cmd[*]}"
fi
command -v apt-get >/dev/null || fail "make $mode needs ${pkgs[*]} and this is not a Debian system (no apt-get)"
echo "apt-deps: installing ${pkgs[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${cmd[@]}" >/dev/null
