package daemon

import (
	"math"
	"testing"
	"time"

	"github.com/facegate/facegate/decision"
)

// A fixed rule: threshold 2 (logit), margin 1, at most 5 looks, looks at
// every good frame (LookInterval 1 ns; spacing has its own tests).
func testVisitDecider(pad *PADPolicy) *VisitDecider {
	rule := VisitRule{Rule: decision.Rule{Threshold: 2, Margin: 1, MaxFrames: 5}, GallerySize: 10, FPIR: 1e-3, Towers: "dlib+sface"}
	return NewVisitDecider(VisitDeciderConfig{Visit: VisitConfig{Gap: time.Second, Timeout: 5 * time.Second, LookInterval: time.Nanosecond},
		Cooldown: 10 * time.Second, UnknownInterval: 30 * time.Second, Rule: func() VisitRule { return rule }, PAD: pad})
}

func vframe(ms int, x float64, cands ...ScoredCandidate) VisitFrame {
	return VisitFrame{Time: at(ms), Face: true, Box: box(x, 100, 120), Good: true, Quality: 1, PAD: math.NaN(), Candidates: cands}
}

func cand(id string, logit float64) ScoredCandidate {
	return ScoredCandidate{ID: id, Logit: logit, Raw: []float64{0.3, 0.6}}
}

func run(d *VisitDecider, frames ...VisitFrame) []Decision {
	var out []Decision
	for _, f := range frames {
		out = append(out, d.Frame(f)...)
	}
	return out
}

func TestVisitGrantedOnceAsSoonAsEvidenceClears(t *testing.T) {
	d := testVisitDecider(nil)
	// Frame 1: ada at 1.5 (under the threshold); frame 2 brings her mean
	// to 2.5 with bob far behind: granted then, not at the visit's end.
	got := run(d, vframe(0, 100, cand("ada", 1.5), cand("bob", -4)))
	if len(got) != 0 {
		t.Fatalf("decided on one weak frame: %+v", got)
	}
	got = run(d, vframe(66, 102, cand("ada", 3.5), cand("bob", -4)))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Subject != "ada" || got[0].Mode != "1:N" {
		t.Fatalf("decisions %+v", got)
	}
	v := got[0].Visit
	if v.Frames != 2 || v.Seen != 2 || !v.FirstGood.Equal(at(0)) || !v.DecidedAt.Equal(at(66)) || v.End != "" ||
		v.Best.ID != "ada" || math.Abs(v.Best.Logit-2.5) > 1e-9 || v.Second.ID != "bob" || v.Rule.GallerySize != 10 ||
		math.Abs(v.Best.Raw[0]-0.3) > 1e-9 || math.Abs(got[0].Best.Score-2.5) > 1e-9 {
		t.Fatalf("visit %+v best %+v", v, v.Best)
	}
	// She stays at the door: no second event in the same visit, and none
	// when she leaves.
	for ms := 133; ms < 3000; ms += 66 {
		if got := run(d, vframe(ms, 104, cand("ada", 5))); len(got) != 0 {
			t.Fatalf("second decision at %d ms: %+v", ms, got)
		}
	}
	if got := d.Tick(at(5000)); len(got) != 0 {
		t.Fatalf("end of a decided visit: %+v", got)
	}
}

func TestVisitUnknownWhenItEnds(t *testing.T) {
	d := testVisitDecider(nil)
	got := run(d, vframe(0, 100, cand("ada", -3)), vframe(66, 100, cand("ada", -2)))
	if len(got) != 0 {
		t.Fatalf("%+v", got)
	}
	got = d.Tick(at(66 + 1001))
	if len(got) != 1 || got[0].Verdict != Unknown || got[0].Subject != "" || got[0].Visit.End != EndGone || got[0].Visit.Frames != 2 {
		t.Fatalf("end %+v", got)
	}
	// A visit with no good frame is no decision (failure to acquire).
	d2 := testVisitDecider(nil)
	f := vframe(0, 100)
	f.Good = false
	run(d2, f)
	if got := d2.Tick(at(2000)); len(got) != 0 {
		t.Fatalf("a visit without a good frame decided: %+v", got)
	}
}

func TestVisitUnknownAfterMaxFrames(t *testing.T) {
	d := testVisitDecider(nil)
	var got []Decision
	for i := 0; i < 8; i++ {
		got = append(got, d.Frame(vframe(i*66, 100, cand("ada", 1), cand("bob", 0)))...)
	}
	if len(got) != 1 || got[0].Verdict != Unknown || got[0].Visit.Frames != 5 || got[0].Visit.End != "" {
		t.Fatalf("decisions %+v", got)
	}
}

func TestVisitAmbiguousNamesBoth(t *testing.T) {
	d := testVisitDecider(nil)
	var got []Decision
	for i := 0; i < 5; i++ {
		got = append(got, d.Frame(vframe(i*66, 100, cand("ada", 4), cand("eve", 3.6)))...)
	}
	if len(got) != 1 || got[0].Verdict != Ambiguous || got[0].Subject != "" {
		t.Fatalf("decisions %+v", got)
	}
	v := got[0].Visit
	if v.Best.ID != "ada" || v.Second.ID != "eve" || math.Abs(v.Margin()-0.4) > 1e-9 {
		t.Fatalf("candidates %+v %+v", v.Best, v.Second)
	}
}

func TestVisitNewFaceIsANewVisit(t *testing.T) {
	d := testVisitDecider(nil)
	run(d, vframe(0, 50, cand("ada", -5)))
	// Someone else steps in front, elsewhere in the frame: the first visit
	// ends unknown, the new one is granted on its own evidence.
	got := run(d, vframe(66, 450, cand("bob", 6)))
	if len(got) != 2 || got[0].Verdict != Unknown || got[0].Visit.End != EndMoved || got[1].Verdict != Granted || got[1].Subject != "bob" || got[1].Visit.Frames != 1 {
		t.Fatalf("decisions %+v", got)
	}
	if got[0].Visit.ID == got[1].Visit.ID {
		t.Fatal("one visit for two faces")
	}
}

func TestVisitCooldownAndUnknownInterval(t *testing.T) {
	d := testVisitDecider(nil)
	grants, unknowns := 0, 0
	count := func(ds []Decision) {
		for _, x := range ds {
			switch x.Verdict {
			case Granted:
				grants++
			case Unknown:
				unknowns++
			}
		}
	}
	// ada twice within the cooldown, in two visits: one grant.
	count(run(d, vframe(0, 100, cand("ada", 5))))
	count(d.Tick(at(2000)))
	count(run(d, vframe(3000, 100, cand("ada", 5))))
	count(d.Tick(at(5000)))
	// Two strangers within the unknown interval: one unknown event.
	count(run(d, vframe(6000, 100, cand("ada", -5))))
	count(d.Tick(at(8000)))
	count(run(d, vframe(9000, 100, cand("ada", -5))))
	count(d.Tick(at(11000)))
	if grants != 1 || unknowns != 1 {
		t.Fatalf("%d grants, %d unknowns; want 1 and 1", grants, unknowns)
	}
}

func TestVisitClaimEndsVisitSilently(t *testing.T) {
	d := testVisitDecider(nil)
	run(d, vframe(0, 100, cand("ada", -5)))
	if got := d.End(EndClaimed); len(got) != 0 || d.Current() != nil {
		t.Fatalf("claim: %+v", got)
	}
}

// The daemon's rule: max over at most 5 looks, the tracker's defaults
// (looks 180 ms apart).
func spacedVisitDecider() *VisitDecider {
	rule := VisitRule{Rule: decision.Rule{Threshold: 2, Margin: 1, MaxFrames: 5, Aggregate: decision.Max}, GallerySize: 10, FPIR: 1e-3, Towers: "dlib+sface"}
	return NewVisitDecider(VisitDeciderConfig{Visit: VisitConfig{Gap: time.Second, Timeout: 5 * time.Second},
		Rule: func() VisitRule { return rule }})
}

// TestVisitLooksSpacedInTime: at 15 fps the five looks are taken about
// 200 ms apart (frames 0, 3, 6, 9, 12), not on five consecutive frames,
// and frames in between add nothing.
func TestVisitLooksSpacedInTime(t *testing.T) {
	d := spacedVisitDecider()
	var got []Decision
	for i := 0; i < 20 && len(got) == 0; i++ {
		logit := -3.0
		if i%3 != 0 {
			logit = 9 // frames between looks: not looked at
		}
		got = d.Frame(vframe(i*66, 100, cand("ada", logit), cand("bob", -5)))
		if len(got) > 0 && i != 12 {
			t.Fatalf("decided at frame %d: %+v", i, got)
		}
	}
	if len(got) != 1 || got[0].Verdict != Unknown || got[0].Visit.Frames != 5 || !got[0].Visit.DecidedAt.Equal(at(12*66)) {
		t.Fatalf("decisions %+v", got)
	}
	// A good look later in the visit grants (max: the poor first looks do
	// not drag it down).
	d = spacedVisitDecider()
	run(d, vframe(0, 100, cand("ada", -3)), vframe(66, 100, cand("ada", -3)), vframe(132, 100, cand("ada", -3)))
	got = run(d, vframe(198, 100, cand("ada", 2.5), cand("bob", -1)))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Visit.Frames != 2 || math.Abs(got[0].Visit.Best.Logit-2.5) > 1e-9 {
		t.Fatalf("decisions %+v", got)
	}
}

// TestVisitJumpContinuesLookBudget: a stranger swapping photos in front of
// the camera (each swap a jump of the largest face, within the gap) used
// to get a fresh budget of looks per photo; now the visits of one chain
// share one budget, so the FPIR calibrated for MaxFrames looks holds.
func TestVisitJumpContinuesLookBudget(t *testing.T) {
	d := spacedVisitDecider()
	looks, events := 0, 0
	ms := 0
	for photo := 0; photo < 6; photo++ {
		x := 50.0
		if photo%2 == 1 {
			x = 450
		}
		for i := 0; i < 6; i++ { // 0.4 s per photo at 15 fps
			for _, dec := range d.Frame(vframe(ms, x, cand("ada", 1), cand("bob", 0))) {
				events++
				looks += dec.Visit.Frames
				if dec.Verdict != Unknown {
					t.Fatalf("photo %d: %+v", photo, dec)
				}
				if photo >= 3 && dec.Reason != ReasonLooksSpent {
					t.Errorf("photo %d: reason %q, want %q", photo, dec.Reason, ReasonLooksSpent)
				}
			}
			ms += 66
		}
	}
	for _, dec := range d.Tick(at(ms + 2000)) {
		events++
		looks += dec.Visit.Frames
	}
	if looks != 5 {
		t.Errorf("%d looks over 6 swapped photos in %d events, want the budget of 5", looks, events)
	}
	// After the face has been gone for the gap: a fresh budget.
	got := run(d, vframe(ms+2500, 50, cand("ada", 3), cand("bob", 0)))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Visit.Carried != 0 {
		t.Fatalf("after the gap: %+v", got)
	}
	// A jump after a grant is a new visitor with a budget of their own.
	got = run(d, vframe(ms+2566, 450, cand("bob", 4), cand("ada", 0)))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Subject != "bob" || got[0].Visit.Carried != 0 {
		t.Fatalf("after a grant: %+v", got)
	}
	// A chain gets a fresh budget once per Timeout at most: a face that
	// stayed 4.9 s (unknown after its 5 looks) then jumps: looks spent;
	// the next jump, 5.1 s after the chain began: a fresh budget.
	d = spacedVisitDecider()
	for ms := 0; ms < 4900; ms += 200 {
		run(d, vframe(ms, 50, cand("ada", 1)))
	}
	got = run(d, vframe(4900, 450, cand("ada", 1)))
	if len(got) != 1 || got[0].Reason != ReasonLooksSpent || got[0].Visit.Carried != 5 {
		t.Fatalf("within the timeout: %+v", got)
	}
	got = run(d, vframe(5100, 50, cand("ada", 3)))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Visit.Carried != 0 {
		t.Fatalf("past the timeout: %+v", got)
	}
}

// TestVisitFailureToAcquire: a visit whose frames all fail the quality
// gate ends with an unknown event, reason failure_to_acquire, counting the
// checks its frames failed; a single detection makes no event.
func TestVisitFailureToAcquire(t *testing.T) {
	d := spacedVisitDecider()
	for i, checks := range [][]string{{"sharpness"}, {"sharpness", "yaw"}, {"yaw"}, nil} {
		f := vframe(i*66, 100)
		f.Good, f.Rejected = false, checks
		if got := d.Frame(f); len(got) != 0 {
			t.Fatalf("frame %d: %+v", i, got)
		}
	}
	got := d.Tick(at(3*66 + 1001))
	if len(got) != 1 || got[0].Verdict != Unknown || got[0].Reason != ReasonFailureToAcquire {
		t.Fatalf("decisions %+v", got)
	}
	v := got[0].Visit
	want := map[string]int{"sharpness": 2, "yaw": 2, "not_embedded": 1}
	if v.Frames != 0 || v.Seen != 4 || v.End != EndGone || len(v.Rejected) != len(want) {
		t.Fatalf("visit %+v", v)
	}
	for k, n := range want {
		if v.Rejected[k] != n {
			t.Errorf("rejected[%s] = %d, want %d", k, v.Rejected[k], n)
		}
	}
	// One frame with a face is no visit.
	d = spacedVisitDecider()
	f := vframe(0, 100)
	f.Good = false
	d.Frame(f)
	if got := d.Tick(at(2000)); len(got) != 0 {
		t.Fatalf("single frame: %+v", got)
	}
}
