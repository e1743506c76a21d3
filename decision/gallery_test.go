package decision

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
)

// TestFitGalleryCurve: each point's threshold is exceeded by at most its
// FPIR of the (visit, gallery) levels, sits at the level distribution's
// quantile and is reached by MinCurveStrangers people or more; the
// exponential tail beyond has the levels' scale.
func TestFitGalleryCurve(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	levels := make([][]float64, 3000)
	who := make([]int, len(levels))
	for v := range levels {
		who[v] = v / 3 // three visits per person
		levels[v] = make([]float64, 40)
		for g := range levels[v] {
			levels[v][g] = rng.ExpFloat64() // P(level ≥ t) = e^{-t}
			if g%4 == 0 {
				levels[v][g] = math.Inf(-1) // a gallery where the margin is never met
			}
		}
	}
	c, err := FitGalleryCurve(100, levels, who)
	if err != nil {
		t.Fatal(err)
	}
	if c.N != 100 || c.Visits != 3000 || c.Galleries != 40 || len(c.Points) < 4 {
		t.Fatalf("curve %+v", c)
	}
	// 3/4 of the galleries can grant: P = 0.75 e^{-t}.
	want := func(e float64) float64 { return math.Log(0.75 / e) }
	for _, p := range append(c.Points, TailPoint{Exceed: c.TailExceed, Logit: c.TailLogit}) {
		n, seen := 0, map[int]bool{}
		for v, ls := range levels {
			for _, l := range ls {
				if l >= p.Logit {
					n++
					seen[who[v]] = true
				}
			}
		}
		if frac := float64(n) / float64(3000*40); frac > p.Exceed {
			t.Errorf("point %+v: %v of the levels reach it", p, frac)
		}
		if math.Abs(p.Logit-want(p.Exceed)) > 0.25 {
			t.Errorf("point %+v: logit %v, want about %v", p, p.Logit, want(p.Exceed))
		}
		if len(seen) < MinCurveStrangers {
			t.Errorf("point %+v: reached by %d people", p, len(seen))
		}
	}
	if math.Abs(c.TailScale-1) > 0.25 {
		t.Errorf("tail scale %v, want about 1", c.TailScale)
	}
	if got := c.at(1e-6); math.Abs(got-want(1e-6)) > 1 {
		t.Errorf("tail at 1e-6: %v, want about %v", got, want(1e-6))
	}
	// Only two people ever reach a level: no curve rests on them.
	for v := range levels {
		for g := range levels[v] {
			levels[v][g] = math.Inf(-1)
			if who[v] < 2 {
				levels[v][g] = 5 + float64(g)/100
			}
		}
	}
	if _, err := FitGalleryCurve(100, levels, who); !errors.Is(err, ErrFewStrangers) {
		t.Errorf("two strangers: err %v", err)
	}
	if _, err := FitGalleryCurve(100, [][]float64{{1, 2}, {1}}, []int{0, 1}); err == nil {
		t.Error("ragged levels accepted")
	}
	if _, err := FitGalleryCurve(100, [][]float64{{1, math.NaN()}}, []int{0}); err == nil {
		t.Error("NaN level accepted")
	}
	if _, err := FitGalleryCurve(100, [][]float64{{1, 2}}, nil); err == nil {
		t.Error("levels without their strangers accepted")
	}
}

func curveModel() VisitModel {
	// Independence model: P(peak ≥ t) = 0.5 e^{-t/0.1} beyond t = 0.
	return VisitModel{MaxFrames: 3, Samples: 1000, TailExceed: 0.5, TailLogit: 0, TailScale: 0.1, Margin: 0.5,
		Galleries: []GalleryCurve{
			{N: 10, Visits: 100, Galleries: 10, Points: []TailPoint{{0.1, 1}, {0.01, 2}}, TailExceed: 1e-3, TailLogit: 3, TailScale: 0.5},
			{N: 100, Visits: 100, Galleries: 10, Points: []TailPoint{{0.1, 2}}, TailExceed: 0.01, TailLogit: 3, TailScale: 0.5},
		}}
}

func TestThresholdFromCurves(t *testing.T) {
	v := curveModel()
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	ub := func(n int, fpir float64) float64 { return v.Quantile(PerIdentity(n, fpir)) }
	for _, tc := range []struct {
		name string
		n    int
		fpir float64
		want float64
	}{
		{"on a point", 10, 0.01, 2},
		{"log-linear in FPIR", 10, math.Sqrt(0.1 * 0.01), 1.5},
		{"above the first point", 10, 0.5, 1},
		{"tail start", 100, 0.01, 3},
		{"exponential tail", 10, 1e-4, 3 + 0.5*math.Log(10)},
		{"log-linear in N", 32, 0.01, 2 + math.Log(3.2)/math.Log(10)},
		{"log-linear in N, in the tails", 50, 1e-3, 3 + math.Log(5)/math.Log(10)*0.5*math.Log(10)},
		{"below the smallest size: independence, capped by the smallest size's curve", 5, 0.01, math.Min(ub(5, 0.01), 2)},
		{"above the largest size: independence, at least the largest size's curve", 1000, 0.01, math.Max(ub(1000, 0.01), 3)},
	} {
		if got := v.Threshold(tc.n, tc.fpir); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: Threshold(%d, %g) = %v, want %v", tc.name, tc.n, tc.fpir, got, tc.want)
		}
	}
	// The threshold never falls as the target tightens or the gallery grows
	// (within the curves' sizes).
	for _, n := range []int{10, 20, 50, 100} {
		prev := math.Inf(-1)
		for _, f := range []float64{0.2, 0.1, 0.05, 0.01, 3e-3, 1e-3, 5e-4, 1e-4, 1e-6} {
			th := v.Threshold(n, f)
			if th < prev {
				t.Errorf("N=%d: threshold %v at FPIR %g below %v at the looser target", n, th, f, prev)
			}
			prev = th
		}
	}
	for _, f := range []float64{0.1, 0.01, 1e-3} {
		prev := math.Inf(-1)
		for _, n := range []int{2, 5, 10, 20, 50, 100, 200, 1000, 100000} {
			th := v.Threshold(n, f)
			if th < prev {
				t.Errorf("FPIR %g: threshold %v at N=%d below the smaller gallery's %v", f, th, n, prev)
			}
			prev = th
		}
	}
}

// TestPeakThresholdIgnoresCurves: the margin-free checks get the
// independence model even where gallery curves exist.
func TestPeakThresholdIgnoresCurves(t *testing.T) {
	c := &Calibration{Visits: map[string]VisitModel{"a": curveModel()}}
	for _, n := range []int{1, 10, 32, 100, 1000} {
		got, err := c.PeakThreshold("a", n, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		v := c.Visits["a"]
		if want := v.Quantile(PerIdentity(n, 0.01)); got != want {
			t.Errorf("PeakThreshold(%d) = %v, want the independence model's %v", n, got, want)
		}
	}
	if _, err := c.PeakThreshold("b", 10, 0.01); err == nil {
		t.Error("unknown towers accepted")
	}
}

// TestThresholdMonotoneInN: a noisy, margin-dominated curve of a larger
// gallery that falls below a smaller gallery's never lowers the threshold
// (a larger gallery only adds chances for a stranger).
func TestThresholdMonotoneInN(t *testing.T) {
	v := curveModel()
	v.Galleries[1].Points = []TailPoint{{0.1, 0.5}} // N=100 below N=10 at FPIR 0.1
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := v.Threshold(100, 0.1), v.Threshold(10, 0.1); got != want || want != 1 {
		t.Errorf("Threshold(100, 0.1) = %v, want N=10's %v (= 1)", got, want)
	}
	if got := v.Threshold(30, 0.1); got != 1 {
		t.Errorf("Threshold(30, 0.1) = %v, want 1", got)
	}
}

func TestCurvesValidateAndRoundTrip(t *testing.T) {
	v := curveModel()
	v.Galleries[0], v.Galleries[1] = v.Galleries[1], v.Galleries[0]
	if err := v.Validate(); err == nil {
		t.Error("curves out of order accepted")
	}
	v = curveModel()
	v.Galleries[0].Points[1].Exceed = 0.2
	if err := v.Validate(); err == nil {
		t.Error("a curve with rising FPIR accepted")
	}
	v = curveModel()
	v.Galleries[0].TailLogit = 1.5
	if err := v.Validate(); err == nil {
		t.Error("a curve whose tail starts below its last point accepted")
	}
	v = curveModel()
	v.Galleries[1].TailScale = 0
	if err := v.Validate(); err == nil {
		t.Error("a curve with no tail scale accepted")
	}
	c := testCalibration()
	c.Visits["dlib"] = curveModel()
	path := filepath.Join(t.TempDir(), "decision.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Threshold("dlib", 32, 0.01)
	b, _ := got.Threshold("dlib", 32, 0.01)
	if a != b || len(got.Visits["dlib"].Galleries) != 2 || got.Visits["sface"].Galleries != nil {
		t.Errorf("round trip: threshold %v -> %v, curves %+v", a, b, got.Visits)
	}
}

// TestCurvesCorrelatedStrangers: strangers whose logits against everyone
// share a visit-level shift (a "wolf" face is close to many people). The
// independence model, fitted to the pooled (visit, identity) peaks, then
// grants fewer strangers than its target; the curve, fitted to the rule
// run on random galleries, hits it. Measured through Evidence and Rule.
func TestCurvesCorrelatedStrangers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, fpir = 50, 0.01
	logits := func(shift float64) []float64 {
		l := make([]float64, n)
		for j := range l {
			l[j] = shift + 0.6*rng.NormFloat64()
		}
		return l
	}
	var peaks []float64
	levels := make([][]float64, 4000)
	who := make([]int, len(levels))
	for v := range levels {
		who[v] = v
		shift := 0.8 * rng.NormFloat64()
		for range 20 {
			l := logits(shift)
			best := math.Inf(-1)
			for _, x := range l {
				best = math.Max(best, x)
			}
			levels[v] = append(levels[v], best) // margin 0: the best is granted
		}
		peaks = append(peaks, logits(shift)...)
	}
	vm, err := FitVisitModel(peaks, 1, 1e-3, 0)
	if err != nil {
		t.Fatal(err)
	}
	indep := vm.Threshold(n, fpir)
	vm.Galleries = []GalleryCurve{}
	cv, err := FitGalleryCurve(n, levels, who)
	if err != nil {
		t.Fatal(err)
	}
	vm.Galleries = append(vm.Galleries, cv)
	curve := vm.Threshold(n, fpir)
	measure := func(th float64) float64 {
		rule := Rule{Threshold: th, MaxFrames: 1}
		granted := 0
		const visits = 20000
		for range visits {
			var e Evidence
			f := Frame{Quality: 1}
			for j, x := range logits(0.8 * rng.NormFloat64()) {
				f.Candidates = append(f.Candidates, Candidate{ID: strconv.Itoa(j), Logit: x})
			}
			if err := e.Add(f); err != nil {
				t.Fatal(err)
			}
			if e.Decide(rule).Outcome == Granted {
				granted++
			}
		}
		return float64(granted) / visits
	}
	got, gotIndep := measure(curve), measure(indep)
	if got < fpir/1.5 || got > fpir*1.5 {
		t.Errorf("curve threshold %.3f: measured FPIR %.4f for target %g", curve, got, fpir)
	}
	if !(indep > curve) || gotIndep > 0.75*fpir {
		t.Errorf("independence threshold %.3f (curve %.3f): measured FPIR %.4f, expected under 0.75 x %g", indep, curve, gotIndep, fpir)
	}
}
