package daemon

import (
	"log/slog"
	"math"
	"time"

	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/infer/quality"
	"github.com/facegate/facegate/pad/challenge"
)

// Ambiguous is the verdict of a visit whose best identity cleared the
// threshold without beating the second-best by the margin: nobody is
// granted, and the event names both for the audit log.
const Ambiguous Verdict = "ambiguous"

// Reasons of 1:N unknown decisions besides no_match.
const (
	// ReasonFailureToAcquire: the visit ended without a frame that passed
	// the quality gate (VisitReport.Rejected says which checks failed).
	ReasonFailureToAcquire = "failure_to_acquire"
	// ReasonLooksSpent: the visit continues visits whose faces jumped in
	// within the gap, and they had used the whole look budget.
	ReasonLooksSpent = "looks_spent"
)

// PresentationAttack is the verdict of a visit whose identity cleared but
// which failed PAD (pad.go): nobody is let in, and the event names the
// identity presented and the reason (pad_passive, challenge_<reason>).
const PresentationAttack Verdict = "presentation_attack"

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
	// PAD is the frame's passive presentation-attack score (MiniFASNet
	// p_real), NaN when the frame was not scored.
	PAD float64
	// Keypoints are the face's landmarks (HasKeypoints when read): the
	// challenge's yaw track.
	Keypoints    quality.Keypoints
	HasKeypoints bool
	// Rejected are the quality checks the face failed (quality.Check*
	// names) when it showed but was not Good; empty when it passed the
	// gate but was not embedded.
	Rejected []string
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
	// Frames is how many looks (good frames, LookInterval apart) the
	// evidence holds; Seen how many frames showed the face.
	Frames, Seen int
	// Carried is how many looks of the budget the visits it continues
	// (a face that jumped in within the gap) had used already.
	Carried int
	// Rejected counts the frames with the face that failed the quality
	// gate, by check failed (a frame failing two checks counts under
	// both; "not_embedded" for a face that passed but was not embedded).
	Rejected     map[string]int
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
	// PAD is the presentation-attack rule a grant needs (pad.go); nil
	// passes every visit (FACEGATE_PAD=off).
	PAD *PADPolicy
	Log *slog.Logger
}

// VisitDecider makes 1:N decisions per visit: the frames of a visit add
// quality-weighted evidence per identity (decision.Evidence), an identity
// is granted at the first frame where its evidence clears the threshold
// for the gallery size, beats the second-best by the margin and the visit
// passes PAD, and a visit that ends (or reaches the rule's frame limit)
// without that is unknown, or ambiguous when only the margin failed, or a
// presentation attack when only PAD failed. One decision per visit. It is
// not safe for concurrent use: the decide stage owns it.
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
	granted bool // decided by a grant
	// carried: looks used by the visits this one continues; chainStart:
	// the first frame of the first of them (a fresh budget once per
	// Timeout at most).
	carried    int
	chainStart time.Time
	lastLook   time.Time
	rejected   map[string]int
	rule       VisitRule
	raw        map[string]*rawSums
	pads       []float64 // p_real of the good frames scored
	ref        any       // the latest good frame's details
	// cleared is the identity decision that cleared, waiting for PAD.
	cleared *decision.Decision
	checker *challenge.Checker // the visit's challenge, once issued
}

type rawSums struct{ sum, w []float64 }

// NewVisitDecider returns a decider; cfg.Rule is required, and cfg.PAD's
// Issuer when it asks for the challenge.
func NewVisitDecider(cfg VisitDeciderConfig) *VisitDecider {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.PAD = cfg.PAD.withDefaults()
	return &VisitDecider{cfg: cfg, tr: NewVisitTracker(cfg.Visit), lastGrant: map[string]time.Time{}}
}

// Current is the visit in progress, nil when none.
func (d *VisitDecider) Current() *Visit { return d.tr.Current() }

// WantsPAD reports whether a good frame with the door's face at box, seen
// at at, should be scored by passive PAD: PAD is passive and the frame
// belongs to an undecided visit (the current one, or a new one it starts).
// It bounds PAD's cost to the decided subject's face while it matters.
func (d *VisitDecider) WantsPAD(box [4]float64, at time.Time) bool {
	if !d.cfg.PAD.passive() {
		return false
	}
	if d.cur == nil || d.tr.Current() == nil || d.cur.id != d.tr.Current().ID {
		return true
	}
	return !d.cur.decided || d.tr.why(box, at) != endNone
}

// Frame adds one frame and returns the decisions it completes: the end of
// the previous visit, a decision of the current one, or none.
func (d *VisitDecider) Frame(f VisitFrame) []Decision {
	if !f.Face {
		out := d.challengeFrame(f)
		return append(out, d.Tick(f.Time)...)
	}
	var out []Decision
	prev := d.cur
	v, ended := d.tr.Face(f.Box, f.Time, f.Good)
	if ended != nil {
		out = append(out, d.finish(ended)...)
	}
	if d.cur == nil || d.cur.id != v.ID {
		d.cur = d.newState(v, ended, prev)
	}
	st := d.cur
	if f.Face && !f.Good {
		st.reject(f.Rejected)
	}
	if st.decided {
		return out
	}
	if st.checker != nil {
		// The identity cleared and the challenge runs: every frame with
		// the face answers it; good ones still add passive PAD scores.
		if f.Good {
			st.pads = append(st.pads, f.PAD)
			st.ref = f.Ref
		}
		return append(out, d.challengeFrame(f)...)
	}
	if !f.Good {
		return out
	}
	if st.cleared != nil {
		// The identity cleared; passive PAD has not passed yet: more
		// frames may lift the visit's median.
		st.pads = append(st.pads, f.PAD)
		st.ref = f.Ref
		return append(out, d.tryGrant(*v, f.Time)...)
	}
	if st.ev.Frames() > 0 && f.Time.Sub(st.lastLook) < d.tr.cfg.LookInterval {
		return out // too soon after the last look: nearly the same view
	}
	st.rule = d.cfg.Rule()
	st.rule.MaxFrames -= st.carried
	if st.rule.MaxFrames <= 0 {
		// The visits this one continues spent the look budget.
		st.decided = true
		return append(out, d.decide(decision.Decision{Outcome: decision.Unknown}, *v, "", f.Time, "")...)
	}
	st.lastLook = f.Time
	st.ev.Agg = st.rule.Aggregate
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
	dec := st.ev.Decide(st.rule.Rule)
	switch dec.Outcome {
	case decision.Pending:
		return out
	case decision.Granted:
		if d.cfg.PAD != nil {
			return append(out, d.cleared(dec, v, f)...)
		}
	}
	st.decided = true
	return append(out, d.decide(dec, *v, "", f.Time, "")...)
}

// newState starts the decision state of visit v. When v replaced a visit
// whose face jumped away (EndMoved: a new face within the gap) and that
// visit was not granted, v continues its look budget, for at most Timeout
// from the first visit of the chain: one stranger swapping faces or
// photos gets the looks the calibration covers, not a fresh budget per
// face.
func (d *VisitDecider) newState(v *Visit, ended *Ended, prev *visitState) *visitState {
	st := &visitState{id: v.ID, raw: map[string]*rawSums{}, chainStart: v.Start}
	if ended == nil || ended.Why != EndMoved || prev == nil || prev.id != ended.Visit.ID || prev.granted {
		return st
	}
	if v.Start.Sub(prev.chainStart) < d.tr.cfg.Timeout {
		st.carried, st.chainStart = prev.carried+prev.ev.Frames(), prev.chainStart
	}
	return st
}

// reject counts a frame with the face that failed the quality gate.
func (st *visitState) reject(checks []string) {
	if st.rejected == nil {
		st.rejected = map[string]int{}
	}
	if len(checks) == 0 {
		st.rejected["not_embedded"]++
	}
	for _, c := range checks {
		st.rejected[c]++
	}
}

// cleared handles a frame at which the visit's identity cleared: the
// challenge is issued (once), else the grant waits for passive PAD.
func (d *VisitDecider) cleared(dec decision.Decision, v *Visit, f VisitFrame) []Decision {
	st, pol := d.cur, d.cfg.PAD
	st.cleared = &dec
	if pol.challenge() && st.checker == nil {
		ch := pol.Issuer.Issue(f.Time)
		c, err := challenge.NewChecker(pol.Challenge, ch)
		if err != nil { // the config was validated when the policy was built
			d.cfg.Log.Error("challenge not started", "visit", v.ID, "err", err)
			st.decided = true
			return d.decide(dec, *v, "", f.Time, "challenge_error")
		}
		st.checker = c
		d.tr.Hold(ch.Deadline.Add(challengeHold))
		d.cfg.Log.Info("challenge issued", "visit", v.ID, "challenge", ch.ID, "kind", ch.Kind, "deadline", ch.Deadline)
		if pol.OnChallenge != nil {
			pol.OnChallenge(ch, v.ID)
		}
		// This frame is the challenge's first: its baseline.
		return d.challengeFrame(f)
	}
	return d.tryGrant(*v, f.Time)
}

// challengeFrame feeds the visit's challenge, if one is pending, with f.
func (d *VisitDecider) challengeFrame(f VisitFrame) []Decision {
	st := d.cur
	if st == nil || st.checker == nil || st.decided || d.tr.Current() == nil || d.tr.Current().ID != st.id {
		return nil
	}
	o := challenge.Observation{Time: f.Time, Face: f.Face && f.HasKeypoints,
		Box: quality.Box{X0: f.Box[0], Y0: f.Box[1], X1: f.Box[2], Y1: f.Box[3]}, Keypoints: f.Keypoints}
	return d.afterChallenge(*d.tr.Current(), st.checker.Observe(o), f.Time)
}

// afterChallenge acts on the challenge's verdict: a failure is a
// presentation attack, a pass lets the grant through (when passive PAD,
// if on, passes too).
func (d *VisitDecider) afterChallenge(v Visit, r challenge.Result, at time.Time) []Decision {
	switch r.Status {
	case challenge.Failed:
		d.cur.decided = true
		return d.decide(*d.cur.cleared, v, "", at, "challenge_"+string(r.Reason))
	case challenge.Passed:
		return d.tryGrant(v, at)
	}
	return nil
}

// tryGrant grants the cleared identity when passive PAD (if on) passes,
// decides a presentation attack when it failed on enough frames, and
// otherwise waits for more frames.
func (d *VisitDecider) tryGrant(v Visit, at time.Time) []Decision {
	st, pol := d.cur, d.cfg.PAD
	if pol.passive() {
		m, n := median(st.pads)
		if n == 0 || m < pol.Threshold {
			if n >= pol.MinFrames {
				st.decided = true
				return d.decide(*st.cleared, v, "", at, "pad_passive")
			}
			return nil
		}
	}
	st.decided = true
	return d.decide(*st.cleared, v, "", at, "")
}

// Tick ends a visit whose face is gone or which timed out, and fails a
// challenge past its deadline; call it on frames without a face and
// periodically.
func (d *VisitDecider) Tick(now time.Time) []Decision {
	if st := d.cur; st != nil && st.checker != nil && !st.decided && d.tr.Current() != nil && d.tr.Current().ID == st.id {
		if out := d.afterChallenge(*d.tr.Current(), st.checker.Expire(now), now); len(out) > 0 {
			return out
		}
	}
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

// MinFTAFrames is how many frames with the face a visit without a good
// frame needs for its failure_to_acquire event (a single detection is no
// visit).
const MinFTAFrames = 2

// finish decides a visit that ended undecided: unknown, ambiguous, or a
// presentation attack when its identity cleared and PAD did not pass (a
// challenge still pending when the face left: challenge_face_lost).
// A visit without a good frame (seen on MinFTAFrames frames or more) is
// unknown with reason failure_to_acquire, its rejected frames counted by
// quality check.
func (d *VisitDecider) finish(e *Ended) []Decision {
	st := d.cur
	d.cur = nil
	if st == nil || st.id != e.Visit.ID || st.decided {
		return nil
	}
	d.cur = st // decide reads it
	defer func() { d.cur = nil }()
	if e.Visit.Good == 0 {
		if e.Visit.Frames < MinFTAFrames {
			return nil
		}
		return d.decide(decision.Decision{Outcome: decision.Unknown}, e.Visit, e.Why, e.Visit.Last, "")
	}
	if st.cleared != nil {
		why := "pad_passive"
		if st.checker != nil && st.checker.Result().Status != challenge.Passed {
			why = "challenge_" + string(challenge.ReasonFaceLost)
			if r := st.checker.Expire(e.Visit.Last); r.Status == challenge.Failed {
				why = "challenge_" + string(r.Reason)
			}
		}
		return d.decide(*st.cleared, e.Visit, e.Why, e.Visit.Last, why)
	}
	dec := st.ev.Final(st.rule.Rule)
	if dec.Outcome == decision.Granted { // cannot happen without PAD holding it
		dec.Outcome = decision.Unknown
	}
	return d.decide(dec, e.Visit, e.Why, e.Visit.Last, "")
}

// decide builds the visit's decision; attack, when set, is the reason the
// cleared identity is refused as a presentation attack.
func (d *VisitDecider) decide(dec decision.Decision, v Visit, end VisitEnd, at time.Time, attack string) []Decision {
	st := d.cur
	rep := &VisitReport{ID: v.ID, Frames: st.ev.Frames(), Seen: v.Frames, Carried: st.carried, Rejected: st.rejected,
		FirstGood: v.FirstGood, DecidedAt: at, End: end, Rule: st.rule}
	if dec.HasBest {
		rep.Best = st.candidate(dec.Best)
	}
	if dec.HasSecond {
		rep.Second = st.candidate(dec.Second)
	}
	out := Decision{Time: at, Mode: "1:N", Votes: rep.Frames, Window: v.Frames, Visit: rep, PAD: d.padReport(st, dec, attack)}
	out.Best = Observation{Time: at, Face: true, Score: math.NaN(), Ref: st.ref}
	if rep.Best != nil {
		out.Best.Score, out.Best.Subject = rep.Best.Logit, rep.Best.ID
		out.Best.Margin = rep.Margin()
	}
	switch {
	case attack != "":
		// The identity the attack presented, for the security staff.
		out.Verdict, out.Subject, out.Reason = PresentationAttack, dec.Best.ID, attack
	case dec.Outcome == decision.Granted:
		out.Verdict, out.Subject, out.Reason = Granted, dec.Best.ID, "match"
		out.Best.Accepted = true
		st.granted = true
		if last, ok := d.lastGrant[out.Subject]; ok && at.Sub(last) < d.cfg.Cooldown {
			return nil // the same person back within the cooldown
		}
		d.lastGrant[out.Subject] = at
	case dec.Outcome == decision.Ambiguous:
		out.Verdict, out.Reason = Ambiguous, "margin"
	default:
		out.Verdict, out.Reason = Unknown, "no_match"
		switch {
		case v.Good == 0:
			// No frame passed the quality gate: nothing to match.
			out.Reason = ReasonFailureToAcquire
		case rep.Frames == 0:
			out.Reason = ReasonLooksSpent
		}
		if !d.lastUnknown.IsZero() && at.Sub(d.lastUnknown) < d.cfg.UnknownInterval {
			return nil
		}
		d.lastUnknown = at
	}
	return []Decision{out}
}

// padReport is the visit's PAD result for its decision (nil without PAD).
func (d *VisitDecider) padReport(st *visitState, dec decision.Decision, attack string) *PADReport {
	pol := d.cfg.PAD
	if pol == nil {
		return nil
	}
	r := &PADReport{Method: pol.Method, Score: math.NaN(), Attack: attack != ""}
	if pol.passive() {
		r.Score, r.Frames = median(st.pads)
		r.Threshold, r.BPCER = pol.Threshold, pol.BPCER
	}
	r.Passed = attack == "" && dec.Outcome == decision.Granted
	if st.checker != nil {
		ch := st.checker.Challenge()
		r.Challenge, r.Result = &ch, st.checker.Result()
	}
	return r
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
