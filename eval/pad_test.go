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
	if _, err := PADMetrics(scores[:5], 0.5); err == nil {
		t.Fatal("no attacks accepted")
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
