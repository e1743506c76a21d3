# VGG-Face (VGGFace2) ResNet-50 Siamese model (issue 3). See docs/models/vggface.md.
#
#   make models                                   untrained (deterministic random) weights
#   make models VGGFACE_WEIGHTS=/path/notop.h5    keras-vggface RESNET50 notop weights you hold a licence for

VGGFACE_WEIGHTS ?=
VGGFACE_DIR   := $(MODELS_OUT)/vggface2-resnet50
VGGFACE_REF   := $(CURDIR)/build/reference/vggface2-resnet50.json
VGGFACE_CFG   := $(CURDIR)/build/reference/vggface2-resnet50.weights
# keras-vggface 0.6 (PyPI, MIT, no weights inside): the reference implementation
# models/tests/test_vggface_arch.py compares the architecture with. Never installed.
VGGFACE_WHEEL := $(CACHE)/pypi/keras_vggface-0.6-py3-none-any.whl
VGGFACE_WHEEL_SHA256 := 22698dadf122650305c419239c84f3cc6eba3c34ebf8d9485c014491ea541f83

DEPS_TARGETS   += vggface-refsrc
MODELS_TARGETS += vggface-model vggface-reference
CLEAN_TARGETS  += vggface-clean

.PHONY: vggface-refsrc vggface-model vggface-reference vggface-clean vggface-stats FORCE

vggface-refsrc: $(VGGFACE_WHEEL)
$(VGGFACE_WHEEL): | venv
	mkdir -p $(@D)
	$(PIP) download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d $(@D) keras-vggface==0.6
	echo "$(VGGFACE_WHEEL_SHA256)  $@" | sha256sum -c --quiet - || { rm -f $@; echo "keras-vggface wheel: sha256 mismatch" >&2; exit 1; }

# Re-export when VGGFACE_WEIGHTS changes (the file records the last value).
$(VGGFACE_CFG): FORCE
	@mkdir -p $(@D)
	@echo '$(VGGFACE_WEIGHTS)' | cmp -s - $@ || echo '$(VGGFACE_WEIGHTS)' > $@

vggface-model: $(VGGFACE_DIR)/facegate.json
$(VGGFACE_DIR)/facegate.json: models/vggface_resnet50.py models/common.py $(VENV)/.stamp $(VGGFACE_CFG) $(VGGFACE_WEIGHTS) $(wildcard models/calibration/vggface2-resnet50.json)
	$(PY) models/vggface_resnet50.py export --out $(MODELS_OUT) $(if $(VGGFACE_WEIGHTS),--weights $(VGGFACE_WEIGHTS))

vggface-reference: $(VGGFACE_REF)
$(VGGFACE_REF): $(VGGFACE_DIR)/facegate.json
	$(PY) models/vggface_resnet50.py reference --model $(VGGFACE_DIR) --out $@

vggface-stats: $(VGGFACE_DIR)/facegate.json
	$(PY) models/vggface_resnet50.py stats --model $(VGGFACE_DIR)

vggface-clean:
	rm -rf $(VGGFACE_DIR) $(VGGFACE_REF) $(VGGFACE_CFG)

FORCE:
