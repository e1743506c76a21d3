# Passive PAD's threshold table (issue 16): models/calibration/pad.json
# (p_real by BPCER from the video-frame survey, committed) is installed
# beside the exported models, where the daemon looks for it
# (FACEGATE_PAD_CALIBRATION overrides the path).

MODELS_TARGETS += $(MODELS_OUT)/pad.json

$(MODELS_OUT)/pad.json: models/calibration/pad.json
	mkdir -p $(MODELS_OUT)
	cp $< $@
