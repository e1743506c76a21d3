package eval

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// idFixture: identities A..E with three images each (X1, X2, X3). Same
// identity scores 0.8, different 0.1, except: B3 looks like A1 (0.95),
// C2 ties with D1 (0.8), unknown E1 looks like A1 (0.7).
func idFixture() ([]Sample, func(i, j int) float64) {
	var samples []Sample
	for _, id := range []string{"E", "B", "A", "D", "C"} { // unsorted on purpose
		for n := 3; n >= 1; n-- {
			samples = append(samples, Sample{Identity: id, Name: fmt.Sprintf("%s%d", id, n), Acquired: true})
		}
	}
	special := map[[2]string]float64{{"B3", "A1"}: 0.95, {"C2", "D1"}: 0.8, {"E1", "A1"}: 0.7}
	sim := func(i, j int) float64 {
		a, b := samples[i], samples[j]
		if v, ok := special[[2]string{a.Name, b.Name}]; ok {
			return v
		}
		if v, ok := special[[2]string{b.Name, a.Name}]; ok {
			return v
		}
		if a.Identity == b.Identity {
			return 0.8
		}
		return 0.1
	}
	return samples, sim
}

func ptr(v float64) *float64 { return &v }

func TestIdentify(t *testing.T) {
	type want struct {
		k, ids, probes, hits int
		rank1                float64
		fpir, fnir           float64 // NaN: not measured
	}
	nan := math.NaN()
	for _, tc := range []struct {
		name      string
		distance  bool
		threshold *float64
		fta       string // sample name without a face
		want      []want
	}{
		{
			// K=1: B3 goes to A, C2 ties with D: 6/8. E1 passes 0.5 at A1.
			// K=2: only B3 misses: 3/4.
			name: "threshold 0.5", threshold: ptr(0.5),
			want: []want{{1, 4, 8, 6, 0.75, 1.0 / 3, 0.25}, {2, 4, 4, 3, 0.75, 1.0 / 3, 0.25}},
		},
		{
			name: "distance direction", distance: true, threshold: ptr(-0.5),
			want: []want{{1, 4, 8, 6, 0.75, 1.0 / 3, 0.25}, {2, 4, 4, 3, 0.75, 1.0 / 3, 0.25}},
		},
		{
			// Hits score 0.8 < 0.85: every mated probe is a false negative.
			name: "strict threshold", threshold: ptr(0.85),
			want: []want{{1, 4, 8, 6, 0.75, 0, 1}, {2, 4, 4, 3, 0.75, 0, 1}},
		},
		{
			name: "closed set only",
			want: []want{{1, 4, 8, 6, 0.75, nan, nan}, {2, 4, 4, 3, 0.75, nan, nan}},
		},
		{
			// D3 has no face: a mated probe that misses (K=1: 5/8, K=2: 2/4).
			name: "probe FTA", threshold: ptr(0.5), fta: "D3",
			want: []want{{1, 4, 8, 5, 5.0 / 8, 1.0 / 3, 3.0 / 8}, {2, 4, 4, 2, 0.5, 1.0 / 3, 0.5}},
		},
		{
			// A1 has no face: A enrols from A2 on and A1 becomes a missed
			// probe. Neither B3 nor E1 resembles A's template any more.
			// K=1 misses A1 and C2 (tie): 6/8. K=2 (A enrols A2, A3)
			// misses A1 only: 3/4. K=3: A has 2 acquired images, the others
			// no image left to probe: nobody enrolled.
			name: "enrolment FTA", threshold: ptr(0.5), fta: "A1",
			want: []want{{1, 4, 8, 6, 0.75, 0, 0.25}, {2, 4, 4, 3, 0.75, 0, 0.25}, {3, 0, 0, 0, 0, nan, nan}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			samples, sim := idFixture()
			for i := range samples {
				if samples[i].Name == tc.fta {
					samples[i].Acquired = false
				}
			}
			if tc.distance {
				s := sim
				sim = func(i, j int) float64 { return -s(i, j) }
			}
			ks := make([]int, len(tc.want))
			for i, w := range tc.want {
				ks[i] = w.k
			}
			got, err := Identify(samples, BestOf(sim, !tc.distance), IdentifyOptions{Ks: ks, HigherIsMatch: !tc.distance, Threshold: tc.threshold})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.K != w.k || g.Identities != w.ids || g.Probes != w.probes || g.Rank1Correct != w.hits || !near(g.Rank1, w.rank1) {
					t.Errorf("K=%d: %+v, want %+v", w.k, g, w)
				}
				if g.Identities < 2 {
					if g.Note == "" {
						t.Errorf("K=%d: no note for an empty gallery", w.k)
					}
					continue
				}
				if g.UnknownIdentities != 1 || g.UnknownProbes != 3 {
					t.Errorf("K=%d: unknowns %d/%d, want 1 identity, 3 probes", w.k, g.UnknownIdentities, g.UnknownProbes)
				}
				check := func(name string, got *float64, want float64) {
					if math.IsNaN(want) != (got == nil) || (got != nil && !near(*got, want)) {
						t.Errorf("K=%d: %s = %v, want %v", w.k, name, got, want)
					}
				}
				check("FPIR", g.FPIR, w.fpir)
				check("FNIR", g.FNIR, w.fnir)
			}
		})
	}
}

func TestIdentifyUnknownSelection(t *testing.T) {
	samples, sim := idFixture()
	got, err := Identify(samples, BestOf(sim, true), IdentifyOptions{Ks: []int{1}, HigherIsMatch: true, UnknownEvery: -1, Threshold: ptr(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	// No unknowns: all five enrolled, 10 probes; FPIR unmeasured.
	if g := got[0]; g.Identities != 5 || g.Probes != 10 || g.FPIR != nil || g.Note == "" {
		t.Errorf("%+v", g)
	}
	got, _ = Identify(samples, BestOf(sim, true), IdentifyOptions{Ks: []int{1}, HigherIsMatch: true, UnknownEvery: 2})
	// Sorted A B C D E: B and D unknown.
	if g := got[0]; g.Identities != 3 || g.UnknownIdentities != 2 || g.UnknownProbes != 6 {
		t.Errorf("%+v", g)
	}
	if _, err := Identify(samples, BestOf(sim, true), IdentifyOptions{Ks: []int{0}}); err == nil {
		t.Error("K=0 accepted")
	}
	nan := func(int, []int) float64 { return math.NaN() }
	if _, err := Identify(samples, nan, IdentifyOptions{Ks: []int{1}}); err == nil {
		t.Error("NaN score accepted")
	}
}

func TestTemplateScorer(t *testing.T) {
	emb := [][]float32{{1, 0}, {0, 1}, {0.6, 0.8}, nil}
	sc, err := TemplateScorer(emb, KindCosine)
	if err != nil {
		t.Fatal(err)
	}
	// Mean of (1,0) and (0,1) normalised is (.707,.707); cosine with (.6,.8) = .98995.
	if got := sc(2, []int{0, 1}); math.Abs(got-(0.6+0.8)/math.Sqrt2) > 1e-6 {
		t.Errorf("cosine %v", got)
	}
	sc, _ = TemplateScorer(emb, KindEuclidean)
	if got := sc(2, []int{2}); got > 1e-6 {
		t.Errorf("euclidean to itself %v", got)
	}
	// Cached templates stay correct across enrolled sets.
	sc, _ = TemplateScorer(emb, KindCosine)
	for range 2 {
		if a, b := sc(2, []int{0}), sc(2, []int{1}); math.Abs(a-0.6) > 1e-6 || math.Abs(b-0.8) > 1e-6 {
			t.Errorf("cached cosine %v %v, want 0.6 0.8", a, b)
		}
	}
	if got := sc(2, []int{0, 3}); !math.IsNaN(got) {
		t.Errorf("missing enrolled embedding scored %v", got)
	}
	if _, err := TemplateScorer(emb, KindProbability); err == nil {
		t.Error("probability accepted")
	}
}

func TestIdentificationTable(t *testing.T) {
	samples, sim := idFixture()
	res, err := Identify(samples, BestOf(sim, true), IdentifyOptions{Ks: []int{1, 3}, HigherIsMatch: true, Threshold: ptr(0.5)})
	if err != nil {
		t.Fatal(err)
	}
	pairs, s, failed := loadTiny(t)
	r, err := Evaluate(pairs, s, Options{Dataset: "tiny", FailedImages: failed})
	if err != nil {
		t.Fatal(err)
	}
	r.Identification = res
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"identification (enrol first K images", "75.00%", "33.33%", "25.00%", "not enough data: 0 identities can be enrolled with K=3"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if got := r.String(); !strings.Contains(got, "tiny: accuracy 66.67% ± 8.33% (s.e.)") {
		t.Errorf("String() = %q", got)
	}
}
