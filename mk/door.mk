# The door scenario of issue 17 (eval/door, build tag door): people enrolled
# one-shot from ../shared/data over signed MQTT, then 100 visits (50 genuine,
# 50 never enrolled) played through `facegate run` as a paced 640x480 MJPEG
# clip and graded from the published events. Not in make test: it takes
# about 5.5 minutes on 2 cores. Results in build/door/report.md (and
# report.json, events.jsonl); docs/accuracy.md, "Door scenario".
#
#   make door-scenario                  # 15 fps
#   make door-scenario DOOR_FPS=5       # the camera at 5 fps

DOOR_FPS  ?= 15
DOOR_OUT  ?= $(CURDIR)/build/door
DOOR_ARGS ?=

.PHONY: door-scenario
door-scenario: build models
	@# The test fails when a target of the issue is missed; the report is shown either way.
	rm -f $(DOOR_OUT)/report.md; st=0; $(GO) test -tags door -count=1 -timeout 30m -run TestDoorScenario -v ./eval/door/ \
	  -args -bin $(BIN)/facegate -out $(DOOR_OUT) -fps $(DOOR_FPS) $(DOOR_ARGS) || st=$$?; \
	  if [ -f $(DOOR_OUT)/report.md ]; then cat $(DOOR_OUT)/report.md; fi; exit $$st

# Speed of the two towers (issue 17): the daemon on the one-face clip of
# bench-daemon at 640x480 as fast as it takes frames, single tower (dlib),
# two towers, two towers + passive PAD, alternating, two rounds; then each
# embedder at batch 1 and per face end to end with each tower.
# Results in build/bench/towers-*.json; docs/benchmarks.md, "Two towers".
TOWER_CONFIGS ?= dlib-resnet-v1:off dlib-resnet-v1,sface-2021dec:off dlib-resnet-v1,sface-2021dec:passive
TOWER_SECONDS ?= 20

.PHONY: bench-towers
bench-towers: build models
	mkdir -p build/bench
	for r in 1 2; do for c in $(TOWER_CONFIGS); do \
	  e=$${c%:*}; p=$${c#*:}; \
	  FACEGATE_EMBEDDERS=$$e FACEGATE_PAD=$$p $(PY) bench/daemon_bench.py --bin $(BIN)/facegate --models $(MODELS_OUT) \
	    --sizes 640x480 --seconds $(TOWER_SECONDS) --out build/bench/towers-daemon-$$r-$${e//,/+}-pad-$$p.json; \
	done; done
	$(BIN)/facegate bench -models $(MODELS_OUT) -model dlib-resnet-v1,sface-2021dec -batch 1 -iters 1 -rounds 60 -threads 1 -json build/bench/towers-embed.json
	for m in dlib-resnet-v1 sface-2021dec; do \
	  $(BIN)/facegate bench -models $(MODELS_OUT) -e2e -model $$m -threads 1 -pairs ../shared/data/pairs-lfw-folds1-5.tsv -root ../shared/data/faces \
	    -pairs-limit 122 -peer-timing none -json build/bench/towers-e2e-$$m.json; \
	done
