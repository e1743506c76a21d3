package daemon

import (
	"math"
	"testing"
	"time"

	"github.com/facegate/facegate/decision"
)

// A fixed rule: threshold 2 (logit), margin 1, at most 5 frames.
func testVisitDecider(pad *PADPolicy) *VisitDecider {
	rule := VisitRule{Rule: decision.Rule{Threshold: 2, Margin: 1, MaxFrames: 5}, GallerySize: 10, FPIR: 1e-3, Towers: "dlib+sface"}
	return NewVisitDecider(VisitDeciderConfig{Visit: VisitConfig{Gap: time.Second, Timeout: 5 * time.Second},
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
