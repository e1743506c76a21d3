package infer_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/manifest"
)

// vggfaceName is the model models/vggface_resnet50.py exports.
const vggfaceName = "vggface2-resnet50"

// vggfaceReference is what `make models` (models/vggface_resnet50.py
// reference) computed in Python with the same SavedModel.
type vggfaceReference struct {
	Model      string      `json:"model"`
	Inputs     string      `json:"inputs"`
	EmbedB1    [][]float64 `json:"embed_b1"`
	EmbedB3    [][]float64 `json:"embed_b3"`
	VerifyB3B3 struct {
		Probability [][]float64 `json:"probability"`
		Distance    [][]float64 `json:"distance"`
	} `json:"verify_b3_b3"`
	VerifyB1B3 struct {
		Probability [][]float64 `json:"probability"`
		Distance    [][]float64 `json:"distance"`
	} `json:"verify_b1_b3"`
}

// vggfaceImages builds n deterministic RGB images of 224x224, the same as
// reference_images in models/vggface_resnet50.py:
// pixel(i,y,x,c) = (3y + 5x + 67c + 101i + (y*x mod 13)) mod 256, i = offset..offset+n-1.
func vggfaceImages(n, offset int) infer.Float32Batch {
	const size = 224
	data := make([]float32, 0, n*size*size*3)
	for i := offset; i < offset+n; i++ {
		for y := 0; y < size; y++ {
			for x := 0; x < size; x++ {
				for c := 0; c < 3; c++ {
					data = append(data, float32((3*y+5*x+67*c+101*i+(y*x)%13)%256))
				}
			}
		}
	}
	return infer.Float32Batch{Shape: []int64{int64(n), size, size, 3}, Data: data}
}

func readVGGFaceReference(t *testing.T, modelDir string) *vggfaceReference {
	t.Helper()
	// modelDir is <build>/models/vggface2-resnet50; the reference is <build>/reference/.
	path := filepath.Join(filepath.Dir(filepath.Dir(modelDir)), "reference", vggfaceName+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("reference outputs missing under CI=true (run `make models`): %v", err)
		}
		t.Skipf("reference outputs missing (run `make models`): %v", err)
	}
	var ref vggfaceReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if ref.Model != vggfaceName || len(ref.EmbedB1) != 1 || len(ref.EmbedB3) != 3 {
		t.Fatalf("%s: unexpected content (model %q, %d+%d embeddings)", path, ref.Model, len(ref.EmbedB1), len(ref.EmbedB3))
	}
	return &ref
}

// maxDiff compares a batch with rows from the reference and returns the
// largest absolute difference; it fails on any shape mismatch.
func maxDiff(t *testing.T, what string, got infer.Float32Batch, want [][]float64) float64 {
	t.Helper()
	return maxDiffOf(t, what, got, want, func(x float64) float64 { return x })
}

// maxSqDiff is maxDiff on the squares of got and want.
func maxSqDiff(t *testing.T, what string, got infer.Float32Batch, want [][]float64) float64 {
	t.Helper()
	return maxDiffOf(t, what, got, want, func(x float64) float64 { return x * x })
}

// maxDiffOf is the largest |f(got) - f(want)| over every element.
func maxDiffOf(t *testing.T, what string, got infer.Float32Batch, want [][]float64, f func(float64) float64) float64 {
	t.Helper()
	if got.Rows() != len(want) || len(want) == 0 || got.RowLen() != len(want[0]) {
		t.Fatalf("%s: shape %v, want [%d %d]", what, got.Shape, len(want), len(want[0]))
	}
	worst := 0.0
	for i, row := range want {
		for j, w := range row {
			worst = math.Max(worst, math.Abs(f(float64(got.Row(i)[j]))-f(w)))
		}
	}
	return worst
}

func loadVGGFace(t testing.TB) *infer.Model {
	t.Helper()
	dir := infer.TestModelDir(t, vggfaceName)
	start := time.Now()
	m, err := infer.Load(dir, infer.Options{})
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Logf("%s: infer.Load took %v (TensorFlow session load %v)", vggfaceName, time.Since(start).Round(time.Millisecond), m.LoadTime().Round(time.Millisecond))
	return m
}

func TestVGGFace2ResNet50MatchesPython(t *testing.T) {
	m := loadVGGFace(t)
	ref := readVGGFaceReference(t, m.Dir())

	man := m.Manifest()
	if man.Task != manifest.TaskSiamese || man.EmbeddingDim != 2048 || man.Metric != manifest.MetricEuclidean {
		t.Errorf("manifest: task %q dim %d metric %q, want siamese 2048 euclidean", man.Task, man.EmbeddingDim, man.Metric)
	}
	if man.Input.Height != 224 || man.Input.Width != 224 || man.Input.PixelFormat != "RGB" || man.Input.Signature != "embed" {
		t.Errorf("manifest input %+v, want 224x224 RGB via embed", man.Input)
	}
	switch man.Weights {
	case manifest.WeightsUntrained:
		// What `make models` exports without VGGFACE_WEIGHTS: usable for benchmarks only.
	case manifest.WeightsPretrained:
		t.Logf("model exported with user-supplied pretrained weights (%s)", man.Provenance.File)
	default:
		t.Errorf("manifest weights %q", man.Weights)
	}
	if os.Getenv("VGGFACE_WEIGHTS") == "" && man.Weights != manifest.WeightsUntrained {
		t.Errorf("manifest weights %q, want %q (exported without VGGFACE_WEIGHTS)", man.Weights, manifest.WeightsUntrained)
	}
	if len(man.WeightsSHA256) != 64 {
		t.Errorf("weights_sha256 %q is not a sha256", man.WeightsSHA256)
	}

	const tol = 1e-4
	embed := func(n, offset int) infer.Float32Batch {
		out, err := m.RunFloat32("embed", map[string]infer.Float32Batch{"images": vggfaceImages(n, offset)}, "embeddings")
		if err != nil {
			t.Fatalf("embed batch %d: %v", n, err)
		}
		e := out["embeddings"]
		for i := 0; i < e.Rows(); i++ {
			var ss float64
			for _, v := range e.Row(i) {
				ss += float64(v) * float64(v)
			}
			if math.Abs(math.Sqrt(ss)-1) > 1e-4 {
				t.Errorf("embed batch %d row %d: norm %g, want 1", n, i, math.Sqrt(ss))
			}
		}
		return e
	}
	e1 := embed(1, 0)
	if d := maxDiff(t, "embed batch 1", e1, ref.EmbedB1); d > tol {
		t.Errorf("embed batch 1: max |Go - Python| = %g > %g", d, tol)
	} else {
		t.Logf("embed batch 1: max |Go - Python| = %.3g", d)
	}
	e3 := embed(3, 1)
	if d := maxDiff(t, "embed batch 3", e3, ref.EmbedB3); d > tol {
		t.Errorf("embed batch 3: max |Go - Python| = %g > %g", d, tol)
	} else {
		t.Logf("embed batch 3: max |Go - Python| = %.3g", d)
	}

	verify := func(what string, a, b infer.Float32Batch, want [][]float64, wantD [][]float64) map[string]infer.Float32Batch {
		out, err := m.RunFloat32("verify", map[string]infer.Float32Batch{"a": a, "b": b}, "probability", "distance")
		if err != nil {
			t.Errorf("verify %s: %v", what, err)
			return nil
		}
		if d := maxDiff(t, "verify "+what+" probability", out["probability"], want); d > tol {
			t.Errorf("verify %s probability: max |Go - Python| = %g > %g", what, d, tol)
		}
		// Squared distances: a distance near 0 (a face against itself) is
		// the square root of rounding noise, so embeddings that agree to
		// 2e-8 give distances 3e-4 apart there; d² carries the agreement.
		if d := maxSqDiff(t, "verify "+what+" distance", out["distance"], wantD); d > tol {
			t.Errorf("verify %s distance²: max |Go - Python| = %g > %g", what, d, tol)
		}
		return out
	}
	// 1:N matching: [N,D] x [M,D] -> [N,M] with N != M.
	verify("1x3", e1, e3, ref.VerifyB1B3.Probability, ref.VerifyB1B3.Distance)
	v := verify("3x3", e3, e3, ref.VerifyB3B3.Probability, ref.VerifyB3B3.Distance)
	if v == nil {
		return
	}
	// The manifest's head is the graph's head: Go can score without the graph.
	if man.Head == nil {
		t.Fatalf("manifest has no head")
	}
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			d := float64(v["distance"].Row(i)[j])
			if p := man.Head.Probability(d); math.Abs(p-float64(v["probability"].Row(i)[j])) > tol {
				t.Errorf("manifest head gives p=%g at d=%g, graph %g", p, d, v["probability"].Row(i)[j])
			}
		}
	}
	// Two towers sharing weights: a face against itself is at distance 0,
	// and the distance matrix of a batch with itself is symmetric.
	dist := v["distance"]
	for i := 0; i < 3; i++ {
		if got := dist.Row(i)[i]; got > 2e-3 {
			t.Errorf("verify: distance of face %d to itself %g, want 0", i, got)
		}
		for j := 0; j < 3; j++ {
			if math.Abs(float64(dist.Row(i)[j]-dist.Row(j)[i])) > 1e-6 {
				t.Errorf("verify: distance[%d][%d]=%g != distance[%d][%d]=%g", i, j, dist.Row(i)[j], j, i, dist.Row(j)[i])
			}
		}
	}
}

// BenchmarkVGGFace2ResNet50Embed measures one face through the ResNet-50
// tower (untrained weights have the real model's FLOPs: ~7.7 GFLOP/face).
func BenchmarkVGGFace2ResNet50Embed(b *testing.B) {
	m := loadVGGFace(b)
	in := map[string]infer.Float32Batch{"images": vggfaceImages(1, 0)}
	if _, err := m.RunFloat32("embed", in, "embeddings"); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.RunFloat32("embed", in, "embeddings"); err != nil {
			b.Fatalf("embed: %v", err)
		}
	}
}
