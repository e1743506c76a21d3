# facegate: build, test and run from a fresh clone.
#
#   make deps     Python venv with tensorflow-cpu 2.18.0 (libtensorflow for cgo), checks, downloads
#   make build    bin/facegate
#   make models   export the SavedModels into build/models/
#   make test     everything CI runs
#   make run      the demo
#   make bench    benchmarks
#   make lint     gofmt + go vet
#   make clean
#
# Every target is idempotent; downloads are cached in $(CACHE).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

PYTHON  ?= python3
VENV    := $(CURDIR)/.venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
CACHE   ?= $(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME),$(HOME)/.cache)/facegate
MODELS_OUT := $(CURDIR)/build/models
BIN     := $(CURDIR)/bin

# libtensorflow comes from the tensorflow-cpu wheel inside the venv.
TF_DIR  := $(VENV)/lib/python3.11/site-packages/tensorflow
export CGO_CFLAGS  := -I$(TF_DIR)/include
export CGO_LDFLAGS := -L$(TF_DIR) -ltensorflow_framework -Wl,-rpath,$(TF_DIR)
export CGO_ENABLED := 1
# Tests find exported models and the venv here.
export FACEGATE_MODELS_DIR := $(MODELS_OUT)
export FACEGATE_VENV := $(VENV)
export FACEGATE_CACHE := $(CACHE)
export TF_CPP_MIN_LOG_LEVEL ?= 1
export TF_USE_LEGACY_KERAS := 1
export PIP_CACHE_DIR ?= $(CACHE)/pip

GO      ?= go
GOTEST_FLAGS ?= -count=1
# Feature fragments (mk/*.mk) add their own steps to these lists.
DEPS_TARGETS   :=
MODELS_TARGETS := models-test
TEST_TARGETS   :=
BENCH_TARGETS  :=
CLEAN_TARGETS  :=

include $(sort $(wildcard mk/*.mk))

.PHONY: deps venv tf-check build models models-test test test-go test-py run bench lint clean

deps: apt-deps venv tf-check $(DEPS_TARGETS)

# The venv is rebuilt when the pinned requirements change.
venv: $(VENV)/.stamp
$(VENV)/.stamp: models/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# --no-deps: tf-keras would otherwise pull the full tensorflow wheel over tensorflow-cpu.
	$(PIP) install --quiet --disable-pip-version-check --no-deps -r models/requirements.txt
	@bad=$$($(PY) -m pip check | grep -v "^tf-keras .* requires tensorflow, which is not installed" || true); \
	  if [ -n "$$bad" ]; then echo "pip check: $$bad" >&2; exit 1; fi
	ln -sfn libtensorflow_cc.so.2 $(TF_DIR)/libtensorflow.so
	ln -sfn libtensorflow_framework.so.2 $(TF_DIR)/libtensorflow_framework.so
	touch $@

tf-check: venv
	@bash scripts/tf-check.sh $(TF_DIR)

build: deps
	$(GO) build -o $(BIN)/facegate ./cmd/facegate

models: venv $(MODELS_TARGETS)

# The small real SavedModel the infer/ tests load and compare with Python.
models-test: $(MODELS_OUT)/test-tiny/facegate.json
$(MODELS_OUT)/test-tiny/facegate.json: models/test_model.py models/common.py $(VENV)/.stamp
	$(PY) models/test_model.py --out $(MODELS_OUT)

test: deps models $(TEST_TARGETS) test-py test-go

test-py: venv
	cd models && $(PY) -m pytest -q -p no:cacheprovider tests

test-go: deps models
	$(GO) test $(GOTEST_FLAGS) ./...

# The demo needs the binary, the detector and embedders the daemon runs by
# default and the decision calibration (once committed), not everything deps
# and models make for the tests. When the daemon's defaults change, change
# this list: make fresh-run (mk/fresh.mk, in make test) fails until then.
DEMO_MODELS := $(foreach m,blazeface-short dlib-resnet-v1 sface-2021dec,$(MODELS_OUT)/$(m)/facegate.json) \
               $(if $(wildcard models/calibration/decision.json),$(MODELS_OUT)/decision.json)
run: apt-deps venv tf-check $(DEMO_MODELS)
	$(GO) build -o $(BIN)/facegate ./cmd/facegate
	@bash scripts/demo.sh

bench: deps models $(BENCH_TARGETS)
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: venv
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# Gate boxes are often 64-bit Arm: the pure-Go packages (the matcher's
	@# kernels have an amd64 assembly path and a Go one) must build there too.
	GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./internal/vec ./enroll/... ./capture/... ./eval ./bench ./bench/matching

clean: $(CLEAN_TARGETS)
	rm -rf $(BIN) build
