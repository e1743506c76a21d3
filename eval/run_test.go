package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/infer/manifest"
)

// fakeEmbedder gives each identity (the image's folder) a direction on the
// unit circle and each image a small deterministic turn from it; the
// images named in fail have no face, those in broken cannot be read.
type fakeEmbedder struct {
	man    *manifest.Manifest
	fail   map[string]bool
	broken map[string]bool
	padded map[string]bool
	calls  int
}

var errBroken = errors.New("broken file")

func (f *fakeEmbedder) Embed(ctx context.Context, root string, images []string, progress func(int)) (map[string]Embedding, error) {
	f.calls++
	out := map[string]Embedding{}
	for _, im := range images {
		switch {
		case f.fail[im]:
			out[im] = Embedding{Err: errors.New("no face"), NoFace: true}
		case f.broken[im]:
			out[im] = Embedding{Err: errBroken}
		default:
			_, id := identityOf(im)
			out[im] = Embedding{Vector: fakeVector(id, im), Padded: f.padded[im]}
		}
		if progress != nil {
			progress(1)
		}
	}
	return out, ctx.Err()
}

// fakeVector is a random unit direction per identity (8-d: nearly
// orthogonal to the others) turned a little per image.
func fakeVector(identity, image string) []float32 {
	seed := func(s string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(s))
		return h.Sum64()
	}
	id, im := rand.New(rand.NewPCG(seed(identity), 1)), rand.New(rand.NewPCG(seed(image), 2))
	v := make([]float64, 8)
	var n float64
	for i := range v {
		v[i] = id.NormFloat64()
		n += v[i] * v[i]
	}
	out := make([]float32, len(v))
	var m float64
	for i := range v {
		x := v[i]/math.Sqrt(n) + 0.02*im.NormFloat64()
		out[i] = float32(x)
		m += x * x
	}
	for i := range out {
		out[i] /= float32(math.Sqrt(m))
	}
	return out
}

func (f *fakeEmbedder) Manifest() *manifest.Manifest { return f.man }
func (f *fakeEmbedder) Detector() string             { return "fake-detector" }

func euclideanManifest() *manifest.Manifest {
	m := testManifest()
	m.Metric = manifest.MetricEuclidean
	return m
}

// writePairs writes n genuine then n impostor pairs of people P00..P39
// (source "lfw") with 5 images each, and returns the file's path.
func writePairs(t *testing.T, n int) string {
	t.Helper()
	var pairs []Pair
	img := func(p, i int) string { return fmt.Sprintf("lfw__P%02d/%03d.jpg", p%40, i%5) }
	for i := range n {
		pairs = append(pairs, Pair{A: img(i, 0), B: img(i, 1+i/40), Same: true})
	}
	for i := range n {
		pairs = append(pairs, Pair{A: img(i, 2), B: img(i+1+i/40, 3), Same: false})
	}
	var b bytes.Buffer
	if err := WritePairs(&b, pairs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pairs.tsv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyRun(t *testing.T) {
	pairsFile := writePairs(t, 60)
	fe := &fakeEmbedder{man: euclideanManifest(),
		fail:   map[string]bool{"lfw__P03/000.jpg": true},
		broken: map[string]bool{"lfw__P04/002.jpg": true},
		padded: map[string]bool{"lfw__P05/000.jpg": true}}
	var bar bytes.Buffer
	v, err := VerifyConfig{PairsFile: pairsFile, Root: "unused", Embedder: fe, Progress: &bar}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fe.calls != 1 || bar.Len() != 0 {
		t.Errorf("%d Embed calls (want 1), progress on a buffer %q", fe.calls, bar.String())
	}
	r := v.Report
	if r.Pairs != 120 || r.Same != 60 || r.Model != "eval-test 1.0.0" || r.Dataset != "pairs.tsv" || r.ScoreKind != KindEuclidean || r.HigherIsMatch {
		t.Fatalf("report %+v", r)
	}
	// P03/000 is in genuine pairs 3 and 43, P04/002 in impostor pairs 4
	// and 44 and in genuine pair 44.
	if len(v.Failed) != 2 || r.ImagesFTA != 2 || r.PairsFTA != 5 || v.Padded != 1 || len(v.Embeddings) != len(v.Images)-2 {
		t.Errorf("failed %v, images FTA %d, pairs FTA %d, padded %d", v.Failed, r.ImagesFTA, r.PairsFTA, v.Padded)
	}
	// Identities are far apart, images of one close: every acquired pair
	// is classified right.
	if r.Accuracy.Mean < 0.95 || r.AUC < 0.95 {
		t.Errorf("accuracy %v AUC %v on separable data", r.Accuracy.Mean, r.AUC)
	}
	var sum bytes.Buffer
	if err := v.WriteSummary(&sum); err != nil || !strings.Contains(sum.String(), "images: 160 in") ||
		!strings.Contains(sum.String(), "detector fake-detector, embedder eval-test); found only after padding: 1") {
		t.Errorf("summary %q, %v", sum.String(), err)
	}

	dir := t.TempDir()
	out := Outputs{JSON: filepath.Join(dir, "r.json"), Plot: filepath.Join(dir, "r.svg"), Scores: filepath.Join(dir, "r.tsv")}
	if err := v.Save(out); err != nil {
		t.Fatal(err)
	}
	// The scores file gives back the same report.
	back, err := ScoresFileConfig{Path: out.Scores, Label: r.Model, Dataset: r.Dataset}.Run()
	if err != nil {
		t.Fatal(err)
	}
	if back.Pairs != r.Pairs || back.ImagesFTA != r.ImagesFTA || back.PairsFTA != r.PairsFTA || math.Abs(back.AUC-r.AUC) > 1e-9 || math.Abs(back.Accuracy.Mean-r.Accuracy.Mean) > 1e-9 {
		t.Errorf("scores file report differs: %+v\nwant %+v", back, r)
	}
	svg, err := os.ReadFile(out.Plot)
	if err != nil {
		t.Fatal(err)
	}
	if doc := parseSVG(t, svg); len(doc.paths["#1f77b4"]) != 3 {
		t.Errorf("plot: %d paths of the curve", len(doc.paths["#1f77b4"]))
	}
	// Two reports in one plot: two curves, labelled with their accuracy.
	plot := filepath.Join(dir, "both.svg")
	if err := PlotReports(plot, []string{out.JSON, out.JSON}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(plot)
	doc := parseSVG(t, b)
	if len(doc.paths["#1f77b4"]) != 3 || len(doc.paths["#d62728"]) != 3 || !strings.Contains(strings.Join(doc.texts, "|"), "eval-test 1.0.0 (accuracy ") {
		t.Errorf("two-report plot: %v", doc.texts)
	}
	if err := PlotReports("", []string{out.JSON}); err == nil {
		t.Error("plot without an output accepted")
	}
}

func TestVerifyCalibrate(t *testing.T) {
	fe := &fakeEmbedder{man: euclideanManifest()}
	v, err := VerifyConfig{PairsFile: writePairs(t, 50), Root: "unused", Embedder: fe}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := manifest.Write(dir, fe.man); err != nil {
		t.Fatal(err)
	}
	// 50 impostor pairs measure no target: calibration alone fails.
	var w bytes.Buffer
	if _, err := v.Calibrate(CalibrateConfig{ModelDir: dir}, &w); !errors.Is(err, ErrNotEnoughData) {
		t.Fatalf("calibration on 50 impostors: %v", err)
	}
	// With 2,000 random impostor pairs: 1e-2 and 1e-3, not 1e-4.
	out := filepath.Join(t.TempDir(), "cal.json")
	if err := os.WriteFile(out, []byte(`{"head": {"w": 1}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ths, err := v.Calibrate(CalibrateConfig{ModelDir: dir, Impostors: 2000, ThresholdsOut: out}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if len(ths) != 2 || ths[0].FMR != 1e-2 || ths[1].FMR != 1e-3 || ths[1].Pairs < 1000 || !strings.Contains(ths[0].Dataset, "+ 2000 random impostor pairs") {
		t.Fatalf("thresholds %+v", ths)
	}
	if !strings.Contains(w.String(), "calibration with extra impostors: FMR 0.0001: ") || !strings.Contains(w.String(), "calibrated eval-test: FMR 0.001 -> euclidean <= ") {
		t.Errorf("output:\n%s", w.String())
	}
	m, err := manifest.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m.ThresholdFor(1e-3, KindEuclidean); !ok || got.Value != ths[1].Value {
		t.Errorf("manifest threshold %+v %v, want %v", got, ok, ths[1].Value)
	}
	var cal map[string]json.RawMessage
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &cal); err != nil || cal["head"] == nil || cal["thresholds"] == nil || string(cal["model"]) != `"eval-test 1.0.0"` {
		t.Errorf("calibration file %s: %v", b, err)
	}
}

func TestIdentifyRun(t *testing.T) {
	root := t.TempDir()
	for p := range 10 {
		for i := range 4 {
			dir := filepath.Join(root, fmt.Sprintf("lfw__P%02d", p))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.jpg", i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Mkdir(filepath.Join(root, "other__X"), 0o755); err != nil {
		t.Fatal(err)
	}
	man := euclideanManifest()
	man.Thresholds = []manifest.Threshold{{FMR: 1e-3, Score: KindEuclidean, Value: 0.2, Dataset: "x", Pairs: 1000, Date: "2026-01-01"}}
	fe := &fakeEmbedder{man: man, fail: map[string]bool{filepath.Join("lfw__P01", "003.jpg"): true}}
	r, err := IdentifyConfig{Root: root, Source: "lfw__", Ks: []int{1, 3}, Embedder: fe}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "eval-test 1.0.0" || r.Source != "lfw__" || len(r.Identification) != 2 {
		t.Fatalf("report %+v", r)
	}
	// 10 identities, every 5th unknown: 8 enrolled. K=1: 3 probes each,
	// one of them without a face.
	k1 := r.Identification[0]
	if k1.K != 1 || k1.Identities != 8 || k1.Probes != 24 || k1.ProbeFTA != 1 || k1.Rank1Correct != 23 || k1.Threshold == nil || *k1.Threshold != 0.2 || k1.FPIR == nil {
		t.Errorf("K=1: %+v", k1)
	}
	var w bytes.Buffer
	if err := r.WriteTable(&w); err != nil || !strings.Contains(w.String(), "1  8         24      1    95.83%") {
		t.Errorf("table:\n%s", w.String())
	}
	if _, err := (IdentifyConfig{Root: root, Source: "none__", Embedder: fe}).Run(context.Background()); err == nil {
		t.Error("no identity folders accepted")
	}
	if _, err := (IdentifyConfig{Root: root, Ks: []int{0}, Embedder: fe}).Run(context.Background()); err == nil {
		t.Error("K=0 accepted")
	}
}

func TestRandomImpostors(t *testing.T) {
	var images []string
	emb := map[string][]float32{}
	for _, src := range []string{"lfw", "att"} {
		for p := range 6 {
			for i := range 3 {
				im := fmt.Sprintf("%s__P%d/%d.jpg", src, p, i)
				images = append(images, im)
				if i != 2 {
					emb[im] = []float32{1}
				}
			}
		}
	}
	a := RandomImpostors(images, emb, 50)
	if len(a) != 50 {
		t.Fatalf("%d pairs, want 50", len(a))
	}
	seen := map[Pair]bool{}
	for _, p := range a {
		sa, ia := identityOf(p.A)
		sb, ib := identityOf(p.B)
		if p.Same || sa != sb || ia == ib || emb[p.A] == nil || emb[p.B] == nil || seen[p] || p.B < p.A {
			t.Errorf("bad impostor pair %+v", p)
		}
		seen[p] = true
	}
	b := RandomImpostors(images, emb, 50)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("not deterministic")
		}
	}
	// 2 sources x 15 pairs of 2 identities x 4 image pairs = 240 possible pairs.
	if n := len(RandomImpostors(images, emb, 1000)); n > 240 {
		t.Errorf("%d distinct pairs from 240 possible", n)
	}
}

func TestReadScoresErrors(t *testing.T) {
	for _, bad := range []string{
		"",
		"a\tb\tsame\tacquired\teuclidean\n",
		"# a\tb\tsame\tacquired\tnonsense\n",
		"# a\tb\tsame\tacquired\teuclidean\nx\ty\t1\t1\n",
		"# a\tb\tsame\tacquired\teuclidean\nx\ty\t2\t1\t0.5\n",
		"# a\tb\tsame\tacquired\teuclidean\nx\ty\t1\t1\tabc\n",
	} {
		if _, _, _, err := ReadScores(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	pairs, s, failed, err := ReadScores(strings.NewReader("# a\tb\tsame\tacquired\tcosine\n# comment\nx\ty\t1\t0\t0.000000\n#fta\ty\n"))
	if err != nil || len(pairs) != 1 || pairs[0].Line != 3 || !s.HigherIsMatch || s.Results[0].Acquired || len(failed) != 1 || failed[0] != "y" {
		t.Errorf("pairs %+v scores %+v failed %v err %v", pairs, s, failed, err)
	}
}
