# Site replication end to end (issue 18): three NATS members (`facegate site
# serve`) and four gates (`facegate run`, real models, a folder camera) as
# separate processes on loopback; site/e2e, build tag site_e2e. It writes
# its figures to build/site-e2e.md.
#
#   make site-e2e                                           reduced size
#   make site-e2e SITE_E2E_PEOPLE=100 SITE_E2E_SCALE=10000  docs/benchmarks.md
#
# The reduced run takes about 1.5 min on 2 cores (the full size 1 min 47 s;
# 2 min 4 s for the reduced run at load average 12 with the compromised-gate
# phase of Ed25519 operator keys), so make test runs it.

SITE_E2E_PEOPLE ?= 20
SITE_E2E_SCALE  ?= 1000

TEST_TARGETS += site-e2e

.PHONY: site-e2e

site-e2e: build models
	$(GO) test -tags site_e2e $(GOTEST_FLAGS) -v -timeout 30m -run TestSite ./site/e2e/ \
		-args -bin $(BIN)/facegate -models $(CURDIR)/build/models -people $(SITE_E2E_PEOPLE) -scale $(SITE_E2E_SCALE) -out $(CURDIR)/build/site-e2e.md
	@cat $(CURDIR)/build/site-e2e.md

# daemon/mqtt's own service-broker integration test against nats-server's
# MQTT listener instead of Mosquitto (issue 18, docs/site.md "nats-server as
# the embedded MQTT broker"): site/cmd/natsmqtt serves MQTT on
# MQTT_ON_NATS_PORT. About 10 s, mostly the build. Not in make test: the
# same scenarios run in-process in go test ./site (TestNatsMQTT*).

MQTT_ON_NATS_PORT ?= 18883

.PHONY: mqtt-on-nats

mqtt-on-nats:
	@dir=$$(mktemp -d) && trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf "$$dir"' EXIT && \
	$(GO) build -o $$dir/natsmqtt ./site/cmd/natsmqtt && \
	{ $$dir/natsmqtt -port -1 -mqtt-port $(MQTT_ON_NATS_PORT) -store $$dir/store & pid=$$!; } && \
	for i in $$(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$(MQTT_ON_NATS_PORT)) 2>/dev/null && break; sleep 0.1; done && \
	CI=true FACEGATE_TEST_MQTT_URL=tcp://127.0.0.1:$(MQTT_ON_NATS_PORT) \
		$(GO) test $(GOTEST_FLAGS) -v -run 'TestMosquittoStatusWillAndRequests' ./daemon/mqtt
