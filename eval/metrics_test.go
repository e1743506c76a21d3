package eval

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

const eps = 1e-12

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9 }

// results builds acquired results from genuine and impostor scores.
func results(genuine, impostor []float64) []Result {
	var rs []Result
	for _, v := range genuine {
		rs = append(rs, Result{Score: v, Same: true, Acquired: true})
	}
	for _, v := range impostor {
		rs = append(rs, Result{Score: v, Acquired: true})
	}
	return rs
}

func negate(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = -x
	}
	return out
}

func TestAUC(t *testing.T) {
	for _, tc := range []struct {
		name          string
		genuine, imp  []float64
		higherIsMatch bool
		want          float64
	}{
		{"perfect", []float64{0.9, 0.8, 0.7}, []float64{0.1, 0.2}, true, 1},
		{"reversed", []float64{0.1, 0.2}, []float64{0.9, 0.8, 0.7}, true, 0},
		{"all tied", []float64{0.5, 0.5, 0.5}, []float64{0.5, 0.5}, true, 0.5},
		{"distance perfect", []float64{0.3, 0.4}, []float64{1.1, 1.2, 0.9}, false, 1},
		{"distance reversed", []float64{1.1, 1.2}, []float64{0.3}, false, 0},
		// Mann-Whitney by hand: (0.9>all 3) + (0.5 vs 0.5 tie: 1/2, > 0.1, < 0.7) = 3 + 1.5 = 4.5 of 6.
		{"partial with tie", []float64{0.9, 0.5}, []float64{0.1, 0.5, 0.7}, true, 4.5 / 6},
		// Random-like interleaving: genuine and impostor scores identical sets.
		{"identical distributions", []float64{0.1, 0.4, 0.7}, []float64{0.1, 0.4, 0.7}, true, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Scores{Kind: "test", HigherIsMatch: tc.higherIsMatch, Results: results(tc.genuine, tc.imp)}
			roc, err := ROC(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := AUC(roc); !near(got, tc.want) {
				t.Fatalf("AUC = %v, want %v", got, tc.want)
			}
			first, last := roc[0], roc[len(roc)-1]
			if first.FAR != 0 || first.TAR != 0 || last.FAR != 1 || last.TAR != 1 {
				t.Fatalf("ROC runs %+v..%+v, want (0,0)..(1,1)", first, last)
			}
			for i := 1; i < len(roc); i++ {
				if roc[i].FAR < roc[i-1].FAR || roc[i].TAR < roc[i-1].TAR {
					t.Fatalf("ROC not monotone at %d: %+v", i, roc)
				}
			}
		})
	}
}

func TestROCThresholdsInScoreUnits(t *testing.T) {
	// Distances: genuine 0.3, impostor 0.9. Accepting distance <= 0.3 gives (0, 1).
	s := Scores{Kind: KindEuclidean, Results: results([]float64{0.3}, []float64{0.9})}
	roc, err := ROC(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []ROCPoint{{math.Inf(-1), 0, 0}, {0.3, 0, 1}, {0.9, 1, 1}}
	if len(roc) != len(want) {
		t.Fatalf("ROC %+v, want %+v", roc, want)
	}
	for i := range want {
		if roc[i] != want[i] {
			t.Fatalf("ROC[%d] = %+v, want %+v", i, roc[i], want[i])
		}
	}
	b, err := json.Marshal(roc)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `[{"threshold":null,"far":0,"tar":0},{"threshold":0.3,"far":0,"tar":1},{"threshold":0.9,"far":1,"tar":1}]` {
		t.Fatalf("JSON %s", got)
	}
	var back []ROCPoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(back[0].Threshold, 1) || back[1] != roc[1] {
		t.Fatalf("unmarshal: %+v", back)
	}
}

func TestEER(t *testing.T) {
	for _, tc := range []struct {
		name         string
		genuine, imp []float64
		want         float64
	}{
		// ROC (0,0) (0,.5) (.5,1) (1,1): FRR-FAR goes .5 -> -.5 between the
		// 2nd and 3rd points; halfway is FAR .25 = FRR .25.
		{"interpolated", []float64{3, 1}, []float64{1, 0}, 0.25},
		{"separable", []float64{3, 2}, []float64{1, 0}, 0},
		{"reversed", []float64{0, 1}, []float64{2, 3}, 1},
		// Crossing exactly at a point: (0,.5) (.5,.5): FRR = FAR = .5.
		{"at a point", []float64{3, 1}, []float64{2, 0}, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roc, err := ROC(Scores{Kind: "test", HigherIsMatch: true, Results: results(tc.genuine, tc.imp)})
			if err != nil {
				t.Fatal(err)
			}
			if got := EER(roc); !near(got, tc.want) {
				t.Fatalf("EER = %v, want %v (ROC %+v)", got, tc.want, roc)
			}
		})
	}
}

// impostorGrid is 1000 impostor similarities 0.000 .. 0.999 and 100 genuine
// ones: 50 at 0.995 and 50 at 0.5.
func impostorGrid(n int) (genuine, imp []float64) {
	for i := range n {
		imp = append(imp, float64(i)/1000)
	}
	for i := range 100 {
		if i < 50 {
			genuine = append(genuine, 0.995)
		} else {
			genuine = append(genuine, 0.5)
		}
	}
	return genuine, imp
}

func TestOperatingPoints(t *testing.T) {
	genuine, imp := impostorGrid(1000)
	for _, tc := range []struct {
		name          string
		higherIsMatch bool
		target        float64
		wantFM        int
		wantTAR       float64
		// the impostor score the threshold must lie just beyond
		beyond float64
	}{
		// 1e-2 of 1000 allows 10 false matches: 0.990..0.999 accepted, the
		// 11th best (0.989) rejected; genuine 0.995 accepted, 0.5 not.
		{"similarity 1e-2", true, 1e-2, 10, 0.5, 0.989},
		// 1e-3 allows 1: 0.999 accepted, 0.998 rejected; 0.995 rejected too.
		{"similarity 1e-3", true, 1e-3, 1, 0, 0.998},
		{"distance 1e-2", false, 1e-2, 10, 0.5, -0.989},
		{"distance 1e-3", false, 1e-3, 1, 0, -0.998},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, im := genuine, imp
			if !tc.higherIsMatch {
				g, im = negate(g), negate(im)
			}
			s := Scores{Kind: "test", HigherIsMatch: tc.higherIsMatch, Results: results(g, im)}
			for _, level := range []string{LevelSystem, LevelAlgorithm} {
				var o OperatingPoint
				var err error
				if level == LevelSystem {
					o, err = AtFAR(s, tc.target)
				} else {
					o, err = AtFMR(s, tc.target)
				}
				if err != nil {
					t.Fatal(err)
				}
				if !o.Enough || o.Err() != nil || o.Level != level {
					t.Fatalf("%s: not enough data: %+v", level, o)
				}
				if o.FalseMatches != tc.wantFM || !near(*o.Achieved, float64(tc.wantFM)/1000) {
					t.Errorf("%s: %d false matches (%v), want %d", level, o.FalseMatches, *o.Achieved, tc.wantFM)
				}
				if !near(*o.TAR, tc.wantTAR) || !near(*o.FNMR, 1-tc.wantTAR) {
					t.Errorf("%s: TAR %v FNMR %v, want TAR %v", level, *o.TAR, *o.FNMR, tc.wantTAR)
				}
				th := *o.Threshold
				if math.Abs(th-tc.beyond) > 1e-15 || Matches(tc.beyond, th, tc.higherIsMatch) {
					t.Errorf("%s: threshold %v should be just beyond %v", level, th, tc.beyond)
				}
				// Decisions at the threshold reproduce the counts.
				fm := 0
				for _, v := range im {
					if Matches(v, th, tc.higherIsMatch) {
						fm++
					}
				}
				if fm != o.FalseMatches {
					t.Errorf("%s: Matches accepts %d impostors at the threshold, point says %d", level, fm, o.FalseMatches)
				}
			}
		})
	}
}

func TestOperatingPointTies(t *testing.T) {
	// Three impostors tie at the top; 1e-2 of 200 allows 2, but a threshold
	// cannot split a tie, so none is accepted.
	var imp []float64
	for i := range 200 {
		imp = append(imp, float64(i)/1000)
	}
	imp[0], imp[1], imp[2] = 0.5, 0.5, 0.5
	s := Scores{Kind: "test", HigherIsMatch: true, Results: results([]float64{0.6, 0.5, 0.4}, imp)}
	o, err := AtFMR(s, 1e-2)
	if err != nil {
		t.Fatal(err)
	}
	if o.FalseMatches != 0 || *o.Threshold <= 0.5 || !near(*o.TAR, 1.0/3) {
		t.Fatalf("got %+v (threshold %v, TAR %v)", o, *o.Threshold, *o.TAR)
	}
}

func TestNotEnoughData(t *testing.T) {
	for _, tc := range []struct {
		impostors int
		target    float64
		enough    bool
		need      int
	}{
		{999, 1e-3, false, 1000},
		{1000, 1e-3, true, 1000},
		{99, 1e-2, false, 100},
		{100, 1e-2, true, 100},
		{9999, 1e-4, false, 10000},
	} {
		genuine, imp := impostorGrid(tc.impostors)
		s := Scores{Kind: "test", HigherIsMatch: true, Results: results(genuine, imp)}
		o, err := AtFMR(s, tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if o.Enough != tc.enough || o.Need != tc.need || o.Impostors != tc.impostors {
			t.Errorf("%d impostors at %g: enough=%v need=%d, want %v %d", tc.impostors, tc.target, o.Enough, o.Need, tc.enough, tc.need)
		}
		if tc.enough {
			continue
		}
		if o.Threshold != nil || o.TAR != nil || o.FNMR != nil || o.Achieved != nil {
			t.Errorf("not-enough point carries numbers: %+v", o)
		}
		if !errors.Is(o.Err(), ErrNotEnoughData) || !strings.Contains(o.Note, "not enough data") {
			t.Errorf("not-enough point: err %v note %q", o.Err(), o.Note)
		}
		b, _ := json.Marshal(o)
		if strings.Contains(string(b), `"threshold"`) || strings.Contains(string(b), `"tar"`) {
			t.Errorf("JSON of a not-enough point has numbers: %s", b)
		}
	}
	if _, err := AtFMR(Scores{Kind: "test", HigherIsMatch: true, Results: results([]float64{1}, []float64{0})}, 0); err == nil {
		t.Error("target 0 accepted")
	}
}

func TestLevels(t *testing.T) {
	// 1000 acquired impostors plus 10 that failed to acquire; 100 genuine of
	// which 10 failed. System level counts all, algorithm level only
	// acquired comparisons.
	genuine, imp := impostorGrid(1000)
	rs := results(genuine, imp)
	for range 10 {
		rs = append(rs, Result{Same: true}, Result{Same: false})
	}
	s := Scores{Kind: "test", HigherIsMatch: true, Results: rs}
	sys, _ := AtFAR(s, 1e-3)
	alg, _ := AtFMR(s, 1e-3)
	if sys.Impostors != 1010 || sys.Genuine != 110 || alg.Impostors != 1000 || alg.Genuine != 100 {
		t.Fatalf("system %d/%d, algorithm %d/%d", sys.Impostors, sys.Genuine, alg.Impostors, alg.Genuine)
	}
	// System: 1e-3 of 1010 still allows 1 false match; genuine 0.995 below
	// the 0.998 cut, so TAR 0; FTA genuine are rejections.
	if sys.FalseMatches != 1 || *sys.TAR != 0 {
		t.Errorf("system point %+v", sys)
	}
	s1, _ := AtFAR(s, 1e-2)
	a1, _ := AtFMR(s, 1e-2)
	// 1e-2: 10 false matches at both levels; TAR 50/110 vs 50/100.
	if !near(*s1.TAR, 50.0/110) || !near(*a1.TAR, 0.5) {
		t.Errorf("TAR system %v, algorithm %v", *s1.TAR, *a1.TAR)
	}
}

func TestCrossValidateHeldOut(t *testing.T) {
	// Two folds. Fold 1 alone is best split at 0.55 (4/4) but fold 2,
	// the training set for fold 1, is best split between 0.7 and 0.8
	// (threshold 0.75), which misclassifies fold 1's genuine 0.6 and 0.7.
	fold1 := results([]float64{0.6, 0.7}, []float64{0.5, 0.1})
	fold2 := results([]float64{0.8, 0.9}, []float64{0.7, 0.2})
	s := Scores{Kind: KindCosine, HigherIsMatch: true, Results: append(fold1, fold2...)}
	plan := FoldPlan{Folds: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}}}
	acc, err := CrossValidate(s, plan)
	if err != nil {
		t.Fatal(err)
	}
	f1, f2 := acc.Folds[0], acc.Folds[1]
	if !near(f1.Threshold, 0.75) || !near(f1.Accuracy, 0.5) || !near(f1.TrainAccuracy, 1) {
		t.Errorf("fold 1: %+v, want threshold 0.75 from fold 2, accuracy 0.5", f1)
	}
	// Fold 2 trained on fold 1: best plateau (0.5, 0.6] -> 0.55; fold 2's
	// impostor 0.7 is then accepted.
	if !near(f2.Threshold, 0.55) || !near(f2.Accuracy, 0.75) {
		t.Errorf("fold 2: %+v, want threshold 0.55, accuracy 0.75", f2)
	}
	if !near(acc.Mean, 0.625) {
		t.Errorf("mean %v", acc.Mean)
	}
	// Std: deviations ±0.125 -> sample std sqrt(2*0.125²/1), population 0.125.
	if !near(acc.Std, math.Sqrt(2)*0.125) || !near(acc.StdPop, 0.125) || !near(acc.StdErr, 0.125) {
		t.Errorf("std %v pop %v se %v", acc.Std, acc.StdPop, acc.StdErr)
	}

	// The same with distances (lower = match) gives the same decisions.
	d := Scores{Kind: KindEuclidean, Results: results(negate([]float64{0.6, 0.7}), negate([]float64{0.5, 0.1}))}
	d.Results = append(d.Results, results(negate([]float64{0.8, 0.9}), negate([]float64{0.7, 0.2}))...)
	dacc, err := CrossValidate(d, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !near(dacc.Folds[0].Threshold, -0.75) || dacc.Mean != acc.Mean {
		t.Errorf("distance: %+v", dacc)
	}
}

func TestBestThresholdRules(t *testing.T) {
	for _, tc := range []struct {
		name         string
		genuine, imp []float64
		want         float64
	}{
		{"midpoint", []float64{0.8, 0.9}, []float64{0.2, 0.4}, 0.6},
		// Genuine and impostor tie at 0.5, so (0.4, 0.5] and (0.5, 0.8]
		// both reach 3/4: one plateau from 0.4 to 0.8, midpoint 0.6.
		{"plateau midpoint", []float64{0.8, 0.5}, []float64{0.5, 0.4}, 0.6},
		// Two disjoint plateaus: (0.1,0.2] and (0.3,0.4] reach 4/5; the lowest is used.
		{"lowest plateau", []float64{0.2, 0.4, 0.6}, []float64{0.1, 0.3}, 0.15},
		// Everything genuine: accept all; threshold = lowest score.
		{"unbounded below", []float64{0.3, 0.7}, nil, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Scores{Kind: "test", HigherIsMatch: true}
			got, _, err := bestThreshold(s, results(tc.genuine, tc.imp))
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tc.want) {
				t.Fatalf("threshold %v, want %v", got, tc.want)
			}
		})
	}
	// Everything impostor: reject all; threshold just above the highest score.
	got, acc, _ := bestThreshold(Scores{HigherIsMatch: true}, results(nil, []float64{0.3, 0.7}))
	if got <= 0.7 || got-0.7 > eps || acc != 1 {
		t.Fatalf("reject-all threshold %v acc %v", got, acc)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Scores
	}{
		{"no impostors", Scores{Kind: "x", HigherIsMatch: true, Results: results([]float64{1}, nil)}},
		{"NaN", Scores{Kind: "x", HigherIsMatch: true, Results: results([]float64{math.NaN()}, []float64{0})}},
		{"Inf", Scores{Kind: "x", HigherIsMatch: true, Results: results([]float64{math.Inf(1)}, []float64{0})}},
		{"euclidean upside down", Scores{Kind: KindEuclidean, HigherIsMatch: true, Results: results([]float64{1}, []float64{0})}},
		{"cosine upside down", Scores{Kind: KindCosine, HigherIsMatch: false, Results: results([]float64{1}, []float64{0})}},
	} {
		if err := tc.s.Validate(); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// A NaN score on a pair that failed to acquire is ignored.
	s := Scores{Kind: KindProbability, HigherIsMatch: true, Results: append(results([]float64{1}, []float64{0}), Result{Score: math.NaN()})}
	if err := s.Validate(); err != nil {
		t.Errorf("FTA pair with NaN score: %v", err)
	}
}

func TestScoreEmbeddings(t *testing.T) {
	pairs := []Pair{
		{A: "a1", B: "a2", Same: true, Line: 1},
		{A: "a1", B: "b1", Line: 2},
		{A: "c1", B: "a2", Line: 3},
	}
	emb := map[string][]float32{"a1": {1, 0}, "a2": {0.6, 0.8}, "b1": {0, 1}, "c1": nil}
	s, failed, err := ScoreEmbeddings(pairs, emb, KindCosine)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.Results[0].Score-0.6) > 1e-6 || !near(s.Results[1].Score, 0) || s.Results[2].Acquired || !s.HigherIsMatch {
		t.Errorf("cosine: %+v", s)
	}
	if len(failed) != 1 || failed[0] != "c1" {
		t.Errorf("failed %v", failed)
	}
	s, _, err = ScoreEmbeddings(pairs, emb, KindEuclidean)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s.Results[0].Score-math.Sqrt(0.16+0.64)) > 1e-6 || math.Abs(s.Results[1].Score-math.Sqrt2) > 1e-6 || s.HigherIsMatch {
		t.Errorf("euclidean: %+v", s)
	}
	if _, _, err := ScoreEmbeddings(pairs, emb, KindProbability); err == nil {
		t.Error("probability accepted")
	}
	emb["c1"] = []float32{1, 0, 0}
	if _, _, err := ScoreEmbeddings(pairs, emb, KindCosine); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("size mismatch: %v", err)
	}
}
