package infer

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/facegate/facegate/infer/manifest"
)

type refTensor struct {
	Shape []int64   `json:"shape"`
	Data  []float32 `json:"data"`
}

func (r refTensor) batch() Float32Batch {
	return Float32Batch{Shape: append([]int64(nil), r.Shape...), Data: append([]float32(nil), r.Data...)}
}

type tinyRef struct {
	Images     refTensor `json:"images"`
	Embeddings refTensor `json:"embeddings"`
	Logits     refTensor `json:"logits"`
	PairB      refTensor `json:"pair_b"`
	Distance   refTensor `json:"distance"`
}

func loadTiny(t *testing.T, opts Options) (*Model, tinyRef) {
	t.Helper()
	dir := TestModelDir(t, "test-tiny")
	m, err := Load(dir, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref tinyRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return m, ref
}

func maxAbsDiff(t *testing.T, got Float32Batch, want refTensor) float64 {
	t.Helper()
	if len(got.Shape) != len(want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	for i := range got.Shape {
		if got.Shape[i] != want.Shape[i] {
			t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
		}
	}
	var d float64
	for i := range got.Data {
		d = math.Max(d, math.Abs(float64(got.Data[i]-want.Data[i])))
	}
	return d
}

func TestSignatureDiscovery(t *testing.T) {
	m, _ := loadTiny(t, Options{})
	sigs := m.Signatures()
	for _, name := range []string{"serving_default", "pair", "fixed"} {
		if _, ok := sigs[name]; !ok {
			t.Fatalf("signature %q not discovered; have %v", name, sortedKeys(sigs))
		}
	}
	img := sigs["serving_default"].Inputs["images"]
	if img.DType != "float32" || len(img.Shape) != 4 || img.Shape[0] != -1 || img.Shape[1] != 16 || img.Shape[3] != 3 {
		t.Fatalf("serving_default input images = %+v", img)
	}
	if got := sigs["fixed"].Inputs["images"].Shape; got[0] != 2 {
		t.Fatalf("fixed batch shape = %v", got)
	}
	if _, ok := sigs["pair"].Outputs["distance"]; !ok {
		t.Fatalf("pair outputs = %v", sortedKeys(sigs["pair"].Outputs))
	}
	if m.Manifest().Name != "test-tiny" || m.Manifest().Weights != manifest.WeightsUntrained {
		t.Fatalf("manifest = %+v", m.Manifest())
	}
	devs, err := m.Devices()
	if err != nil || len(devs) == 0 || devs[0].Type != "CPU" {
		t.Fatalf("Devices = %v, %v", devs, err)
	}
}

// TestMatchesPython is the cross-language check: Go through libtensorflow
// reproduces the outputs Python computed from the same SavedModel.
func TestMatchesPython(t *testing.T) {
	m, ref := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1})
	out, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": ref.Images.batch()})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, out["embeddings"], ref.Embeddings); d > 1e-5 {
		t.Errorf("embeddings differ from Python by %g > 1e-5", d)
	}
	if d := maxAbsDiff(t, out["logits"], ref.Logits); d > 1e-5 {
		t.Errorf("logits differ from Python by %g > 1e-5", d)
	}
	pair, err := m.RunFloat32("pair", map[string]Float32Batch{"a": ref.Embeddings.batch(), "b": ref.PairB.batch()}, "distance")
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, pair["distance"], ref.Distance); d > 1e-5 {
		t.Errorf("distance differs from Python by %g > 1e-5", d)
	}
}

// TestBatching checks that rows do not depend on the batch size, whether the
// caller batches or MaxBatch splits.
func TestBatching(t *testing.T) {
	whole, ref := loadTiny(t, Options{})
	all, err := whole.RunFloat32("serving_default", map[string]Float32Batch{"images": ref.Images.batch()}, "embeddings")
	if err != nil {
		t.Fatal(err)
	}
	rowLen := ref.Images.batch().RowLen()
	for _, bs := range []int{1, 3, 16} {
		for start := 0; start < 16; start += bs {
			end := min(start+bs, 16)
			in := Float32Batch{Shape: []int64{int64(end - start), 16, 16, 3}, Data: ref.Images.Data[start*rowLen : end*rowLen]}
			out, err := whole.RunFloat32("serving_default", map[string]Float32Batch{"images": in}, "embeddings")
			if err != nil {
				t.Fatal(err)
			}
			for r := 0; r < end-start; r++ {
				got, want := out["embeddings"].Row(r), all["embeddings"].Row(start+r)
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-6 {
						t.Fatalf("batch %d row %d value %d: %g vs %g in the full batch", bs, start+r, i, got[i], want[i])
					}
				}
			}
		}
		split, err := Load(whole.Dir(), Options{MaxBatch: bs})
		if err != nil {
			t.Fatal(err)
		}
		out, err := split.RunFloat32("serving_default", map[string]Float32Batch{"images": ref.Images.batch()}, "embeddings")
		split.Close()
		if err != nil {
			t.Fatal(err)
		}
		if out["embeddings"].Rows() != 16 {
			t.Fatalf("MaxBatch %d: %d rows, want 16", bs, out["embeddings"].Rows())
		}
		if d := maxAbsDiff(t, out["embeddings"], ref.Embeddings); d > 1e-5 {
			t.Fatalf("MaxBatch %d: differs by %g", bs, d)
		}
	}
}

// TestRunGraphError: inputs the signature accepts but the graph cannot
// combine fail with TensorFlow's error, wrapped, and the model still runs.
func TestRunGraphError(t *testing.T) {
	m, ref := loadTiny(t, Options{})
	_, err := m.RunFloat32("pair", map[string]Float32Batch{"a": ref.Embeddings.batch(), "b": {Shape: []int64{2, 8}, Data: make([]float32, 16)}})
	if err == nil || !strings.Contains(err.Error(), `run test-tiny signature "pair"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": ref.Images.batch()}); err != nil {
		t.Fatalf("model broken after a failed run: %v", err)
	}
}

func TestRunBadInput(t *testing.T) {
	m, ref := loadTiny(t, Options{})
	img := ref.Images.batch()
	cases := []struct {
		name   string
		sig    string
		inputs map[string]Float32Batch
		out    []string
		want   string
	}{
		{"unknown signature", "nope", map[string]Float32Batch{"images": img}, nil, `no signature "nope"`},
		{"unknown input", "serving_default", map[string]Float32Batch{"pixels": img}, nil, `no input "pixels"`},
		{"unknown output", "serving_default", map[string]Float32Batch{"images": img}, []string{"scores"}, `no output "scores"`},
		{"wrong shape", "serving_default", map[string]Float32Batch{"images": {Shape: []int64{1, 8, 8, 3}, Data: make([]float32, 192)}}, nil, "wants shape"},
		{"wrong rank", "serving_default", map[string]Float32Batch{"images": {Shape: []int64{768}, Data: make([]float32, 768)}}, nil, "wants shape"},
		{"data size mismatch", "serving_default", map[string]Float32Batch{"images": {Shape: []int64{1, 16, 16, 3}, Data: make([]float32, 10)}}, nil, "holds 768 values"},
		{"fixed batch violated", "fixed", map[string]Float32Batch{"images": img}, nil, "wants shape"},
		{"missing input", "pair", map[string]Float32Batch{"a": ref.Embeddings.batch()}, nil, "takes inputs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.RunFloat32(c.sig, c.inputs, c.out...)
			if err == nil || !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInput containing %q", err, c.want)
			}
		})
	}
}

// copyModel copies the test model so a test can break its files.
func copyModel(t *testing.T) string {
	t.Helper()
	src := TestModelDir(t, "test-tiny")
	dst := filepath.Join(t.TempDir(), "m")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func editManifest(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, manifest.File)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadBadModel(t *testing.T) {
	sig := func(m map[string]any) map[string]any { return m["signatures"].(map[string]any) }
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		is     error
		want   string
	}{
		{"missing directory", func(t *testing.T, dir string) { os.RemoveAll(dir) }, ErrModel, "no SavedModel there"},
		{"missing manifest", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, manifest.File)) }, os.ErrNotExist, "facegate.json"},
		{"unreadable manifest", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, manifest.File), []byte("{not json"), 0o644)
		}, manifest.ErrInvalid, "facegate.json"},
		{"unknown manifest field", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { m["thresholdz"] = 1 })
		}, manifest.ErrInvalid, "thresholdz"},
		{"signature missing in graph", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { sig(m)["embed"] = sig(m)["pair"] })
		}, manifest.ErrInvalid, `signature "embed" is in the manifest but not in the graph`},
		{"wrong dtype", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				sig(m)["pair"].(map[string]any)["inputs"].(map[string]any)["a"].(map[string]any)["dtype"] = "int32"
			})
		}, manifest.ErrInvalid, `input "a" is float32 in the graph, manifest says int32`},
		{"wrong shape", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				sig(m)["serving_default"].(map[string]any)["inputs"].(map[string]any)["images"].(map[string]any)["shape"] = []int{-1, 224, 224, 3}
			})
		}, manifest.ErrInvalid, `input "images" has shape [-1 16 16 3] in the graph, manifest says [-1 224 224 3]`},
		{"wrong output name", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) {
				outs := sig(m)["pair"].(map[string]any)["outputs"].(map[string]any)
				outs["dist"] = outs["distance"]
				delete(outs, "distance")
			})
		}, manifest.ErrInvalid, `signature "pair" has no output "dist"`},
		{"wrong tags", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m map[string]any) { m["tags"] = []string{"train"} })
		}, ErrModel, "tags [train]"},
		{"corrupt graph", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "saved_model.pb"), []byte("garbage"), 0o644)
		}, ErrModel, "load SavedModel"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyModel(t)
			c.break_(t, dir)
			m, err := Load(dir, Options{})
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("err = %v\nwant %v naming %s and containing %q", err, c.is, dir, c.want)
			}
		})
	}
}

func TestSessionConfig(t *testing.T) {
	opts := Options{IntraOpThreads: 2, InterOpThreads: 1, GPU: GPUOptions{VisibleDevices: "0", AllowGrowth: true, MemoryFraction: 0.5}}
	b, err := opts.ConfigProto()
	if err != nil {
		t.Fatal(err)
	}
	var cfg corepb.ConfigProto
	if err := proto.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	g := cfg.GetGpuOptions()
	if cfg.IntraOpParallelismThreads != 2 || cfg.InterOpParallelismThreads != 1 || g.GetVisibleDeviceList() != "0" || !g.GetAllowGrowth() || g.GetPerProcessGpuMemoryFraction() != 0.5 {
		t.Fatalf("config = %v", &cfg)
	}
	// TensorFlow accepts the GPU options on a CPU-only build and still runs.
	m, ref := loadTiny(t, opts)
	if _, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": ref.Images.batch()}); err != nil {
		t.Fatal(err)
	}
	cpu, _ := loadTiny(t, Options{CPUOnly: true})
	devs, err := cpu.Devices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.Type == "GPU" {
			t.Fatalf("CPUOnly session has %v", d)
		}
	}
	for _, bad := range []Options{{IntraOpThreads: -1}, {InterOpThreads: 5000}, {MaxBatch: -2}, {GPU: GPUOptions{MemoryFraction: 1.5}}} {
		if _, err := Load(m.Dir(), bad); !errors.Is(err, ErrOptions) {
			t.Errorf("Load with %+v: err = %v, want ErrOptions", bad, err)
		}
	}
}

func TestClosedModel(t *testing.T) {
	dir := TestModelDir(t, "test-tiny")
	m, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.RunFloat32("serving_default", nil); !errors.Is(err, ErrModel) {
		t.Fatalf("Run after Close: %v", err)
	}
}

// TestRunIntoBuffers: runFloat32 writes its outputs into the caller's
// buffers when they are large enough, grows them when not, and gives what
// RunFloat32 gives whatever the buffers held, also when MaxBatch splits.
func TestRunIntoBuffers(t *testing.T) {
	for _, opts := range []Options{{}, {MaxBatch: 3}} {
		m, ref := loadTiny(t, opts)
		in := map[string]Float32Batch{"images": ref.Images.batch()}
		want, err := m.RunFloat32("serving_default", in, "logits", "embeddings")
		if err != nil {
			t.Fatal(err)
		}
		stale := func(n int) []float32 {
			b := make([]float32, n)
			for i := range b {
				b[i] = float32(math.NaN())
			}
			return b
		}
		// Large enough, too small, none.
		dst := [][]float32{stale(len(want["logits"].Data) + 7), stale(3)}
		for round := 0; round < 2; round++ {
			got, err := m.runFloat32("serving_default", in, []string{"logits", "embeddings"}, dst)
			if err != nil {
				t.Fatal(err)
			}
			for i, name := range []string{"logits", "embeddings"} {
				if !slices.Equal(got[i].Shape, want[name].Shape) || !slices.Equal(got[i].Data, want[name].Data) {
					t.Fatalf("MaxBatch %d round %d %s: %v, RunFloat32 gives %v", opts.MaxBatch, round, name, got[i], want[name])
				}
				if (round == 1 || i == 0) && &got[i].Data[0] != &dst[i][:1][0] {
					t.Errorf("MaxBatch %d round %d %s: not written into the buffer", opts.MaxBatch, round, name)
				}
				dst[i] = got[i].Data
			}
		}
		got, err := m.runFloat32("serving_default", in, []string{"embeddings"}, nil)
		if err != nil || !slices.Equal(got[0].Data, want["embeddings"].Data) {
			t.Fatalf("no buffers: %v, %v", got, err)
		}
	}
}

// TestTensorGarbageCollected: every run counts the C bytes of the tensors it
// made (freed only by graft's finalizers), and once they reach the budget a
// Go collection runs, so dead tensors cannot pile up when the Go side makes
// little garbage of its own (docs/benchmarks.md, "Memory over time").
func TestTensorGarbageCollected(t *testing.T) {
	// Fresh input tensors, so each run makes garbage of the input's size
	// (kept input tensors leave only the outputs: TestFeedReuse).
	m, ref := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1, FreshInputTensors: true})
	in := ref.Images.batch()
	for tensorGC.Load() { // a collection from another test still running
		time.Sleep(time.Millisecond)
	}
	before := tensorGarbage.Load()
	out, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": in})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(4 * (len(in.Data) + len(out["embeddings"].Data) + len(out["logits"].Data)))
	if got := tensorGarbage.Load() - before; got != want {
		t.Fatalf("a run counted %d tensor bytes, want %d (input and both outputs)", got, want)
	}
	gcs, numGC := tensorGCs.Load(), gcCount()
	for tensorGarbage.Load() != 0 && !tensorGC.Load() {
		if _, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": in}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for tensorGCs.Load() == gcs {
		if time.Now().After(deadline) {
			t.Fatal("no collection after the tensor budget was reached")
		}
		time.Sleep(time.Millisecond)
	}
	if gcCount() == numGC {
		t.Fatal("the collection did not run")
	}
}

func gcCount() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}
