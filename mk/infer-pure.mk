# Image input, alignment and quality (issue 4): infer/imageio, infer/align and
# infer/quality are pure Go (standard library + golang.org/x/image). They must
# build and pass with cgo off, so `make test` also runs them with CGO_ENABLED=0
# (a few seconds). internal/archtest keeps TensorFlow and cgo out of them.
#
#   make infer-purego        those packages, infer/track and internal/vec without cgo
#   make infer-purego-fuzz   fuzz imageio.Decode for FUZZTIME (default 60s)
#   make infer-purego-bench  crop benchmarks (150 and 224 px chips)

FUZZTIME ?= 60s

TEST_TARGETS += infer-purego

.PHONY: infer-purego infer-purego-fuzz infer-purego-bench

infer-purego:
	CGO_ENABLED=0 $(GO) test $(GOTEST_FLAGS) ./infer/imageio/... ./infer/align/... ./infer/quality/... ./infer/track/... ./internal/vec/...

infer-purego-fuzz:
	CGO_ENABLED=0 $(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./infer/imageio/

infer-purego-bench:
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchmem ./infer/align/ ./infer/imageio/
