# Performance figures of docs/benchmarks.md (issue 6): `make bench` runs
# these, then the Makefile's `go test -bench . ./...` (BenchmarkEmbed,
# BenchmarkDetect, BenchmarkAlign in infer/, BenchmarkIdentifyGallery and
# BenchmarkScanBound in enroll/, ...). Each step is one `facegate bench`
# run of 1-3 minutes on a 2-core machine; reports land in build/bench/ as
# JSON (raw numbers, machine, load average) and TXT (the printed table).
#
#   make bench-embed     embedding latency/throughput per model, batch 1/4/16, Go vs Python TF
#   make bench-overhead  per-call cost of a TensorFlow call from Go: the five per-frame models
#                        (detector, two embedders, two PAD models), batch 1 and 16, Go vs
#                        Python TF interleaved (issue 17)
#   make bench-e2e       per face read+decode → detect → align → embed → 1:N match, vs the
#                        face_recognition peer on the same images (1 and 2 threads)
#   make bench-matching  1:N Identify at 1k/10k/100k people x 128/2048-d vs a plain sum of the bytes
#   make bench-memory    RSS over up to 10k frames of detect+align+embed
#   make bench-tracking  skipping detection (infer/track) on real clips: per frame the fresh
#                        path against tracked paths over a sweep of thresholds and max frames
#   make bench-gpu       bench/gpu/run.sh (for a machine with an NVIDIA GPU; not in `make bench`)
#
# Not in `make test`: timings are not tests. Each mode is a package under
# bench/ (embed, e2e, matching, memory, tracking) whose tests smoke-test it
# in `go test`; cmd/facegate/bench.go only parses flags and wires them.

BENCH_OUT      := $(CURDIR)/build/bench
BENCH_DATA     ?= $(abspath $(CURDIR)/../shared/data)
BENCH_PAIRS    ?= $(BENCH_DATA)/pairs-lfw-folds1-5.tsv
BENCH_ROOT     ?= $(BENCH_DATA)/faces
# The images of the first 122 pairs: 199 unique LFW images.
BENCH_E2E_PAIRS ?= 122
BENCH_EMBED_FLAGS ?= -batch 1,4,16 -iters 1
FACEGATE_BENCH  = $(BIN)/facegate bench

# -tracking: the real clips of the shared data (ffmpeg reads the mp4s, at
# full size); the crowd clip cropped to a 640x480 window on the walkers,
# whose faces are too small for BlazeFace short-range in the whole frame.
BENCH_CLIPS ?= $(BENCH_DATA)/videos/frec_short_hamilton_clip.mp4,$(BENCH_DATA)/videos/facenet_pytorch_crowd_video.mp4@640x480+450+300,$(BENCH_DATA)/sequences/otb_girl

BENCH_TARGETS += bench-embed bench-overhead bench-e2e bench-matching bench-memory bench-tracking

.PHONY: bench-embed bench-overhead bench-e2e bench-e2e-peer bench-matching bench-memory bench-tracking bench-gpu

bench-embed: build models
	mkdir -p $(BENCH_OUT)
	$(FACEGATE_BENCH) -model dlib-resnet-v1 -python $(BENCH_EMBED_FLAGS) -rounds 60 \
	  -json $(BENCH_OUT)/embed-dlib.json | tee $(BENCH_OUT)/embed-dlib.txt
	$(FACEGATE_BENCH) -model vggface2-resnet50 -python $(BENCH_EMBED_FLAGS) -rounds 12 \
	  -json $(BENCH_OUT)/embed-vggface2.json | tee $(BENCH_OUT)/embed-vggface2.txt

# Issue 17: every model the daemon runs per frame, its own signature (detect,
# embed, classify), same inputs and outputs compared on both sides. About
# 1-2 minutes a model on 2 cores (SFace at batch 16 is the slow one).
BENCH_OVERHEAD_MODELS ?= blazeface-short dlib-resnet-v1 sface-2021dec minifasnet-v2 minifasnet-v1se
BENCH_OVERHEAD_ROUNDS ?= 80

bench-overhead: build models
	mkdir -p $(BENCH_OUT)
	for m in $(BENCH_OVERHEAD_MODELS); do \
	  $(FACEGATE_BENCH) -model $$m -python -batch 1,16 -iters 1 -rounds $(BENCH_OVERHEAD_ROUNDS) \
	    -json $(BENCH_OUT)/overhead-$$m.json | tee $(BENCH_OUT)/overhead-$$m.txt || exit 1; \
	done

# The peer on exactly the images facegate measures (--limit = -pairs-limit),
# one thread, as its own timing file; skipped with one line when the peer's
# venv (make peer-venv, builds dlib from source) is not there.
bench-e2e-peer: peer-venv
	@mkdir -p $(BENCH_OUT)
	$(CURDIR)/.venv-peer/bin/python bench/peer_face_recognition.py --pairs $(BENCH_PAIRS) --root $(BENCH_ROOT) \
	  --limit $(BENCH_E2E_PAIRS) --progress 0 --scores $(BENCH_OUT)/peer-e2e.scores.tsv \
	  --timing $(BENCH_OUT)/peer-e2e.timing.json | tee $(BENCH_OUT)/peer-e2e.txt

bench-e2e: build models bench-e2e-peer
	for t in 1 2; do \
	  $(FACEGATE_BENCH) -e2e -pairs $(BENCH_PAIRS) -root $(BENCH_ROOT) -pairs-limit $(BENCH_E2E_PAIRS) \
	    -threads $$t -peer-timing $(BENCH_OUT)/peer-e2e.timing.json \
	    -json $(BENCH_OUT)/e2e-t$$t.json | tee $(BENCH_OUT)/e2e-t$$t.txt; \
	done

bench-matching: build
	mkdir -p $(BENCH_OUT)
	$(FACEGATE_BENCH) -matching -people 1000,10000,100000 -dims 128,2048 -duration 1s \
	  -json $(BENCH_OUT)/matching.json | tee $(BENCH_OUT)/matching.txt

bench-memory: build models
	mkdir -p $(BENCH_OUT)
	$(FACEGATE_BENCH) -memory -pairs $(BENCH_PAIRS) -root $(BENCH_ROOT) -frames 10000 -sample-every 1000 \
	  -max-time 3m20s -json $(BENCH_OUT)/memory.json | tee $(BENCH_OUT)/memory.txt

bench-tracking: build models
	mkdir -p $(BENCH_OUT)
	$(FACEGATE_BENCH) -tracking -clip $(BENCH_CLIPS) -clip-max-width 0 -track-threshold 2,4,6,8,12,16 -track-max-frames 5,15 \
	  -json $(BENCH_OUT)/tracking.json | tee $(BENCH_OUT)/tracking.txt

bench-gpu:
	bash bench/gpu/run.sh
