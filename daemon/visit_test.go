package daemon

import (
	"testing"
	"time"
)

func box(x, y, w float64) [4]float64 { return [4]float64{x, y, x + w, y + w} }

func TestVisitTrackerFollowsOneFace(t *testing.T) {
	tr := NewVisitTracker(VisitConfig{Gap: time.Second, Timeout: 5 * time.Second})
	// A face walks towards the camera: it drifts and grows a little per
	// frame at 15 fps, and one frame fails the quality gate.
	var first *Visit
	for i := 0; i < 30; i++ {
		v, ended := tr.Face(box(200+float64(i)*3, 100+float64(i), 120+float64(i)*2), at(i*66), i != 3)
		if ended != nil {
			t.Fatalf("frame %d ended the visit: %+v", i, ended)
		}
		if first == nil {
			first = v
		}
		if v.ID != first.ID {
			t.Fatalf("frame %d in visit %d, want %d", i, v.ID, first.ID)
		}
	}
	v := tr.Current()
	if v.Frames != 30 || v.Good != 29 || !v.Start.Equal(at(0)) || !v.FirstGood.Equal(at(0)) || !v.Last.Equal(at(29*66)) {
		t.Fatalf("visit %+v", v)
	}
	// A missed detection shorter than the gap keeps the visit.
	if e := tr.Tick(at(29*66 + 900)); e != nil {
		t.Fatalf("ended within the gap: %+v", e)
	}
	if v2, e := tr.Face(box(290, 130, 180), at(29*66+950), true); e != nil || v2.ID != v.ID {
		t.Fatalf("face after a short miss: visit %d ended %+v", v2.ID, e)
	}
	// Gone for longer than the gap: the visit ends once, with its frames.
	e := tr.Tick(at(29*66 + 950 + 1001))
	if e == nil || e.Why != EndGone || e.Visit.Frames != 31 || e.Visit.ID != v.ID {
		t.Fatalf("end %+v", e)
	}
	if e := tr.Tick(at(10000)); e != nil || tr.Current() != nil {
		t.Fatalf("second end %+v", e)
	}
}

func TestVisitTrackerFirstGoodFrame(t *testing.T) {
	tr := NewVisitTracker(VisitConfig{})
	tr.Face(box(100, 100, 100), at(0), false)
	tr.Face(box(102, 100, 100), at(66), false)
	v, _ := tr.Face(box(104, 100, 100), at(133), true)
	if !v.FirstGood.Equal(at(133)) || v.Good != 1 || v.Frames != 3 {
		t.Fatalf("visit %+v", v)
	}
}

func TestVisitTrackerNewFaceEndsVisit(t *testing.T) {
	tr := NewVisitTracker(VisitConfig{})
	a, _ := tr.Face(box(50, 100, 100), at(0), true)
	tr.Face(box(55, 100, 100), at(66), true)
	// Someone else, on the other side of the frame, is now the largest face.
	b, e := tr.Face(box(400, 100, 110), at(133), true)
	if e == nil || e.Why != EndMoved || e.Visit.ID != a.ID || e.Visit.Frames != 2 {
		t.Fatalf("end %+v", e)
	}
	if b.ID == a.ID || b.Frames != 1 || !b.Start.Equal(at(133)) {
		t.Fatalf("new visit %+v", b)
	}
	// A face of twice the size at the same place is another face too.
	_, e = tr.Face(box(380, 80, 230), at(200), true)
	if e == nil || e.Why != EndMoved {
		t.Fatalf("a face twice the size continued the visit: %+v", e)
	}
}

func TestVisitTrackerGapAndTimeout(t *testing.T) {
	tr := NewVisitTracker(VisitConfig{Gap: 500 * time.Millisecond, Timeout: 2 * time.Second})
	a, _ := tr.Face(box(100, 100, 100), at(0), true)
	// Back at the same place after more than the gap: a new visit.
	b, e := tr.Face(box(100, 100, 100), at(600), true)
	if e == nil || e.Why != EndGone || b.ID == a.ID {
		t.Fatalf("after the gap: end %+v, visit %+v", e, b)
	}
	// Standing still past the timeout: the visit ends and the next frame
	// starts a new one.
	for ms := 700; ms < 2600; ms += 100 {
		if _, e := tr.Face(box(100, 100, 100), at(ms), true); e != nil {
			t.Fatalf("ended at %d ms: %+v", ms, e)
		}
	}
	e = tr.Tick(at(2600))
	if e == nil || e.Why != EndTimeout || e.Visit.ID != b.ID || e.Visit.Frames != 20 {
		t.Fatalf("timeout end %+v", e)
	}
	c, e := tr.Face(box(100, 100, 100), at(2700), true)
	if e != nil || c.ID == b.ID {
		t.Fatalf("after the timeout: end %+v, visit %+v", e, c)
	}
	if e := tr.End(EndStopped); e == nil || e.Why != EndStopped || e.Visit.ID != c.ID {
		t.Fatalf("stop %+v", e)
	}
}

func TestContinuous(t *testing.T) {
	cases := []struct {
		a, b [4]float64
		want bool
	}{
		{box(0, 0, 100), box(0, 0, 100), true},
		{box(0, 0, 100), box(60, 0, 100), true},    // IoU 0.25
		{box(0, 0, 100), box(74, 0, 100), true},    // little overlap, centre 0.74 widths away
		{box(0, 0, 100), box(80, 0, 100), false},   // 0.8 widths away
		{box(0, 0, 100), box(300, 0, 100), false},  // elsewhere
		{box(0, 0, 100), box(-10, -10, 190), true}, // grew by 1.9
		{box(0, 0, 100), box(0, 0, 40), false},     // shrunk by more than half
	}
	for _, c := range cases {
		if got := continuous(c.a, c.b, 0.2, 0.75); got != c.want {
			t.Errorf("continuous(%v, %v) = %v, want %v (IoU %.2f)", c.a, c.b, got, c.want, iou(c.a, c.b))
		}
	}
}
