package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/decision"
)

// synthTowers makes two towers over people with 1-4 photos: a cosine
// tower and a Euclidean one, each an identity centre plus independent
// noise, so fusing them must beat either.
func synthTowers(people int, rng *rand.Rand) ([]TowerEmbeddings, []string) {
	const dim = 24
	towers := []TowerEmbeddings{
		{Name: "a", Model: "model-a", Label: "a 1", Metric: KindCosine, Embeddings: map[string]Embedding{}},
		{Name: "b", Model: "model-b", Label: "b 1", Metric: KindEuclidean, Embeddings: map[string]Embedding{}},
	}
	var ids []string
	for p := range people {
		id := fmt.Sprintf("lfw__p%03d", p)
		ids = append(ids, id)
		n := 1 + p%4
		for t := range towers {
			c := make([]float64, dim)
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			for k := range n {
				v := make([]float32, dim)
				var s float64
				for i := range v {
					x := c[i] + 0.55*rng.NormFloat64()
					v[i] = float32(x)
					s += x * x
				}
				for i := range v { // unit length, as the models give
					v[i] /= float32(math.Sqrt(s))
				}
				towers[t].Embeddings[fmt.Sprintf("%s/%03d.jpg", id, k+1)] = Embedding{Vector: v}
			}
		}
	}
	// One image no tower acquired.
	for t := range towers {
		towers[t].Embeddings["lfw__p000/009.jpg"] = Embedding{Err: fmt.Errorf("no face"), NoFace: true}
	}
	return towers, ids
}

// synthLFW makes 5 folds of 10 same and 10 different pairs in the LFW
// block layout, each fold from its own people (those with 2+ photos).
func synthLFW(ids []string) []Pair {
	var pairs []Pair
	per := len(ids) / 5
	for f := range 5 {
		fold := ids[f*per : (f+1)*per]
		var multi []string
		for i, id := range fold {
			if (f*per+i)%4 != 0 {
				multi = append(multi, id)
			}
		}
		for i := range 10 {
			pairs = append(pairs, Pair{A: multi[i] + "/001.jpg", B: multi[i] + "/002.jpg", Same: true})
		}
		for i := range 10 {
			pairs = append(pairs, Pair{A: fold[i] + "/001.jpg", B: fold[i+1] + "/001.jpg", Same: false})
		}
	}
	return pairs
}

func TestFusionRunSynthetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	towers, ids := synthTowers(300, rng)
	dir := t.TempDir()
	cfg := FusionConfig{
		Towers: towers, LFW: synthLFW(ids), Extra: []Pair{{A: ids[1] + "/001.jpg", B: ids[1] + "/002.jpg", Same: true}, {A: ids[1] + "/001.jpg", B: ids[2] + "/001.jpg"}},
		Aliases: [][2]string{{ids[298], ids[299]}}, OutDir: dir, DecisionOut: filepath.Join(dir, "decision.json"),
		Command: "go test", Trials: 2, Sizes: []int{20, 100}, TailExceed: 1e-2,
	}
	rep, err := cfg.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Identities != 299 || rep.ImagesFTA != 1 {
		t.Errorf("identities %d (aliases merged: want 299), FTA %d", rep.Identities, rep.ImagesFTA)
	}
	acc := map[string]float64{}
	for _, v := range rep.Verification {
		acc[v.Towers] = v.AllEER
		// Every cross-identity pair of each fold's 40 images or so.
		if len(v.Accuracy.Folds) != 5 || v.AllImpostors < 1000 || v.AllGenuine < 50 || !v.AllFAR3.Enough {
			t.Errorf("%s: folds %d, impostors %d, genuine %d, FAR 1e-3 measurable %v", v.Towers, len(v.Accuracy.Folds), v.AllImpostors, v.AllGenuine, v.AllFAR3.Enough)
		}
	}
	if len(acc) != 3 || !(acc["a+b"] <= acc["a"] && acc["a+b"] <= acc["b"]) {
		t.Errorf("all-pairs EER by towers %v: fusion must beat each tower", acc)
	}
	cal, err := decision.Load(cfg.DecisionOut)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a+b", "a", "b"} {
		if _, err := cal.Threshold(key, 100, 1e-3); err != nil {
			t.Errorf("calibration %s: %v", key, err)
		}
		// The rule simulated on random galleries of 10 and 30 at least
		// (sizes under the 298 other identities; 100 only where 20
		// distinct multi-photo strangers reach its points), empirical
		// down to FPIR 2e-2 at least.
		g := cal.Visits[key].Galleries
		if len(g) < 2 || g[0].N != 10 || g[1].N != 30 || g[0].TailExceed > 0.02 {
			t.Errorf("calibration %s: gallery curves %+v", key, g)
		}
	}
	if len(rep.OpenSet) != 6 {
		t.Fatalf("%d open-set results, want 3 subsets x 2 sizes", len(rep.OpenSet))
	}
	fnir := map[string]float64{}
	for _, o := range rep.OpenSet {
		if o.N == 100 {
			fnir[o.Towers] = o.Calibrated[1].FNIR
		}
		if o.Mated == 0 || o.NonMated == 0 || o.NonMatedMulti == 0 || len(o.DET) < 100 || len(o.Calibrated) != 2 {
			t.Fatalf("%s N=%d: %+v", o.Towers, o.N, o)
		}
		for _, p := range o.Calibrated {
			// A few hundred non-mated visits: the 1e-2 target may show
			// a handful, never many.
			if p.FPIR > 3*p.Target+3/float64(o.NonMated) {
				t.Errorf("%s N=%d: FPIR %.4f at target %g", o.Towers, o.N, p.FPIR, p.Target)
			}
		}
	}
	if !(fnir["a+b"] < 0.2 && fnir["a+b"] < fnir["a"] && fnir["a+b"] < fnir["b"]) {
		t.Errorf("FNIR at FPIR 1e-3, N = 100, by towers: %v; fusion must beat each tower", fnir)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FNMR@FMR1e-4", "a+b", "open-set 1:N"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestFitLogisticRecoversWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var z [][]float64
	var y []bool
	for range 20000 {
		x := []float64{rng.NormFloat64() * 2, rng.NormFloat64() * 2}
		p := decision.Sigmoid(-1 + 1.5*x[0] + 0.5*x[1])
		z, y = append(z, x), append(y, rng.Float64() < p)
	}
	h, err := fitLogistic(z, y)
	if err != nil {
		t.Fatal(err)
	}
	// Class weighting moves the bias; the weights stay.
	if math.Abs(h.Weights[0]-1.5) > 0.1 || math.Abs(h.Weights[1]-0.5) > 0.06 {
		t.Errorf("weights %v, want [1.5 0.5]", h.Weights)
	}
	if _, err := fitLogistic(z[:3], []bool{true, true, true}); err == nil {
		t.Error("one class accepted")
	}
}

func TestAccThreshold(t *testing.T) {
	th, acc := accThreshold([]float64{1, 2, 3, 4}, []bool{false, false, true, true})
	if th != 2.5 || acc != 1 {
		t.Errorf("threshold %v accuracy %v, want 2.5 and 1", th, acc)
	}
}
