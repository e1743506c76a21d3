# The robustness suite (issue 15): the real daemon probed as an operator and
# an attacker would (daemon/robust, build tag robust). It writes the table of
# probe, expected and observed to build/robust.md; docs/security.md shows it.
#
#   make robust

ROBUST_TABLE := $(CURDIR)/build/robust.md

TEST_TARGETS += robust

.PHONY: robust

robust: build models
	$(GO) test -tags robust $(GOTEST_FLAGS) -timeout 15m ./daemon/robust/ -args -bin $(BIN)/facegate -table $(ROBUST_TABLE)
	@cat $(ROBUST_TABLE)
