package challenge

import (
	"fmt"
	"github.com/facegate/facegate/infer/quality"
	"math"
	"time"
)

// Status is where a challenge stands.
type Status string

// Statuses.
const (
	Pending Status = "pending"
	Passed  Status = "passed"
	Failed  Status = "failed"
)

// Reason says why a challenge failed.
type Reason string

// Reasons (package doc, "The rule").
const (
	ReasonNone           Reason = ""
	ReasonTimeout        Reason = "timeout"
	ReasonWrongDirection Reason = "wrong_direction"
	ReasonNotFrontal     Reason = "not_frontal"
	ReasonTooEarly       Reason = "too_early"
	ReasonFaceLost       Reason = "face_lost"
	ReasonDiscontinuous  Reason = "discontinuous"
	ReasonPlanar         Reason = "planar"
)

// Result is the checker's verdict so far.
type Result struct {
	Status Status
	Reason Reason // set when Failed
	// At is the time of the frame that decided it (zero while pending).
	At time.Time
	// Baseline is the first face's pose; Peak the largest turn in the
	// asked direction seen on a frame whose estimates agree (the smaller
	// of the two estimates' changes).
	Baseline Pose
	Peak     float64
	Frames   int // observations with a face
}

// Latency is the time from the challenge to the decision (0 while pending).
func (r Result) Latency(ch Challenge) time.Duration {
	if r.At.IsZero() {
		return 0
	}
	return r.At.Sub(ch.Issued)
}

// String is a one-line summary for logs.
func (r Result) String() string {
	s := fmt.Sprintf("%s peak=%.1f° frames=%d", r.Status, r.Peak, r.Frames)
	if r.Reason != ReasonNone {
		s += " reason=" + string(r.Reason)
	}
	return s
}

// Checker follows one challenge over the frames after it was issued. It is
// not safe for concurrent use.
type Checker struct {
	cfg Config
	ch  Challenge
	dir float64 // +1: yaw towards the image's right

	res        Result
	started    bool
	last       Observation // last frame with a face
	lastSeen   time.Time
	hold, anti int  // consecutive frames turning the asked / other way
	planar     bool // some frame turned the asked way by Yaw alone
}

// NewChecker starts checking ch.
func NewChecker(cfg Config, ch Challenge) (*Checker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var dir float64
	switch ch.Kind {
	case TurnLeft: // the subject's left is the image's right, unmirrored
		dir = 1
	case TurnRight:
		dir = -1
	default:
		return nil, fmt.Errorf("challenge: unknown kind %q", ch.Kind)
	}
	if cfg.Mirrored {
		dir = -dir
	}
	return &Checker{cfg: cfg, ch: ch, dir: dir, res: Result{Status: Pending}}, nil
}

// Challenge is the challenge being checked.
func (c *Checker) Challenge() Challenge { return c.ch }

// Result is the verdict so far.
func (c *Checker) Result() Result { return c.res }

func (c *Checker) fail(at time.Time, why Reason) Result {
	c.res.Status, c.res.Reason, c.res.At = Failed, why, at
	return c.res
}

// Expire fails a pending challenge whose deadline has passed at now.
func (c *Checker) Expire(now time.Time) Result {
	if c.res.Status != Pending || now.Before(c.ch.Deadline) {
		return c.res
	}
	switch {
	case !c.started:
		return c.fail(now, ReasonFaceLost)
	case c.planar:
		return c.fail(now, ReasonPlanar)
	}
	return c.fail(now, ReasonTimeout)
}

// Observe adds the next frame (in time order; frames before Issued are
// ignored) and returns the verdict so far. Once decided, the verdict stays.
func (c *Checker) Observe(o Observation) Result {
	if c.res.Status != Pending || o.Time.Before(c.ch.Issued) {
		return c.res
	}
	if !o.Time.Before(c.ch.Deadline) {
		return c.Expire(o.Time)
	}
	if !o.Face {
		c.hold, c.anti = 0, 0
		if c.started && o.Time.Sub(c.lastSeen) > c.cfg.MaxGap {
			return c.fail(o.Time, ReasonFaceLost)
		}
		return c.res
	}
	p := Measure(o.Keypoints)
	if !c.started {
		if !p.OK || math.Abs(p.Yaw) > c.cfg.FrontalMax {
			c.res.Frames++
			return c.fail(o.Time, ReasonNotFrontal)
		}
		c.started, c.res.Baseline = true, p
	} else {
		if o.Time.Sub(c.lastSeen) > c.cfg.MaxGap {
			return c.fail(o.Time, ReasonFaceLost)
		}
		if !continuous(c.last.Box, o.Box, c.cfg) {
			c.res.Frames++
			return c.fail(o.Time, ReasonDiscontinuous)
		}
	}
	c.res.Frames++
	c.last, c.lastSeen = o, o.Time
	if !p.OK { // keypoints without geometry (a face turned far away)
		c.hold, c.anti = 0, 0
		return c.res
	}
	b := c.res.Baseline
	dy, dm := c.dir*(p.Yaw-b.Yaw), c.dir*(p.MidlineYaw-b.MidlineYaw)
	agree := math.Abs(p.Yaw-p.MidlineYaw) <= c.cfg.Agree
	if agree {
		c.res.Peak = math.Max(c.res.Peak, math.Min(dy, dm))
	}
	turned := func(s, move, abs float64) bool {
		return agree && s*(p.Yaw-b.Yaw) >= move && s*p.Yaw >= abs &&
			s*(p.MidlineYaw-b.MidlineYaw) >= move && s*p.MidlineYaw >= abs
	}
	asked := turned(c.dir, c.cfg.Turn, c.cfg.TurnAbs)
	other := turned(-c.dir, c.cfg.Wrong, c.cfg.Wrong)
	if !asked && dy >= c.cfg.Turn && c.dir*p.Yaw >= c.cfg.TurnAbs {
		c.planar = true
	}
	early := o.Time.Before(c.ch.Issued.Add(c.cfg.MinReaction))
	if early && (asked || other) {
		return c.fail(o.Time, ReasonTooEarly)
	}
	c.hold, c.anti = count(asked, c.hold), count(other, c.anti)
	switch {
	case c.hold >= c.cfg.HoldFrames:
		c.res.Status, c.res.At = Passed, o.Time
	case c.anti >= c.cfg.HoldFrames:
		return c.fail(o.Time, ReasonWrongDirection)
	}
	return c.res
}

func count(ok bool, n int) int {
	if ok {
		return n + 1
	}
	return 0
}

// continuous: the box moved and grew within the limits between frames.
func continuous(a, b quality.Box, cfg Config) bool {
	aw, bw := a.X1-a.X0, b.X1-b.X0
	ah, bh := a.Y1-a.Y0, b.Y1-b.Y0
	if aw <= 0 || bw <= 0 || ah <= 0 || bh <= 0 {
		return false
	}
	dx := (b.X0+b.X1)/2 - (a.X0+a.X1)/2
	dy := (b.Y0+b.Y1)/2 - (a.Y0+a.Y1)/2
	if math.Hypot(dx, dy) > cfg.MaxJump*aw {
		return false
	}
	r := math.Sqrt(bw*bh) / math.Sqrt(aw*ah)
	return r <= cfg.MaxScale && 1/r <= cfg.MaxScale
}

// Check runs a whole clip of observations through a new checker and
// expires it at end (the time the caller stopped watching).
func Check(cfg Config, ch Challenge, obs []Observation, end time.Time) (Result, error) {
	c, err := NewChecker(cfg, ch)
	if err != nil {
		return Result{}, err
	}
	for _, o := range obs {
		if r := c.Observe(o); r.Status != Pending {
			return r, nil
		}
	}
	return c.Expire(end), nil
}
