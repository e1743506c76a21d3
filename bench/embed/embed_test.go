package embed

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/infer"
)

// benchPython is the venv Python with TensorFlow, or "" outside CI when
// there is none.
func benchPython(t *testing.T) string {
	t.Helper()
	venv := os.Getenv("FACEGATE_VENV")
	if venv == "" {
		venv = filepath.Join("..", "..", ".venv")
	}
	p := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no venv Python at %s under CI=true (make deps): %v", p, err)
		}
		return ""
	}
	return p
}

// A smoke test: a few iterations on the tiny test model; the report must
// have the right shape and consistent counts, and Go and Python must
// compute the same outputs. No timings are asserted (CI machines vary);
// `make bench-embed` measures.
func TestEmbedSmoke(t *testing.T) {
	cfg := Config{Models: []string{infer.TestModelDir(t, "test-tiny")}, Batches: []int{1, 3}, Iters: 2, Rounds: 2, Warmup: 1,
		Threads: 1, Inter: 1, Build: bench.Build{Facegate: "test", TensorFlow: "tf"}}
	py := benchPython(t)
	if py != "" {
		cfg.Python, cfg.PythonBin, cfg.PythonScript = true, py, filepath.Join("..", "python_tf.py")
	} else {
		t.Log("no venv Python: Go side only")
	}
	var out bytes.Buffer
	rep, err := cfg.Run(context.Background(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Kind != "embed" || len(rep.Models) != 1 || rep.Settings.IntraOpThreads != 1 || rep.Settings.InterOpThreads != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if rep.Machine.CPUs <= 0 || rep.Machine.TensorFlow != "tf" || rep.Machine.End.Before(rep.Machine.Start) {
		t.Errorf("machine: %+v", rep.Machine)
	}
	m := rep.Models[0]
	if m.Name != "test-tiny" || m.Signature != "serving_default" || len(m.Batches) != 2 || len(m.Devices) == 0 {
		t.Fatalf("model: %+v", m)
	}
	for i, b := range m.Batches {
		if want := []int{1, 3}[i]; b.Batch != want || b.Iters != 2 {
			t.Errorf("batch %d: %+v", i, b)
		}
		if b.Go.MS.N != 4 || b.Go.MS.P50 <= 0 || b.Go.FacesPerS <= 0 || len(b.Go.RoundsP50) != 2 || b.Go.MS.Min > b.Go.MS.P50 || b.Go.MS.P50 > b.Go.MS.Max {
			t.Errorf("batch %d go: %+v", b.Batch, b.Go)
		}
		if py == "" {
			continue
		}
		if b.Py == nil || b.Py.MS.N != 4 || b.RatioP50 <= 0 || b.RatioCPU <= 0 || len(b.RatioRounds) != 2 || b.RatioRoundsMedian <= 0 {
			t.Errorf("batch %d python: %+v %+v", b.Batch, b.Py, b)
		}
		// The same graph on the same bytes: the outputs must agree.
		if b.MaxAbsDiff == nil || *b.MaxAbsDiff > 1e-4 {
			t.Errorf("batch %d: Go and Python outputs differ by %v", b.Batch, b.MaxAbsDiff)
		}
	}
	if py != "" && (m.Python == nil || m.Python.Intra != 1 || m.Python.Inter != 1 || !strings.HasPrefix(m.Python.TF, "2.18")) {
		t.Errorf("python info: %+v", m.Python)
	}
	if !strings.Contains(out.String(), "ms/batch") {
		t.Errorf("no table in output:\n%s", out.String())
	}
}

func TestEmbedConfig(t *testing.T) {
	ok := Config{Models: []string{"m"}, Batches: []int{1}, Iters: 1, Rounds: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Models = nil },
		func(c *Config) { c.Batches = []int{0} },
		func(c *Config) { c.Rounds = 0 },
		func(c *Config) { c.Iters = 0 },
		func(c *Config) { c.Python = true },
	} {
		c := ok
		bad(&c)
		if err := c.Validate(); !errors.Is(err, bench.ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestSignaturesSmoke: the bench runs each model's own signature as its
// manifest names it, not only "embed": the detector's "detect" (two
// outputs) and PAD's "classify", on both sides with the same outputs
// (issue 17). Under CI the models and the venv must be there.
func TestSignaturesSmoke(t *testing.T) {
	py := benchPython(t)
	if py == "" {
		t.Skip("no venv Python (make deps)")
	}
	models := []string{infer.TestModelDir(t, "blazeface-short"), infer.TestModelDir(t, "minifasnet-v2")}
	cfg := Config{Models: models, Batches: []int{2}, Iters: 1, Rounds: 1, Warmup: 0, Threads: 1, Inter: 1,
		Python: true, PythonBin: py, PythonScript: filepath.Join("..", "python_tf.py"),
		Build: bench.Build{Facegate: "test", TensorFlow: "tf"}}
	var out bytes.Buffer
	rep, err := cfg.Run(context.Background(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := []struct{ name, sig string }{{"blazeface-short", "detect"}, {"minifasnet-v2", "classify"}}
	if len(rep.Models) != len(want) {
		t.Fatalf("%d models in the report", len(rep.Models))
	}
	for i, w := range want {
		m := rep.Models[i]
		if m.Name != w.name || m.Signature != w.sig || len(m.Batches) != 1 {
			t.Fatalf("model %d: %s signature %q, %d batches; want %s %q", i, m.Name, m.Signature, len(m.Batches), w.name, w.sig)
		}
		b := m.Batches[0]
		if b.Py == nil || b.MaxAbsDiff == nil || *b.MaxAbsDiff > 1e-4 {
			t.Errorf("%s: Go and Python outputs differ by %v", m.Name, b.MaxAbsDiff)
		}
	}
}
