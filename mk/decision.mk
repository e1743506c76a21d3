# The door decision's calibration (issue 17): models/calibration/decision.json
# (fitted by `make calibrate-decision`, committed) is installed beside the
# exported models, where the daemon looks for it (FACEGATE_CALIBRATION
# overrides the path).

MODELS_TARGETS += $(MODELS_OUT)/decision.json

$(MODELS_OUT)/decision.json: models/calibration/decision.json
	mkdir -p $(MODELS_OUT)
	cp $< $@
