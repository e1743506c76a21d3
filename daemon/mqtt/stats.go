package mqtt

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"
)

// ReasonFailureToAcquire marks an attempt where no usable face was
// captured (no face, too small, too blurred) within the attempt window.
const ReasonFailureToAcquire = "failure_to_acquire"

// NewHistogram returns an empty histogram with the given bucket edges
// (ascending, at least two).
func NewHistogram(edges []float64) Histogram {
	return Histogram{Edges: slices.Clone(edges), Counts: make([]uint64, len(edges)-1)}
}

// LinearEdges returns n+1 equally spaced edges from lo to hi.
func LinearEdges(lo, hi float64, n int) []float64 {
	e := make([]float64, n+1)
	for i := range e {
		e[i] = lo + (hi-lo)*float64(i)/float64(n)
	}
	return e
}

// Add counts v.
func (h *Histogram) Add(v float64) {
	n := len(h.Edges)
	switch {
	case math.IsNaN(v) || v < h.Edges[0]:
		h.Under++
	case v > h.Edges[n-1]:
		h.Over++
	case v == h.Edges[n-1]:
		h.Counts[n-2]++
	default:
		i := sort.SearchFloat64s(h.Edges, v) // first edge >= v
		if i < n && h.Edges[i] == v {
			h.Counts[i]++
		} else {
			h.Counts[i-1]++
		}
	}
}

func (h Histogram) clone() Histogram {
	h.Edges, h.Counts = slices.Clone(h.Edges), slices.Clone(h.Counts)
	return h
}

// NewRate returns the estimate errors/samples with its one-sided 95 %
// upper bound: the rule of three (3/n) when there are no errors, else the
// Wilson score bound (z = 1.645). Both are nil without samples.
func NewRate(errors, samples uint64) Rate {
	r := Rate{Errors: errors, Samples: samples}
	if samples == 0 {
		return r
	}
	n := float64(samples)
	p := float64(errors) / n
	var up float64
	if errors == 0 {
		up = math.Min(1, 3/n)
	} else {
		const z = 1.6448536269514722
		den := 1 + z*z/n
		centre := p + z*z/(2*n)
		margin := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
		up = math.Min(1, (centre+margin)/den)
	}
	r.Estimate, r.Upper95 = &p, &up
	return r
}

// GalleryEstimate holds the offline error-rate estimates from the enrolled
// gallery at one threshold.
type GalleryEstimate struct {
	FMR, FNMR         Rate
	Genuine, Impostor Histogram
	Subjects          int
	Templates         int
	// Sampled is true when impostor pairs were sampled (MaxPairs).
	Sampled bool
}

// GalleryOptions configure EstimateGallery.
type GalleryOptions struct {
	Threshold     float64
	HigherIsMatch bool
	// Edges are the score histogram edges (default 0..1 in 20 buckets).
	Edges []float64
	// MaxPairs bounds the impostor pairs scored (default 1,000,000); above
	// it a fixed-seed uniform sample is used so results are reproducible.
	MaxPairs int
}

// EstimateGallery scores the gallery against itself: every pair of
// templates of different subjects is an impostor pair (a match is a false
// match), every pair of templates of the same subject a genuine pair (a
// non-match is a false non-match). gallery maps subject id to templates.
func EstimateGallery(gallery map[string][][]float32, score func(a, b []float32) float64, o GalleryOptions) GalleryEstimate {
	if len(o.Edges) < 2 {
		o.Edges = LinearEdges(0, 1, 20)
	}
	if o.MaxPairs <= 0 {
		o.MaxPairs = 1_000_000
	}
	match := func(s float64) bool {
		if o.HigherIsMatch {
			return s >= o.Threshold
		}
		return s <= o.Threshold
	}
	ids := make([]string, 0, len(gallery))
	for id := range gallery {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	type tmpl struct {
		subj int
		v    []float32
	}
	var all []tmpl
	est := GalleryEstimate{Genuine: NewHistogram(o.Edges), Impostor: NewHistogram(o.Edges), Subjects: len(ids)}
	var gErr, gN, iErr, iN uint64
	for si, id := range ids {
		ts := gallery[id]
		for i := range ts {
			all = append(all, tmpl{si, ts[i]})
			for j := i + 1; j < len(ts); j++ {
				s := score(ts[i], ts[j])
				est.Genuine.Add(s)
				gN++
				if !match(s) {
					gErr++
				}
			}
		}
	}
	est.Templates = len(all)
	impostor := func(a, b tmpl) {
		s := score(a.v, b.v)
		est.Impostor.Add(s)
		iN++
		if match(s) {
			iErr++
		}
	}
	n := len(all)
	total := n * (n - 1) / 2 // upper bound (includes genuine pairs)
	if total <= o.MaxPairs {
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if all[i].subj != all[j].subj {
					impostor(all[i], all[j])
				}
			}
		}
	} else {
		est.Sampled = true
		rng := rand.New(rand.NewPCG(1, 2))
		for k := 0; k < o.MaxPairs; {
			i, j := rng.IntN(n), rng.IntN(n)
			if all[i].subj == all[j].subj {
				continue
			}
			impostor(all[i], all[j])
			k++
		}
	}
	est.FMR, est.FNMR = NewRate(iErr, iN), NewRate(gErr, gN)
	return est
}

// AccumulatorOptions configure NewAccumulator; zero values take defaults.
type AccumulatorOptions struct {
	// Edges of the live score histogram (default 0..1 in 20 buckets).
	Edges []float64
	// LatencyWindow is how many recent latencies the quantiles use
	// (default 1024).
	LatencyWindow int
	// FPSWindow is how many recent frame times the rate uses (default 64).
	FPSWindow int
	// FeedbackMemory is how many recent events feedback can refer to
	// (default 4096).
	FeedbackMemory int
}

// Accumulator collects live statistics. It is safe for concurrent use.
type Accumulator struct {
	mu    sync.Mutex
	opts  AccumulatorOptions
	since time.Time
	s     Stats

	lat    []float64
	latPos int
	frames []time.Time
	frPos  int

	recent   map[string]*recentEvent
	recentQ  []string
	falseAcc uint64 // wrong grants
	grantsFB uint64 // grants with feedback
	falseRej uint64 // wrong denials/unknowns
	rejectFB uint64 // denials/unknowns with feedback

	gallery *GalleryEstimate
}

type recentEvent struct {
	decision Decision
	fta      bool
	answered bool
}

// NewAccumulator starts an accumulator at now.
func NewAccumulator(now time.Time, o AccumulatorOptions) *Accumulator {
	if len(o.Edges) < 2 {
		o.Edges = LinearEdges(0, 1, 20)
	}
	if o.LatencyWindow <= 0 {
		o.LatencyWindow = 1024
	}
	if o.FPSWindow <= 1 {
		o.FPSWindow = 64
	}
	if o.FeedbackMemory <= 0 {
		o.FeedbackMemory = 4096
	}
	a := &Accumulator{opts: o, since: now, recent: make(map[string]*recentEvent)}
	a.s.Scores.Live = NewHistogram(o.Edges)
	return a
}

// SetOperatingPoint records the threshold in use, the FMR it was
// calibrated for, the score direction and the model.
func (a *Accumulator) SetOperatingPoint(threshold, fmr float64, higherIsMatch bool, m ModelRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Threshold, a.s.ThresholdFMR, a.s.HigherIsMatch, a.s.Model = threshold, fmr, higherIsMatch, m
}

// SetGallery records the latest gallery estimate (recompute it after
// every enrollment change or threshold change).
func (a *Accumulator) SetGallery(g GalleryEstimate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g.Genuine, g.Impostor = g.Genuine.clone(), g.Impostor.clone()
	a.gallery = &g
}

// Frame records that a frame was processed at t (for fps), and whether it
// reused the last detection instead of running the detector.
func (a *Accumulator) Frame(t time.Time, tracked bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Frames++
	if tracked {
		a.s.TrackedFrames++
	}
	if len(a.frames) < a.opts.FPSWindow {
		a.frames = append(a.frames, t)
		return
	}
	a.frames[a.frPos] = t
	a.frPos = (a.frPos + 1) % len(a.frames)
}

// Observe records a published decision: it is one attempt; a failure to
// acquire (Reason failure_to_acquire) counts as such and not as an
// unknown; its score and latency feed the histogram and quantiles.
func (a *Accumulator) Observe(e Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Attempts++
	fta := e.Reason == ReasonFailureToAcquire
	switch {
	case fta:
		a.s.FailuresToAcquire++
	case e.Decision == DecisionGranted:
		a.s.Grants++
	case e.Decision == DecisionDenied:
		a.s.Denials++
	default:
		a.s.Unknowns++
	}
	if !fta {
		a.s.Scores.Live.Add(e.Score)
	}
	if e.LatencyMS > 0 {
		if len(a.lat) < a.opts.LatencyWindow {
			a.lat = append(a.lat, e.LatencyMS)
		} else {
			a.lat[a.latPos] = e.LatencyMS
			a.latPos = (a.latPos + 1) % len(a.lat)
		}
	}
	if e.ID != "" {
		if len(a.recentQ) >= a.opts.FeedbackMemory {
			delete(a.recent, a.recentQ[0])
			a.recentQ = a.recentQ[1:]
		}
		if _, dup := a.recent[e.ID]; !dup {
			a.recent[e.ID] = &recentEvent{decision: e.Decision, fta: fta}
			a.recentQ = append(a.recentQ, e.ID)
		}
	}
}

// Feedback records an operator's verdict. A wrong grant is a false accept;
// a wrong denial or unknown is a false reject. Only the first verdict per
// event counts; feedback on events no longer remembered is counted as
// unmatched; feedback on failures to acquire only counts as correct/wrong.
func (a *Accumulator) Feedback(f Feedback) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev, ok := a.recent[f.EventID]
	switch {
	case !ok:
		a.s.Feedback.Unmatched++
		return
	case ev.answered:
		a.s.Feedback.Repeated++
		return
	}
	ev.answered = true
	wrong := f.Correct != nil && !*f.Correct
	if wrong {
		a.s.Feedback.Wrong++
	} else {
		a.s.Feedback.Correct++
	}
	if ev.fta {
		return
	}
	if ev.decision == DecisionGranted {
		a.grantsFB++
		if wrong {
			a.falseAcc++
		}
	} else {
		a.rejectFB++
		if wrong {
			a.falseRej++
		}
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank.
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Snapshot returns the statistics at now.
func (a *Accumulator) Snapshot(now time.Time) Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.s
	s.Time, s.Since = now.UTC(), a.since.UTC()
	s.Scores.Live = a.s.Scores.Live.clone()
	lat := slices.Clone(a.lat)
	sort.Float64s(lat)
	s.Latency = Latency{P50: quantile(lat, 0.50), P95: quantile(lat, 0.95), P99: quantile(lat, 0.99), Samples: len(lat)}
	if n := len(a.frames); n >= 2 {
		lo, hi := a.frames[0], a.frames[0]
		for _, t := range a.frames {
			if t.Before(lo) {
				lo = t
			}
			if t.After(hi) {
				hi = t
			}
		}
		if d := hi.Sub(lo).Seconds(); d > 0 {
			s.FPS = float64(n-1) / d
		}
	}
	s.Rates.FAR = NewRate(a.falseAcc, a.grantsFB)
	s.Rates.FRR = NewRate(a.falseRej, a.rejectFB)
	if g := a.gallery; g != nil {
		s.Rates.FMR, s.Rates.FNMR = g.FMR, g.FNMR
		gen, imp := g.Genuine.clone(), g.Impostor.clone()
		s.Scores.GalleryGenuine, s.Scores.GalleryImpostor = &gen, &imp
		s.GallerySubjects, s.GalleryTemplates = g.Subjects, g.Templates
	}
	return s
}
