#!/usr/bin/env bash
# Fails loudly unless the libtensorflow taken from the tensorflow-cpu wheel
# is complete: C API headers, the symbols facegate calls, and every library
# the two shared objects need.
set -euo pipefail
dir=${1:?usage: tf-check.sh TF_DIR}
fail() { echo "tf-check: FAIL: $*" >&2; exit 1; }
for h in tensorflow/c/c_api.h tensorflow/c/eager/c_api.h tensorflow/c/tf_tstring.h; do
  [ -f "$dir/include/$h" ] || fail "header $dir/include/$h is missing (is tensorflow-cpu==2.18.0 installed in the venv?)"
done
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2 libtensorflow.so libtensorflow_framework.so; do
  [ -e "$dir/$lib" ] || fail "$dir/$lib is missing"
done
syms=$(nm -D --defined-only "$dir/libtensorflow_cc.so.2" | awk '{s=$NF; sub(/@.*/, "", s); print s}')
for s in TF_LoadSessionFromSavedModel TF_SessionRun TFE_NewContext TF_NewStatus TF_SetConfig; do
  grep -qx "$s" <<<"$syms" || fail "symbol $s not exported by $dir/libtensorflow_cc.so.2"
done
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
  missing=$(ldd "$dir/$lib" | grep 'not found' || true)
  [ -z "$missing" ] || fail "ldd $dir/$lib: $missing"
done
echo "tf-check: ok: $(basename "$(dirname "$dir")")/tensorflow has headers, C API symbols and all its libraries"
