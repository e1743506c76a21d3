package main

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/facegate/facegate/infer"
)

// benchFlags are the settings of `facegate bench`, shared by its modes.
type benchFlags struct {
	models   string
	names    stringList
	batches  []int
	threads  int
	inter    int
	duration time.Duration
	iters    int
	rounds   int
	warmup   int
	jsonOut  string
	gpu      bool
	fresh    bool

	python       bool
	pythonBin    string
	pythonScript string

	// -e2e, -memory and -tracking
	detector   string
	pairsFile  string
	root       string
	pairsLimit int
	gallery    int
	peerTiming string
	pad        float64

	// -matching
	people []int
	dims   []int

	// -memory
	image       string
	frames      int
	sampleEvery int
	maxTime     time.Duration
}

func (bf *benchFlags) register(fs *flag.FlagSet) {
	bf.batches, bf.people, bf.dims = []int{1, 4, 16}, []int{1000, 10000, 100000}, []int{128, 2048}
	def := os.Getenv(infer.ModelsDirEnv)
	if def == "" {
		def = filepath.Join("build", "models")
	}
	fs.StringVar(&bf.models, "models", def, "folder of exported models")
	fs.Var(&bf.names, "model", "model to benchmark, a name under -models or a path; repeatable or comma-separated (default: dlib-resnet-v1,vggface2-resnet50; -e2e/-memory/-tracking use the first)")
	fs.Var(intList{&bf.batches}, "batch", "batch sizes")
	fs.IntVar(&bf.threads, "threads", runtime.NumCPU(), "TensorFlow intra-op threads (Go and Python alike)")
	fs.IntVar(&bf.inter, "inter", 1, "TensorFlow inter-op threads (Go and Python alike)")
	fs.DurationVar(&bf.duration, "duration", 2*time.Second, "with -iters 0: target time of one measurement (one batch size, one side, one round); the iteration count comes from the warm-up")
	fs.IntVar(&bf.iters, "iters", 1, "timed calls per batch size, side and round (0: as many as fit in -duration); 1 alternates single calls Go/Python/Python/Go, so load that changes during the run hits both sides alike")
	fs.IntVar(&bf.rounds, "rounds", 30, "rounds; each measures every batch size on both sides, Go and Python taking turns to go first")
	fs.IntVar(&bf.warmup, "warmup", 2, "untimed calls per batch size and side before the rounds")
	fs.StringVar(&bf.jsonOut, "json", "", "write the full report as JSON here")
	fs.BoolVar(&bf.fresh, "fresh-inputs", false, "make new input tensors on every Go call (the path before issue 17) instead of copying inputs into kept ones")
	fs.BoolVar(&bf.gpu, "gpu", false, "run on GPU 0 with memory growth (a GPU libtensorflow); without it GPUs are hidden")
	fs.BoolVar(&bf.python, "python", false, "also run the same SavedModel with Python TensorFlow (bench/python_tf.py), interleaved, and report facegate/Python")
	fs.StringVar(&bf.pythonBin, "python-bin", "", "Python with TensorFlow (default $FACEGATE_VENV/bin/python, else .venv/bin/python)")
	fs.StringVar(&bf.pythonScript, "python-script", filepath.Join("bench", "python_tf.py"), "the Python side")
	fs.StringVar(&bf.detector, "detector", "blazeface-short", "-e2e/-memory/-tracking: detector model")
	fs.StringVar(&bf.pairsFile, "pairs", "", "-e2e: pairs file (a<TAB>b<TAB>same), paths relative to -root")
	fs.StringVar(&bf.root, "root", "", "-e2e/-memory: folder the image paths are relative to")
	fs.IntVar(&bf.pairsLimit, "pairs-limit", 100, "-e2e: only the images of the first N pairs (the peer's --limit N sees the same images); 0: all")
	fs.IntVar(&bf.gallery, "gallery", 1000, "-e2e: people in the 1:N gallery each face is matched against")
	fs.StringVar(&bf.peerTiming, "peer-timing", filepath.Join("build", "eval", "peer-lfw.timing.json"), "-e2e: the face_recognition peer's timing JSON (bench/peer_face_recognition.py --timing); compared when it exists")
	fs.Float64Var(&bf.pad, "pad", 0.25, "-e2e/-memory/-tracking: pad-and-retry fraction when no face is found (as eval and the daemon)")
	fs.Var(intList{&bf.people}, "people", "-matching: gallery sizes")
	fs.Var(intList{&bf.dims}, "dims", "-matching: template dimensions")
	fs.StringVar(&bf.image, "image", "", "-memory: the frame (default: the first image of -pairs under -root)")
	fs.IntVar(&bf.frames, "frames", 10000, "-memory: frames to run")
	fs.IntVar(&bf.sampleEvery, "sample-every", 1000, "-memory: sample RSS every N frames")
	fs.DurationVar(&bf.maxTime, "max-time", 3*time.Minute, "-memory: stop early after this long (the report says how many frames ran)")
}

// path is a model named on the command line: a path as is, else a folder
// under -models.
func (bf *benchFlags) path(name string) string {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name
	}
	return filepath.Join(bf.models, name)
}
