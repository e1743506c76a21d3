# capture/ (issue 7): frames in. The Go code needs nothing beyond `go`; the
# real-driver test (capture/v4l2/vivid_test.go) boots Debian's kernel with the
# vivid virtual V4L2 driver under qemu, so deps fetches that kernel package
# (pinned name, version and sha256 in capture/scripts/vivid-kernel.sh) into
# $(CACHE)/kernel/ without installing it. See docs/capture.md.
#
#   make deps            $(CACHE)/kernel/current/{vmlinuz,modules/*.ko}
#   make test            go test ./... runs the qemu/vivid test (about 30 s; CI=true makes it mandatory)
#   make capture-test    just the capture packages
#   make capture-bench   the decode benchmarks recorded in docs/benchmarks.md

VIVID_KERNEL_DIR := $(CACHE)/kernel/current
export FACEGATE_VIVID_KERNEL_DIR := $(VIVID_KERNEL_DIR)

DEPS_TARGETS += capture-kernel

.PHONY: capture-kernel capture-test capture-bench

capture-kernel: $(VIVID_KERNEL_DIR)/.stamp
$(VIVID_KERNEL_DIR)/.stamp: capture/scripts/vivid-kernel.sh
	bash capture/scripts/vivid-kernel.sh $(CACHE)
	touch $@

capture-test: capture-kernel
	$(GO) test $(GOTEST_FLAGS) ./capture/...

capture-bench:
	$(GO) test -run '^$$' -bench . -benchmem ./capture/...
