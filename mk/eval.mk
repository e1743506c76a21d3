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
