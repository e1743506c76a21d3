# Source this for go commands outside make: the cgo flags for the venv's libtensorflow.
_fg_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_fg_tf=$_fg_root/.venv/lib/python3.11/site-packages/tensorflow
export CGO_CFLAGS="-I$_fg_tf/include"
export CGO_LDFLAGS="-L$_fg_tf -ltensorflow_framework -Wl,-rpath,$_fg_tf"
export FACEGATE_MODELS_DIR=$_fg_root/build/models
export TF_USE_LEGACY_KERAS=1
unset _fg_root _fg_tf
