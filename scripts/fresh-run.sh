#!/usr/bin/env bash
# The README's promise, checked (issue 14, make fresh-run, part of make test):
# `make run` from a clean clone, on a machine with only what the README
# lists, shows the demo's `granted` event.
#
# - The clone is `git clone` of this repository: what is committed.
# - PATH is a folder of links to the programs of Debian's essential and
#   required packages and to the README's prerequisites only (go, python3,
#   node and npm, gcc with binutils, make, git): no ffmpeg, qemu, mosquitto,
#   curl, xz ...; the environment is emptied but for the home, locale,
#   proxy, certificate and Go/pip/npm settings.
# - The clone builds its own venv and models; downloads come from the shared
#   caches (~/.cache/facegate, pip's, Go's), as on a developer's second run.
#
# It also runs the built binary with TF_CPP_MIN_LOG_LEVEL unset, as a person
# would, and fails on any TensorFlow line on stderr.
#
# FRESH_KEEP=1 keeps the clone; FRESH_DEMO_SECONDS bounds the demo (20).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/facegate-fresh.XXXXXX")
done_ok=0
cleanup() {
  if [ -n "${FRESH_KEEP:-}" ]; then
    echo "fresh-run: clone kept in $work"
  elif [ $done_ok = 0 ]; then
    rm -rf "$work/facegate/.venv" "$work/facegate/build/models"
    echo "fresh-run: logs and clone (less its venv and models) kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
fail() { echo "fresh-run: FAIL: $*" >&2; exit 1; }

# PATH: Debian's essential and required packages' programs ...
bin=$work/bin
mkdir -p "$bin"
link() { # link NAME [TARGET]: NAME in $bin, to TARGET or to NAME on today's PATH
  local t=${2:-}
  [ -n "$t" ] || t=$(command -v "$1" 2>/dev/null) || return 1
  ln -sfn "$t" "$bin/$1"
}
command -v dpkg-query >/dev/null || fail "needs a Debian system (dpkg-query) to know its essential packages"
mapfile -t base < <(dpkg-query -W -f='${Package}\t${Essential}\t${Priority}\n' | awk -F'\t' '$2=="yes" || $3=="required" {print $1}')
while read -r f; do
  link "$(basename "$f")" "$f"
done < <(dpkg-query -L "${base[@]}" 2>/dev/null | grep -E '^(/usr)?/s?bin/[^/]+$' | sort -u)
for a in awk sh which; do link "$a" || true; done # alternatives of required packages
# ... and the README's prerequisites.
for p in go node npm gcc make git; do
  link "$p" || fail "prerequisite $p is not installed here"
done
for p in gofmt cc cpp "$(basename "$(readlink -f "$(command -v gcc)")")"; do link "$p" || true; done
while read -r f; do # gcc depends on binutils
  link "$(basename "$f")" "$f"
done < <(dpkg-query -L binutils "binutils-$(uname -m | tr _ -)-linux-gnu" 2>/dev/null | grep -E '^/usr/bin/[^/]+$' || true)
py=$(python3 -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
link python3 "$py"
link python3.11 "$py"
for tool in ffmpeg qemu-system-x86_64 mosquitto curl wget xz; do
  [ ! -e "$bin/$tool" ] || fail "$tool is in the fresh PATH; the check would prove nothing about it"
done

# The environment a person's shell would have, and nothing the outer make exported.
envs=(PATH="$bin" HOME="$HOME" LANG="${LANG:-C.UTF-8}" TERM=dumb)
while IFS= read -r kv; do
  envs+=("$kv")
done < <(env | grep -E '^(USER|LOGNAME|TMPDIR|CI|XDG_CACHE_HOME|https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|GIT_SSL_CAINFO|PIP_[A-Z_]+|GO(FLAGS|PROXY|PRIVATE|NOPROXY|NOSUMDB|SUMDB|CACHE|MODCACHE|PATH|TOOLCHAIN)|npm_config_[a-z_]+|NPM_CONFIG_[A-Z_]+)=' || true)

git clone --quiet --no-local "$repo" "$work/facegate"
echo "fresh-run: clone of $(git -C "$work/facegate" log --oneline -1) in $work/facegate, PATH of $(ls "$bin" | wc -l) programs"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$work/facegate"
rc=0
env -i "${envs[@]}" DEMO_SECONDS="${FRESH_DEMO_SECONDS:-20}" DEMO_PORT="$port" \
  timeout 1200 make run 2>&1 | while IFS= read -r l; do printf '[%4ds] %s\n' $(($(date +%s) - start)) "$l"; done >"$work/run.log" || rc=$?
echo "fresh-run: steps (seconds since the start):"
grep -E 'pip install|tf-check: ok|^\[ *[0-9]+s\] exported|go build|democlip|== facegate|== enrolling|"decision"|== daemon log' "$work/run.log" | cut -c1-140 || true
[ $rc = 0 ] || fail "make run exited with $rc (log: $work/run.log)"
grep -q '"decision":"granted"' "$work/run.log" || fail "the demo showed no granted event (log: $work/run.log)"
if grep -nE 'oneDNN|absl::InitializeLog|mlir_graph_optimization_pass|: [IW] tensorflow/' "$work/run.log"; then
  fail "TensorFlow's logging in make run's output"
fi

# Quiet by default: the built binary with no TF_CPP_MIN_LOG_LEVEL at all.
quiet() { # quiet NAME CMD...: CMD succeeds with nothing on stderr
  local name=$1
  shift
  env -i "${envs[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" || fail "$name: exit $? ($(cat "$work/$name.err"))"
  [ ! -s "$work/$name.err" ] || fail "$name printed on stderr:
$(cat "$work/$name.err")"
}
demo=$PWD/build/demo
# The demo's own settings (scripts/demo.sh: PAD off for its photograph clip).
quiet config FACEGATE_MQTT_EMBEDDED=true FACEGATE_PAD=off FACEGATE_MODELS_DIR="$PWD/build/models" FACEGATE_CAMERA="$demo/clip.mjpeg" \
  FACEGATE_ENROLL_KEYS="$demo/enroll-keys" FACEGATE_GALLERY_KEY="$demo/gallery-key" FACEGATE_STATE_DIR="$demo/state" \
  bin/facegate config
grep -q FACEGATE_MQTT_BROKERS "$work/config.out" || fail "facegate config printed no FACEGATE_MQTT_BROKERS"
quiet detect bin/facegate detect -models build/models testdata/astronaut.jpg
grep -q '"faces":\[{' "$work/detect.out" || fail "facegate detect found no face in testdata/astronaut.jpg"
done_ok=1
echo "fresh-run: ok: granted, quiet, in $(($(date +%s) - start))s"
