package mqtt

import (
	"math"
	"testing"
	"time"
)

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

func TestNewRate(t *testing.T) {
	r := NewRate(0, 0)
	if r.Estimate != nil || r.Upper95 != nil {
		t.Fatal("no samples must give nil estimate and bound")
	}
	r = NewRate(0, 300)
	if *r.Estimate != 0 || math.Abs(*r.Upper95-0.01) > 1e-12 {
		t.Fatalf("rule of three: %v %v", *r.Estimate, *r.Upper95)
	}
	r = NewRate(5, 100)
	// Wilson one-sided 95% upper bound for 5/100 (z=1.645) is about 0.0992.
	if *r.Estimate != 0.05 || math.Abs(*r.Upper95-0.0992) > 0.0005 {
		t.Fatalf("wilson: %v %v", *r.Estimate, *r.Upper95)
	}
	if r := NewRate(1, 1); *r.Upper95 > 1 {
		t.Fatal("bound above 1")
	}
}

func TestHistogram(t *testing.T) {
	h := NewHistogram(LinearEdges(0, 1, 4))
	for _, v := range []float64{-0.1, 0, 0.1, 0.25, 0.5, 0.99, 1, 1.5, math.NaN()} {
		h.Add(v)
	}
	want := []uint64{2, 1, 1, 2}
	for i := range want {
		if h.Counts[i] != want[i] {
			t.Fatalf("counts %v, want %v", h.Counts, want)
		}
	}
	if h.Under != 2 || h.Over != 1 {
		t.Fatalf("under %d over %d", h.Under, h.Over)
	}
}

func TestEstimateGallery(t *testing.T) {
	// Three subjects with 3, 2 and 1 templates: 3+1+0 = 4 genuine pairs,
	// (6*5/2) - 4 = 11 impostor pairs. Alice's third template is far from
	// the other two (one false non-match against each), and Carol looks
	// like Bob (two false matches).
	g := map[string][][]float32{
		"alice": {{1, 0, 0}, {0.95, 0.05, 0}, {0.2, 0, 1}},
		"bob":   {{0, 1, 0}, {0.05, 1, 0}},
		"carol": {{0, 1, 0.1}},
	}
	e := EstimateGallery(g, cosine, GalleryOptions{Threshold: 0.9, HigherIsMatch: true})
	if e.FNMR.Samples != 4 || e.FNMR.Errors != 2 {
		t.Fatalf("FNMR %d/%d, want 2/4", e.FNMR.Errors, e.FNMR.Samples)
	}
	if e.FMR.Samples != 11 || e.FMR.Errors != 2 {
		t.Fatalf("FMR %d/%d, want 2/11", e.FMR.Errors, e.FMR.Samples)
	}
	if e.Subjects != 3 || e.Templates != 6 || e.Sampled {
		t.Fatalf("subjects %d templates %d sampled %v", e.Subjects, e.Templates, e.Sampled)
	}
	var n uint64
	for _, c := range e.Impostor.Counts {
		n += c
	}
	if n+e.Impostor.Under+e.Impostor.Over != 11 {
		t.Fatalf("impostor histogram holds %d scores", n)
	}
	// Distances: lower is a match.
	dist := func(a, b []float32) float64 { return 1 - cosine(a, b) }
	d := EstimateGallery(g, dist, GalleryOptions{Threshold: 0.1, HigherIsMatch: false})
	if d.FMR.Errors != 2 || d.FNMR.Errors != 2 {
		t.Fatalf("distance direction: FMR %d FNMR %d", d.FMR.Errors, d.FNMR.Errors)
	}
	// Sampling above MaxPairs is bounded and reproducible.
	s1 := EstimateGallery(g, cosine, GalleryOptions{Threshold: 0.9, HigherIsMatch: true, MaxPairs: 5})
	s2 := EstimateGallery(g, cosine, GalleryOptions{Threshold: 0.9, HigherIsMatch: true, MaxPairs: 5})
	if !s1.Sampled || s1.FMR.Samples != 5 || s1.FMR.Errors != s2.FMR.Errors {
		t.Fatalf("sampled: %+v vs %+v", s1.FMR, s2.FMR)
	}
}

func TestAccumulator(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := NewAccumulator(t0, AccumulatorOptions{LatencyWindow: 100, FPSWindow: 11, FeedbackMemory: 3})
	for i := 0; i < 11; i++ {
		a.Frame(t0.Add(time.Duration(i)*200*time.Millisecond), i%4 == 3) // 5 fps
	}
	obs := func(id string, d Decision, reason string, lat float64) {
		a.Observe(Event{ID: id, Decision: d, Reason: reason, Score: 0.5, LatencyMS: lat})
	}
	for i := 1; i <= 100; i++ {
		obs("", DecisionGranted, "", float64(i))
	}
	obs("g1", DecisionGranted, "", 1)
	obs("d1", DecisionDenied, "", 1)
	obs("u1", DecisionUnknown, "", 1)
	obs("f1", DecisionUnknown, ReasonFailureToAcquire, 1)
	s := a.Snapshot(t0.Add(time.Minute))
	if s.Attempts != 104 || s.Grants != 101 || s.Denials != 1 || s.Unknowns != 1 || s.FailuresToAcquire != 1 {
		t.Fatalf("counts %+v", s)
	}
	if s.Frames != 11 || s.TrackedFrames != 2 {
		t.Fatalf("frames %d, tracked %d; want 11 and 2", s.Frames, s.TrackedFrames)
	}
	if math.Abs(s.FPS-5) > 1e-9 {
		t.Fatalf("fps %v, want 5", s.FPS)
	}
	// Window of 100: values 5..100 and four 1s.
	if s.Latency.Samples != 100 || s.Latency.P50 != 50 || s.Latency.P99 != 99 {
		t.Fatalf("latency %+v", s.Latency)
	}
	tr, fa := true, false
	// Memory of 3: g1 was pushed out by d1, u1, f1.
	a.Feedback(Feedback{EventID: "g1", Correct: &fa})
	a.Feedback(Feedback{EventID: "d1", Correct: &fa}) // false reject
	a.Feedback(Feedback{EventID: "d1", Correct: &tr}) // repeated: ignored
	a.Feedback(Feedback{EventID: "u1", Correct: &tr})
	a.Feedback(Feedback{EventID: "f1", Correct: &fa})
	obs("g2", DecisionGranted, "", 1)
	a.Feedback(Feedback{EventID: "g2", Correct: &fa}) // false accept
	s = a.Snapshot(t0.Add(time.Minute))
	fb := s.Feedback
	if fb.Unmatched != 1 || fb.Repeated != 1 || fb.Wrong != 3 || fb.Correct != 1 {
		t.Fatalf("feedback counts %+v", fb)
	}
	if s.Rates.FAR.Errors != 1 || s.Rates.FAR.Samples != 1 || s.Rates.FRR.Errors != 1 || s.Rates.FRR.Samples != 2 {
		t.Fatalf("FAR %+v FRR %+v", s.Rates.FAR, s.Rates.FRR)
	}
	if s.Rates.FMR.Estimate != nil {
		t.Fatal("FMR without a gallery estimate")
	}
}
