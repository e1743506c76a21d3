# The daemon on a file source (issue 6): startup to READY, sustained fps,
# capture-to-event latency, CPU, RSS at 640x480 and 1280x720.
# Results in build/bench/daemon.json; docs/benchmarks.md, "Daemon".
BENCH_TARGETS += bench-daemon
DAEMON_BENCH_SECONDS ?= 60
.PHONY: bench-daemon
bench-daemon: build models
	mkdir -p build/bench
	$(PY) bench/daemon_bench.py --bin $(BIN)/facegate --models $(MODELS_OUT) --seconds $(DAEMON_BENCH_SECONDS) --out build/bench/daemon.json
