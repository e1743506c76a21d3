package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// loadTiny reads the committed fixture: pairs.tsv, scores.txt (one cosine
// score per pair, "-" when not acquired) and failed.txt.
func loadTiny(t *testing.T) ([]Pair, Scores, []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "tiny", "pairs.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pairs, err := ParsePairs(f)
	if err != nil {
		t.Fatal(err)
	}
	s := Scores{Kind: KindCosine, HigherIsMatch: true}
	for i, line := range readLines(t, "scores.txt") {
		r := Result{Same: pairs[i].Same}
		if line != "-" {
			if r.Score, err = strconv.ParseFloat(line, 64); err != nil {
				t.Fatal(err)
			}
			r.Acquired = true
		}
		s.Results = append(s.Results, r)
	}
	return pairs, s, readLines(t, "failed.txt")
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tiny", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

var tinyDate = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)

// TestTinyFixture checks the whole report against figures computed by hand
// (see the comments; docs/evaluation.md states the rules).
func TestTinyFixture(t *testing.T) {
	pairs, s, failed := loadTiny(t)
	r, err := Evaluate(pairs, s, Options{Model: "tiny", Dataset: "testdata/tiny", Date: tinyDate, FailedImages: failed})
	if err != nil {
		t.Fatal(err)
	}
	if r.FoldScheme != SchemeBlocks || len(r.Accuracy.Folds) != 3 {
		t.Fatalf("folds: %s %d", r.FoldScheme, len(r.Accuracy.Folds))
	}
	// FTA: fay/002.jpg has no face -> 1 of 12 images, 1 of 12 pairs (a same pair).
	if r.Pairs != 12 || r.Images != 12 || r.ImagesFTA != 1 || r.PairsFTA != 1 || r.SamePairsFTA != 1 || r.DifferentPairsFTA != 0 {
		t.Errorf("counts: %+v", r)
	}
	if !near(r.ImageFTARate, 1.0/12) || !near(r.PairFTARate, 1.0/12) {
		t.Errorf("FTA rates %v %v", r.ImageFTARate, r.PairFTARate)
	}
	// Fold 1 trains on folds 2+3: best 6/8 accepting >= 0.8, so midpoint
	// of 0.66 and 0.8 = 0.73; genuine 0.7 falls below: 3/4.
	// Fold 2 trains on 1+3: best 7/8 accepting >= 0.7, threshold 0.68:
	// genuine 0.4 rejected: 3/4.
	// Fold 3 trains on 1+2: best 7/8 accepting >= 0.7, threshold 0.65:
	// impostor 0.66 accepted and the FTA same pair is an error: 2/4.
	// (Chosen on fold 3 itself, any threshold in (0.66, 0.85] would give 3/4.)
	want := []struct{ th, train, acc float64 }{{0.73, 6.0 / 8, 0.75}, {0.68, 7.0 / 8, 0.75}, {0.65, 7.0 / 8, 0.5}}
	for i, w := range want {
		f := r.Accuracy.Folds[i]
		if !near(f.Threshold, w.th) || !near(f.TrainAccuracy, w.train) || !near(f.Accuracy, w.acc) || f.Pairs != 4 {
			t.Errorf("fold %d: %+v, want threshold %v train %v test %v", i+1, f, w.th, w.train, w.acc)
		}
	}
	if f := r.Accuracy.Folds[2]; f.FTA != 1 || f.Same != 2 || f.Different != 2 {
		t.Errorf("fold 3 counts %+v", f)
	}
	// Mean 2/3; deviations 1/12, 1/12, -1/6: sum of squares 1/24.
	a := r.Accuracy
	if !near(a.Mean, 2.0/3) || !near(a.Std, math.Sqrt(1.0/48)) || !near(a.StdPop, math.Sqrt(1.0/72)) || !near(a.StdErr, math.Sqrt(1.0/48)/math.Sqrt(3)) {
		t.Errorf("accuracy %+v", a)
	}
	// AUC: genuine 0.9, 0.85, 0.8, 0.7 beat all 6 impostors, 0.4 beats 3,
	// the FTA pair none: 27/36. EER: FRR = FAR = 1/3 at threshold 0.5.
	if !near(r.AUC, 0.75) || !near(r.EER, 1.0/3) {
		t.Errorf("AUC %v EER %v", r.AUC, r.EER)
	}
	// 6 impostors cannot measure 1e-2 or below.
	for _, o := range append(append(r.TARAtFAR, r.FNMRAtFMR...), r.Calibration...) {
		if o.Enough || o.Threshold != nil {
			t.Errorf("tiny data measured %g: %+v", o.Target, o)
		}
	}

	var table, js, svg bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteROCSVG(&svg); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", table.Bytes())
	golden(t, "report.json", js.Bytes())
	// The plot's bytes belong to gonum/plot: check what it shows.
	doc := parseSVG(t, svg.Bytes())
	if all := strings.Join(doc.texts, "|"); !strings.Contains(all, "facegate eval: testdata/tiny") || !strings.Contains(all, "tiny (AUC 0.7500, EER 33.33%)") {
		t.Errorf("plot texts: %s", all)
	}
	if ps := doc.paths["#1f77b4"]; len(ps) != 3 || vertices(ps[0]) < 2 {
		t.Errorf("plot paths of the curve: %v", ps)
	}

	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.AUC != r.AUC || len(back.ROC) != len(r.ROC) || back.Accuracy.Mean != r.Accuracy.Mean {
		t.Error("JSON does not round-trip")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "tiny", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestFTAAccounting(t *testing.T) {
	pairs, s, failed := loadTiny(t)
	base, err := Evaluate(pairs, s, Options{Dataset: "x", FailedImages: failed})
	if err != nil {
		t.Fatal(err)
	}
	// Fold 1 genuine pair 0 (0.9, correctly accepted) fails to acquire:
	// same denominator, one more error in fold 1.
	s2 := s
	s2.Results = append([]Result(nil), s.Results...)
	s2.Results[0].Acquired = false
	r2, err := Evaluate(pairs, s2, Options{Dataset: "x", FailedImages: failed})
	if err != nil {
		t.Fatal(err)
	}
	r := r2
	if r.Pairs != base.Pairs || r.Accuracy.Folds[0].Pairs != 4 || r.PairsFTA != 2 || r.SamePairsFTA != 2 {
		t.Errorf("denominators changed: %+v", r)
	}
	if got, want := r.Accuracy.Folds[0].Accuracy, base.Accuracy.Folds[0].Accuracy-0.25; !near(got, want) {
		t.Errorf("same-pair FTA: fold 1 accuracy %v, want %v", got, want)
	}
	// A different pair failing to acquire is a correct rejection: fold 1
	// impostor 0.2 was already rejected, so fold 1 keeps its accuracy.
	s3 := s
	s3.Results = append([]Result(nil), s.Results...)
	s3.Results[2].Acquired = false
	r, err = Evaluate(pairs, s3, Options{Dataset: "x", FailedImages: failed})
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.Accuracy.Folds[0].Accuracy, base.Accuracy.Folds[0].Accuracy) || r.DifferentPairsFTA != 1 {
		t.Errorf("different-pair FTA: %+v", r.Accuracy.Folds[0])
	}
	// ROC: FTA pairs have the worst score, so the curve only reaches
	// TAR 1 at the last point, and a genuine pair failing (0.9, which beat
	// all 6 impostors) costs 6 of 36 impostor comparisons of AUC.
	if base.ROC[len(base.ROC)-2].TAR == 1 || !near(r2.AUC, base.AUC-6.0/36) {
		t.Errorf("FTA pair not at the worst score: AUC %v -> %v", base.AUC, r2.AUC)
	}
}

func TestEvaluateConsistency(t *testing.T) {
	pairs, s, failed := loadTiny(t)
	bad := s
	bad.Results = append([]Result(nil), s.Results...)
	bad.Results[9] = Result{Score: 0.3, Same: true, Acquired: true} // uses fay/002.jpg, which has no face
	if _, err := Evaluate(pairs, bad, Options{FailedImages: failed}); err == nil || !strings.Contains(err.Error(), "no face") {
		t.Errorf("acquired pair with a failed image: %v", err)
	}
	bad.Results = append([]Result(nil), s.Results...)
	bad.Results[0].Same = false
	if _, err := Evaluate(pairs, bad, Options{FailedImages: failed}); err == nil {
		t.Error("same flag mismatch accepted")
	}
	if _, err := Evaluate(pairs[:3], s, Options{}); err == nil {
		t.Error("length mismatch accepted")
	}
	if _, err := Evaluate(pairs, s, Options{FailedImages: []string{"zed/001.jpg"}}); err == nil {
		t.Error("failed image outside the pairs accepted")
	}
}

func TestReportOperatingPointsInTable(t *testing.T) {
	genuine, imp := impostorGrid(1500)
	for i := range imp {
		imp[i] /= 1.5 // 0 .. 0.999, below the top genuine 0.995 only for the best 7
	}
	pairs := make([]Pair, 0, len(genuine)+len(imp))
	for i := range genuine {
		pairs = append(pairs, Pair{A: "g/" + strconv.Itoa(i) + "a", B: "g/" + strconv.Itoa(i) + "b", Same: true})
	}
	for i := range imp {
		pairs = append(pairs, Pair{A: "i/" + strconv.Itoa(i) + "a", B: "i/" + strconv.Itoa(i) + "b"})
	}
	s := Scores{Kind: KindProbability, HigherIsMatch: true, Results: results(genuine, imp)}
	r, err := Evaluate(pairs, s, Options{Dataset: "grid", Date: tinyDate})
	if err != nil {
		t.Fatal(err)
	}
	if r.FoldScheme != SchemeRoundRobin || len(r.Accuracy.Folds) != 10 {
		t.Errorf("folds %s %d", r.FoldScheme, len(r.Accuracy.Folds))
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"TAR @ FAR=0.01", "50.00% (threshold", "FNMR @ FMR=0.001", "100.00% (threshold", "not enough data", "need 10000 impostor pairs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
