package manifest

import (
	"errors"
	"math"
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

func validPAD() *Manifest {
	return &Manifest{
		Schema: SchemaVersion, Name: "minifasnet-v2", Version: "1.0.0", Task: TaskPAD,
		Tags: []string{"serve"},
		Signatures: map[string]SignatureSpec{
			"classify": {
				Inputs: map[string]TensorSpec{"images": {DType: "float32", Shape: []int64{-1, 80, 80, 3}}},
				Outputs: map[string]TensorSpec{
					"logits":        {DType: "float32", Shape: []int64{-1, 3}},
					"probabilities": {DType: "float32", Shape: []int64{-1, 3}},
				},
			},
		},
		Input: InputSpec{Signature: "classify", Tensor: "images", Height: 80, Width: 80, Channels: 3, PixelFormat: "BGR", Range: [2]float64{0, 255}},
		PAD: &PADSpec{CropScale: 2.7, Classes: 3, RealClass: 1, LogitsOutput: "logits", Resize: "bilinear",
			BoxMappings: []BoxMapping{{Detector: "blazeface-short", OffsetY: 0.1, ScaleX: 1.1, ScaleY: 1.2}}},
		Weights: WeightsPretrained, WeightsSHA256: strings.Repeat("cd", 32), License: "Apache-2.0",
	}
}

func TestCheckPAD(t *testing.T) {
	if err := validPAD().Check(); err != nil {
		t.Fatalf("valid pad manifest: %v", err)
	}
	rgb := validPAD()
	rgb.Input.PixelFormat = "RGB"
	if err := rgb.Check(); err != nil {
		t.Fatalf("a pad model may take RGB: %v", err)
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"no section", func(m *Manifest) { m.PAD = nil }, "needs a pad section"},
		{"scale", func(m *Manifest) { m.PAD.CropScale = 0.5 }, "crop_scale 0.5"},
		{"scale nan", func(m *Manifest) { m.PAD.CropScale = math.NaN() }, "crop_scale NaN"},
		{"classes", func(m *Manifest) { m.PAD.Classes = 1; m.PAD.RealClass = 0 }, "pad.classes 1"},
		{"real class", func(m *Manifest) { m.PAD.RealClass = 3 }, "real_class 3"},
		{"negative real class", func(m *Manifest) { m.PAD.RealClass = -1 }, "real_class -1"},
		{"logits", func(m *Manifest) { m.PAD.LogitsOutput = "scores" }, `logits_output "scores"`},
		{"resize", func(m *Manifest) { m.PAD.Resize = "area" }, `resize "area"`},
		{"mapping detector", func(m *Manifest) { m.PAD.BoxMappings[0].Detector = "" }, "box_mappings: detector"},
		{"mapping twice", func(m *Manifest) {
			m.PAD.BoxMappings = append(m.PAD.BoxMappings, m.PAD.BoxMappings[0])
		}, "listed twice"},
		{"mapping scale", func(m *Manifest) { m.PAD.BoxMappings[0].ScaleX = 0 }, "scales must be positive"},
		{"mapping offset", func(m *Manifest) { m.PAD.BoxMappings[0].OffsetY = math.Inf(1) }, "offsets within"},
		{"pixel format", func(m *Manifest) { m.Input.PixelFormat = "YUV" }, `"YUV"`},
		{"bgr only for pad", func(m *Manifest) { m.Task = TaskDetector; m.Detector = &DetectorSpec{} }, `"BGR"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := validPAD()
			c.edit(m)
			err := m.Check()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestPADRoundTripAndBoxMapping(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, validPAD()); err != nil {
		t.Fatal(err)
	}
	m, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := m.PAD.BoxMappingFor("blazeface-short")
	if !ok || b.ScaleY != 1.2 || b.OffsetY != 0.1 {
		t.Fatalf("BoxMappingFor(blazeface-short) = %+v, %v", b, ok)
	}
	if _, ok := m.PAD.BoxMappingFor("blazeface-full"); ok {
		t.Fatal("a mapping for a detector the manifest does not list")
	}
}
