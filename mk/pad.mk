# Passive PAD's threshold table (issue 16): models/calibration/pad.json
# (p_real by BPCER from the video-frame survey, committed) is installed
# beside the exported models, where the daemon looks for it
# (FACEGATE_PAD_CALIBRATION overrides the path).

MODELS_TARGETS += $(MODELS_OUT)/pad.json

$(MODELS_OUT)/pad.json: models/calibration/pad.json
	mkdir -p $(MODELS_OUT)
	cp $< $@

# The threshold's provenance (issue 16): `make pad-calibration` regenerates
# models/calibration/pad.json from the bona fide faces of ../shared/data:
# every face blazeface-short finds (PAD scores the daemon's detector's
# boxes) in the video clips (crowd 1080p, Hamilton, BBT), the OTB girl
# sequence, the frec full photos, the scenes and the LFW stills, scored with
# both models. It prints the BPCER at the threshold shipped so far, by
# source and for the faces passing the daemon's quality gate, then fits the
# thresholds on the camera-like sources only (video__, photo__, scene__:
# LFW's 250x250 stills are another population, see docs/pad.md) and checks
# each on a split by clip/person. Video frames are decoded once into
# build/pad-survey with ffmpeg (in .ci/apt-packages; only this target needs
# it). Not part of `make test`: about 5 minutes on 2 cores.
PAD_DATA    ?= $(abspath $(CURDIR)/../shared/data)
PAD_SURVEY  := $(CURDIR)/build/pad-survey
PAD_BPCERS  := 0.05,0.01
PAD_CAMERA  := ^(video|photo|scene)__

.PHONY: pad-survey pad-calibration
pad-survey: $(PAD_SURVEY)/.done

$(PAD_SURVEY)/.done: mk/pad.mk
	@command -v ffmpeg >/dev/null || { echo "pad-survey: ffmpeg is needed to decode the clips (apt-get install ffmpeg; it is in .ci/apt-packages)" >&2; exit 1; }
	@test -f $(PAD_DATA)/README.md || { echo "pad-survey: face data missing at $(PAD_DATA)" >&2; exit 1; }
	rm -rf $(PAD_SURVEY) && mkdir -p $(PAD_SURVEY)/bona_fide
	for v in crowd:facenet_pytorch_crowd_video hamilton:frec_short_hamilton_clip bbt:faceapi_bbt_5frames; do \
	  d=$(PAD_SURVEY)/bona_fide/video__$${v%%:*}; mkdir -p $$d; \
	  ffmpeg -nostdin -loglevel error -i $(PAD_DATA)/videos/$${v#*:}.mp4 -fps_mode passthrough $$d/%04d.png || exit 1; done
	mkdir -p $(PAD_SURVEY)/bona_fide/video__otb_girl && ln -s $(PAD_DATA)/sequences/otb_girl/*.jpg $(PAD_SURVEY)/bona_fide/video__otb_girl/
	for d in $(PAD_DATA)/faces/frec__*; do mkdir -p $(PAD_SURVEY)/bona_fide/photo__$${d##*__} && ln -s $$d/* $(PAD_SURVEY)/bona_fide/photo__$${d##*__}/; done
	for f in $(PAD_DATA)/scenes/*; do n=$${f##*/}; mkdir -p $(PAD_SURVEY)/bona_fide/scene__$${n%.*} && ln -s $$f $(PAD_SURVEY)/bona_fide/scene__$${n%.*}/; done
	for d in $(PAD_DATA)/faces/lfw__*; do mkdir -p $(PAD_SURVEY)/bona_fide/$${d##*/} && ln -s $$d/* $(PAD_SURVEY)/bona_fide/$${d##*/}/; done
	touch $@

pad-calibration: build models $(PAD_SURVEY)/.done
	$(BIN)/facegate pad-eval -models $(MODELS_OUT) -root $(PAD_SURVEY) -all-faces -quality-gate=false \
	  -threshold $$($(PY) -c 'import json;print([t["p_real"] for t in json.load(open("models/calibration/pad.json"))["thresholds"] if t["bpcer"]==0.05][0])') \
	  -calibrate $(PAD_BPCERS) -calibrate-groups '$(PAD_CAMERA)' -calibration-out models/calibration/pad.json -json $(PAD_SURVEY)/report.json \
	  -calibration-source "make pad-calibration (facegate pad-eval -all-faces -quality-gate=false -calibrate $(PAD_BPCERS) -calibrate-groups '$(PAD_CAMERA)'): every face blazeface-short finds in ../shared/data's video clips (frames decoded with ffmpeg), sequences/otb_girl, faces/frec__* full photos and scenes/ (LFW stills reported, not fitted), boxes through the manifests' box mapping, p_real the mean of both models; a face with p_real below the threshold is called an attack. Two clips hold most faces and their frames are strongly correlated; the split check by clip/person is in docs/pad.md. Recalibrate on the site's own camera." \
	  | tee $(PAD_SURVEY)/report.txt
