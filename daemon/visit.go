package daemon

import (
	"math"
	"time"
)

// A visit is one face at the door from its appearance to its disappearance:
// the unit a door decision is made on (one grant per visit, an unknown when
// it ends without one). The tracker follows the door's subject (the
// largest face of each frame) by box continuity between frames and ends the
// visit when that face is gone for longer than the gap, jumps elsewhere in
// the frame, or the visit runs past its timeout.

// VisitConfig bounds visits.
type VisitConfig struct {
	// Gap ends a visit when no face continuous with it was seen for this
	// long (a blink of the detector, a frame lost, does not).
	Gap time.Duration
	// Timeout ends a visit this long after its first frame even while the
	// face stays: an undecided visit is then reported unknown and the next
	// frame starts a new one.
	Timeout time.Duration
	// MinIoU: a face continues the visit when its box overlaps the last one
	// by at least this intersection over union, or when its centre is
	// within MaxShift box widths of the last centre.
	MinIoU   float64
	MaxShift float64
	// LookInterval: a good frame adds a look to the visit's evidence only
	// this long after the visit's last look (the first good frame always
	// does). 180 ms takes every third frame at 15 fps and every frame at
	// 5 fps.
	LookInterval time.Duration
}

// DefaultVisitConfig are the tracker's defaults.
func DefaultVisitConfig() VisitConfig {
	return VisitConfig{Gap: time.Second, Timeout: 5 * time.Second, MinIoU: 0.2, MaxShift: 0.75, LookInterval: 180 * time.Millisecond}
}

// Visit is the visit the tracker follows.
type Visit struct {
	ID uint64
	// Start and Last are the times of its first and latest frame with the
	// face; FirstGood that of its first frame that passed the quality gate
	// (zero until one does): grant latency is measured from it.
	Start, Last, FirstGood time.Time
	Box                    [4]float64 // the face's latest box: x0, y0, x1, y1
	// Frames counts its frames with the face, Good those that passed the
	// quality gate (the frames its evidence is made of).
	Frames, Good int
}

// Duration is the time from its first to its latest frame.
func (v *Visit) Duration() time.Duration { return v.Last.Sub(v.Start) }

// VisitEnd says why a visit ended.
type VisitEnd string

// Why visits end.
const (
	EndGone    VisitEnd = "gone"    // no face for longer than the gap
	EndMoved   VisitEnd = "moved"   // the door's face is now another one
	EndTimeout VisitEnd = "timeout" // longer than VisitConfig.Timeout
	EndStopped VisitEnd = "stopped" // the engine stopped
	EndClaimed VisitEnd = "claimed" // a 1:1 claim took the door over
	endNone    VisitEnd = ""        // not ended
)

// Ended is a visit that ended and why.
type Ended struct {
	Visit Visit
	Why   VisitEnd
}

// VisitTracker follows the door's visits. It is not safe for concurrent
// use: the decide stage owns it.
type VisitTracker struct {
	cfg  VisitConfig
	cur  *Visit
	next uint64
	hold time.Time // the current visit does not time out before this
}

// Hold keeps the current visit from timing out before until (a challenge
// in progress: its own deadline ends it); the gap still ends it.
func (t *VisitTracker) Hold(until time.Time) {
	if t.cur != nil && until.After(t.hold) {
		t.hold = until
	}
}

// NewVisitTracker returns a tracker; zero fields of cfg take the defaults.
func NewVisitTracker(cfg VisitConfig) *VisitTracker {
	def := DefaultVisitConfig()
	if cfg.Gap <= 0 {
		cfg.Gap = def.Gap
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.MinIoU <= 0 {
		cfg.MinIoU = def.MinIoU
	}
	if cfg.MaxShift <= 0 {
		cfg.MaxShift = def.MaxShift
	}
	if cfg.LookInterval <= 0 {
		cfg.LookInterval = def.LookInterval
	}
	return &VisitTracker{cfg: cfg}
}

// Current is the visit in progress, nil when none.
func (t *VisitTracker) Current() *Visit { return t.cur }

// Face records the door's face in a frame at time at (good: it passed the
// quality gate). It returns the visit the face belongs to and, when the
// face ended the previous visit (it is elsewhere, came after the gap, or
// the visit timed out), that visit.
func (t *VisitTracker) Face(box [4]float64, at time.Time, good bool) (*Visit, *Ended) {
	var ended *Ended
	if t.cur != nil {
		switch why := t.why(box, at); why {
		case endNone:
		default:
			ended = t.end(why)
		}
	}
	if t.cur == nil {
		t.next++
		t.cur = &Visit{ID: t.next, Start: at}
	}
	v := t.cur
	v.Last, v.Box = at, box
	v.Frames++
	if good {
		v.Good++
		if v.FirstGood.IsZero() {
			v.FirstGood = at
		}
	}
	return v, ended
}

// Tick ends the visit when it has been gone for longer than the gap or has
// timed out by now; call it on frames without a face and periodically.
func (t *VisitTracker) Tick(now time.Time) *Ended {
	if t.cur == nil {
		return nil
	}
	switch {
	case now.Sub(t.cur.Last) > t.cfg.Gap:
		return t.end(EndGone)
	case now.Sub(t.cur.Start) >= t.cfg.Timeout && !now.Before(t.hold):
		return t.end(EndTimeout)
	}
	return nil
}

// End ends the visit in progress for why (nil when there is none).
func (t *VisitTracker) End(why VisitEnd) *Ended {
	if t.cur == nil {
		return nil
	}
	return t.end(why)
}

func (t *VisitTracker) end(why VisitEnd) *Ended {
	e := &Ended{Visit: *t.cur, Why: why}
	t.cur, t.hold = nil, time.Time{}
	return e
}

// why says whether a face at box, seen at at, ends the current visit.
func (t *VisitTracker) why(box [4]float64, at time.Time) VisitEnd {
	v := t.cur
	switch {
	case at.Sub(v.Last) > t.cfg.Gap:
		return EndGone
	case at.Sub(v.Start) >= t.cfg.Timeout && !at.Before(t.hold):
		return EndTimeout
	case !continuous(v.Box, box, t.cfg.MinIoU, t.cfg.MaxShift):
		return EndMoved
	}
	return endNone
}

// continuous reports whether box b plausibly is the face of box a one
// frame later: enough overlap, or a centre that moved by little.
func continuous(a, b [4]float64, minIoU, maxShift float64) bool {
	// A face that doubled or halved in size is another face.
	w, wb := math.Max(a[2]-a[0], 1), b[2]-b[0]
	if wb > 2*w || 2*wb < w {
		return false
	}
	if iou(a, b) >= minIoU {
		return true
	}
	ax, ay := (a[0]+a[2])/2, (a[1]+a[3])/2
	bx, by := (b[0]+b[2])/2, (b[1]+b[3])/2
	return math.Hypot(ax-bx, ay-by) <= maxShift*w
}

func iou(a, b [4]float64) float64 {
	ix := math.Min(a[2], b[2]) - math.Max(a[0], b[0])
	iy := math.Min(a[3], b[3]) - math.Max(a[1], b[1])
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	union := (a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}
