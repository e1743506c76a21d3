# MiniFASNet passive presentation-attack detection (issue 16): Minivision's
# MiniFASNetV2 (crop scale 2.7) and MiniFASNetV1SE (4.0), Apache-2.0, vendored
# with their licence and sample photos in models/third_party/minifasnet/
# (no registry carries them), read without torch and rebuilt in Keras by
# models/minifasnet.py. See docs/models/minifasnet.md.
#
#   make models   build/models/minifasnet-{v2,v1se}/ (vendored files sha256-checked first)
#   make test     also writes build/minifasnet-ref/ (the authors' sample crops and their
#                 Keras logits), which infer/pad_test.go compares Go's crops and logits with

MINIFASNET_DIR   := models/third_party/minifasnet
MINIFASNET_NAMES := minifasnet-v2 minifasnet-v1se
MINIFASNET_SRC   := models/minifasnet.py models/torch_pickle.py models/common.py \
                    $(wildcard $(MINIFASNET_DIR)/*.pth) $(MINIFASNET_DIR)/SHA256SUMS
MINIFASNET_REF   := $(CURDIR)/build/minifasnet-ref
export FACEGATE_MINIFASNET_REF := $(MINIFASNET_REF)

MODELS_TARGETS += minifasnet-models
TEST_TARGETS   += minifasnet-ref
CLEAN_TARGETS  += minifasnet-clean

.PHONY: minifasnet-check minifasnet-models minifasnet-ref minifasnet-clean

minifasnet-check:
	cd $(MINIFASNET_DIR) && sha256sum -c --quiet SHA256SUMS

minifasnet-models: $(foreach n,$(MINIFASNET_NAMES),$(MODELS_OUT)/$(n)/facegate.json)
$(MODELS_OUT)/minifasnet-%/facegate.json: $(MINIFASNET_SRC) $(VENV)/.stamp | minifasnet-check
	$(PY) models/minifasnet.py export --out $(MODELS_OUT) --model minifasnet-$*

minifasnet-ref: $(MINIFASNET_REF)/reference.json
$(MINIFASNET_REF)/reference.json: $(MINIFASNET_SRC) $(wildcard $(MINIFASNET_DIR)/samples/*.jpg) $(VENV)/.stamp | minifasnet-check
	$(PY) models/minifasnet.py reference --out $(MINIFASNET_REF)

minifasnet-clean:
	rm -rf $(foreach n,$(MINIFASNET_NAMES),$(MODELS_OUT)/$(n)) $(MINIFASNET_REF)
