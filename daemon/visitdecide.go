package daemon

import (
	"log/slog"
	"math"
	"time"

	"github.com/facegate/facegate/decision"
)

// Ambiguous is the verdict of a visit whose best identity cleared the
// threshold without beating the second-best by the margin: nobody is
// granted, and the event names both for the audit log.
const Ambiguous Verdict = "ambiguous"

// VisitFrame is one analysed frame as the 1:N visit decision sees it.
type VisitFrame struct {
	Time time.Time // capture time
	// Face: the frame shows the door's face (the largest); Box is it.
	Face bool
	Box  [4]float64
	// Good: the face passed the quality gate and was embedded; only good
	// frames add evidence, with weight Quality (> 0).
	Good    bool
	Quality float64
	// PAD is the frame's presentation-attack score, NaN while no PAD model
	// runs (issue 16 fills it in).
	PAD float64
	// Candidates are the enrolled people scored against the face.
	Candidates []ScoredCandidate
	// Ref carries pipeline details (box, quality, image) to the event.
	Ref any
}

// ScoredCandidate is one enrolled person's fused logit for a face and the
// raw score of each tower behind it (NaN where a tower has none).
type ScoredCandidate struct {
	ID    string
	Logit float64
	Raw   []float64
}

// VisitRule is the sequential rule in force and what it was derived from.
type VisitRule struct {
	decision.Rule
	GallerySize int
	FPIR        float64
	Towers      string // calibration key, e.g. "dlib+sface"
}

// VisitCandidate is an identity of a visit's decision: its aggregated logit
// and, per tower, the quality-weighted mean raw score over the visit's
// frames that scored it (NaN where none did).
type VisitCandidate struct {
	ID    string
	Logit float64
	Raw   []float64
}

// VisitReport is what a 1:N decision says about its visit.
type VisitReport struct {
	ID uint64
	// Frames is how many good frames the evidence holds; Seen how many
	// frames showed the face.
	Frames, Seen int
	FirstGood    time.Time // capture time of the first good frame
	DecidedAt    time.Time // capture time of the frame decided on, or the end
	End          VisitEnd  // why the visit ended; "" when decided while it went on
	Rule         VisitRule
	Best, Second *VisitCandidate
}

// Margin is the best identity's lead over the second (+Inf without one).
func (r *VisitReport) Margin() float64 {
	if r.Best == nil || r.Second == nil {
		return math.Inf(1)
	}
	return r.Best.Logit - r.Second.Logit
}

// VisitDeciderConfig are the 1:N decision's parts.
type VisitDeciderConfig struct {
	Visit           VisitConfig
	Cooldown        time.Duration // one grant per subject per cooldown
	UnknownInterval time.Duration // at most one unknown event per interval
	// Rule returns the rule for the current gallery size; called on each
	// good frame, so an enrollment or deletion applies at once.
	Rule func() VisitRule
	// PADPassed is the visit-level presentation-attack condition a grant
	// needs, given the PAD scores of the visit's good frames (NaN while no
	// PAD model runs). nil passes every visit: issue 16 plugs in here.
	PADPassed func(pad []float64) bool
	Log       *slog.Logger
}

// VisitDecider makes 1:N decisions per visit: the frames of a visit add
// quality-weighted evidence per identity (decision.Evidence), an identity
// is granted at the first frame where its evidence clears the threshold
// for the gallery size and beats the second-best by the margin, and a
// visit that ends (or reaches the rule's frame limit) without that is
// unknown, or ambiguous when only the margin failed. One decision per
// visit. It is not safe for concurrent use: the decide stage owns it.
type VisitDecider struct {
	cfg         VisitDeciderConfig
	tr          *VisitTracker
	cur         *visitState
	lastGrant   map[string]time.Time
	lastUnknown time.Time
}

type visitState struct {
	id      uint64
	ev      decision.Evidence
	decided bool
	rule    VisitRule
	raw     map[string]*rawSums
	pads    []float64
	ref     any // the latest good frame's details
}

type rawSums struct{ sum, w []float64 }

// NewVisitDecider returns a decider; cfg.Rule is required.
func NewVisitDecider(cfg VisitDeciderConfig) *VisitDecider {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &VisitDecider{cfg: cfg, tr: NewVisitTracker(cfg.Visit), lastGrant: map[string]time.Time{}}
}

// Current is the visit in progress, nil when none.
func (d *VisitDecider) Current() *Visit { return d.tr.Current() }

// Frame adds one frame and returns the decisions it completes: the end of
// the previous visit, a decision of the current one, or none.
func (d *VisitDecider) Frame(f VisitFrame) []Decision {
	if !f.Face {
		return d.Tick(f.Time)
	}
	var out []Decision
	v, ended := d.tr.Face(f.Box, f.Time, f.Good)
	if ended != nil {
		out = append(out, d.finish(ended)...)
	}
	if d.cur == nil || d.cur.id != v.ID {
		d.cur = &visitState{id: v.ID, raw: map[string]*rawSums{}}
	}
	st := d.cur
	if !f.Good || st.decided {
		return out
	}
	cands := make([]decision.Candidate, len(f.Candidates))
	for i, c := range f.Candidates {
		cands[i] = decision.Candidate{ID: c.ID, Logit: c.Logit}
		st.addRaw(c.ID, c.Raw, f.Quality)
	}
	if err := st.ev.Add(decision.Frame{Quality: f.Quality, Candidates: cands}); err != nil {
		d.cfg.Log.Warn("frame left out of the visit's evidence", "visit", v.ID, "err", err)
		return out
	}
	st.pads = append(st.pads, f.PAD)
	st.ref = f.Ref
	st.rule = d.cfg.Rule()
	dec := st.ev.Decide(st.rule.Rule)
	switch dec.Outcome {
	case decision.Pending:
		return out
	case decision.Granted:
		if d.cfg.PADPassed != nil && !d.cfg.PADPassed(st.pads) {
			// Not yet: a later frame may pass; the visit's end reports it.
			return out
		}
	}
	st.decided = true
	return append(out, d.decide(dec, *v, "", f.Time)...)
}

// Tick ends a visit whose face is gone or which timed out; call it on
// frames without a face and periodically.
func (d *VisitDecider) Tick(now time.Time) []Decision {
	if e := d.tr.Tick(now); e != nil {
		return d.finish(e)
	}
	return nil
}

// End ends the visit in progress for why; a 1:1 claim taking over the
// door ends it without an event.
func (d *VisitDecider) End(why VisitEnd) []Decision {
	e := d.tr.End(why)
	if e == nil {
		return nil
	}
	if why == EndClaimed {
		d.cur = nil
		return nil
	}
	return d.finish(e)
}

// finish decides a visit that ended undecided: unknown, or ambiguous.
// A visit without a good frame is no decision (the failure-to-acquire
// statistics count it).
func (d *VisitDecider) finish(e *Ended) []Decision {
	st := d.cur
	d.cur = nil
	if st == nil || st.id != e.Visit.ID || st.decided || e.Visit.Good == 0 {
		return nil
	}
	dec := st.ev.Final(st.rule.Rule)
	if dec.Outcome == decision.Granted {
		// Only the PAD condition held the grant back.
		dec.Outcome = decision.Unknown
	}
	d.cur = st // decide reads it
	out := d.decide(dec, e.Visit, e.Why, e.Visit.Last)
	d.cur = nil
	return out
}

func (d *VisitDecider) decide(dec decision.Decision, v Visit, end VisitEnd, at time.Time) []Decision {
	st := d.cur
	rep := &VisitReport{ID: v.ID, Frames: st.ev.Frames(), Seen: v.Frames, FirstGood: v.FirstGood, DecidedAt: at, End: end, Rule: st.rule}
	if dec.HasBest {
		rep.Best = st.candidate(dec.Best)
	}
	if dec.HasSecond {
		rep.Second = st.candidate(dec.Second)
	}
	out := Decision{Time: at, Mode: "1:N", Votes: rep.Frames, Window: v.Frames, Visit: rep}
	out.Best = Observation{Time: at, Face: true, Score: math.NaN(), Ref: st.ref}
	if rep.Best != nil {
		out.Best.Score, out.Best.Subject = rep.Best.Logit, rep.Best.ID
		out.Best.Margin = rep.Margin()
	}
	switch dec.Outcome {
	case decision.Granted:
		out.Verdict, out.Subject, out.Reason = Granted, dec.Best.ID, "match"
		out.Best.Accepted = true
		if last, ok := d.lastGrant[out.Subject]; ok && at.Sub(last) < d.cfg.Cooldown {
			return nil // the same person back within the cooldown
		}
		d.lastGrant[out.Subject] = at
	case decision.Ambiguous:
		out.Verdict, out.Reason = Ambiguous, "margin"
	default:
		out.Verdict, out.Reason = Unknown, "no_match"
		if !d.lastUnknown.IsZero() && at.Sub(d.lastUnknown) < d.cfg.UnknownInterval {
			return nil
		}
		d.lastUnknown = at
	}
	return []Decision{out}
}

func (st *visitState) addRaw(id string, raw []float64, w float64) {
	r := st.raw[id]
	if r == nil {
		r = &rawSums{sum: make([]float64, len(raw)), w: make([]float64, len(raw))}
		st.raw[id] = r
	}
	for i, v := range raw {
		if i < len(r.sum) && !math.IsNaN(v) {
			r.sum[i] += w * v
			r.w[i] += w
		}
	}
}

func (st *visitState) candidate(c decision.Candidate) *VisitCandidate {
	vc := &VisitCandidate{ID: c.ID, Logit: c.Logit}
	if r := st.raw[c.ID]; r != nil {
		vc.Raw = make([]float64, len(r.sum))
		for i := range r.sum {
			vc.Raw[i] = math.NaN()
			if r.w[i] > 0 {
				vc.Raw[i] = r.sum[i] / r.w[i]
			}
		}
	}
	return vc
}
