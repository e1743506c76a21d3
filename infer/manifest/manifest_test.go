package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func valid() *Manifest {
	return &Manifest{
		Schema: SchemaVersion, Name: "dlib-resnet-v1", Version: "1.0.0", Task: TaskSiamese,
		Tags: []string{"serve"},
		Signatures: map[string]SignatureSpec{
			"embed": {
				Inputs:  map[string]TensorSpec{"images": {DType: "float32", Shape: []int64{-1, 150, 150, 3}}},
				Outputs: map[string]TensorSpec{"embeddings": {DType: "float32", Shape: []int64{-1, 128}}},
			},
		},
		Input:        InputSpec{Signature: "embed", Tensor: "images", Height: 150, Width: 150, Channels: 3, PixelFormat: "RGB", Range: [2]float64{0, 255}},
		EmbeddingDim: 128, Metric: MetricEuclidean,
		Alignment: &Alignment{Size: 150, Padding: 0.25, Points: [][2]float64{{50, 60}, {100, 60}}, PointKeys: []string{"right_eye", "left_eye"}},
		Head:      &Head{Weight: -10, Bias: 6, FittedOn: "test"},
		Weights:   WeightsPretrained, WeightsSHA256: strings.Repeat("ab", 32), License: "CC0-1.0",
	}
}

func TestCheck(t *testing.T) {
	if err := valid().Check(); err != nil {
		t.Fatalf("valid manifest: %v", err)
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"schema", func(m *Manifest) { m.Schema = 2 }, "schema is 2"},
		{"task", func(m *Manifest) { m.Task = "classifier" }, `task "classifier"`},
		{"tags", func(m *Manifest) { m.Tags = nil }, "tags are empty"},
		{"input signature", func(m *Manifest) { m.Input.Signature = "serving_default" }, `input.signature "serving_default"`},
		{"input tensor", func(m *Manifest) { m.Input.Tensor = "x" }, `input.tensor "x"`},
		{"pixel format", func(m *Manifest) { m.Input.PixelFormat = "BGR" }, "only RGB"},
		{"dtype", func(m *Manifest) {
			m.Signatures["embed"].Inputs["images"] = TensorSpec{DType: "float33", Shape: []int64{-1}}
		}, `unknown dtype "float33"`},
		{"embedding dim", func(m *Manifest) { m.EmbeddingDim = 0 }, "embedding_dim"},
		{"metric", func(m *Manifest) { m.Metric = "manhattan" }, `metric "manhattan"`},
		{"alignment", func(m *Manifest) { m.Alignment = nil }, "alignment template"},
		{"fmr", func(m *Manifest) { m.Thresholds = []Threshold{{FMR: 1, Score: "euclidean"}} }, "threshold fmr 1"},
		{"weights", func(m *Manifest) { m.Weights = "imagenet" }, `weights "imagenet"`},
		{"sha", func(m *Manifest) { m.WeightsSHA256 = "abc" }, "weights_sha256"},
		{"license", func(m *Manifest) { m.License = "" }, "license is empty"},
		{"head", func(m *Manifest) { m.Head = nil }, "needs its head"},
		{"detector", func(m *Manifest) { m.Task = TaskDetector }, "detector section"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := valid()
			c.edit(m)
			err := m.Check()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestWriteReadThresholds(t *testing.T) {
	dir := t.TempDir()
	m := valid()
	m.SetThreshold(Threshold{FMR: 1e-3, Score: "euclidean", Value: 0.9, Dataset: "lfw", Pairs: 1500, Date: "2026-11-28"})
	m.SetThreshold(Threshold{FMR: 1e-2, Score: "euclidean", Value: 1.0})
	m.SetThreshold(Threshold{FMR: 1e-3, Score: "euclidean", Value: 0.8, Dataset: "lfw+extra"}) // replaces
	if err := Write(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Thresholds) != 2 {
		t.Fatalf("thresholds = %+v", got.Thresholds)
	}
	th, ok := got.ThresholdFor(0.001, "euclidean")
	if !ok || th.Value != 0.8 || th.Dataset != "lfw+extra" {
		t.Fatalf("ThresholdFor(1e-3) = %+v, %v", th, ok)
	}
	if _, ok := got.ThresholdFor(1e-4, "euclidean"); ok {
		t.Fatal("found a threshold for 1e-4 that was never set")
	}
	if _, ok := got.ThresholdFor(1e-3, "probability"); ok {
		t.Fatal("found a probability threshold that was never set")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("Write left temporary files: %v", entries)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, File)) {
		t.Fatalf("missing: %v", err)
	}
	os.WriteFile(filepath.Join(dir, File), []byte(`{"schema":1,"name":"x","bogus":true}`), 0o644)
	if _, err := Read(dir); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field: %v", err)
	}
	invalid := valid()
	invalid.Name = ""
	if err := Write(dir, invalid); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Write of an invalid manifest: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"schema":1}`))
	f.Add([]byte(`{"schema":1,"name":"x","version":"1","task":"test","tags":["serve"],"signatures":{"s":{"inputs":{"a":{"dtype":"float32","shape":[-1]}},"outputs":{"b":{"dtype":"float32","shape":[-1]}}}},"weights":"untrained","weights_sha256":"","license":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse("fuzz", b)
		if err == nil {
			if err := m.Check(); err != nil {
				t.Fatalf("Parse accepted a manifest Check rejects: %v", err)
			}
		}
	})
}
