# The door scenario of issue 17 (eval/door, build tag door): people enrolled
# one-shot from ../shared/data over signed MQTT, then 100 visits (50 genuine,
# 50 never enrolled) played through `facegate run` as a paced 640x480 MJPEG
# clip and graded from the published events. Not in make test: it takes
# about 7 minutes on 2 cores. Results in build/door/report.md (and
# report.json, events.jsonl); docs/accuracy.md, "Door scenario".
#
#   make door-scenario                  # 15 fps
#   make door-scenario DOOR_FPS=5       # the camera at 5 fps

DOOR_FPS  ?= 15
DOOR_OUT  ?= $(CURDIR)/build/door
DOOR_ARGS ?=

.PHONY: door-scenario
door-scenario: build models
	$(GO) test -tags door -count=1 -timeout 30m -run TestDoorScenario -v ./eval/door/ \
	  -args -bin $(BIN)/facegate -out $(DOOR_OUT) -fps $(DOOR_FPS) $(DOOR_ARGS)
	@cat $(DOOR_OUT)/report.md
