package enroll

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/facegate/facegate/infer/manifest"
)

func unit(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	Normalize(v)
	return v
}

// near returns a unit vector at cosine similarity about 1-eps from v.
func near(rng *rand.Rand, v []float32, eps float64) []float32 {
	n := unit(rng, len(v))
	out := make([]float32, len(v))
	for i := range v {
		out[i] = v[i] + float32(eps)*n[i]
	}
	Normalize(out)
	return out
}

func TestCompareMatchesDefinitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sc := Scorer{Metric: manifest.MetricEuclidean, Dim: 128, Head: &manifest.Head{Weight: -10, Bias: 6}}
	a, b := unit(rng, 128), unit(rng, 128)
	s := sc.Compare(a, b)
	var d2, cos float64
	for i := range a {
		d2 += float64(a[i]-b[i]) * float64(a[i]-b[i])
		cos += float64(a[i]) * float64(b[i])
	}
	if math.Abs(s.Distance-math.Sqrt(d2)) > 1e-5 || math.Abs(s.Similarity-cos) > 1e-5 {
		t.Fatalf("score %+v, want distance %v cosine %v", s, math.Sqrt(d2), cos)
	}
	if want := 1 / (1 + math.Exp(-(-10*s.Distance + 6))); math.Abs(s.Probability-want) > 1e-12 {
		t.Fatalf("probability %v, want %v", s.Probability, want)
	}
	if self := sc.Compare(a, a); self.Distance > 1e-3 || math.Abs(self.Similarity-1) > 1e-6 {
		t.Fatalf("self score %+v", self)
	}
	if !math.IsNaN((Scorer{Metric: manifest.MetricCosine, Dim: 128}).Compare(a, b).Probability) {
		t.Fatal("probability without a head should be NaN")
	}
}

func TestAccepts(t *testing.T) {
	s := Score{Distance: 0.5, Similarity: 0.875, Probability: 0.9}
	cases := []struct {
		th   manifest.Threshold
		want bool
	}{
		{manifest.Threshold{Score: "euclidean", Value: 0.6}, true},
		{manifest.Threshold{Score: "euclidean", Value: 0.4}, false},
		{manifest.Threshold{Score: "euclidean", Value: 0.5}, true},
		{manifest.Threshold{Score: "cosine", Value: 0.8}, true},
		{manifest.Threshold{Score: "cosine", Value: 0.9}, false},
		{manifest.Threshold{Score: "probability", Value: 0.95}, false},
		{manifest.Threshold{Score: "probability", Value: 0.5}, true},
	}
	for _, c := range cases {
		if got := Accepts(s, c.th); got != c.want {
			t.Errorf("Accepts(%+v, %+v) = %v", s, c.th, got)
		}
	}
}

func TestIdentifyAndVerify(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: 64})
	centres := map[string][]float32{}
	for _, id := range []string{"ada", "bob", "cyd", "dee"} {
		c := unit(rng, 64)
		centres[id] = c
		if err := m.Put(id, id, [][]float32{near(rng, c, 0.2), near(rng, c, 0.2), near(rng, c, 0.2)}); err != nil {
			t.Fatal(err)
		}
	}
	for id, c := range centres {
		probe := near(rng, c, 0.2)
		res, err := m.Identify(probe, 3)
		if err != nil {
			t.Fatal(err)
		}
		if res.Best.ID != id || res.Second == nil || res.Second.ID == id || res.Margin <= 0 || len(res.Ranked) != 3 {
			t.Fatalf("probe of %s: %+v", id, res)
		}
		if res.Margin != res.Second.Score.Distance-res.Best.Score.Distance {
			t.Fatalf("margin %v", res.Margin)
		}
		v, err := m.Verify(id, probe)
		if err != nil || v.Score.Distance != res.Best.Score.Distance {
			t.Fatalf("Verify(%s) = %+v, %v; Identify best %+v", id, v, err, res.Best)
		}
		other := "ada"
		if id == "ada" {
			other = "bob"
		}
		w, _ := m.Verify(other, probe)
		if w.Score.Distance <= v.Score.Distance {
			t.Fatalf("impostor %s closer (%v) than genuine %s (%v)", other, w.Score.Distance, id, v.Score.Distance)
		}
	}
}

func TestMeanTemplateCanWin(t *testing.T) {
	m := NewMatcher(Scorer{Metric: manifest.MetricCosine, Dim: 2})
	// Two templates at ±45°; a probe at 0° is closest to their mean.
	s := float32(math.Sqrt2 / 2)
	if err := m.Put("p", "", [][]float32{{s, s}, {s, -s}}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Verify("p", []float32{1, 0})
	if err != nil || r.Via != "mean" || math.Abs(r.Score.Similarity-1) > 1e-6 {
		t.Fatalf("%+v %v", r, err)
	}
	r, _ = m.Verify("p", []float32{s, s})
	if r.Via != "template 0" {
		t.Fatalf("%+v", r)
	}
}

func TestBadInput(t *testing.T) {
	m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: 3})
	if _, err := m.Identify([]float32{1, 0, 0}, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty gallery: %v", err)
	}
	for name, e := range map[string][]float32{
		"short":      {1, 0},
		"nan":        {float32(math.NaN()), 0, 0},
		"not normed": {1, 1, 0},
	} {
		if err := m.Put("x", "", [][]float32{e}); !errors.Is(err, ErrEmbedding) {
			t.Errorf("Put %s: %v", name, err)
		}
		if _, err := m.Verify("x", e); !errors.Is(err, ErrEmbedding) {
			t.Errorf("Verify %s: %v", name, err)
		}
	}
	if err := m.Put("x", "", nil); err == nil {
		t.Error("Put without templates accepted")
	}
	if _, err := m.Verify("nobody", []float32{1, 0, 0}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown subject: %v", err)
	}
	if err := m.Delete("nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
}

func TestDeleteErasesTemplates(t *testing.T) {
	m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: 2})
	tmpl := []float32{1, 0}
	if err := m.Put("a", "", [][]float32{tmpl}); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Get("a")
	stored := p.Templates[0]
	if err := m.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if stored[0] != 0 || m.Len() != 0 || len(m.IDs()) != 0 {
		t.Fatalf("after delete: template %v, len %d, ids %v", stored, m.Len(), m.IDs())
	}
	if tmpl[0] != 1 {
		t.Fatal("Put did not copy the caller's template")
	}
}

// TestIdentifyRanksLikeAFullSort: the single-pass top-k gives the ranking a
// full stable sort of every person would, for any k.
func TestIdentifyRanksLikeAFullSort(t *testing.T) {
	// Every third person with two templates, and (the fast path) one each.
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprintf("multi=%v", multi), func(t *testing.T) { identifyRanksLikeAFullSort(t, multi) })
	}
}

func identifyRanksLikeAFullSort(t *testing.T, multi bool) {
	rng := rand.New(rand.NewPCG(9, 10))
	m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: 16})
	var ids []string
	for i := range 600 { // more than two scan blocks
		id := fmt.Sprintf("p%03d", i)
		ids = append(ids, id)
		ts := [][]float32{unit(rng, 16)}
		if multi && i%3 == 0 {
			ts = append(ts, unit(rng, 16))
		}
		if err := m.Put(id, "", ts); err != nil {
			t.Fatal(err)
		}
	}
	dup, _ := m.Get("p007")
	if err := m.Put("p599", "", dup.Templates); err != nil { // a tie with p007
		t.Fatal(err)
	}
	for trial := range 20 {
		probe := unit(rng, 16)
		if trial == 0 {
			probe = dup.Templates[0]
		}
		var want []PersonMatch
		for _, id := range ids {
			p, _ := m.Get(id)
			want = append(want, m.scorePerson(p, probe))
		}
		slices.SortStableFunc(want, func(a, b PersonMatch) int { return cmp.Compare(b.Score.Similarity, a.Score.Similarity) })
		for _, k := range []int{1, 2, 5, 0} {
			got, err := m.Identify(probe, k)
			if err != nil {
				t.Fatal(err)
			}
			n := k
			if k == 0 {
				n = len(want)
			}
			if len(got.Ranked) != n || got.Second == nil || got.Second.ID != want[1].ID || got.Best.ID != want[0].ID {
				t.Fatalf("trial %d k %d: best %v second %v, want %s %s", trial, k, got.Best.ID, got.Second, want[0].ID, want[1].ID)
			}
			for i := range got.Ranked {
				if got.Ranked[i].ID != want[i].ID || got.Ranked[i].Via != want[i].Via {
					t.Fatalf("trial %d k %d rank %d: %+v, want %+v", trial, k, i, got.Ranked[i], want[i])
				}
			}
		}
	}
}

// TestPackedRowsFollowMutations: after any sequence of enrollments,
// re-enrollments with another number of templates (from the person's own
// stored views, as the gallery does) and deletions, every person reads back
// what was put, 1:N matching equals a brute-force float64 scan, and no
// deleted or replaced template is left anywhere in the matcher's arrays.
func TestPackedRowsFollowMutations(t *testing.T) {
	const dim = 24
	rng := rand.New(rand.NewPCG(11, 12))
	m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: dim})
	want := map[string][][]float32{}
	var gone [][]float32 // templates that must not be in memory any more
	for step := range 400 {
		id := fmt.Sprintf("p%02d", rng.IntN(40))
		old := m.vecs
		switch op := rng.IntN(10); {
		case op < 6: // enroll or replace
			n := 1 + rng.IntN(5)
			ts := make([][]float32, n)
			for i := range ts {
				ts[i] = unit(rng, dim)
			}
			if p, ok := m.Get(id); ok && op < 2 {
				// Re-enrollment adding a photo: the stored views come back in.
				ts = append(append([][]float32(nil), p.Templates...), ts[0])
				if len(ts) > MaxTemplates {
					ts = ts[:MaxTemplates]
				}
			}
			for _, t := range want[id] {
				if !slices.ContainsFunc(ts, func(u []float32) bool { return slices.Equal(t, u) }) {
					gone = append(gone, slices.Clone(t))
				}
			}
			cp := make([][]float32, len(ts))
			for i := range ts {
				cp[i] = slices.Clone(ts[i])
			}
			if err := m.Put(id, "", ts); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			want[id] = cp
		default:
			err := m.Delete(id)
			if _, ok := want[id]; !ok {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("step %d: delete unknown: %v", step, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			gone = append(gone, want[id]...)
			delete(want, id)
		}
		if len(old) > 0 && &old[:1][0] != &m.vecs[:1][0] {
			if slices.ContainsFunc(old[:cap(old)], func(v float32) bool { return v != 0 }) {
				t.Fatalf("step %d: the array left behind by a move still holds templates", step)
			}
		}
		checkMatcher(t, m, want, gone, rng)
	}
}

func checkMatcher(t *testing.T, m *Matcher, want map[string][][]float32, gone [][]float32, rng *rand.Rand) {
	t.Helper()
	dim := m.sc.Dim
	if m.Len() != len(want) || len(m.list) != len(want) {
		t.Fatalf("len %d / %d, want %d", m.Len(), len(m.list), len(want))
	}
	rows := 0
	for i, p := range m.list {
		if int(m.starts[i]) != rows || p.row != rows {
			t.Fatalf("%s: starts at row %d / %d, want %d", p.ID, m.starts[i], p.row, rows)
		}
		ts := want[p.ID]
		if len(p.Templates) != len(ts) {
			t.Fatalf("%s: %d templates, want %d", p.ID, len(p.Templates), len(ts))
		}
		for i := range ts {
			if !slices.Equal(p.Templates[i], ts[i]) {
				t.Fatalf("%s template %d differs", p.ID, i)
			}
		}
		mean := make([]float64, dim)
		for _, tm := range ts {
			for i, v := range tm {
				mean[i] += float64(v)
			}
		}
		var norm float64
		for _, v := range mean {
			norm += v * v
		}
		for i := range mean {
			if d := math.Abs(mean[i]/math.Sqrt(norm) - float64(p.Mean[i])); d > 1e-6 {
				t.Fatalf("%s: mean[%d] off by %g", p.ID, i, d)
			}
		}
		rows += p.rows
	}
	if len(m.starts) != len(m.list)+1 || int(m.starts[len(m.list)]) != rows {
		t.Fatalf("row starts %v for %d people, %d rows", m.starts, len(m.list), rows)
	}
	if len(m.vecs) != rows*dim {
		t.Fatalf("packed %d values for %d rows", len(m.vecs), rows)
	}
	all := m.vecs[:cap(m.vecs)]
	for _, g := range gone {
		for r := 0; r+dim <= len(all); r += dim {
			if slices.Equal(all[r:r+dim], g) {
				t.Fatalf("an erased template is still at row %d", r/dim)
			}
		}
	}
	if len(want) == 0 {
		return
	}
	probe := unit(rng, dim)
	if rng.IntN(2) == 0 { // sometimes exactly an enrolled template
		p := m.list[rng.IntN(len(m.list))]
		probe = slices.Clone(p.Templates[rng.IntN(len(p.Templates))])
	}
	bestID, bestD := "", math.Inf(-1)
	for _, p := range m.list {
		for _, tm := range append([][]float32{p.Mean}, p.Templates...) {
			var d float64
			for i := range tm {
				d += float64(tm[i]) * float64(probe[i])
			}
			if d > bestD+1e-5 {
				bestID, bestD = p.ID, d
			}
		}
	}
	id, err := m.Identify(probe, 3)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(id.Best.Score.Similarity-bestD) > 1e-5 {
		t.Fatalf("best %s at %.6f, brute force %s at %.6f", id.Best.ID, id.Best.Score.Similarity, bestID, bestD)
	}
}

func TestTooManyTemplates(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: 8})
	ts := make([][]float32, MaxTemplates+1)
	for i := range ts {
		ts[i] = unit(rng, 8)
	}
	if err := m.Put("a", "", ts); err == nil || m.Len() != 0 {
		t.Fatalf("%d templates: err %v, len %d", len(ts), err, m.Len())
	}
	if err := m.Put("a", "", ts[:MaxTemplates]); err != nil {
		t.Fatal(err)
	}
	if id, err := m.Identify(ts[MaxTemplates-1], 1); err != nil || id.Best.Via != fmt.Sprintf("template %d", MaxTemplates-1) {
		t.Fatalf("identify: %+v %v", id.Best, err)
	}
}
