# daemon/mqtt: brief fuzzing of the decoders of untrusted MQTT input
# (enroll requests, claims, feedback), seeded from the table tests. The
# package's unit and integration tests run in `go test ./...`.
MQTT_FUZZTIME ?= 5s
MQTT_FUZZ     := FuzzDecodeEnrollRequest FuzzDecodeClaim FuzzDecodeFeedback

TEST_TARGETS += test-mqtt-fuzz
.PHONY: test-mqtt-fuzz
test-mqtt-fuzz:
	@for f in $(MQTT_FUZZ); do \
	  echo "fuzz $$f ($(MQTT_FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(MQTT_FUZZTIME) -parallel 2 ./daemon/mqtt/ 2>&1 | tail -n 20 || exit 1; \
	done
