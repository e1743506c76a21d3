# Site replication end to end (issue 18): three NATS members (`facegate site
# serve`) and four gates (`facegate run`, real models, a folder camera) as
# separate processes on loopback; site/e2e, build tag site_e2e. It writes
# its figures to build/site-e2e.md.
#
#   make site-e2e                                           reduced size
#   make site-e2e SITE_E2E_PEOPLE=100 SITE_E2E_SCALE=10000  docs/benchmarks.md
#
# The reduced run takes about 1.5 min on 2 cores (the full size 1 min 47 s),
# so make test runs it.

SITE_E2E_PEOPLE ?= 20
SITE_E2E_SCALE  ?= 1000

TEST_TARGETS += site-e2e

.PHONY: site-e2e

site-e2e: build models
	$(GO) test -tags site_e2e $(GOTEST_FLAGS) -v -timeout 30m -run TestSite ./site/e2e/ \
		-args -bin $(BIN)/facegate -models $(CURDIR)/build/models -people $(SITE_E2E_PEOPLE) -scale $(SITE_E2E_SCALE) -out $(CURDIR)/build/site-e2e.md
	@cat $(CURDIR)/build/site-e2e.md
