package decision

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func testCalibration() *Calibration {
	tail := VisitModel{MaxFrames: 3, Samples: 1000, TailExceed: 0.5, TailLogit: math.Ln2, TailScale: 1, Margin: 0.5}
	return &Calibration{
		Version: Version,
		Towers: []Tower{
			{Name: "dlib", Model: "dlib-resnet-v1", Metric: Euclidean, ImpostorMean: 0.9, ImpostorStd: 0.1},
			{Name: "sface", Model: "sface-2021dec", Metric: Cosine, ImpostorMean: 0.05, ImpostorStd: 0.1},
		},
		Heads: map[string]Head{
			"dlib+sface": {Bias: -10, Weights: []float64{1, 1.5}},
			"dlib":       {Bias: -9, Weights: []float64{1.8}},
			"sface":      {Bias: -9.5, Weights: []float64{2}},
		},
		Visits:     map[string]VisitModel{"dlib+sface": tail, "dlib": tail, "sface": tail},
		Provenance: Provenance{Data: "synthetic", Command: "go test", Date: "2025-01-01"},
	}
}

func TestTowerZ(t *testing.T) {
	eu := Tower{Name: "d", Model: "m", Metric: Euclidean, ImpostorMean: 0.9, ImpostorStd: 0.1}
	co := Tower{Name: "s", Model: "m", Metric: Cosine, ImpostorMean: 0.1, ImpostorStd: 0.05}
	for _, tc := range []struct {
		t     Tower
		score float64
		want  float64
	}{{eu, 0.9, 0}, {eu, 0.6, 3}, {eu, 1.0, -1}, {co, 0.1, 0}, {co, 0.4, 6}, {co, 0.05, -1}} {
		if got := tc.t.Z(tc.score); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s Z(%v) = %v, want %v", tc.t.Metric, tc.score, got, tc.want)
		}
	}
}

func TestHead(t *testing.T) {
	h := Head{Bias: -2, Weights: []float64{1, 0.5}}
	if got := h.Logit([]float64{1, 2}); got != 0 {
		t.Errorf("Logit = %v, want 0", got)
	}
	if got := h.Prob([]float64{1, 2}); got != 0.5 {
		t.Errorf("Prob = %v, want 0.5", got)
	}
	if got := h.Prob([]float64{10, 10}); got < 0.9999 {
		t.Errorf("Prob of a strong match = %v", got)
	}
}

func TestScorerSubsets(t *testing.T) {
	c := testCalibration()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if k := c.Key("sface", "dlib"); k != "dlib+sface" {
		t.Errorf("Key = %q", k)
	}
	both, err := c.Scorer(c.Key("sface", "dlib"))
	if err != nil {
		t.Fatal(err)
	}
	// dlib 0.5 → z 4, sface 0.45 → z 4: -10 + 4 + 6.
	if got := both.Logit([]float64{0.5, 0.45}); math.Abs(got-0) > 1e-9 {
		t.Errorf("fused logit = %v, want 0", got)
	}
	one, err := c.Scorer("sface")
	if err != nil {
		t.Fatal(err)
	}
	if got := one.Logit([]float64{0.45}); math.Abs(got-(-1.5)) > 1e-9 {
		t.Errorf("sface-only logit = %v, want -1.5", got)
	}
	if _, err := c.Scorer("arcface"); !errors.Is(err, ErrUnknownTowers) {
		t.Errorf("unknown tower: %v", err)
	}
}

func TestValidateRefuses(t *testing.T) {
	for name, mutate := range map[string]func(c *Calibration){
		"version":   func(c *Calibration) { c.Version = 99 },
		"no towers": func(c *Calibration) { c.Towers = nil },
		"metric":    func(c *Calibration) { c.Towers[0].Metric = "dot" },
		"std":       func(c *Calibration) { c.Towers[1].ImpostorStd = 0 },
		"duplicate": func(c *Calibration) { c.Towers[1].Name = "dlib" },
		"head order": func(c *Calibration) {
			c.Heads["sface+dlib"] = c.Heads["dlib+sface"]
			c.Visits["sface+dlib"] = c.Visits["dlib"]
		},
		"weights":       func(c *Calibration) { c.Heads["dlib"] = Head{Weights: []float64{1, 2}} },
		"negative":      func(c *Calibration) { c.Heads["dlib"] = Head{Weights: []float64{-1}} },
		"no visit":      func(c *Calibration) { delete(c.Visits, "sface") },
		"unknown tower": func(c *Calibration) { c.Heads["arc"] = Head{Weights: []float64{1}} },
		"tail":          func(c *Calibration) { v := c.Visits["dlib"]; v.TailScale = 0; c.Visits["dlib"] = v },
		"margin":        func(c *Calibration) { v := c.Visits["dlib"]; v.Margin = -1; c.Visits["dlib"] = v },
		"body order": func(c *Calibration) {
			v := c.Visits["dlib"]
			v.Body = []TailPoint{{0.6, 0.1}, {0.8, 0.2}}
			c.Visits["dlib"] = v
		},
		"no provenance":  func(c *Calibration) { c.Provenance.Command = "" },
		"max frames":     func(c *Calibration) { v := c.Visits["dlib"]; v.MaxFrames = 0; c.Visits["dlib"] = v },
		"orphan visit":   func(c *Calibration) { c.Visits["x"] = c.Visits["dlib"] },
		"plus in a name": func(c *Calibration) { c.Towers[0].Name = "a+b" },
	} {
		c := testCalibration()
		mutate(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

func TestLoadSaveRoundTrip(t *testing.T) {
	c := testCalibration()
	path := filepath.Join(t.TempDir(), "decision.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Threshold("dlib+sface", 1000, 1e-3)
	b, _ := d.Threshold("dlib+sface", 1000, 1e-3)
	if a != b {
		t.Errorf("threshold after round trip %v, want %v", b, a)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	bad := testCalibration()
	bad.Version = 0
	if err := bad.Save(path); err == nil {
		t.Error("Save of an invalid calibration succeeded")
	}
}

func TestThresholdGrowsWithGalleryAndTarget(t *testing.T) {
	c := testCalibration()
	prev := math.Inf(-1)
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		th, err := c.Threshold("dlib", n, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		if th <= prev {
			t.Errorf("threshold for N=%d is %v, not above %v", n, th, prev)
		}
		prev = th
		// The model is exactly P(peak ≥ t) = e^{-t}: q = fpir/n nearly.
		if want := -math.Log(PerIdentity(n, 1e-3)); math.Abs(th-want) > 1e-9 {
			t.Errorf("threshold for N=%d = %v, want %v", n, th, want)
		}
	}
	loose, _ := c.Threshold("dlib", 100, 1e-2)
	strict, _ := c.Threshold("dlib", 100, 1e-3)
	if !(strict > loose) {
		t.Errorf("stricter FPIR gave threshold %v, looser %v", strict, loose)
	}
	for _, bad := range []struct {
		n    int
		fpir float64
	}{{0, 1e-3}, {10, 0}, {10, 1}, {10, math.NaN()}} {
		if _, err := c.Threshold("dlib", bad.n, bad.fpir); err == nil {
			t.Errorf("Threshold(%d, %v) accepted", bad.n, bad.fpir)
		}
	}
}

func TestQuantileExceedInverse(t *testing.T) {
	v := VisitModel{MaxFrames: 1, Samples: 10, Body: []TailPoint{{0.5, -2}, {0.1, 0}, {0.01, 1}}, TailExceed: 1e-3, TailLogit: 2, TailScale: 0.4}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0.4, 0.1, 0.05, 0.01, 3e-3, 1e-3, 1e-5, 1e-9} {
		if got := v.Exceed(v.Quantile(q)); math.Abs(math.Log(got/q)) > 1e-9 {
			t.Errorf("Exceed(Quantile(%v)) = %v", q, got)
		}
	}
	if got := v.Quantile(0.9); got != -2 {
		t.Errorf("above the body: %v, want the first body logit", got)
	}
}

// TestSequentialFPIRSimulated drives Evidence and Rule over simulated
// non-mated visits whose per-frame logits are i.i.d. per (visit, identity);
// the visit model is fitted to the peak of the running mean by the same
// simulation, and the measured per-visit FPIR at the derived threshold
// must be near the target for two gallery sizes.
func TestSequentialFPIRSimulated(t *testing.T) {
	const frames = 3
	rng := rand.New(rand.NewPCG(1, 2))
	// Peak of the running mean of up to 3 standard normal logits, sampled.
	peaks := make([]float64, 400000)
	for i := range peaks {
		s, best := 0.0, math.Inf(-1)
		for k := 1; k <= frames; k++ {
			s += rng.NormFloat64()
			best = math.Max(best, s/float64(k))
		}
		peaks[i] = best
	}
	v, err := FitVisitModel(peaks, frames, 0.01, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := testCalibration()
	c.Visits["dlib"] = v
	for _, tc := range []struct {
		n    int
		fpir float64
	}{{20, 0.05}, {200, 0.02}} {
		rule, err := c.Rule("dlib", tc.n, tc.fpir)
		if err != nil {
			t.Fatal(err)
		}
		const visits = 6000
		granted := 0
		for range visits {
			var e Evidence
			var d Decision
			for k := 0; k < frames && d.Outcome == Pending; k++ {
				f := Frame{Quality: 1}
				for j := range tc.n {
					f.Candidates = append(f.Candidates, Candidate{ID: strconv.Itoa(j), Logit: rng.NormFloat64()})
				}
				if err := e.Add(f); err != nil {
					t.Fatal(err)
				}
				d = e.Decide(rule)
			}
			if d.Outcome == Granted {
				granted++
			}
		}
		got := float64(granted) / visits
		// Margin only removes grants; Poisson noise ±3 sd.
		sd := math.Sqrt(tc.fpir / visits)
		if got > tc.fpir+3*sd || got < tc.fpir/2 {
			t.Errorf("N=%d: measured FPIR %.4f for target %.4f", tc.n, got, tc.fpir)
		}
	}
}

func TestEvidenceWeightedMeanAndFloor(t *testing.T) {
	var e Evidence
	must := func(f Frame) {
		t.Helper()
		if err := e.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	must(Frame{Quality: 1, Candidates: []Candidate{{"ann", 4}, {"bob", 1}}})
	must(Frame{Quality: 3, Candidates: []Candidate{{"ann", 0}, {"cid", 2}}})
	// ann: (1·4 + 3·0)/4 = 1; bob: (1·1 + 3·0 floor)/4 = 0.25; cid: (1·1 floor + 3·2)/4 = 1.75.
	for id, want := range map[string]float64{"ann": 1, "bob": 0.25, "cid": 1.75} {
		if got, ok := e.Score(id); !ok || math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %v %v, want %v", id, got, ok, want)
		}
	}
	l := e.Look()
	if l.Frames != 2 || l.Best.ID != "cid" || l.Second.ID != "ann" || math.Abs(l.Margin()-0.75) > 1e-12 {
		t.Errorf("look %+v", l)
	}
	if _, ok := e.Score("dan"); ok {
		t.Error("score of an identity never seen")
	}
	for _, bad := range []Frame{
		{Quality: 0, Candidates: []Candidate{{"ann", 1}}},
		{Quality: math.NaN()},
		{Quality: 1, Candidates: []Candidate{{"ann", math.Inf(1)}}},
		{Quality: 1, Candidates: []Candidate{{"ann", 1}, {"ann", 2}}},
	} {
		if err := e.Add(bad); err == nil {
			t.Errorf("Add(%+v) accepted", bad)
		}
	}
	if e.Frames() != 2 {
		t.Errorf("rejected frames counted: %d", e.Frames())
	}
}

func TestRuleOutcomes(t *testing.T) {
	r := Rule{Threshold: 2, Margin: 1, MaxFrames: 3}
	look := func(frames int, best, second float64, hasSecond bool) Look {
		return Look{Frames: frames, Best: Candidate{"a", best}, Second: Candidate{"b", second}, HasBest: true, HasSecond: hasSecond}
	}
	for _, tc := range []struct {
		name  string
		l     Look
		ended bool
		want  Outcome
	}{
		{"clear", look(1, 3, 1, true), false, Granted},
		{"alone", look(1, 2, 0, false), false, Granted},
		{"at threshold and margin", look(2, 2, 1, true), false, Granted},
		{"close second, early", look(1, 3, 2.5, true), false, Pending},
		{"close second, last frame", look(3, 3, 2.5, true), false, Ambiguous},
		{"close second, gone", look(1, 3, 2.5, true), true, Ambiguous},
		{"low, early", look(2, 1.9, 0, true), false, Pending},
		{"low, last frame", look(3, 1.9, 0, true), false, Unknown},
		{"low, gone", look(1, 1.9, 0, true), true, Unknown},
		{"empty gallery", Look{Frames: 3}, false, Unknown},
		{"nothing yet", Look{}, false, Pending},
	} {
		if got := r.Decide(tc.l, tc.ended).Outcome; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	looks := []Look{look(1, 1, 0, true), look(2, 2.5, 0, true), look(3, 9, 0, true)}
	if d := r.First(looks); d.Outcome != Granted || d.Frames != 2 {
		t.Errorf("First = %+v, want granted at frame 2", d)
	}
	if d := (Rule{Threshold: 10, MaxFrames: 5}).First(looks); d.Outcome != Unknown {
		t.Errorf("First above every look = %v", d.Outcome)
	}
	if s := Outcome(7).String(); !strings.Contains(s, "7") || Granted.String() != "granted" {
		t.Errorf("String: %q %q", s, Granted.String())
	}
}

func TestFitVisitModelExponential(t *testing.T) {
	// Exponential samples: the fit must recover P(x >= t) = e^{-t}.
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float64, 200000)
	for i := range x {
		x[i] = rng.ExpFloat64()
	}
	v, err := FitVisitModel(x, 2, 1e-3, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0.1, 1e-3, 1e-6} {
		if got, want := v.Quantile(q), -math.Log(q); math.Abs(got-want) > 0.1*want+0.05 {
			t.Errorf("quantile at %g = %v, want %v", q, got, want)
		}
	}
	if v.MaxFrames != 2 || v.Margin != 0.5 || v.Samples != len(x) {
		t.Errorf("model %+v", v)
	}
	if _, err := FitVisitModel(x[:1000], 2, 1e-3, 0); err == nil {
		t.Error("fit with 1 tail sample accepted")
	}
	if _, err := FitVisitModel(append(x[:60000:60000], math.NaN()), 2, 1e-2, 0); err == nil {
		t.Error("NaN accepted")
	}
}

func TestEvidenceMaxAndFloor(t *testing.T) {
	e := Evidence{Agg: Max}
	for _, f := range []Frame{
		{Quality: 1, Candidates: []Candidate{{"ann", 4}, {"bob", 1}}},
		{Quality: 0.1, Candidates: []Candidate{{"ann", 0}, {"cid", 2}}},
		{Quality: 1, Candidates: []Candidate{{"ann", 5}, {"bob", 3}}},
	} {
		if err := e.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	// ann: max(4, 0, 5) = 5, weights play no part; bob: max(1, floor 0, 3)
	// = 3; cid: max(floor 1, 2, floor 3) = 3 (the floor of the third frame
	// bounds it there).
	for id, want := range map[string]float64{"ann": 5, "bob": 3, "cid": 3} {
		if got, ok := e.Score(id); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", id, got, ok, want)
		}
	}
	if l := e.Look(); l.Best.ID != "ann" || l.Margin() != 2 || l.Frames != 3 {
		t.Errorf("look %+v", l)
	}
	if err := (&Evidence{Agg: "median"}).Add(Frame{Quality: 1, Candidates: []Candidate{{"ann", 1}}}); err == nil {
		t.Error("unknown aggregate accepted")
	}
}

// TestMaxPeakIgnoresSplits: with Max, the peak evidence of K looks run as
// one visit equals the highest peak of the same looks split into two
// visits, so a look budget shared across a split is exactly what the visit
// model describes (with Mean it is not: a restart makes a fresh first
// look, which can exceed every running mean of the whole).
func TestMaxPeakIgnoresSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	peak := func(agg Aggregate, fr []Frame) float64 {
		e, p := Evidence{Agg: agg}, math.Inf(-1)
		for _, f := range fr {
			if err := e.Add(f); err != nil {
				t.Fatal(err)
			}
			s, _ := e.Score("x")
			p = math.Max(p, s)
		}
		return p
	}
	meanDiffers := false
	for range 200 {
		fr := make([]Frame, 5)
		for i := range fr {
			fr[i] = Frame{Quality: 0.5 + rng.Float64(), Candidates: []Candidate{{"x", rng.NormFloat64()}, {"y", rng.NormFloat64()}}}
		}
		k := 1 + rng.IntN(4)
		if whole, split := peak(Max, fr), math.Max(peak(Max, fr[:k]), peak(Max, fr[k:])); whole != split {
			t.Fatalf("max: whole %v, split at %d %v", whole, k, split)
		}
		if peak(Mean, fr) < math.Max(peak(Mean, fr[:k]), peak(Mean, fr[k:])) {
			meanDiffers = true
		}
	}
	if !meanDiffers {
		t.Error("mean never gained from a split: the test does not tell the aggregates apart")
	}
}

func TestRuleCarriesAggregate(t *testing.T) {
	c := testCalibration()
	v := c.Visits["sface"]
	v.Aggregate = Max
	c.Visits["sface"] = v
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := c.Rule("sface", 10, 1e-3)
	if err != nil || r.Aggregate != Max || r.MaxFrames != 3 {
		t.Errorf("rule %+v, %v", r, err)
	}
	if r, _ := c.Rule("dlib", 10, 1e-3); r.Aggregate != "" {
		t.Errorf("dlib rule aggregate %q, want the default", r.Aggregate)
	}
	v.Aggregate = "median"
	c.Visits["sface"] = v
	if err := c.Validate(); err == nil {
		t.Error("unknown aggregate validated")
	}
}
