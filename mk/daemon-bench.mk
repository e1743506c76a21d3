# The daemon on a file source (issue 6): startup to READY, sustained fps,
# capture-to-event latency, CPU, RSS at 640x480 and 1280x720.
# Results in build/bench/daemon.json; docs/benchmarks.md, "Daemon".
BENCH_TARGETS += bench-daemon
DAEMON_BENCH_SECONDS ?= 60
.PHONY: bench-daemon
bench-daemon: build models
	mkdir -p build/bench
	$(PY) bench/daemon_bench.py --bin $(BIN)/facegate --models $(MODELS_OUT) --seconds $(DAEMON_BENCH_SECONDS) --out build/bench/daemon.json

# Thread settings study: TensorFlow intra-op threads 1 vs 2 on 640x480, with
# the clip read as fast as possible and at a camera's 15 fps, two rounds,
# settings alternating. docs/benchmarks.md, "Thread settings".
BENCH_TARGETS += bench-threads
.PHONY: bench-threads
bench-threads: build models
	mkdir -p build/bench
	$(PY) bench/daemon_bench.py --bin $(BIN)/facegate --models $(MODELS_OUT) --sizes 640x480 --threads 1,2 --camera-fps=-1,15 --rounds 2 --seconds 20 --out build/bench/threads.json
