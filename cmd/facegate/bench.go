package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/eval"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/internal/vec"
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

	python       bool
	pythonBin    string
	pythonScript string

	// -e2e and -memory
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

type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*s = append(*s, x)
		}
	}
	return nil
}

// intList is a comma-separated list of positive integers.
type intList struct{ v *[]int }

func (l intList) String() string {
	if l.v == nil {
		return ""
	}
	s := make([]string, len(*l.v))
	for i, n := range *l.v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l intList) Set(v string) error {
	var out []int
	for _, x := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a positive integer", x)
		}
		out = append(out, n)
	}
	*l.v = out
	return nil
}

func cmdBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	bf := benchFlags{batches: []int{1, 4, 16}, people: []int{1000, 10000, 100000}, dims: []int{128, 2048}}
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
	fs.BoolVar(&bf.gpu, "gpu", false, "run on GPU 0 with memory growth (a GPU libtensorflow); without it GPUs are hidden")
	fs.BoolVar(&bf.python, "python", false, "also run the same SavedModel with Python TensorFlow (bench/python_tf.py), interleaved, and report facegate/Python")
	fs.StringVar(&bf.pythonBin, "python-bin", "", "Python with TensorFlow (default $FACEGATE_VENV/bin/python, else .venv/bin/python)")
	fs.StringVar(&bf.pythonScript, "python-script", filepath.Join("bench", "python_tf.py"), "the Python side")
	e2e := fs.Bool("e2e", false, "per face end to end (read+decode → detect → align → embed → 1:N match) on the images of -pairs")
	matching := fs.Bool("matching", false, "1:N matching cost against a memory-bandwidth bound (a plain sum over the same bytes)")
	memory := fs.Bool("memory", false, "RSS over many frames of detect+align+embed on one image")
	tracking := fs.Bool("tracking", false, "skipping detection with infer/track on real clips: fresh against tracked path, per frame (bench_track.go)")
	var tk trackFlags
	tk.register(fs)
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
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate bench [-model NAME]... [-batch 1,4,16] [-threads N] [-duration D | -iters N] [-python] [-json OUT]\n"+
			"       facegate bench -e2e -pairs FILE -root DIR [-pairs-limit N] [-peer-timing FILE]\n"+
			"       facegate bench -matching [-people 1000,10000,100000] [-dims 128,2048]\n"+
			"       facegate bench -memory -root DIR (-pairs FILE | -image FILE) [-frames N]\n"+
			"       facegate bench -tracking -clip FILE|DIR... [-track-threshold 2,4,6,8,12,16] [-track-max-frames 5,15] [-clip-frames N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	modes := 0
	for _, b := range []bool{*e2e, *matching, *memory, *tracking} {
		if b {
			modes++
		}
	}
	if modes > 1 || fs.NArg() > 0 || bf.rounds < 1 || bf.iters < 0 || bf.warmup < 0 || bf.threads < 0 || bf.inter < 0 {
		fs.Usage()
		return errUsage
	}
	itersSet := false
	fs.Visit(func(f *flag.Flag) { itersSet = itersSet || f.Name == "iters" })
	if *matching && !itersSet {
		bf.iters = 0 // -matching times by -duration unless -iters is given
	}
	if len(bf.names) == 0 {
		bf.names = stringList{"dlib-resnet-v1", "vggface2-resnet50"}
	}
	var report any
	var err error
	switch {
	case *e2e:
		report, err = benchE2E(ctx, &bf, stdout)
	case *matching:
		report, err = benchMatching(ctx, &bf, stdout)
	case *memory:
		report, err = benchMemory(ctx, &bf, stdout)
	case *tracking:
		report, err = benchTracking(ctx, &bf, &tk, stdout)
	default:
		report, err = benchEmbed(ctx, &bf, stdout)
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintln(fs.Output(), "facegate bench:", err)
	}
	if err != nil {
		return err
	}
	if bf.jsonOut != "" {
		if err := writeBenchJSON(bf.jsonOut, report); err != nil {
			return err
		}
		slog.Info("bench report written", "file", bf.jsonOut)
	}
	return nil
}

func (bf *benchFlags) path(name string) string {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name
	}
	return filepath.Join(bf.models, name)
}

func (bf *benchFlags) options() infer.Options {
	o := infer.Options{IntraOpThreads: bf.threads, InterOpThreads: bf.inter}
	if bf.gpu {
		o.GPU = infer.GPUOptions{VisibleDevices: "0", AllowGrowth: true}
	} else {
		o.CPUOnly = true
	}
	return o
}

func writeBenchJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Shared measurement helpers.

// Machine describes where a benchmark ran.
type Machine struct {
	CPU          string     `json:"cpu"`
	CPUs         int        `json:"cpus"`
	GOOS         string     `json:"goos"`
	GOARCH       string     `json:"goarch"`
	Go           string     `json:"go"`
	TensorFlow   string     `json:"libtensorflow"`
	Facegate     string     `json:"facegate"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	LoadavgStart [3]float64 `json:"loadavg_start"`
	LoadavgEnd   [3]float64 `json:"loadavg_end"`
}

func newMachine() Machine {
	return Machine{
		CPU: cpuModel(), CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Go: runtime.Version(), TensorFlow: tf.Version(), Facegate: Version(),
		Start: time.Now().UTC(), LoadavgStart: loadavg(),
	}
}

func (m *Machine) finish() { m.End, m.LoadavgEnd = time.Now().UTC(), loadavg() }

func (m *Machine) describe() string {
	return fmt.Sprintf("%s, %d CPUs, %s, libtensorflow %s; load %.2f %.2f %.2f -> %.2f %.2f %.2f",
		m.CPU, m.CPUs, m.Go, m.TensorFlow, m.LoadavgStart[0], m.LoadavgStart[1], m.LoadavgStart[2],
		m.LoadavgEnd[0], m.LoadavgEnd[1], m.LoadavgEnd[2])
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

// cpuTime is the CPU time (user+system) of the whole process so far: it
// counts TensorFlow's pool threads, and other processes on a loaded machine
// disturb it far less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmRSS is the process's resident set size in bytes, from /proc/self/status.
func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb * 1024, nil
				}
			}
		}
	}
	return 0, errors.New("read RSS: no VmRSS line in /proc/self/status")
}

// Stats summarises durations in milliseconds. Percentiles interpolate
// linearly between order statistics (numpy's default, as the peer's
// timing file).
type Stats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

func statsOf(ms []float64) Stats {
	if len(ms) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Stats{N: len(s), Mean: round6(sum / float64(len(s))), P50: round6(percentile(s, 50)), P95: round6(percentile(s, 95)),
		Min: round6(s[0]), Max: round6(s[len(s)-1])}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(lo)
	return sorted[lo]*(1-f) + sorted[lo+1]*f
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// round6 keeps milliseconds to the nanosecond.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

// ---------------------------------------------------------------------------
// Embedding latency and throughput, Go against Python TensorFlow.

// EmbedReport is the JSON of the default mode.
type EmbedReport struct {
	Kind     string        `json:"kind"`
	Machine  Machine       `json:"machine"`
	Settings EmbedSettings `json:"settings"`
	Models   []ModelBench  `json:"models"`
}

// EmbedSettings are the knobs a run used.
type EmbedSettings struct {
	IntraOpThreads int    `json:"intra_op_threads"`
	InterOpThreads int    `json:"inter_op_threads"`
	Batches        []int  `json:"batches"`
	Rounds         int    `json:"rounds"`
	Warmup         int    `json:"warmup"`
	Iters          int    `json:"iters,omitempty"`
	Duration       string `json:"duration,omitempty"`
	GPU            bool   `json:"gpu"`
	Python         bool   `json:"python"`
	Input          string `json:"input"`
}

// ModelBench is one model's figures.
type ModelBench struct {
	Name      string       `json:"name"`
	Version   string       `json:"version"`
	Dir       string       `json:"dir"`
	Weights   string       `json:"weights"`
	Signature string       `json:"signature"`
	Input     []int64      `json:"input_shape"`
	Devices   []string     `json:"devices"`
	LoadMS    float64      `json:"load_ms"`
	Python    *PythonInfo  `json:"python,omitempty"`
	Batches   []BatchBench `json:"batches"`
}

// PythonInfo describes the Python side of a comparison.
type PythonInfo struct {
	TF      string   `json:"tensorflow"`
	Python  string   `json:"python"`
	Devices []string `json:"devices"`
	LoadMS  float64  `json:"load_ms"`
	Intra   int      `json:"intra_op_threads"`
	Inter   int      `json:"inter_op_threads"`
}

// BatchBench is one batch size: per-call milliseconds of each side, pooled
// over the rounds.
type BatchBench struct {
	Batch int        `json:"batch"`
	Iters int        `json:"iters_per_round"`
	Go    SideBench  `json:"go"`
	Py    *SideBench `json:"python,omitempty"`
	// RatioP50 and RatioMean are facegate/Python wall time per call (lower
	// is better for facegate; the target is ≤ 1.05); RatioCPU the same for
	// process CPU time; RatioRounds the p50 ratio of each round alone.
	RatioP50    float64   `json:"ratio_p50,omitempty"`
	RatioMean   float64   `json:"ratio_mean,omitempty"`
	RatioCPU    float64   `json:"ratio_cpu,omitempty"`
	RatioRounds []float64 `json:"ratio_p50_per_round,omitempty"`
	// RatioRoundsMedian is the median of RatioRounds: each round's two
	// sides ran back to back, so it is the figure least moved by load that
	// changes during the run.
	RatioRoundsMedian float64 `json:"ratio_p50_round_median,omitempty"`
	// MaxAbsDiff is the largest difference between the two sides' first
	// output rows: both must compute the same thing.
	MaxAbsDiff *float64 `json:"max_abs_diff,omitempty"`
}

// SideBench is one side's figures for one batch size.
type SideBench struct {
	MS           Stats     `json:"ms_per_batch"`
	FacesPerS    float64   `json:"faces_per_s"` // batch / p50
	CPUMSPerCall float64   `json:"cpu_ms_per_batch"`
	RoundsP50    []float64 `json:"p50_per_round"`
}

func benchEmbed(ctx context.Context, bf *benchFlags, stdout io.Writer) (*EmbedReport, error) {
	rep := &EmbedReport{Kind: "embed", Machine: newMachine(), Settings: EmbedSettings{
		IntraOpThreads: bf.threads, InterOpThreads: bf.inter, Batches: bf.batches, Rounds: bf.rounds,
		Warmup: bf.warmup, Iters: bf.iters, GPU: bf.gpu, Python: bf.python,
		Input: "deterministic uniform random float32 in [0,255) (PCG seed 1,2), the same bytes for Go and Python",
	}}
	if bf.iters == 0 {
		rep.Settings.Duration = bf.duration.String()
	}
	fmt.Fprintf(stdout, "facegate bench: intra-op threads %d, inter-op %d, batches %v, %d rounds, gpu %v, python %v\n",
		bf.threads, bf.inter, bf.batches, bf.rounds, bf.gpu, bf.python)
	for _, name := range bf.names {
		mb, err := benchModel(ctx, bf, name, stdout)
		if err != nil {
			return nil, err
		}
		rep.Models = append(rep.Models, *mb)
	}
	rep.Machine.finish()
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.describe())
	return rep, nil
}

func benchModel(ctx context.Context, bf *benchFlags, name string, stdout io.Writer) (*ModelBench, error) {
	dir := bf.path(name)
	m, err := infer.Load(dir, bf.options())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	man := m.Manifest()
	sig, in := man.Input.Signature, man.Input.Tensor
	h, w, c := man.Input.Height, man.Input.Width, man.Input.Channels
	mb := &ModelBench{Name: man.Name, Version: man.Version, Dir: dir, Weights: string(man.Weights), Signature: sig,
		Input: []int64{-1, int64(h), int64(w), int64(c)}, LoadMS: round3(ms(m.LoadTime()))}
	if devs, err := m.Devices(); err == nil {
		for _, d := range devs {
			mb.Devices = append(mb.Devices, d.Name)
		}
	}
	maxB := 0
	for _, b := range bf.batches {
		maxB = max(maxB, b)
	}
	per := h * w * c
	data := make([]float32, maxB*per)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = 255 * rng.Float32()
	}

	var py *pyProc
	var inputFile string
	if bf.python {
		tmp, err := os.MkdirTemp("", "facegate-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		inputFile = filepath.Join(tmp, "input.f32")
		if err := writeFloat32s(inputFile, data); err != nil {
			return nil, err
		}
		py, err = startPython(ctx, bf, dir, sig, in)
		if err != nil {
			return nil, err
		}
		defer py.close()
		mb.Python = &py.info
	}
	fmt.Fprintf(stdout, "\n%s %s (%s weights), signature %q, input %dx%dx%d, devices %v, load %.0f ms\n",
		man.Name, man.Version, man.Weights, sig, h, w, c, mb.Devices, mb.LoadMS)
	if py != nil {
		fmt.Fprintf(stdout, "python: TensorFlow %s (Python %s), intra %d inter %d, devices %v, load %.0f ms\n",
			py.info.TF, py.info.Python, py.info.Intra, py.info.Inter, py.info.Devices, py.info.LoadMS)
	}

	type cell struct {
		goMS, pyMS   []float64
		goCPU, pyCPU time.Duration
		goRounds     []float64
		pyRounds     []float64
		iters        int
		goFirst      map[string][]float32
		pyFirst      map[string][]float64
	}
	cells := make([]cell, len(bf.batches))
	batchOf := func(b int) infer.Float32Batch {
		return infer.Float32Batch{Shape: []int64{int64(b), int64(h), int64(w), int64(c)}, Data: data[:b*per]}
	}
	runGo := func(b, iters int) ([]float64, time.Duration, map[string][]float32, error) {
		input := map[string]infer.Float32Batch{in: batchOf(b)}
		out := make([]float64, 0, iters)
		var last map[string]infer.Float32Batch
		c0 := cpuTime()
		for range iters {
			if err := ctx.Err(); err != nil {
				return nil, 0, nil, err
			}
			t0 := time.Now()
			res, err := m.RunFloat32(sig, input)
			if err != nil {
				return nil, 0, nil, err
			}
			out = append(out, ms(time.Since(t0)))
			last = res
		}
		cpu := cpuTime() - c0
		first := map[string][]float32{}
		for k, v := range last {
			if v.Rows() > 0 {
				first[k] = v.Row(0)
			}
		}
		return out, cpu, first, nil
	}
	// Warm-up, and the iteration count of each batch size from the
	// warm-up's speed.
	for i, b := range bf.batches {
		warm := max(bf.warmup, 1)
		wms, _, _, err := runGo(b, warm)
		if err != nil {
			return nil, fmt.Errorf("%s batch %d: %w", name, b, err)
		}
		if py != nil {
			if _, err := py.run(inputFile, []int{b, h, w, c}, 0, bf.warmup); err != nil {
				return nil, fmt.Errorf("%s batch %d (python): %w", name, b, err)
			}
		}
		cells[i].iters = bf.iters
		if bf.iters == 0 {
			cells[i].iters = max(3, int(math.Ceil(float64(bf.duration)/float64(time.Duration(wms[len(wms)-1]*1e6)))))
		}
	}
	for r := range bf.rounds {
		for i, b := range bf.batches {
			cl := &cells[i]
			goSide := func() error {
				t, cpu, first, err := runGo(b, cl.iters)
				if err != nil {
					return fmt.Errorf("%s batch %d: %w", name, b, err)
				}
				cl.goMS = append(cl.goMS, t...)
				cl.goCPU += cpu
				cl.goRounds = append(cl.goRounds, statsOf(t).P50)
				cl.goFirst = first
				return nil
			}
			pySide := func() error {
				if py == nil {
					return nil
				}
				res, err := py.run(inputFile, []int{b, h, w, c}, cl.iters, 0)
				if err != nil {
					return fmt.Errorf("%s batch %d (python): %w", name, b, err)
				}
				cl.pyMS = append(cl.pyMS, res.MS...)
				cl.pyCPU += time.Duration(res.CPUMS * 1e6)
				cl.pyRounds = append(cl.pyRounds, statsOf(res.MS).P50)
				cl.pyFirst = res.Outputs
				return nil
			}
			// A/B, then B/A in the next round: neither side always runs
			// right after the other.
			first, second := goSide, pySide
			if r%2 == 1 {
				first, second = pySide, goSide
			}
			if err := first(); err != nil {
				return nil, err
			}
			if err := second(); err != nil {
				return nil, err
			}
		}
	}
	fmt.Fprintf(stdout, "%6s %6s  %-36s  %-36s  %s\n", "batch", "iters", "facegate ms/batch p50 (p95) faces/s", "python ms/batch p50 (p95) faces/s", "ratio p50 / mean / cpu / round median")
	for i, b := range bf.batches {
		cl := cells[i]
		total := cl.iters * bf.rounds
		bb := BatchBench{Batch: b, Iters: cl.iters}
		side := func(t []float64, cpu time.Duration, rounds []float64) SideBench {
			st := statsOf(t)
			return SideBench{MS: st, FacesPerS: round3(1000 * float64(b) / st.P50), CPUMSPerCall: round3(ms(cpu) / float64(total)), RoundsP50: rounds}
		}
		bb.Go = side(cl.goMS, cl.goCPU, cl.goRounds)
		line := fmt.Sprintf("%6d %6d  %9.2f (%9.2f) %12.1f    ", b, cl.iters, bb.Go.MS.P50, bb.Go.MS.P95, bb.Go.FacesPerS)
		if py != nil {
			p := side(cl.pyMS, cl.pyCPU, cl.pyRounds)
			bb.Py = &p
			bb.RatioP50 = ratio(bb.Go.MS.P50, p.MS.P50)
			bb.RatioMean = ratio(bb.Go.MS.Mean, p.MS.Mean)
			bb.RatioCPU = ratio(bb.Go.CPUMSPerCall, p.CPUMSPerCall)
			for r := range cl.goRounds {
				bb.RatioRounds = append(bb.RatioRounds, ratio(cl.goRounds[r], cl.pyRounds[r]))
			}
			bb.RatioRoundsMedian = round3(statsOf(bb.RatioRounds).P50)
			d, err := maxAbsDiff(cl.goFirst, cl.pyFirst)
			if err != nil {
				return nil, fmt.Errorf("%s batch %d: Go and Python outputs differ: %w", name, b, err)
			}
			bb.MaxAbsDiff = &d
			line += fmt.Sprintf("%9.2f (%9.2f) %12.1f    %.3f / %.3f / %.3f / %.3f  (per round %v, max |diff| %.2g)",
				p.MS.P50, p.MS.P95, p.FacesPerS, bb.RatioP50, bb.RatioMean, bb.RatioCPU, bb.RatioRoundsMedian, bb.RatioRounds, d)
		}
		fmt.Fprintln(stdout, line)
		mb.Batches = append(mb.Batches, bb)
	}
	return mb, nil
}

func maxAbsDiff(g map[string][]float32, p map[string][]float64) (float64, error) {
	if len(g) != len(p) {
		return 0, fmt.Errorf("Go has outputs %v, Python %v", keys(g), keys(p))
	}
	var d float64
	for k, gv := range g {
		pv, ok := p[k]
		if !ok || len(pv) != len(gv) {
			return 0, fmt.Errorf("output %q: Go has %d values, Python %d", k, len(gv), len(pv))
		}
		for i := range gv {
			d = max(d, math.Abs(float64(gv[i])-pv[i]))
		}
	}
	return d, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func writeFloat32s(path string, data []float32) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := binary.Write(w, binary.NativeEndian, data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// pyProc is bench/python_tf.py running as a server for one model.
type pyProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	info PythonInfo
}

type pyResult struct {
	MS      []float64            `json:"ms"`
	CPUMS   float64              `json:"cpu_ms"`
	Outputs map[string][]float64 `json:"outputs"`
	Error   string               `json:"error"`
}

func (bf *benchFlags) pythonPath() (string, error) {
	if bf.pythonBin != "" {
		return bf.pythonBin, nil
	}
	venv := os.Getenv("FACEGATE_VENV")
	if venv == "" {
		venv = ".venv"
	}
	p := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("-python: no Python at %s (run `make deps`, set FACEGATE_VENV or -python-bin): %w", p, err)
	}
	return p, nil
}

func startPython(ctx context.Context, bf *benchFlags, dir, sig, in string) (*pyProc, error) {
	bin, err := bf.pythonPath()
	if err != nil {
		return nil, err
	}
	args := []string{bf.pythonScript, "--model", dir, "--signature", sig, "--input", in,
		"--intra", strconv.Itoa(bf.threads), "--inter", strconv.Itoa(bf.inter)}
	if bf.gpu {
		args = append(args, "--gpu")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "PYTHONUNBUFFERED=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", bin, bf.pythonScript, err)
	}
	p := &pyProc{cmd: cmd, in: stdin, out: bufio.NewScanner(stdoutPipe)}
	p.out.Buffer(make([]byte, 1<<20), 64<<20)
	var ready struct {
		Ready   bool     `json:"ready"`
		TF      string   `json:"tf"`
		Python  string   `json:"python"`
		Devices []string `json:"devices"`
		LoadMS  float64  `json:"load_ms"`
		Intra   int      `json:"intra"`
		Inter   int      `json:"inter"`
	}
	if err := p.read(&ready); err != nil {
		p.close()
		return nil, fmt.Errorf("python side of %s did not start: %w", dir, err)
	}
	if !ready.Ready {
		p.close()
		return nil, fmt.Errorf("python side of %s: not ready", dir)
	}
	if ready.Intra != bf.threads || ready.Inter != bf.inter {
		p.close()
		return nil, fmt.Errorf("python side runs %d/%d intra/inter-op threads, Go %d/%d", ready.Intra, ready.Inter, bf.threads, bf.inter)
	}
	p.info = PythonInfo{TF: ready.TF, Python: ready.Python, Devices: ready.Devices, LoadMS: round3(ready.LoadMS), Intra: ready.Intra, Inter: ready.Inter}
	return p, nil
}

func (p *pyProc) read(v any) error {
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return err
		}
		return io.ErrUnexpectedEOF
	}
	if err := json.Unmarshal(p.out.Bytes(), v); err != nil {
		return fmt.Errorf("bad reply %.200q: %w", p.out.Text(), err)
	}
	return nil
}

func (p *pyProc) run(input string, shape []int, iters, warmup int) (*pyResult, error) {
	req, err := json.Marshal(map[string]any{"cmd": "run", "input": input, "shape": shape, "iters": iters, "warmup": warmup})
	if err != nil {
		return nil, err
	}
	if _, err := p.in.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("send to python: %w", err)
	}
	var res pyResult
	if err := p.read(&res); err != nil {
		return nil, fmt.Errorf("python reply: %w", err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("python: %s", res.Error)
	}
	if len(res.MS) != iters {
		return nil, fmt.Errorf("python ran %d timed calls, asked %d", len(res.MS), iters)
	}
	return &res, nil
}

func (p *pyProc) close() {
	p.in.Write([]byte(`{"cmd":"quit"}` + "\n"))
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			slog.Warn("python side exited", "err", err)
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// ---------------------------------------------------------------------------
// Per face end to end, against the face_recognition peer.

// E2EReport is the JSON of -e2e.
type E2EReport struct {
	Kind      string           `json:"kind"`
	Machine   Machine          `json:"machine"`
	Detector  string           `json:"detector"`
	Embedder  string           `json:"embedder"`
	Threads   int              `json:"intra_op_threads"`
	Inter     int              `json:"inter_op_threads"`
	PairsFile string           `json:"pairs_file"`
	Pairs     int              `json:"pairs"`
	Images    int              `json:"images"`
	Faces     int              `json:"faces"`
	FTA       int              `json:"fta"`
	Padded    int              `json:"found_after_padding"`
	Gallery   int              `json:"gallery_people"`
	PerFace   map[string]Stats `json:"per_face_wall_ms"`
	PerFaceCP map[string]Stats `json:"per_face_cpu_ms"`
	RunWallS  float64          `json:"run_wall_s"`
	RunCPUS   float64          `json:"run_cpu_s"`
	Peer      *PeerComparison  `json:"peer,omitempty"`
}

// PeerComparison sets facegate's per-face time beside the peer's.
type PeerComparison struct {
	File       string  `json:"file"`
	System     string  `json:"system"`
	SameImages bool    `json:"same_images"`
	Images     int     `json:"images"`
	Faces      int     `json:"faces"`
	FTA        int     `json:"fta"`
	WallMean   float64 `json:"per_face_wall_ms_mean"`
	CPUMean    float64 `json:"per_face_cpu_ms_mean"`
	Threads    int     `json:"threads"`
	// SpeedupWall and SpeedupCPU are peer/facegate per face (the target is
	// ≥ 2).
	SpeedupWall float64    `json:"speedup_wall"`
	SpeedupCPU  float64    `json:"speedup_cpu"`
	PeerLoad    [2]any     `json:"peer_loadavg"`
	PeerStages  peerStages `json:"peer_per_face_wall_ms"`
}

type peerStages map[string]Stats

type peerTiming struct {
	System    string `json:"system"`
	PairsFile string `json:"pairs_file"`
	Pairs     int    `json:"pairs"`
	Images    int    `json:"images"`
	Faces     int    `json:"faces"`
	FTA       int    `json:"fta"`
	Settings  struct {
		Threads int `json:"threads"`
	} `json:"settings"`
	Machine struct {
		LoadStart any `json:"loadavg_start"`
		LoadEnd   any `json:"loadavg_end"`
	} `json:"machine"`
	PerFaceWall map[string]Stats `json:"per_face_wall_ms"`
	PerFaceCPU  map[string]Stats `json:"per_face_cpu_ms"`
}

func (bf *benchFlags) openPipeline() (*infer.Pipeline, func(), error) {
	return infer.OpenPipeline(bf.path(bf.detector), bf.path(bf.names[0]), bf.options(), infer.DetectorConfig{}, bf.pad)
}

func (bf *benchFlags) readPairs() ([]eval.Pair, error) {
	if bf.pairsFile == "" || bf.root == "" {
		return nil, fmt.Errorf("%w: -pairs and -root are required", errUsage)
	}
	f, err := os.Open(bf.pairsFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pairs, err := eval.ParsePairs(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bf.pairsFile, err)
	}
	if bf.pairsLimit > 0 && bf.pairsLimit < len(pairs) {
		pairs = pairs[:bf.pairsLimit]
	}
	return pairs, nil
}

// randomGallery enrols n people with one random unit template each.
func randomGallery(sc enroll.Scorer, n int, seed uint64) (*enroll.Matcher, error) {
	m := enroll.NewMatcher(sc)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	v := make([]float32, sc.Dim)
	for i := range n {
		randomUnit(rng, v)
		if err := m.Put("p"+strconv.Itoa(i), "", [][]float32{v}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func randomUnit(rng *rand.Rand, v []float32) {
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	enroll.Normalize(v)
}

func benchE2E(ctx context.Context, bf *benchFlags, stdout io.Writer) (*E2EReport, error) {
	pairs, err := bf.readPairs()
	if err != nil {
		return nil, err
	}
	images := eval.Images(pairs)
	p, closeFn, err := bf.openPipeline()
	if err != nil {
		return nil, err
	}
	defer closeFn()
	man := p.Emb.Model().Manifest()
	sc, err := enroll.NewScorer(man)
	if err != nil {
		return nil, err
	}
	gallery, err := randomGallery(sc, bf.gallery, 7)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(bf.pairsFile)
	rep := &E2EReport{Kind: "e2e", Machine: newMachine(), Detector: p.Det.Model().Manifest().Name, Embedder: man.Name,
		Threads: bf.threads, Inter: bf.inter, PairsFile: abs, Pairs: len(pairs), Images: len(images), Gallery: bf.gallery}
	stages := []string{"decode", "detect", "align", "embed", "match", "total"}
	wall := map[string][]float64{}
	cpu := map[string][]float64{}
	chip := make([]float32, p.Emb.ChipLen())

	one := func(name string, record bool) error {
		var tw [6]time.Time
		var tc [6]time.Duration
		mark := func(i int) { tw[i], tc[i] = time.Now(), cpuTime() }
		mark(0)
		data, err := os.ReadFile(filepath.Join(bf.root, name))
		if err != nil {
			return err
		}
		img, _, err := imageio.DecodeBytes(data, imageio.Limits{})
		if err != nil {
			if record {
				rep.FTA++
			}
			return nil
		}
		mark(1)
		faces, err := p.Detect(img)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		f, err := infer.Primary(faces, img.W, img.H)
		if err != nil {
			if record {
				rep.FTA++
			}
			return nil
		}
		mark(2)
		kps := make([]alignPoint, len(f.Keypoints))
		for k, pt := range f.Keypoints {
			kps[k] = alignPoint{pt.X, pt.Y}
		}
		if _, err := p.Emb.Align(img, kps, f.Names, chip); err != nil {
			return fmt.Errorf("align %s: %w", name, err)
		}
		mark(3)
		emb, err := p.Emb.EmbedChips(chip, 1)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		mark(4)
		if _, err := gallery.Identify(emb[0], 5); err != nil {
			return fmt.Errorf("match %s: %w", name, err)
		}
		mark(5)
		if !record {
			return nil
		}
		rep.Faces++
		if f.Padded {
			rep.Padded++
		}
		for i, s := range stages[:5] {
			wall[s] = append(wall[s], ms(tw[i+1].Sub(tw[i])))
			cpu[s] = append(cpu[s], ms(tc[i+1]-tc[i]))
		}
		wall["total"] = append(wall["total"], ms(tw[5].Sub(tw[0])))
		cpu["total"] = append(cpu["total"], ms(tc[5]-tc[0]))
		return nil
	}
	// Warm-up: TensorFlow's first runs allocate and pick kernels.
	for range max(bf.warmup, 1) {
		if err := one(images[0], false); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "facegate bench -e2e: %s + %s, intra-op threads %d, inter-op %d, %d images of %d pairs of %s, gallery %d\n",
		rep.Detector, rep.Embedder, bf.threads, bf.inter, len(images), len(pairs), filepath.Base(bf.pairsFile), bf.gallery)
	w0, c0 := time.Now(), cpuTime()
	for _, name := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := one(name, true); err != nil {
			return nil, err
		}
	}
	rep.RunWallS = round3(time.Since(w0).Seconds())
	rep.RunCPUS = round3((cpuTime() - c0).Seconds())
	rep.PerFace, rep.PerFaceCP = map[string]Stats{}, map[string]Stats{}
	for _, s := range stages {
		rep.PerFace[s] = statsOf(wall[s])
		rep.PerFaceCP[s] = statsOf(cpu[s])
	}
	rep.Machine.finish()
	fmt.Fprintf(stdout, "%d faces, %d without a face, %d found after padding; %.1f s wall, %.1f s CPU\n",
		rep.Faces, rep.FTA, rep.Padded, rep.RunWallS, rep.RunCPUS)
	fmt.Fprintf(stdout, "%-8s %28s %28s\n", "stage", "wall ms/face mean p50 p95", "cpu ms/face mean p50 p95")
	for _, s := range stages {
		w, c := rep.PerFace[s], rep.PerFaceCP[s]
		fmt.Fprintf(stdout, "%-8s %9.2f %8.2f %9.2f %9.2f %8.2f %9.2f\n", s, w.Mean, w.P50, w.P95, c.Mean, c.P50, c.P95)
	}
	if bf.peerTiming != "" {
		pc, err := comparePeer(bf.peerTiming, rep)
		switch {
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stdout, "peer: no timing file %s (run `make peer-lfw` or bench-e2e-peer)\n", bf.peerTiming)
		case err != nil:
			return nil, err
		default:
			rep.Peer = pc
			same := "the same images"
			if !pc.SameImages {
				same = fmt.Sprintf("NOT the same images: the peer ran %d images", pc.Images)
			}
			fmt.Fprintf(stdout, "peer %s (%s, %d thread(s)): %.2f ms/face wall, %.2f CPU; facegate is %.2fx faster (wall), %.2fx (CPU)\n",
				pc.System, same, pc.Threads, pc.WallMean, pc.CPUMean, pc.SpeedupWall, pc.SpeedupCPU)
		}
	}
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.describe())
	return rep, nil
}

type alignPoint = [2]float64

func comparePeer(path string, rep *E2EReport) (*PeerComparison, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pt peerTiming
	if err := json.Unmarshal(b, &pt); err != nil {
		return nil, fmt.Errorf("peer timing %s: %w", path, err)
	}
	wall, cpu := pt.PerFaceWall["total"], pt.PerFaceCPU["total"]
	if wall.N == 0 || wall.Mean <= 0 {
		return nil, fmt.Errorf("peer timing %s: no per-face total", path)
	}
	pc := &PeerComparison{
		File: path, System: pt.System, Images: pt.Images, Faces: pt.Faces, FTA: pt.FTA,
		SameImages: pt.PairsFile == rep.PairsFile && pt.Pairs == rep.Pairs && pt.Images == rep.Images,
		WallMean:   wall.Mean, CPUMean: cpu.Mean, Threads: pt.Settings.Threads,
		SpeedupWall: ratio(wall.Mean, rep.PerFace["total"].Mean),
		SpeedupCPU:  ratio(cpu.Mean, rep.PerFaceCP["total"].Mean),
		PeerLoad:    [2]any{pt.Machine.LoadStart, pt.Machine.LoadEnd},
		PeerStages:  pt.PerFaceWall,
	}
	return pc, nil
}

// ---------------------------------------------------------------------------
// 1:N matching cost against a memory-bandwidth bound.

// MatchingReport is the JSON of -matching.
type MatchingReport struct {
	Kind    string          `json:"kind"`
	Machine Machine         `json:"machine"`
	Cases   []MatchingBench `json:"cases"`
}

// MatchingBench is one gallery size and dimension. Bytes counts what
// Identify reads per probe (one template per person, its own mean); the
// bound sums as many bytes laid out contiguously.
type MatchingBench struct {
	People        int     `json:"people"`
	Dim           int     `json:"dim"`
	Bytes         int64   `json:"bytes"`
	IdentifyMS    Stats   `json:"identify_ms"`
	BoundMS       Stats   `json:"scan_bound_ms"`
	IdentifyGBps  float64 `json:"identify_gb_per_s"`
	BoundGBps     float64 `json:"scan_bound_gb_per_s"`
	Ratio         float64 `json:"ratio"` // identify / bound p50; target ≤ 2
	Iters         int     `json:"iters"`
	LoadavgBefore float64 `json:"loadavg_1m"`
}

func benchMatching(ctx context.Context, bf *benchFlags, stdout io.Writer) (*MatchingReport, error) {
	rep := &MatchingReport{Kind: "matching", Machine: newMachine()}
	fmt.Fprintf(stdout, "facegate bench -matching: Identify(probe, k=5), one template per person (read once: a single template is its own mean), Euclidean\n")
	fmt.Fprintf(stdout, "%8s %5s %10s  %-26s %-26s %s\n", "people", "dim", "MB read", "identify ms p50 (GB/s)", "scan bound ms p50 (GB/s)", "ratio")
	for _, dim := range bf.dims {
		for _, people := range bf.people {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			mb, err := matchingCase(bf, people, dim)
			if err != nil {
				return nil, err
			}
			rep.Cases = append(rep.Cases, *mb)
			fmt.Fprintf(stdout, "%8d %5d %10.1f  %9.3f (%6.2f)          %9.3f (%6.2f)          %.2f\n", people, dim,
				float64(mb.Bytes)/1e6, mb.IdentifyMS.P50, mb.IdentifyGBps, mb.BoundMS.P50, mb.BoundGBps, mb.Ratio)
		}
	}
	rep.Machine.finish()
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.describe())
	return rep, nil
}

// timePair times f and g alternately, call for call, for as many rounds
// as -iters or -duration (counting both) asks, at least 3.
func timePair(bf *benchFlags, f, g func()) (tf, tg []float64) {
	f() // warm: page faults, caches
	g()
	t0 := time.Now()
	f()
	g()
	one := time.Since(t0)
	n := bf.iters
	if n == 0 {
		n = max(3, min(1000, int(bf.duration/max(one, time.Microsecond))))
	}
	tf, tg = make([]float64, n), make([]float64, n)
	for i := range n {
		t := time.Now()
		f()
		tf[i] = ms(time.Since(t))
		t = time.Now()
		g()
		tg[i] = ms(time.Since(t))
	}
	return tf, tg
}

var scanSink float32

func matchingCase(bf *benchFlags, people, dim int) (*MatchingBench, error) {
	// One template per person: Identify reads each template once (a single
	// template is its own mean).
	mb := &MatchingBench{People: people, Dim: dim, Bytes: int64(people) * int64(dim) * 4, LoadavgBefore: loadavg()[0]}
	sc := enroll.Scorer{Metric: "euclidean", Dim: dim}
	m, err := randomGallery(sc, people, uint64(people*31+dim))
	if err != nil {
		return nil, err
	}
	// The bound: the fastest plain scan of as many contiguous bytes (the
	// same SIMD sum kernel), timed call for call alternately with Identify
	// so that both see the same machine.
	data := make([]float32, int64(people)*int64(dim))
	for i := range data {
		data[i] = float32(i&1023) * (1.0 / 1024)
	}
	probe := make([]float32, dim)
	randomUnit(rand.New(rand.NewPCG(99, 100)), probe)
	var ierr error
	t, tb := timePair(bf, func() {
		if _, err := m.Identify(probe, 5); err != nil {
			ierr = err
		}
	}, func() { scanSink += vec.Sum(data) })
	if ierr != nil {
		return nil, ierr
	}
	mb.BoundMS = statsOf(tb)
	mb.Iters = len(t)
	mb.IdentifyMS = statsOf(t)
	m, data = nil, nil
	runtime.GC()
	debug.FreeOSMemory()
	// Timer resolution: a sub-nanosecond median (tiny cases) counts as 1 ns.
	gbps := func(p50 float64) float64 { return round3(float64(mb.Bytes) / (max(p50, 1e-6) * 1e6)) }
	mb.IdentifyGBps, mb.BoundGBps = gbps(mb.IdentifyMS.P50), gbps(mb.BoundMS.P50)
	mb.Ratio = ratio(mb.IdentifyMS.P50, max(mb.BoundMS.P50, 1e-6))
	return mb, nil
}

// ---------------------------------------------------------------------------
// Memory over time.

// MemoryReport is the JSON of -memory.
type MemoryReport struct {
	Kind     string         `json:"kind"`
	Machine  Machine        `json:"machine"`
	Detector string         `json:"detector"`
	Embedder string         `json:"embedder"`
	Image    string         `json:"image"`
	Threads  int            `json:"intra_op_threads"`
	Frames   int            `json:"frames"`
	Asked    int            `json:"frames_asked"`
	Samples  []MemorySample `json:"samples"`
	// RSSFirst is the RSS at the first sample at or after 1,000 frames (or
	// the first sample), RSSLast at the last; GrowthPct their difference
	// relative to RSSFirst (the target is ≤ 5 %).
	RSSFirst  int64   `json:"rss_first_bytes"`
	RSSLast   int64   `json:"rss_last_bytes"`
	FirstAt   int     `json:"rss_first_frame"`
	LastAt    int     `json:"rss_last_frame"`
	GrowthPct float64 `json:"growth_pct"`
	MSPerFrm  float64 `json:"ms_per_frame"`
}

// MemorySample is one reading.
type MemorySample struct {
	Frame     int     `json:"frame"`
	RSS       int64   `json:"rss_bytes"`
	HeapInuse uint64  `json:"go_heap_inuse_bytes"`
	Elapsed   float64 `json:"elapsed_s"`
}

func benchMemory(ctx context.Context, bf *benchFlags, stdout io.Writer) (*MemoryReport, error) {
	path := bf.image
	if path == "" {
		pairs, err := bf.readPairs()
		if err != nil {
			return nil, fmt.Errorf("-memory needs -image or -pairs: %w", err)
		}
		path = filepath.Join(bf.root, pairs[0].A)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, _, err := imageio.DecodeBytes(data, imageio.Limits{})
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	p, closeFn, err := bf.openPipeline()
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rep := &MemoryReport{Kind: "memory", Machine: newMachine(), Detector: p.Det.Model().Manifest().Name,
		Embedder: p.Emb.Model().Manifest().Name, Image: path, Threads: bf.threads, Asked: bf.frames}
	fmt.Fprintf(stdout, "facegate bench -memory: %s + %s on %s, %d frames (at most %s), RSS every %d\n",
		rep.Detector, rep.Embedder, path, bf.frames, bf.maxTime, bf.sampleEvery)
	if _, err := p.EmbedPrimary(img); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	start := time.Now()
	sample := func(frame int) error {
		rss, err := vmRSS()
		if err != nil {
			return err
		}
		var mst runtime.MemStats
		runtime.ReadMemStats(&mst)
		s := MemorySample{Frame: frame, RSS: rss, HeapInuse: mst.HeapInuse, Elapsed: round3(time.Since(start).Seconds())}
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintf(stdout, "frame %6d  RSS %7.1f MiB  Go heap in use %6.1f MiB  %6.1f s\n", frame, float64(rss)/(1<<20), float64(mst.HeapInuse)/(1<<20), s.Elapsed)
		return nil
	}
	frame := 0
	for frame < bf.frames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Since(start) > bf.maxTime {
			fmt.Fprintf(stdout, "stopping after %s (-max-time)\n", bf.maxTime)
			break
		}
		if _, err := p.EmbedPrimary(img); err != nil {
			return nil, fmt.Errorf("frame %d: %w", frame, err)
		}
		frame++
		if frame%bf.sampleEvery == 0 {
			if err := sample(frame); err != nil {
				return nil, err
			}
		}
	}
	if len(rep.Samples) == 0 || rep.Samples[len(rep.Samples)-1].Frame != frame {
		if err := sample(frame); err != nil {
			return nil, err
		}
	}
	rep.Frames = frame
	rep.MSPerFrm = round3(ms(time.Since(start)) / float64(max(frame, 1)))
	first := rep.Samples[0]
	for _, s := range rep.Samples {
		if s.Frame >= 1000 {
			first = s
			break
		}
	}
	last := rep.Samples[len(rep.Samples)-1]
	rep.RSSFirst, rep.RSSLast, rep.FirstAt, rep.LastAt = first.RSS, last.RSS, first.Frame, last.Frame
	rep.GrowthPct = round3(100 * float64(last.RSS-first.RSS) / float64(first.RSS))
	rep.Machine.finish()
	fmt.Fprintf(stdout, "RSS %.1f MiB at frame %d, %.1f MiB at frame %d: %+.2f %% (%.1f ms/frame)\n",
		float64(first.RSS)/(1<<20), first.Frame, float64(last.RSS)/(1<<20), last.Frame, rep.GrowthPct, rep.MSPerFrm)
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.describe())
	return rep, nil
}
