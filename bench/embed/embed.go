package embed

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/infer"
)

// Config is one embedding benchmark: every model at every batch size,
// Rounds times.
type Config struct {
	Models  []string // model folders
	Batches []int
	Threads int // TensorFlow intra-op threads, Go and Python alike
	Inter   int // inter-op threads
	// Iters is the number of timed calls per batch size, side and round;
	// 0: as many as fit in Duration, counted from the warm-up's speed.
	Iters    int
	Duration time.Duration
	Rounds   int
	Warmup   int  // untimed calls per batch size and side before the rounds
	GPU      bool // GPU 0 with memory growth; without it GPUs are hidden
	// FreshInputs makes new input tensors on every Go call
	// (infer.Options.FreshInputTensors), the path before issue 17.
	FreshInputs bool
	// Python runs the same SavedModel with PythonBin PythonScript too.
	Python       bool
	PythonBin    string // default $FACEGATE_VENV/bin/python, else .venv/bin/python
	PythonScript string // bench/python_tf.py
	Build        bench.Build
}

// Validate rejects what cannot be measured.
func (cfg Config) Validate() error {
	if len(cfg.Models) == 0 || len(cfg.Batches) == 0 {
		return fmt.Errorf("%w: embed needs at least one model and one batch size", bench.ErrConfig)
	}
	for _, b := range cfg.Batches {
		if b < 1 {
			return fmt.Errorf("%w: batch size %d", bench.ErrConfig, b)
		}
	}
	if cfg.Rounds < 1 || cfg.Iters < 0 || cfg.Warmup < 0 || cfg.Threads < 0 || cfg.Inter < 0 || (cfg.Iters == 0 && cfg.Duration <= 0) {
		return fmt.Errorf("%w: embed needs rounds ≥ 1, iterations ≥ 0 (0 with a duration), warm-up and threads ≥ 0", bench.ErrConfig)
	}
	if cfg.Python && cfg.PythonScript == "" {
		return fmt.Errorf("%w: the Python side needs its script", bench.ErrConfig)
	}
	return nil
}

// Options are the TensorFlow session options a Config runs with.
func Options(threads, inter int, gpu bool) infer.Options {
	o := infer.Options{IntraOpThreads: threads, InterOpThreads: inter}
	if gpu {
		o.GPU = infer.GPUOptions{VisibleDevices: "0", AllowGrowth: true}
	} else {
		o.CPUOnly = true
	}
	return o
}

func (cfg Config) options() infer.Options {
	o := Options(cfg.Threads, cfg.Inter, cfg.GPU)
	o.FreshInputTensors = cfg.FreshInputs
	return o
}

type Report struct {
	Kind     string        `json:"kind"`
	Machine  bench.Machine `json:"machine"`
	Settings Settings      `json:"settings"`
	Models   []Model       `json:"models"`
}

// Settings are the knobs a run used.
type Settings struct {
	IntraOpThreads int    `json:"intra_op_threads"`
	InterOpThreads int    `json:"inter_op_threads"`
	Batches        []int  `json:"batches"`
	Rounds         int    `json:"rounds"`
	Warmup         int    `json:"warmup"`
	Iters          int    `json:"iters,omitempty"`
	Duration       string `json:"duration,omitempty"`
	GPU            bool   `json:"gpu"`
	FreshInputs    bool   `json:"fresh_input_tensors"`
	Python         bool   `json:"python"`
	Input          string `json:"input"`
}

// Model is one model's figures.
type Model struct {
	Name      string      `json:"name"`
	Version   string      `json:"version"`
	Dir       string      `json:"dir"`
	Weights   string      `json:"weights"`
	Signature string      `json:"signature"`
	Input     []int64     `json:"input_shape"`
	Devices   []string    `json:"devices"`
	LoadMS    float64     `json:"load_ms"`
	Python    *PythonInfo `json:"python,omitempty"`
	Batches   []Batch     `json:"batches"`
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

// Batch is one batch size: per-call milliseconds of each side, pooled
// over the rounds.
type Batch struct {
	Batch int   `json:"batch"`
	Iters int   `json:"iters_per_round"`
	Go    Side  `json:"go"`
	Py    *Side `json:"python,omitempty"`
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

// Side is one side's figures for one batch size.
type Side struct {
	MS           bench.Stats `json:"ms_per_batch"`
	FacesPerS    float64     `json:"faces_per_s"` // batch / p50
	CPUMSPerCall float64     `json:"cpu_ms_per_batch"`
	RoundsP50    []float64   `json:"p50_per_round"`
}

func (cfg Config) Run(ctx context.Context, stdout io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Kind: "embed", Machine: bench.NewMachine(cfg.Build), Settings: Settings{
		IntraOpThreads: cfg.Threads, InterOpThreads: cfg.Inter, Batches: cfg.Batches, Rounds: cfg.Rounds,
		Warmup: cfg.Warmup, Iters: cfg.Iters, GPU: cfg.GPU, FreshInputs: cfg.FreshInputs, Python: cfg.Python,
		Input: "deterministic uniform random float32 in [0,255) (PCG seed 1,2), the same bytes for Go and Python",
	}}
	if cfg.Iters == 0 {
		rep.Settings.Duration = cfg.Duration.String()
	}
	fmt.Fprintf(stdout, "facegate bench: intra-op threads %d, inter-op %d, batches %v, %d rounds, gpu %v, python %v, fresh input tensors %v\n",
		cfg.Threads, cfg.Inter, cfg.Batches, cfg.Rounds, cfg.GPU, cfg.Python, cfg.FreshInputs)
	for _, dir := range cfg.Models {
		mb, err := cfg.model(ctx, dir, stdout)
		if err != nil {
			return nil, err
		}
		rep.Models = append(rep.Models, *mb)
	}
	rep.Machine.Finish()
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.Describe())
	return rep, nil
}

func (cfg Config) model(ctx context.Context, dir string, stdout io.Writer) (*Model, error) {
	name := filepath.Base(dir)
	m, err := infer.Load(dir, cfg.options())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	man := m.Manifest()
	sig, in := man.Input.Signature, man.Input.Tensor
	h, w, c := man.Input.Height, man.Input.Width, man.Input.Channels
	mb := &Model{Name: man.Name, Version: man.Version, Dir: dir, Weights: string(man.Weights), Signature: sig,
		Input: []int64{-1, int64(h), int64(w), int64(c)}, LoadMS: bench.Round3(bench.MS(m.LoadTime()))}
	if devs, err := m.Devices(); err == nil {
		for _, d := range devs {
			mb.Devices = append(mb.Devices, d.Name)
		}
	}
	maxB := 0
	for _, b := range cfg.Batches {
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
	if cfg.Python {
		tmp, err := os.MkdirTemp("", "facegate-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		inputFile = filepath.Join(tmp, "input.f32")
		if err := writeFloat32s(inputFile, data); err != nil {
			return nil, err
		}
		py, err = cfg.startPython(ctx, dir, sig, in)
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
	cells := make([]cell, len(cfg.Batches))
	batchOf := func(b int) infer.Float32Batch {
		return infer.Float32Batch{Shape: []int64{int64(b), int64(h), int64(w), int64(c)}, Data: data[:b*per]}
	}
	runGo := func(b, iters int) ([]float64, time.Duration, map[string][]float32, error) {
		input := map[string]infer.Float32Batch{in: batchOf(b)}
		out := make([]float64, 0, iters)
		var last map[string]infer.Float32Batch
		c0 := bench.CPUTime()
		for range iters {
			if err := ctx.Err(); err != nil {
				return nil, 0, nil, err
			}
			t0 := time.Now()
			res, err := m.RunFloat32(sig, input)
			if err != nil {
				return nil, 0, nil, err
			}
			out = append(out, bench.MS(time.Since(t0)))
			last = res
		}
		cpu := bench.CPUTime() - c0
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
	for i, b := range cfg.Batches {
		warm := max(cfg.Warmup, 1)
		wms, _, _, err := runGo(b, warm)
		if err != nil {
			return nil, fmt.Errorf("%s batch %d: %w", name, b, err)
		}
		if py != nil {
			if _, err := py.run(inputFile, []int{b, h, w, c}, 0, cfg.Warmup); err != nil {
				return nil, fmt.Errorf("%s batch %d (python): %w", name, b, err)
			}
		}
		cells[i].iters = cfg.Iters
		if cfg.Iters == 0 {
			cells[i].iters = max(3, int(math.Ceil(float64(cfg.Duration)/float64(time.Duration(wms[len(wms)-1]*1e6)))))
		}
	}
	for r := range cfg.Rounds {
		for i, b := range cfg.Batches {
			cl := &cells[i]
			goSide := func() error {
				t, cpu, first, err := runGo(b, cl.iters)
				if err != nil {
					return fmt.Errorf("%s batch %d: %w", name, b, err)
				}
				cl.goMS = append(cl.goMS, t...)
				cl.goCPU += cpu
				cl.goRounds = append(cl.goRounds, bench.StatsOf(t).P50)
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
				cl.pyRounds = append(cl.pyRounds, bench.StatsOf(res.MS).P50)
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
	for i, b := range cfg.Batches {
		cl := cells[i]
		total := cl.iters * cfg.Rounds
		bb := Batch{Batch: b, Iters: cl.iters}
		side := func(t []float64, cpu time.Duration, rounds []float64) Side {
			st := bench.StatsOf(t)
			return Side{MS: st, FacesPerS: bench.Round3(1000 * float64(b) / st.P50), CPUMSPerCall: bench.Round3(bench.MS(cpu) / float64(total)), RoundsP50: rounds}
		}
		bb.Go = side(cl.goMS, cl.goCPU, cl.goRounds)
		line := fmt.Sprintf("%6d %6d  %9.2f (%9.2f) %12.1f    ", b, cl.iters, bb.Go.MS.P50, bb.Go.MS.P95, bb.Go.FacesPerS)
		if py != nil {
			p := side(cl.pyMS, cl.pyCPU, cl.pyRounds)
			bb.Py = &p
			bb.RatioP50 = bench.Ratio(bb.Go.MS.P50, p.MS.P50)
			bb.RatioMean = bench.Ratio(bb.Go.MS.Mean, p.MS.Mean)
			bb.RatioCPU = bench.Ratio(bb.Go.CPUMSPerCall, p.CPUMSPerCall)
			for r := range cl.goRounds {
				bb.RatioRounds = append(bb.RatioRounds, bench.Ratio(cl.goRounds[r], cl.pyRounds[r]))
			}
			bb.RatioRoundsMedian = bench.Round3(bench.StatsOf(bb.RatioRounds).P50)
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

func (cfg Config) pythonPath() (string, error) {
	if cfg.PythonBin != "" {
		return cfg.PythonBin, nil
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

func (cfg Config) startPython(ctx context.Context, dir, sig, in string) (*pyProc, error) {
	bin, err := cfg.pythonPath()
	if err != nil {
		return nil, err
	}
	args := []string{cfg.PythonScript, "--model", dir, "--signature", sig, "--input", in,
		"--intra", strconv.Itoa(cfg.Threads), "--inter", strconv.Itoa(cfg.Inter)}
	if cfg.GPU {
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
		return nil, fmt.Errorf("start %s %s: %w", bin, cfg.PythonScript, err)
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
	if ready.Intra != cfg.Threads || ready.Inter != cfg.Inter {
		p.close()
		return nil, fmt.Errorf("python side runs %d/%d intra/inter-op threads, Go %d/%d", ready.Intra, ready.Inter, cfg.Threads, cfg.Inter)
	}
	p.info = PythonInfo{TF: ready.TF, Python: ready.Python, Devices: ready.Devices, LoadMS: bench.Round3(ready.LoadMS), Intra: ready.Intra, Inter: ready.Inter}
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
