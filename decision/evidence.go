package decision

import (
	"fmt"
	"math"
)

// Candidate is one enrolled identity and a fused logit for it: in a
// [Frame], that frame's logit; in a [Look], the visit's aggregated logit.
type Candidate struct {
	ID    string  `json:"id"`
	Logit float64 `json:"logit"`
}

// Frame is what one frame of a visit says: the fused logit of each
// candidate identity (every enrolled identity, or the best few) and the
// frame's quality weight (> 0; e.g. the detector's score times a
// sharpness factor, or 1).
type Frame struct {
	Quality    float64
	Candidates []Candidate
}

// Look is the state of a visit's evidence after some frames: the best and
// second-best identity by aggregated logit.
type Look struct {
	Frames    int       `json:"frames"`
	Best      Candidate `json:"best"`
	Second    Candidate `json:"second"`
	HasBest   bool      `json:"has_best"`
	HasSecond bool      `json:"has_second"`
}

// Margin is Best.Logit − Second.Logit, +Inf without a second identity.
func (l Look) Margin() float64 {
	if !l.HasSecond {
		return math.Inf(1)
	}
	return l.Best.Logit - l.Second.Logit
}

// Aggregate is how a visit's looks combine into one score per identity.
type Aggregate string

// Aggregates.
const (
	// Mean: the quality-weighted mean of the fused logit over the looks
	// so far. A poor first look drags every later score down.
	Mean Aggregate = "mean"
	// Max: the highest fused logit of any look so far (quality weights
	// play no part). One good look is enough, and a visit split in two
	// (the same looks in two runs) reaches exactly the same peak, so a
	// look budget shared across the split is covered by the calibration.
	Max Aggregate = "max"
)

// Valid reports whether a is an aggregate this package computes ("" is
// Mean, for calibrations written before the choice existed).
func (a Aggregate) Valid() bool { return a == "" || a == Mean || a == Max }

// Evidence aggregates the frames (looks) of one visit, per candidate
// identity, as Agg says: by default the quality-weighted mean of the fused
// logit over the frames seen so far, with Max the highest. An identity
// missing from a frame's candidates (the daemon passes the best few)
// counts that frame's lowest candidate logit, an upper bound of its real
// logit there. Evidence is not safe for concurrent use; the zero value is
// an empty visit aggregated by Mean.
type Evidence struct {
	// Agg is the aggregate; set it before the first Add.
	Agg    Aggregate
	frames int
	weight float64 // Σ w over frames with candidates
	floor  float64 // Σ w·(lowest logit of the frame)
	slot   map[string]int
	ids    []string
	sum    []float64 // Σ w·logit over frames where the identity was a candidate
	floorP []float64 // Σ w·floor over the same frames
	// Max: the highest logit of each identity over the frames that listed
	// it, and the highest lowest-logit of any frame (the bound standing in
	// where an identity was not listed; never above a listed logit of the
	// same frame, so max(top[i], lowMax) is exact).
	top    []float64
	lowMax float64
}

// Add adds one frame. A frame without candidates (an empty gallery) counts
// as a look but carries no evidence.
func (e *Evidence) Add(f Frame) error {
	if !finite(f.Quality) || f.Quality <= 0 {
		return fmt.Errorf("decision: frame %d: quality %v must be finite and > 0", e.frames+1, f.Quality)
	}
	if len(f.Candidates) == 0 {
		e.frames++
		return nil
	}
	low := math.Inf(1)
	for i, c := range f.Candidates {
		if !finite(c.Logit) {
			return fmt.Errorf("decision: frame %d: candidate %q: logit %v is not finite", e.frames+1, c.ID, c.Logit)
		}
		for _, d := range f.Candidates[:i] {
			if d.ID == c.ID {
				return fmt.Errorf("decision: frame %d: candidate %q twice", e.frames+1, c.ID)
			}
		}
		low = math.Min(low, c.Logit)
	}
	if !e.Agg.Valid() {
		return fmt.Errorf("decision: aggregate %q is not mean or max", e.Agg)
	}
	if e.slot == nil {
		e.slot = make(map[string]int, len(f.Candidates))
		e.lowMax = math.Inf(-1)
	}
	w := f.Quality
	for _, c := range f.Candidates {
		i, ok := e.slot[c.ID]
		if !ok {
			i = len(e.ids)
			e.slot[c.ID] = i
			e.ids = append(e.ids, c.ID)
			// Frames before this one did not list it: their floors stand in.
			e.sum = append(e.sum, 0)
			e.floorP = append(e.floorP, 0)
			e.top = append(e.top, math.Inf(-1))
		}
		e.top[i] = math.Max(e.top[i], c.Logit)
		e.sum[i] += w * c.Logit
		e.floorP[i] += w * low
	}
	e.frames++
	e.weight += w
	e.floor += w * low
	e.lowMax = math.Max(e.lowMax, low)
	return nil
}

// Frames is how many frames were added.
func (e *Evidence) Frames() int { return e.frames }

// Score is an identity's aggregated logit so far, false when it was never
// a candidate.
func (e *Evidence) Score(id string) (float64, bool) {
	i, ok := e.slot[id]
	if !ok || e.weight == 0 {
		return 0, false
	}
	return e.mean(i), true
}

func (e *Evidence) mean(i int) float64 {
	if e.Agg == Max {
		return math.Max(e.top[i], e.lowMax)
	}
	return (e.sum[i] + e.floor - e.floorP[i]) / e.weight
}

// Look is the best and second-best identity now.
func (e *Evidence) Look() Look {
	l := Look{Frames: e.frames}
	if e.weight == 0 {
		return l
	}
	for i, id := range e.ids {
		c := Candidate{ID: id, Logit: e.mean(i)}
		switch {
		case !l.HasBest || c.Logit > l.Best.Logit || c.Logit == l.Best.Logit && c.ID < l.Best.ID:
			if l.HasBest {
				l.Second, l.HasSecond = l.Best, true
			}
			l.Best, l.HasBest = c, true
		case !l.HasSecond || c.Logit > l.Second.Logit || c.Logit == l.Second.Logit && c.ID < l.Second.ID:
			l.Second, l.HasSecond = c, true
		}
	}
	return l
}

// Decide applies the rule to the visit so far, while it goes on.
func (e *Evidence) Decide(r Rule) Decision { return r.Decide(e.Look(), false) }

// Final applies the rule when the visit has ended (the face is gone).
func (e *Evidence) Final(r Rule) Decision { return r.Decide(e.Look(), true) }

// Outcome is what a visit's decision says.
type Outcome int

// Outcomes.
const (
	// Pending: no decision yet, keep adding frames.
	Pending Outcome = iota
	// Granted: Best cleared the threshold and beats Second by the margin.
	Granted
	// Ambiguous: the visit ended with Best over the threshold but too close
	// to Second; both are reported for the audit log.
	Ambiguous
	// Unknown: the visit ended without an identity clearing the threshold.
	Unknown
)

var outcomes = [...]string{"pending", "granted", "ambiguous", "unknown"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomes) {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomes[o]
}

// Rule is the sequential decision: grant the best identity at the first
// look where its aggregated logit is at least Threshold and beats the
// second-best by at least Margin; after MaxFrames looks (or when the visit
// ends) without a grant, the visit is Ambiguous or Unknown. Threshold comes
// from [Calibration.Threshold] for the gallery size, Margin from
// [Calibration.Margin], MaxFrames from the calibration's visit model (the
// threshold accounts for that many looks).
type Rule struct {
	Threshold float64
	Margin    float64
	MaxFrames int
	// Aggregate is how the looks combine ([Evidence.Agg]); the threshold
	// is calibrated for it.
	Aggregate Aggregate
}

// Decision is the rule's answer at one look.
type Decision struct {
	Outcome Outcome
	Look
}

// Decide applies the rule to a look; ended says the visit is over.
func (r Rule) Decide(l Look, ended bool) Decision {
	d := Decision{Look: l}
	over := l.HasBest && l.Best.Logit >= r.Threshold
	switch {
	case over && l.Margin() >= r.Margin:
		d.Outcome = Granted
	case !ended && l.Frames < r.MaxFrames:
		d.Outcome = Pending
	case over:
		d.Outcome = Ambiguous
	default:
		d.Outcome = Unknown
	}
	return d
}

// First runs the rule over a visit's looks in order (looks[i] after i+1
// frames) and returns the first decision that is not Pending; the last
// look is taken as the end of the visit. Eval sweeps thresholds with it.
func (r Rule) First(looks []Look) Decision {
	for i, l := range looks {
		if d := r.Decide(l, i == len(looks)-1); d.Outcome != Pending {
			return d
		}
	}
	return Decision{Outcome: Unknown}
}
