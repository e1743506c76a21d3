package infer_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/manifest"
)

// dlibName is the model models/dlib_resnet.py exports.
const dlibName = "dlib-resnet-v1"

// dlibTolerance is the largest absolute difference to dlib's own
// (normalised) descriptors the port may have.
const dlibTolerance = 1e-3

// dlibReference is what bench/dlib_reference.py wrote: dlib's own
// descriptors (unnormalised) of the chips in chips.u8.
type dlibReference struct {
	DlibVersion string      `json:"dlib_version"`
	ModelSHA256 string      `json:"model_sha256"`
	ChipSize    int         `json:"chip_size"`
	ChipsFile   string      `json:"chips_file"`
	ChipsSHA256 string      `json:"chips_sha256"`
	Names       []string    `json:"names"`
	Descriptors [][]float64 `json:"descriptors"`
}

// readDlibReference reads the reference ($FACEGATE_DLIB_REFERENCE, else
// build/dlib-reference/reference.json) and its chips as a float32 batch of
// RGB 0..255. Missing files skip the test, or fail it under CI=true.
func readDlibReference(t *testing.T) (*dlibReference, infer.Float32Batch) {
	t.Helper()
	path := os.Getenv("FACEGATE_DLIB_REFERENCE")
	if path == "" {
		path = filepath.Join("..", "build", "dlib-reference", "reference.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dlib reference missing under CI=true (run `make dlib-reference`): %v", err)
		}
		t.Skipf("dlib reference missing (run `make dlib-reference`): %v", err)
	}
	var ref dlibReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	n := len(ref.Descriptors)
	if n == 0 || n != len(ref.Names) || ref.ChipSize != 150 {
		t.Fatalf("%s: %d descriptors, %d names, chip size %d", path, n, len(ref.Names), ref.ChipSize)
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(path), ref.ChipsFile))
	if err != nil {
		t.Fatalf("dlib reference chips: %v", err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != ref.ChipsSHA256 {
		t.Fatalf("%s does not match the sha256 in %s", ref.ChipsFile, path)
	}
	if len(raw) != n*150*150*3 {
		t.Fatalf("%s: %d bytes, want %d chips of 150x150x3", ref.ChipsFile, len(raw), n)
	}
	data := make([]float32, len(raw))
	for i, v := range raw {
		data[i] = float32(v)
	}
	return &ref, infer.Float32Batch{Shape: []int64{int64(n), 150, 150, 3}, Data: data}
}

func loadDlib(t testing.TB) (*infer.Model, time.Duration) {
	t.Helper()
	dir := infer.TestModelDir(t, dlibName)
	start := time.Now()
	m, err := infer.Load(dir, infer.Options{})
	if err != nil {
		t.Fatalf("Load %s: %v", dir, err)
	}
	wall := time.Since(start)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m, wall
}

func TestDlibManifest(t *testing.T) {
	m, _ := loadDlib(t)
	man := m.Manifest()
	if man.Name != dlibName || man.Task != manifest.TaskSiamese || man.EmbeddingDim != 128 || man.Metric != manifest.MetricEuclidean {
		t.Fatalf("manifest: name %q task %q dim %d metric %q", man.Name, man.Task, man.EmbeddingDim, man.Metric)
	}
	if in := man.Input; in.Signature != "embed" || in.Tensor != "images" || in.Height != 150 || in.Width != 150 || in.Range != [2]float64{0, 255} {
		t.Fatalf("input spec %+v", in)
	}
	al := man.Alignment
	want := []string{"right_eye", "left_eye", "mouth_center"}
	if al == nil || al.Size != 150 || al.Padding != 0.25 || len(al.Points) != len(want) || len(al.PointKeys) != len(want) {
		t.Fatalf("alignment %+v", al)
	}
	for i, k := range want {
		if al.PointKeys[i] != k {
			t.Fatalf("alignment point %d is %q, want %q", i, al.PointKeys[i], k)
		}
		if p := al.Points[i]; p[0] <= 0 || p[0] >= 150 || p[1] <= 0 || p[1] >= 150 {
			t.Fatalf("alignment point %s %v outside the chip", k, p)
		}
	}
	if al.Points[0][0] >= al.Points[1][0] {
		t.Fatalf("right_eye %v should be left of left_eye %v in the image", al.Points[0], al.Points[1])
	}
	// The default head puts p=0.5 at dlib's threshold (0.415 normalised);
	// a head fitted by models/train_head.py (committed calibration) must
	// still decrease with distance and cross 0.5 near it.
	if man.Head == nil || man.Head.Weight >= 0 {
		t.Fatalf("head %+v", man.Head)
	}
	half := -man.Head.Bias / man.Head.Weight
	if strings.HasPrefix(man.Head.FittedOn, "default") {
		if math.Abs(half-0.415) > 0.005 {
			t.Fatalf("default head %+v: want p=0.5 at d=0.415", man.Head)
		}
	} else if half < 0.3 || half > 0.6 {
		t.Fatalf("fitted head %+v: p=0.5 at d=%.3f", man.Head, half)
	}
}

// TestDlibMatchesDlib runs dlib's own chips through the SavedModel from Go
// and compares with dlib's descriptors (normalised, as embed returns them).
func TestDlibMatchesDlib(t *testing.T) {
	ref, chips := readDlibReference(t)
	m, wall := loadDlib(t)
	t.Logf("%s: Load %v (TensorFlow %v)", dlibName, wall.Round(time.Millisecond), m.LoadTime().Round(time.Millisecond))

	start := time.Now()
	out, err := m.RunFloat32("embed", map[string]infer.Float32Batch{"images": chips}, "embeddings")
	if err != nil {
		t.Fatalf("embed: %v", err)
	}
	n := len(ref.Descriptors)
	t.Logf("embed: %d chips in %v", n, time.Since(start).Round(time.Millisecond))
	emb := out["embeddings"]
	if emb.Rows() != n || emb.RowLen() != 128 {
		t.Fatalf("embeddings shape %v, want [%d 128]", emb.Shape, n)
	}
	var worst float64
	for i, d := range ref.Descriptors {
		var norm float64
		for _, v := range d {
			norm += v * v
		}
		norm = math.Sqrt(norm)
		row := emb.Row(i)
		for j, v := range d {
			worst = math.Max(worst, math.Abs(float64(row[j])-v/norm))
		}
	}
	t.Logf("Go embed vs dlib %s (normalised): %d chips, max abs diff %.3g", ref.DlibVersion, n, worst)
	if worst >= dlibTolerance {
		t.Fatalf("max abs diff %.3g to dlib's descriptors, want < %g", worst, dlibTolerance)
	}

	// verify on the embeddings: distances as computed here, probability from
	// the manifest's head, and the people of the chips told apart.
	vout, err := m.RunFloat32("verify", map[string]infer.Float32Batch{"a": emb, "b": emb}, "probability", "distance")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	head := m.Manifest().Head
	var errs, pairs int
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var d2 float64
			for k := 0; k < 128; k++ {
				x := float64(emb.Row(i)[k] - emb.Row(j)[k])
				d2 += x * x
			}
			d := float64(vout["distance"].Data[i*n+j])
			p := float64(vout["probability"].Data[i*n+j])
			if math.Abs(d-math.Sqrt(d2)) > 2e-3 || math.Abs(p-head.Probability(d)) > 1e-4 {
				t.Fatalf("verify[%d,%d]: distance %g probability %g, want %g and %g", i, j, d, p, math.Sqrt(d2), head.Probability(d))
			}
			if i == j {
				continue
			}
			same := filepath.Dir(ref.Names[i]) == filepath.Dir(ref.Names[j])
			if (p > 0.5) != same {
				errs++
			}
			pairs++
		}
	}
	t.Logf("default head on %d ordered pairs of %d chips: %d errors", pairs, n, errs)
	if float64(errs) > 0.01*float64(pairs) {
		t.Fatalf("default head: %d of %d pairs wrong", errs, pairs)
	}
}

// BenchmarkDlibEmbed times one 150x150 chip through embed.
func BenchmarkDlibEmbed(b *testing.B) {
	m, _ := loadDlib(b)
	chip := infer.Float32Batch{Shape: []int64{1, 150, 150, 3}, Data: make([]float32, 150*150*3)}
	for i := range chip.Data {
		chip.Data[i] = float32((i*7 + i/450*3) % 256)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.RunFloat32("embed", map[string]infer.Float32Batch{"images": chip}, "embeddings"); err != nil {
			b.Fatal(err)
		}
	}
}
