# Accuracy, calibration and the Siamese head (issue 4), on the shared face
# data beside the clone (../shared/data). Not part of `make test` (minutes of
# CPU); docs/accuracy.md lists the figures these targets reproduce.
#
#   make accuracy     LFW folds 1-5 and the extra pairs through the full pipeline,
#                     celeb5 and ORL one-shot identification; results in build/eval/
#   make calibrate    thresholds for FMR 1e-2, 1e-3, 1e-4 into models/calibration/$(EVAL_MODEL).json
#   make head         fit the Siamese head (models/train_head.py) into the same file
# After calibrate or head, `make models` applies them to the exported model.

EVAL_DATA   ?= $(abspath $(CURDIR)/../shared/data)
EVAL_MODEL  ?= dlib-resnet-v1
EVAL_DET    ?= blazeface-short
EVAL_OUT    := $(CURDIR)/build/eval
EVAL_BIN    := $(BIN)/facegate
EVAL_FLAGS  ?= -model $(EVAL_MODEL) -detector $(EVAL_DET)
EVAL_IMPOSTORS ?= 20000

.PHONY: accuracy calibrate head

$(EVAL_OUT):
	mkdir -p $@

accuracy: build models | $(EVAL_OUT)
	$(EVAL_BIN) eval $(EVAL_FLAGS) -pairs $(EVAL_DATA)/pairs-lfw-folds1-5.tsv -root $(EVAL_DATA)/faces \
	  -json $(EVAL_OUT)/lfw-$(EVAL_MODEL).json -plot $(EVAL_OUT)/lfw-$(EVAL_MODEL).svg \
	  -scores $(EVAL_OUT)/lfw-$(EVAL_MODEL).scores.tsv | tee $(EVAL_OUT)/lfw-$(EVAL_MODEL).txt
	$(EVAL_BIN) eval $(EVAL_FLAGS) -pairs $(EVAL_DATA)/pairs-extra.tsv -root $(EVAL_DATA)/faces \
	  -json $(EVAL_OUT)/extra-$(EVAL_MODEL).json -plot $(EVAL_OUT)/extra-$(EVAL_MODEL).svg \
	  -scores $(EVAL_OUT)/extra-$(EVAL_MODEL).scores.tsv | tee $(EVAL_OUT)/extra-$(EVAL_MODEL).txt
	for src in celeb5 att bbt; do \
	  $(EVAL_BIN) eval $(EVAL_FLAGS) -identify -root $(EVAL_DATA)/faces -source $${src}__ \
	    -json $(EVAL_OUT)/identify-$$src-$(EVAL_MODEL).json | tee $(EVAL_OUT)/identify-$$src-$(EVAL_MODEL).txt; \
	done

# Calibrated on LFW folds 1-5 plus random impostor pairs among the same images,
# so FMR 1e-4 has the 10,000 impostor pairs it needs.
calibrate: build models | $(EVAL_OUT)
	$(EVAL_BIN) eval $(EVAL_FLAGS) -pairs $(EVAL_DATA)/pairs-lfw-folds1-5.tsv -root $(EVAL_DATA)/faces \
	  -calibrate -impostors $(EVAL_IMPOSTORS) -thresholds-out models/calibration/$(EVAL_MODEL).json \
	  -dataset "LFW View-2 folds 1-5" | tee $(EVAL_OUT)/calibrate-$(EVAL_MODEL).txt

head: | $(EVAL_OUT)
	test -f $(EVAL_OUT)/lfw-$(EVAL_MODEL).scores.tsv || $(MAKE) accuracy
	$(PY) models/train_head.py --model $(EVAL_MODEL) --scores $(EVAL_OUT)/lfw-$(EVAL_MODEL).scores.tsv \
	  --scores $(EVAL_OUT)/extra-$(EVAL_MODEL).scores.tsv --report $(EVAL_OUT)/head-$(EVAL_MODEL).md

# Fusion of the two towers, open-set 1:N per visit and the door's decision
# calibration (issue 17; docs/decision.md). Every image under faces/ is
# embedded once per tower into $(EVAL_OUT)/emb-MODEL-DETECTOR.gob, so reruns
# take minutes, not the embedding time.
#   make accuracy-fusion      figures into build/eval/fusion.{txt,json}, fusion-roc.svg, fusion-det.svg
#   make calibrate-decision   the same, and rewrites models/calibration/decision.json
FUSION_TOWERS ?= dlib=dlib-resnet-v1,sface=sface-2021dec
FUSION_FLAGS  = eval -fusion -detector $(EVAL_DET) -towers $(FUSION_TOWERS) -root $(EVAL_DATA)/faces \
  -lfw-pairs $(EVAL_DATA)/pairs-lfw-folds1-5.tsv -extra-pairs $(EVAL_DATA)/pairs-extra.tsv \
  -aliases $(EVAL_DATA)/aliases.tsv -errata eval/lfw-errata.tsv -cache-dir $(EVAL_OUT) -out-dir $(EVAL_OUT) \
  -max-frames $(DECISION_LOOKS) -tail-exceed $(DECISION_TAIL) -aggregate $(DECISION_AGG)
# The look budget of a visit (docs/decision.md): the daemon reads it from the calibration.
DECISION_LOOKS ?= 5
# Where the visit model's exponential tail starts (exceedance; >= 50 samples beyond it).
DECISION_TAIL ?= 1e-4
# How a visit's looks combine: max is the daemon's rule; mean only to compare offline.
DECISION_AGG ?= max

.PHONY: accuracy-fusion calibrate-decision

accuracy-fusion: build models | $(EVAL_OUT)
	$(EVAL_BIN) $(FUSION_FLAGS)

calibrate-decision: build models | $(EVAL_OUT)
	$(EVAL_BIN) $(FUSION_FLAGS) -decision-out models/calibration/decision.json -provenance-command "make calibrate-decision"
