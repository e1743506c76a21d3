package daemon

import (
	"log/slog"
	"math"
	"time"

	"github.com/facegate/facegate/infer/quality"
	"github.com/facegate/facegate/pad/challenge"
)

// Verdict is what the decider concluded.
type Verdict string

// The verdicts an event carries.
const (
	Granted Verdict = "granted" // an enrolled subject: per visit (1:N), N of M frames (1:1)
	Denied  Verdict = "denied"  // a 1:1 claim that did not verify (or timed out)
	Unknown Verdict = "unknown" // a face that matches no one enrolled
)

// Observation is what the pipeline saw in one frame: the primary face's
// best match (1:N) or its match with the claimed subject (1:1).
type Observation struct {
	Time time.Time
	// Face is false when the frame held no usable face (none found, or it
	// failed the quality gate); such frames do not vote.
	Face bool
	// Subject is the best candidate (1:N) or the claimed subject (1:1);
	// empty when the gallery is empty.
	Subject string
	// Accepted: the score is on the match side of the calibrated threshold.
	Accepted bool
	// Score and Margin are reported on the event (the best vote's values).
	Score  float64
	Margin float64
	// Ref carries pipeline details (box, quality, latency) to the event.
	Ref any
	// PAD is the frame's passive presentation-attack score (MiniFASNet
	// p_real) of a good face, NaN when it was not scored. Only claims
	// read it, and only with a passive PAD policy.
	PAD float64
	// Seen: the frame showed the door's face (the largest), good or not;
	// Box and Keypoints are it. A claim's head-turn challenge reads
	// every such frame (turned faces fail the quality gate).
	Seen         bool
	Box          [4]float64
	Keypoints    quality.Keypoints
	HasKeypoints bool
}

// Claim is a 1:1 request: the next good face within the timeout is
// verified against Subject only.
type Claim struct {
	ID       string
	Subject  string
	Deadline time.Time
}

// Decision is one event to publish.
type Decision struct {
	Time    time.Time
	Verdict Verdict
	Mode    string // "1:N" or "1:1"
	Subject string
	ClaimID string
	Reason  string
	// Votes and Window: how many of the last frames agreed.
	Votes, Window int
	// Best is the agreeing observation with the closest score (1:1), or the
	// visit's best identity with its aggregated logit (1:N).
	Best Observation
	// Visit is the 1:N decision's visit: evidence, rule, candidates.
	Visit *VisitReport
	// PAD is the visit's presentation-attack result (nil without PAD).
	PAD *PADReport
}

// DeciderConfig are the decision rules.
type DeciderConfig struct {
	AgreeN, AgreeM  int
	Cooldown        time.Duration // one grant per subject per cooldown
	UnknownInterval time.Duration // at most one unknown event per interval
	// HigherIsMatch orders scores to pick the best vote.
	HigherIsMatch bool
	// IdentifyOpen: whether 1:N identification runs when no claim is
	// pending (false in 1:1-only mode).
	IdentifyOpen bool
	// PAD is the presentation-attack rule a claim's grant needs, the same
	// as a 1:N visit's (pad.go); nil grants on identity alone
	// (FACEGATE_PAD=off).
	PAD *PADPolicy
	Log *slog.Logger
}

// Decider turns per-frame observations into events: a decision needs
// AgreeN of the last AgreeM frames with a face to agree; a subject granted
// stays quiet for Cooldown; unknown faces make at most one event per
// UnknownInterval; a 1:1 claim takes over until it is decided or expires.
// A claim whose identity verified is granted only when it passes PAD
// (cfg.PAD): the median p_real of its scored frames at the threshold and,
// with the challenge, the head turn answered; otherwise it is a
// presentation attack. It is not safe for concurrent use: the decide stage
// owns it.
type Decider struct {
	cfg         DeciderConfig
	window      []Observation
	lastGrant   map[string]time.Time
	lastUnknown time.Time
	claim       *Claim
	claimFaces  int
	// The pending claim's PAD: p_real of its good frames, the identity
	// verification that cleared (waiting for PAD) and its challenge.
	claimPADs []float64
	verified  *Observation
	checker   *challenge.Checker
}

// NewDecider makes a decider.
func NewDecider(cfg DeciderConfig) *Decider {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.PAD = cfg.PAD.withDefaults()
	return &Decider{cfg: cfg, lastGrant: map[string]time.Time{}}
}

// WantsPAD reports whether a claim's good frame should be scored by
// passive PAD: a claim is pending, undecided, and PAD is passive.
func (d *Decider) WantsPAD() bool {
	return d.claim != nil && d.cfg.PAD.passive()
}

// Claim starts a 1:1 verification; a pending claim is replaced (it is
// reported denied with reason "superseded").
func (d *Decider) Claim(c Claim, now time.Time) []Decision {
	var out []Decision
	if d.claim != nil {
		out = append(out, d.closeClaim(now, Denied, "superseded", Observation{}))
	}
	d.claim = &c
	d.resetClaim()
	return out
}

func (d *Decider) resetClaim() {
	d.claimFaces = 0
	d.window = d.window[:0]
	d.claimPADs = d.claimPADs[:0]
	d.verified, d.checker = nil, nil
}

// PendingClaim is the claim being verified, if any.
func (d *Decider) PendingClaim() (Claim, bool) {
	if d.claim == nil {
		return Claim{}, false
	}
	return *d.claim, true
}

// Tick expires a claim whose deadline passed, and fails its challenge
// past the challenge's deadline; call it periodically. A claim that
// verified but did not pass PAD by then is a presentation attack.
func (d *Decider) Tick(now time.Time) []Decision {
	if d.claim == nil {
		return nil
	}
	if d.checker != nil && d.verified != nil {
		if r := d.checker.Expire(now); r.Status == challenge.Failed {
			return []Decision{d.closeClaim(now, PresentationAttack, "challenge_"+string(r.Reason), *d.verified)}
		}
	}
	if !now.Before(d.claim.Deadline) {
		if d.verified != nil {
			why := "pad_passive"
			if d.checker != nil && d.checker.Result().Status != challenge.Passed {
				why = "challenge_" + string(challenge.ReasonFaceLost)
			}
			return []Decision{d.closeClaim(now, PresentationAttack, why, *d.verified)}
		}
		reason := "timeout_no_face"
		if d.claimFaces > 0 {
			reason = "timeout"
		}
		return []Decision{d.closeClaim(now, Denied, reason, d.bestOf(d.window, true))}
	}
	return nil
}

// Observe adds one frame's observation and returns the decisions it
// completes.
func (d *Decider) Observe(o Observation) []Decision {
	out := d.Tick(o.Time)
	if d.claim != nil && d.verified != nil {
		return append(out, d.claimPADFrame(o)...)
	}
	if !o.Face {
		return out
	}
	if d.claim == nil && !d.cfg.IdentifyOpen {
		return out
	}
	if d.claim != nil {
		d.claimFaces++
	}
	d.window = append(d.window, o)
	if len(d.window) > d.cfg.AgreeM {
		d.window = d.window[len(d.window)-d.cfg.AgreeM:]
	}
	if d.claim != nil {
		return append(out, d.decideClaim(o.Time)...)
	}
	return append(out, d.decideOpen(o.Time)...)
}

func (d *Decider) decideClaim(now time.Time) []Decision {
	acc, rej := 0, 0
	for _, w := range d.window {
		if w.Accepted && w.Subject == d.claim.Subject {
			acc++
		} else {
			rej++
		}
	}
	switch {
	case acc >= d.cfg.AgreeN:
		if d.cfg.PAD != nil {
			best := d.bestOf(d.window, true)
			d.verified = &best
			for _, w := range d.window {
				if w.Accepted && w.Subject == d.claim.Subject {
					d.claimPADs = append(d.claimPADs, w.PAD)
				}
			}
			return d.claimPAD(d.window[len(d.window)-1])
		}
		d.lastGrant[d.claim.Subject] = now
		return []Decision{d.closeClaim(now, Granted, "match", d.bestOf(d.window, true))}
	case rej >= d.cfg.AgreeN:
		return []Decision{d.closeClaim(now, Denied, "claim_mismatch", d.bestOf(d.window, false))}
	}
	return nil
}

// claimPADFrame adds a frame of a claim whose identity verified: a good
// face adds its p_real, every frame answers the challenge.
func (d *Decider) claimPADFrame(o Observation) []Decision {
	if o.Face {
		d.claimFaces++
		d.claimPADs = append(d.claimPADs, o.PAD)
	}
	return d.claimPAD(o)
}

// claimPAD decides a verified claim by PAD, as tryGrant does a visit: the
// challenge is issued (once) and must pass; passive PAD's median must
// reach the threshold, a presentation attack once MinFrames scored frames
// have not lifted it. Otherwise it waits for more frames.
func (d *Decider) claimPAD(o Observation) []Decision {
	pol, now := d.cfg.PAD, o.Time
	if pol.challenge() {
		if d.checker == nil {
			ch := pol.Issuer.Issue(now)
			c, err := challenge.NewChecker(pol.Challenge, ch)
			if err != nil { // the config was validated when the policy was built
				d.cfg.Log.Error("challenge not started", "claim", d.claim.ID, "err", err)
				return []Decision{d.closeClaim(now, PresentationAttack, "challenge_error", *d.verified)}
			}
			d.checker = c
			if hold := ch.Deadline.Add(challengeHold); d.claim.Deadline.Before(hold) {
				d.claim.Deadline = hold // the claim waits for the answer
			}
			d.cfg.Log.Info("challenge issued", "claim", d.claim.ID, "challenge", ch.ID, "kind", ch.Kind, "deadline", ch.Deadline)
			if pol.OnChallenge != nil {
				pol.OnChallenge(ch, 0)
			}
		}
		co := challenge.Observation{Time: now, Face: o.Seen && o.HasKeypoints,
			Box: quality.Box{X0: o.Box[0], Y0: o.Box[1], X1: o.Box[2], Y1: o.Box[3]}, Keypoints: o.Keypoints}
		switch r := d.checker.Observe(co); r.Status {
		case challenge.Failed:
			return []Decision{d.closeClaim(now, PresentationAttack, "challenge_"+string(r.Reason), *d.verified)}
		case challenge.Pending:
			return nil
		}
	}
	if pol.passive() {
		if m, n := median(d.claimPADs); n == 0 || m < pol.Threshold {
			if n >= pol.MinFrames {
				return []Decision{d.closeClaim(now, PresentationAttack, "pad_passive", *d.verified)}
			}
			return nil
		}
	}
	d.lastGrant[d.claim.Subject] = now
	return []Decision{d.closeClaim(now, Granted, "match", *d.verified)}
}

func (d *Decider) closeClaim(now time.Time, v Verdict, reason string, best Observation) Decision {
	c := *d.claim
	dec := Decision{Time: now, Verdict: v, Mode: "1:1", Subject: c.Subject, ClaimID: c.ID, Reason: reason,
		Votes: d.votes(v, c.Subject), Window: len(d.window), Best: best, PAD: d.claimReport(v)}
	d.claim = nil
	d.resetClaim()
	return dec
}

// claimReport is the closing claim's PAD result (nil without PAD).
func (d *Decider) claimReport(v Verdict) *PADReport {
	pol := d.cfg.PAD
	if pol == nil {
		return nil
	}
	r := &PADReport{Method: pol.Method, Score: math.NaN(), Attack: v == PresentationAttack, Passed: v == Granted}
	if pol.passive() {
		r.Score, r.Frames = median(d.claimPADs)
		r.Threshold, r.BPCER = pol.Threshold, pol.BPCER
	}
	if d.checker != nil {
		ch := d.checker.Challenge()
		r.Challenge, r.Result = &ch, d.checker.Result()
	}
	return r
}

func (d *Decider) votes(v Verdict, subject string) int {
	n := 0
	for _, w := range d.window {
		if (v == Granted || v == PresentationAttack) == (w.Accepted && w.Subject == subject) {
			n++
		}
	}
	return n
}

func (d *Decider) decideOpen(now time.Time) []Decision {
	// Count accepted votes per subject, and rejections.
	counts := map[string]int{}
	rejected := 0
	for _, w := range d.window {
		if w.Accepted && w.Subject != "" {
			counts[w.Subject]++
		} else {
			rejected++
		}
	}
	for subject, n := range counts {
		if n < d.cfg.AgreeN {
			continue
		}
		best := d.bestFor(subject)
		window := len(d.window)
		d.window = d.window[:0]
		if last, ok := d.lastGrant[subject]; ok && now.Sub(last) < d.cfg.Cooldown {
			return nil // the same person still at the door
		}
		d.lastGrant[subject] = now
		return []Decision{{Time: now, Verdict: Granted, Mode: "1:N", Subject: subject, Reason: "match", Votes: n, Window: window, Best: best}}
	}
	if rejected >= d.cfg.AgreeN {
		best := d.bestOf(d.window, false)
		window := len(d.window)
		d.window = d.window[:0]
		if !d.lastUnknown.IsZero() && now.Sub(d.lastUnknown) < d.cfg.UnknownInterval {
			return nil
		}
		d.lastUnknown = now
		return []Decision{{Time: now, Verdict: Unknown, Mode: "1:N", Reason: "no_match", Votes: rejected, Window: window, Best: best}}
	}
	return nil
}

// bestFor is the closest accepted observation of subject in the window.
func (d *Decider) bestFor(subject string) Observation {
	var best Observation
	found := false
	for _, w := range d.window {
		if w.Accepted && w.Subject == subject && (!found || d.closer(w.Score, best.Score)) {
			best, found = w, true
		}
	}
	return best
}

// bestOf is the closest observation among accepted (or rejected) ones.
func (d *Decider) bestOf(ws []Observation, accepted bool) Observation {
	var best Observation
	found := false
	for _, w := range ws {
		if w.Accepted == accepted && (!found || d.closer(w.Score, best.Score)) {
			best, found = w, true
		}
	}
	return best
}

func (d *Decider) closer(a, b float64) bool {
	if d.cfg.HigherIsMatch {
		return a > b
	}
	return a < b
}
