package infer_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// sfaceName is the model models/sface.py exports.
const sfaceName = "sface-2021dec"

// sfaceTolerance is the largest absolute difference between Go's
// embeddings and onnxruntime's (normalised) on the same chips. Python's
// SavedModel is within 4e-7 of onnxruntime on them (models/tests/test_sface.py),
// so this also bounds Go against Python to about 1e-5.
const sfaceTolerance = 1e-5

// sfaceReference is what models/onnx_sface.py reference wrote: LFW faces
// aligned with the ArcFace template from YuNet's landmarks (chips.u8) and
// the int8 ONNX graph's embeddings of them (fc1, unnormalised).
type sfaceReference struct {
	ORT         string      `json:"onnxruntime"`
	Size        int         `json:"size"`
	ChipsFile   string      `json:"chips_file"`
	ChipsSHA256 string      `json:"chips_sha256"`
	Images      []string    `json:"images"`
	Embeddings  [][]float64 `json:"embeddings"`
}

// readSFaceReference reads $FACEGATE_SFACE_REF/reference.json (else
// build/sface-ref) and its chips as float32 RGB 0..255. Missing files skip
// the test, or fail it under CI=true.
func readSFaceReference(t *testing.T) (*sfaceReference, []float32) {
	t.Helper()
	dir := os.Getenv("FACEGATE_SFACE_REF")
	if dir == "" {
		dir = filepath.Join("..", "build", "sface-ref")
	}
	path := filepath.Join(dir, "reference.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sface reference missing under CI=true (run `make sface-ref`): %v", err)
		}
		t.Skipf("sface reference missing (run `make sface-ref`): %v", err)
	}
	var ref sfaceReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	n := len(ref.Embeddings)
	if n < 20 || n != len(ref.Images) || ref.Size != 112 {
		t.Fatalf("%s: %d embeddings, %d images, size %d", path, n, len(ref.Images), ref.Size)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ref.ChipsFile))
	if err != nil {
		t.Fatalf("sface reference chips: %v", err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != ref.ChipsSHA256 {
		t.Fatalf("%s does not match the sha256 in %s", ref.ChipsFile, path)
	}
	if len(raw) != n*112*112*3 {
		t.Fatalf("%s: %d bytes, want %d chips of 112x112x3", ref.ChipsFile, len(raw), n)
	}
	chips := make([]float32, len(raw))
	for i, v := range raw {
		chips[i] = float32(v)
	}
	return &ref, chips
}

func normalised(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	s = math.Sqrt(s)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x / s
	}
	return out
}

func cosine32(a []float32, b []float64) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * b[i]
	}
	return s
}

func loadSFace(t testing.TB) *infer.Embedder {
	t.Helper()
	m, err := infer.Load(infer.TestModelDir(t, sfaceName), infer.Options{})
	if err != nil {
		t.Fatalf("Load %s: %v", sfaceName, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	e, err := infer.NewEmbedder(m)
	if err != nil {
		t.Fatalf("NewEmbedder: %v", err)
	}
	return e
}

func TestSFaceManifest(t *testing.T) {
	e := loadSFace(t)
	man := e.Model().Manifest()
	if man.Name != sfaceName || man.Task != manifest.TaskEmbedder || man.EmbeddingDim != 128 || man.Metric != manifest.MetricCosine || man.Head != nil {
		t.Fatalf("manifest: name %q task %q dim %d metric %q head %v", man.Name, man.Task, man.EmbeddingDim, man.Metric, man.Head)
	}
	if in := man.Input; in.Signature != "embed" || in.Tensor != "images" || in.Height != 112 || in.Width != 112 || in.Range != [2]float64{0, 255} {
		t.Fatalf("input spec %+v", in)
	}
	tmpl := e.Template()
	if tmpl.Size != 112 || e.Size() != 112 || e.Dim() != 128 || len(tmpl.Names) < 3 {
		t.Fatalf("template %+v", tmpl)
	}
	at := map[string][2]float64{}
	for i, n := range tmpl.Names {
		p := tmpl.Points[i]
		if p[0] <= 0 || p[0] >= 112 || p[1] <= 0 || p[1] >= 112 {
			t.Fatalf("template point %s %v outside the chip", n, p)
		}
		at[n] = p
	}
	// The ArcFace geometry: eyes level at y ~52, 35-38 px apart, the
	// subject's right eye on the image's left; the mouth ~41 px below them.
	r, l, m := at["right_eye"], at["left_eye"], at["mouth_center"]
	if d := l[0] - r[0]; d < 33 || d > 40 || math.Abs(r[1]-52.5) > 2 || math.Abs(l[1]-52.5) > 2 || math.Abs(m[1]-93) > 2.5 {
		t.Fatalf("template right_eye %v left_eye %v mouth_center %v", r, l, m)
	}
	if man.Provenance.SHA256 != "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee" {
		t.Fatalf("provenance %+v", man.Provenance)
	}
}

// TestSFaceMatchesONNX runs the reference's chips through the SavedModel
// from Go (the embedder's own path, in one batch and one chip at a time)
// and compares with onnxruntime's embeddings of the original int8 graph.
func TestSFaceMatchesONNX(t *testing.T) {
	ref, chips := readSFaceReference(t)
	e := loadSFace(t)
	n := len(ref.Embeddings)
	start := time.Now()
	got, err := e.EmbedChips(chips, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embed: %d chips in one batch in %v", n, time.Since(start).Round(time.Millisecond))
	var worst, worstSingle float64
	for i, want := range ref.Embeddings {
		w := normalised(want)
		one, err := e.EmbedChips(chips[i*e.ChipLen():(i+1)*e.ChipLen()], 1)
		if err != nil {
			t.Fatal(err)
		}
		for j := range w {
			worst = math.Max(worst, math.Abs(float64(got[i][j])-w[j]))
			worstSingle = math.Max(worstSingle, math.Abs(float64(one[0][j])-w[j]))
		}
	}
	t.Logf("Go embed vs onnxruntime %s (normalised): %d faces, max abs diff %.3g (batch), %.3g (one by one)", ref.ORT, n, worst, worstSingle)
	if worst > sfaceTolerance || worstSingle > sfaceTolerance {
		t.Fatalf("max abs diff %.3g (batch), %.3g (single) to onnxruntime, want <= %g", worst, worstSingle, sfaceTolerance)
	}
}

// TestSFacePipeline: facegate's own pipeline (BlazeFace keypoints, the
// manifest's template, Go's warp) gives each reference photo an embedding
// close to the one of its ArcFace-aligned chip (YuNet landmarks, OpenCV's
// geometry), and tells the reference's people apart.
func TestSFacePipeline(t *testing.T) {
	ref, _ := readSFaceReference(t)
	data := infer.TestDataDir(t)
	p, closeFn, err := infer.OpenPipeline(infer.TestModelDir(t, "blazeface-short"), infer.TestModelDir(t, sfaceName),
		infer.Options{}, infer.DetectorConfig{}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	embs := make([][]float32, len(ref.Images))
	var sum, low float64 = 0, 1
	for i, rel := range ref.Images {
		b, err := os.ReadFile(filepath.Join(data, "faces", rel))
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := imageio.DecodeBytes(b, imageio.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		f, err := p.EmbedPrimary(img)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		embs[i] = f.Embedding
		c := cosine32(f.Embedding, normalised(ref.Embeddings[i]))
		sum += c
		low = math.Min(low, c)
	}
	mean := sum / float64(len(embs))
	t.Logf("cosine of facegate's embedding to the ArcFace-aligned one, %d photos: mean %.3f, min %.3f", len(embs), mean, low)
	if mean < 0.85 || low < 0.7 {
		t.Fatalf("facegate's alignment is far from ArcFace's: cosine mean %.3f, min %.3f", mean, low)
	}
	// Images 2i and 2i+1 are one person: each photo's nearest neighbour
	// among the others is its partner, and every same pair scores above
	// every different pair of the same photo.
	cos := func(i, j int) float64 {
		var c float64
		for k := range embs[i] {
			c += float64(embs[i][k]) * float64(embs[j][k])
		}
		return c
	}
	var minSame, maxDiff float64 = 1, -1
	for i := range embs {
		partner := i ^ 1
		same := cos(i, partner)
		minSame = math.Min(minSame, same)
		for j := range embs {
			if j == i || j == partner {
				continue
			}
			maxDiff = math.Max(maxDiff, cos(i, j))
			if c := cos(i, j); c >= same {
				t.Errorf("%s: %s scores %.3f, its own partner %s %.3f", ref.Images[i], ref.Images[j], c, ref.Images[partner], same)
			}
		}
	}
	t.Logf("same pairs: min cosine %.3f; different pairs: max %.3f", minSame, maxDiff)
}

// BenchmarkSFaceEmbed times one 112x112 chip through embed.
func BenchmarkSFaceEmbed(b *testing.B) {
	e := loadSFace(b)
	chip := make([]float32, e.ChipLen())
	for i := range chip {
		chip[i] = float32((i*7 + i/336*3) % 256)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.EmbedChips(chip, 1); err != nil {
			b.Fatal(err)
		}
	}
}
