#!/usr/bin/env bash
# facegate's GPU benchmark, one command, at most ~5 minutes (issue 6):
#
#   bash bench/gpu/run.sh            # on a machine with an NVIDIA GPU (driver for CUDA 12.x)
#
# 1. a venv (.venv-gpu) with tensorflow[and-cuda]==2.18.0 from pip (or from a
#    wheelhouse: BENCH_GPU_WHEELHOUSE=DIR, pip --no-index --find-links DIR);
# 2. libtensorflow from that wheel, linked the way the Makefile's `venv`
#    target does it for tensorflow-cpu (libtensorflow.so -> libtensorflow_cc.so.2,
#    libtensorflow_framework.so -> .so.2), checked by scripts/tf-check.sh;
# 3. bin/facegate-gpu built with those cgo flags (needs `go`; without it a
#    prebuilt binary, BENCH_GPU_BIN, runs against the wheel's libraries through
#    LD_LIBRARY_PATH: the C API is the same in the CPU and GPU wheels);
# 4. `facegate bench -gpu -python` per embedding model, batch sizes 1..64,
#    Go and Python TensorFlow interleaved on GPU 0 (infer.Options.GPU:
#    VisibleDevices "0", AllowGrowth), so facegate/Python ratios come from the
#    same run; then -e2e when the shared face data is there.
#
# Results go to $OUT (the device tool returns files from there; default
# build/bench/gpu): run.log, env.txt and one JSON per benchmark, at most 8
# files. Models come from FACEGATE_MODELS_DIR (default build/models: run
# `make models` first; they are git-ignored, so they must be on the machine).
#
# Test the logic without a GPU: BENCH_GPU_WHEEL=cpu BENCH_GPU_VENV=.venv
# bash bench/gpu/run.sh (the CPU wheel of `make deps`, no -gpu flag).
#
# Knobs: BENCH_GPU_BUDGET (seconds for everything, default 290),
# BENCH_GPU_BATCHES (default 1,4,16,64), BENCH_GPU_MODELS (default
# dlib-resnet-v1,vggface2-resnet50), BENCH_GPU_ROUNDS (default 20; each
# round is one call per batch size on each side, Go and Python alternating).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
budget=${BENCH_GPU_BUDGET:-290}
mode=${BENCH_GPU_WHEEL:-gpu}
venv=${BENCH_GPU_VENV:-$PWD/.venv-gpu}
out=${OUT:-$PWD/build/bench/gpu}
batches=${BENCH_GPU_BATCHES:-1,4,16,64}
models=${BENCH_GPU_MODELS:-dlib-resnet-v1,vggface2-resnet50}
rounds=${BENCH_GPU_ROUNDS:-20}
data=${BENCH_DATA:-$PWD/../shared/data}
export FACEGATE_MODELS_DIR=${FACEGATE_MODELS_DIR:-$PWD/build/models}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-1} PYTHONUNBUFFERED=1
mkdir -p "$out"
log=$out/run.log
: >"$log"
say() { echo "bench-gpu: $*" | tee -a "$log" >&2; }
fail() { say "FAIL: $*"; exit 1; }
# left: seconds of the budget still available (at least 1).
left() { local l=$((budget - ($(date +%s) - start))); echo $((l > 1 ? l : 1)); }
step() { # step NAME CMD...: runs CMD within what is left of the budget, output into the log
  local name=$1; shift
  say "$name (budget left $(left) s)"
  if ! timeout --kill-after=5 "$(left)" "$@" 2>&1 | tee -a "$log"; then
    fail "$name failed or ran out of time (see $log)"
  fi
}

case $mode in
  gpu) req="tensorflow[and-cuda]==2.18.0"; gpuflag=-gpu ;;
  cpu) req="tensorflow-cpu==2.18.0"; gpuflag= ;;
  *) fail "BENCH_GPU_WHEEL=$mode: want gpu or cpu" ;;
esac

{
  echo "date: $(date -u +%FT%TZ)"; echo "host: $(uname -a)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "loadavg: $(cat /proc/loadavg)"; echo "mode: $mode ($req)"; echo "batches: $batches, rounds $rounds"
  if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo "nvidia-smi: not found"; fi
} >"$out/env.txt" 2>&1
[ "$mode" = cpu ] || command -v nvidia-smi >/dev/null || fail "no nvidia-smi: not a GPU machine (BENCH_GPU_WHEEL=cpu tests the script without one)"

# 1. The venv. An existing one with the right TensorFlow is reused.
py=$venv/bin/python
want_tf() { "$py" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
sys.exit(0 if "2.18.0" in (version("tensorflow"), version("tensorflow-cpu")) else 1)
PY
}
if [ ! -x "$py" ]; then step "venv $venv" python3 -m venv "$venv"; fi
if ! want_tf; then
  if [ -n "${BENCH_GPU_WHEELHOUSE:-}" ]; then
    step "pip install $req from $BENCH_GPU_WHEELHOUSE" "$py" -m pip install -q --disable-pip-version-check --no-index --find-links "$BENCH_GPU_WHEELHOUSE" "$req"
  else
    step "pip install $req" "$py" -m pip install -q --disable-pip-version-check "$req"
  fi
fi
want_tf || fail "$venv has no tensorflow 2.18.0"
"$py" -m pip freeze 2>/dev/null | grep -iE '^(tensorflow|tf-keras|numpy|nvidia-)' >>"$out/env.txt" || true

# 2. libtensorflow from the wheel, as the Makefile's venv target does.
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
tfdir=$site/tensorflow
ln -sfn libtensorflow_cc.so.2 "$tfdir/libtensorflow.so"
ln -sfn libtensorflow_framework.so.2 "$tfdir/libtensorflow_framework.so"
step tf-check bash scripts/tf-check.sh "$tfdir"
# The CUDA libraries of the nvidia-* wheels, for the Go binary (Python's
# tensorflow finds them itself).
libpath=$tfdir
for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libpath=$libpath:$d; done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# 3. The binary.
bin=$PWD/bin/facegate-$mode
if command -v go >/dev/null; then
  export CGO_ENABLED=1 CGO_CFLAGS="-I$tfdir/include" CGO_LDFLAGS="-L$tfdir -ltensorflow_framework -Wl,-rpath,$tfdir"
  step "go build $bin" go build -o "$bin" ./cmd/facegate
elif [ -n "${BENCH_GPU_BIN:-}" ]; then
  bin=$BENCH_GPU_BIN
  say "no go toolchain: using $bin with LD_LIBRARY_PATH=$tfdir:..."
else
  fail "no go toolchain and no BENCH_GPU_BIN"
fi
step "facegate version" "$bin" version

# 4. The benchmarks.
IFS=, read -ra names <<<"$models"
for m in "${names[@]}"; do
  [ -f "$FACEGATE_MODELS_DIR/$m/saved_model.pb" ] || fail "model $m not in $FACEGATE_MODELS_DIR (make models)"
done
for m in "${names[@]}"; do
  step "bench $m" "$bin" bench $gpuflag -python -python-bin "$py" -model "$m" -batch "$batches" \
    -iters 1 -rounds "$rounds" -warmup 3 -threads "$(nproc)" -json "$out/embed-$m-$mode.json"
done
if [ -f "$data/pairs-lfw-folds1-5.tsv" ]; then
  step "bench -e2e" "$bin" bench $gpuflag -e2e -pairs "$data/pairs-lfw-folds1-5.tsv" -root "$data/faces" \
    -pairs-limit 122 -threads "$(nproc)" -peer-timing "" -json "$out/e2e-$mode.json"
else
  say "skip -e2e: no face data at $data"
fi
say "done in $(( $(date +%s) - start )) s; results in $out"
