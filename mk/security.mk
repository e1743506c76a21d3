# Security building blocks (issue 5): daemon/sdnotify, daemon/auth, enroll/store.
# See docs/security.md.
#
#   make test    also runs these packages under -race (including the kill -9
#                crash test of the gallery) and each fuzz target for
#                $(SECURITY_FUZZTIME); the seed corpora run in plain `go test ./...`.
#   make fuzz-security SECURITY_FUZZTIME=5000000x    a longer local fuzzing session

SECURITY_PKGS     := ./daemon/sdnotify ./daemon/auth ./enroll/store
# A count, not a duration (golang/go#75804: spurious "context deadline
# exceeded" at a duration deadline under load in Go 1.26).
SECURITY_FUZZTIME ?= 30000x
# package:FuzzTarget, one per decoder of untrusted input.
SECURITY_FUZZ     := \
	./daemon/auth:FuzzVerify \
	./internal/ident:FuzzCheckText \
	./daemon/auth:FuzzParseKeyRing \
	./enroll/store:FuzzOpenRecord \
	./enroll/store:FuzzDecodeTemplate \
	./enroll/store:FuzzDecodePerson

TEST_TARGETS += test-security-race fuzz-security

.PHONY: test-security-race fuzz-security

test-security-race:
	CGO_ENABLED=0 $(GO) build $(SECURITY_PKGS)
	$(GO) test -race $(GOTEST_FLAGS) $(SECURITY_PKGS)

fuzz-security:
	@for t in $(SECURITY_FUZZ); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(SECURITY_FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(SECURITY_FUZZTIME) -parallel 2 $$pkg || exit 1; \
	done
