package eval

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPADMetrics(t *testing.T) {
	sc := func(species string, score float64) PADScored {
		return PADScored{PADPresentation: PADPresentation{Path: species, Species: species}, Score: score}
	}
	scores := []PADScored{
		sc("", 0.9), sc("", 0.8), sc("", 0.6), sc("", 0.3),
		{PADPresentation: PADPresentation{Path: "b"}, Err: "no face"},
		sc("print", 0.1), sc("print", 0.7), sc("print", 0.2), sc("print", 0.05),
		sc("screen", 0.55), sc("screen", 0.65),
		{PADPresentation: PADPresentation{Path: "s", Species: "screen"}, Err: "no face"},
	}
	r, err := PADMetrics(scores, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	// Bona fide: 0.3 and the unscored one rejected of 5.
	if r.BonaFide != 5 || r.BonaFideRejected != 2 || r.BonaFideNotScored != 1 || math.Abs(r.BPCER-0.4) > 1e-12 {
		t.Fatalf("bona fide: %+v", r)
	}
	want := []PADSpecies{
		{Name: "print", Presentations: 4, Accepted: 1, APCER: 0.25},
		{Name: "screen", Presentations: 3, NotScored: 1, Accepted: 2, APCER: 2.0 / 3},
	}
	if len(r.Species) != 2 || r.Species[0] != want[0] || r.Species[1] != want[1] {
		t.Fatalf("species %+v, want %+v", r.Species, want)
	}
	if math.Abs(r.APCER-2.0/3) > 1e-12 || math.Abs(r.ACER-(2.0/3+0.4)/2) > 1e-12 {
		t.Fatalf("APCER %v ACER %v", r.APCER, r.ACER)
	}
	// The DET curve passes through the operating point and runs from
	// (APCER 1, BPCER ≤ unscored share) to (APCER 0, BPCER 1).
	det := r.DET["print"]
	found := false
	for i, p := range det {
		if i > 0 && (p.APCER > det[i-1].APCER || p.BPCER < det[i-1].BPCER) {
			t.Fatalf("DET not monotone at %d: %+v", i, det)
		}
		if p.Threshold == 0.6 && math.Abs(p.APCER-0.25) < 1e-12 && math.Abs(p.BPCER-0.4) < 1e-12 {
			found = true
		}
	}
	last := det[len(det)-1]
	if !found || det[0].APCER != 1 || last.APCER != 0 || last.BPCER != 1 {
		t.Fatalf("DET %+v", det)
	}
	// Bona fide presentations alone: the BPCER, no APCER.
	bona, err := PADMetrics(scores[:5], 0.5)
	if err != nil || bona.BonaFide != 5 || bona.BPCER != 0.4 || len(bona.Species) != 0 {
		t.Fatalf("bona fide only: %+v %v", bona, err)
	}
	var bt bytes.Buffer
	bona.WriteText(&bt)
	if !strings.Contains(bt.String(), "APCER not measured") || bona.WriteDETSVG(&bt, "x") == nil {
		t.Fatalf("bona fide only: text %q, or a DET plot drawn without attacks", bt.String())
	}
	if _, err := PADMetrics(scores[5:], 0.5); err == nil {
		t.Fatal("no bona fide presentation accepted")
	}
	if _, err := PADMetrics(scores, math.NaN()); err == nil {
		t.Fatal("NaN threshold accepted")
	}
	var text, svg bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"BPCER 40.00%", "print", "APCER 25.00%", "screen", "APCER 66.67%", "ACER 53.33%"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text report lacks %q:\n%s", w, text.String())
		}
	}
	if err := r.WriteDETSVG(&svg, "test"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svg.String(), "<?xml") || !strings.Contains(svg.String(), "APCER") {
		t.Fatalf("DET SVG: %.200s", svg.String())
	}
}

func TestRunPADFolder(t *testing.T) {
	root := t.TempDir()
	files := map[string]float64{
		"bona_fide/a.jpg": 0.9, "bona_fide/sub/b.png": 0.2, "bona_fide/notes.txt": -1,
		"attack/print/c.jpg": 0.1, "attack/screen/d.JPG": 0.8, "attack/screen/e.jpg": 0.3,
	}
	for p := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ListPADFolder(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 5 {
		t.Fatalf("listed %v", list)
	}
	r, err := RunPAD(context.Background(), PADConfig{Root: root, Threshold: 0.5, Score: func(p string) (float64, error) {
		rel, _ := filepath.Rel(root, p)
		v, ok := files[filepath.ToSlash(rel)]
		if !ok || v < 0 {
			return 0, errors.New("unexpected file " + rel)
		}
		return v, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r.BonaFide != 2 || r.BPCER != 0.5 || len(r.Species) != 2 || r.Species[1].APCER != 0.5 || r.Species[0].APCER != 0 {
		t.Fatalf("%+v", r)
	}
	if _, err := ListPADFolder(filepath.Join(root, "attack")); err == nil {
		t.Fatal("a folder without bona_fide/ and attack/ accepted")
	}
}

func TestPADGroupsSourcesGated(t *testing.T) {
	bf := func(group string, score float64, ungated bool) PADScored {
		return PADScored{PADPresentation: PADPresentation{Path: group, Group: group}, Score: score, Ungated: ungated}
	}
	scores := []PADScored{
		bf("video__a", 0.9, false), bf("video__a", 0.1, true), bf("video__b", 0.2, false), bf("video__b", 0.8, false),
		bf("lfw__x", 0.3, false), bf("lfw__y", 0.7, false),
	}
	r, err := PADMetrics(scores, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Groups) != 4 || r.Groups[2] != (PADGroup{Name: "video__a", BonaFide: 2, Rejected: 1, BPCER: 0.5}) {
		t.Fatalf("groups %+v", r.Groups)
	}
	want := []PADGroup{{Name: "lfw", BonaFide: 2, Rejected: 1, BPCER: 0.5}, {Name: "video", BonaFide: 4, Rejected: 2, BPCER: 0.5}}
	if len(r.Sources) != 2 || r.Sources[0] != want[0] || r.Sources[1] != want[1] {
		t.Fatalf("sources %+v", r.Sources)
	}
	if r.Gated == nil || r.Gated.BonaFide != 5 || r.Gated.Rejected != 2 {
		t.Fatalf("gated %+v", r.Gated)
	}
}

func TestPADFitThreshold(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(99-i) / 100 // 0.00 .. 0.99, shuffled order
	}
	for _, c := range []struct{ b, want float64 }{{0.05, 0.05}, {0.01, 0.01}, {0.999, 0.99}} {
		got, err := PADFitThreshold(s, c.b)
		if err != nil || got != c.want {
			t.Errorf("bpcer %g: %v %v, want %v", c.b, got, err, c.want)
		}
		if r := padRejected(s, got); r > c.b {
			t.Errorf("bpcer %g: the threshold rejects %g", c.b, r)
		}
	}
	if _, err := PADFitThreshold(nil, 0.05); err == nil {
		t.Error("no scores accepted")
	}
	if _, err := PADFitThreshold(s, 0); err == nil {
		t.Error("bpcer 0 accepted")
	}
	unscored := append([]float64{math.Inf(-1), math.Inf(-1)}, 0.5, 0.6)
	if _, err := PADFitThreshold(unscored, 0.25); err == nil {
		t.Error("a threshold fitted below the unscored presentations")
	}
}

func TestPADCalibrateSplitsByGroup(t *testing.T) {
	var scores []PADScored
	add := func(group string, n int, lo, hi float64) {
		for i := 0; i < n; i++ {
			scores = append(scores, PADScored{PADPresentation: PADPresentation{Group: group}, Score: lo + (hi-lo)*float64(i)/float64(n)})
		}
	}
	// Clip "big" scores high, the people low: a threshold fitted on one
	// half misjudges the other, which the split must show.
	add("video__big", 100, 0.8, 1.0)
	add("photo__p1", 40, 0.2, 1.0)
	add("photo__p2", 40, 0.2, 1.0)
	add("lfw__x", 50, 0, 0.1)
	scores = append(scores, PADScored{PADPresentation: PADPresentation{Species: "print", Group: "video__big"}, Score: 0})
	c, err := PADCalibrate(scores, []float64{0.05}, func(g string) bool { return g != "lfw__x" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Presentations != 180 || c.Groups != 3 || c.A.Presentations != 100 || c.B.Presentations != 80 ||
		c.A.Groups[0] != "video__big" || len(c.B.Groups) != 2 {
		t.Fatalf("split %+v", c)
	}
	p := c.Points[0]
	if p.FitA < 0.8 || p.HeldOutB < 0.5 || p.FitB > 0.3 || p.HeldOutA != 0 {
		t.Fatalf("split check %+v", p)
	}
	var all []float64
	for _, s := range scores[:180] {
		all = append(all, s.Score)
	}
	if want, _ := PADFitThreshold(all, 0.05); p.Threshold != want {
		t.Fatalf("threshold %v, want %v (all the included bona fide)", p.Threshold, want)
	}
	var b bytes.Buffer
	if err := c.WriteText(&b); err != nil || !strings.Contains(b.String(), "half A: 100 presentations (video__big)") {
		t.Fatalf("%q %v", b.String(), err)
	}
	if _, err := PADCalibrate(scores[:100], []float64{0.05}, nil); err == nil {
		t.Fatal("one group split")
	}
}

func TestRunPADScoreFaces(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"bona_fide/clip1/a.png", "bona_fide/clip1/b.png", "bona_fide/clip2/c.png"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte("x"), 0o644)
	}
	faces := map[string][]PADFace{"a.png": {{Score: 0.9}, {Score: 0.3, Ungated: true}}, "b.png": nil, "c.png": {{Score: 0.4}}}
	r, err := RunPAD(context.Background(), PADConfig{Root: root, Threshold: 0.5, ScoreFaces: func(p string) ([]PADFace, error) {
		return faces[filepath.Base(p)], nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r.BonaFide != 3 || r.BonaFideRejected != 2 || r.ImagesWithoutFace != 1 || len(r.Groups) != 2 || r.Groups[0].Name != "clip1" ||
		r.Scores[1].Face != 1 || !r.Scores[1].Ungated || r.Gated == nil || r.Gated.BonaFide != 2 || r.Gated.Rejected != 1 {
		t.Fatalf("%+v", r)
	}
	if _, err := RunPAD(context.Background(), PADConfig{Root: root}); err == nil {
		t.Fatal("no scorer accepted")
	}
}
