# daemon/mqtt: brief fuzzing of the decoders of untrusted MQTT input
# (enroll requests, claims, feedback), seeded from the table tests. The
# package's unit and integration tests run in `go test ./...`.
# A count, not a duration: Go 1.26's fuzz coordinator can fail a duration-bounded
# run with a spurious "context deadline exceeded" when the deadline races a
# worker under CPU load (golang/go#75804, fixed in Go 1.27).
MQTT_FUZZTIME ?= 30000x
MQTT_FUZZ     := FuzzDecodeEnrollRequest FuzzDecodeClaim FuzzDecodeFeedback

TEST_TARGETS += test-mqtt-fuzz
.PHONY: test-mqtt-fuzz
test-mqtt-fuzz:
	@for f in $(MQTT_FUZZ); do \
	  echo "fuzz $$f ($(MQTT_FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(MQTT_FUZZTIME) -parallel 2 ./daemon/mqtt/ 2>&1 | tail -n 20 || exit 1; \
	done
