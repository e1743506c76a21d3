package door

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeFaces writes a face-data tree: people[i] photos for person i.
func fakeFaces(t *testing.T, counts map[string]int) string {
	t.Helper()
	root := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 50, 50))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	for id, n := range counts {
		os.MkdirAll(filepath.Join(root, id), 0o755)
		for k := 1; k <= n; k++ {
			f, err := os.Create(filepath.Join(root, id, fmt.Sprintf("%03d.jpg", k)))
			if err != nil {
				t.Fatal(err)
			}
			jpeg.Encode(f, img, nil)
			f.Close()
		}
	}
	return root
}

func TestPlanDisjointAndEligible(t *testing.T) {
	counts := map[string]int{"att__s01": 5, "lfw__One_Photo": 1, "lfw__Two_Photos": 2, "lfw__John_Barnett": 4}
	for i := range 12 {
		counts[fmt.Sprintf("lfw__P%02d", i)] = 3 + i%3
	}
	root := fakeFaces(t, counts)
	cfg := PlanConfig{Root: root, Source: "lfw__", MinPhotos: 3, Enrolled: 6, Strangers: 6, Seed: 4, Exclude: Doubles}
	p, err := NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Eligible != 12 {
		t.Errorf("eligible %d, want 12 (att, doubles and people with < 3 photos left out)", p.Eligible)
	}
	seen := map[string]bool{}
	for _, q := range append(append([]Person(nil), p.Candidates...), p.Strangers...) {
		if seen[q.ID] || !strings.HasPrefix(q.ID, "lfw__P") {
			t.Errorf("person %s picked twice or not eligible", q.ID)
		}
		seen[q.ID] = true
		for _, v := range q.VisitPhotos(3) {
			if v == q.EnrollPhoto() {
				t.Errorf("%s: the enrolled photo is also shown", q.ID)
			}
		}
	}
	again, _ := NewPlan(cfg)
	if again.Candidates[0].ID != p.Candidates[0].ID {
		t.Error("the plan is not deterministic for a seed")
	}
	cfg.Strangers = 7
	if _, err := NewPlan(cfg); err == nil {
		t.Error("13 people asked of 12: no error")
	}
	vs := Visits(p.Candidates, p.Strangers, 3, 1)
	g := 0
	for i, v := range vs {
		if v.Index != i || len(v.Photos) == 0 || len(v.Photos) > 3 {
			t.Errorf("visit %d: %+v", i, v)
		}
		if v.Genuine {
			g++
		}
	}
	if g != 6 || len(vs) != 12 {
		t.Errorf("%d visits, %d genuine; want 12, 6", len(vs), g)
	}
}

func TestWriteClipTimeline(t *testing.T) {
	root := fakeFaces(t, map[string]int{"lfw__A": 3, "lfw__B": 2})
	vs := []Visit{{Person: "lfw__A", Genuine: true, Photos: []string{"lfw__A/002.jpg", "lfw__A/003.jpg"}}, {Person: "lfw__B", Photos: []string{"lfw__B/001.jpg"}}}
	cfg := DefaultClipConfig(10)
	var buf bytes.Buffer
	c, err := WriteClip(&buf, root, vs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 10 fps: lead 20, photos 4 each, gap 18, tail 40.
	if vs[0].First != 21 || vs[0].Last != 28 || vs[1].First != 47 || vs[1].Last != 50 || c.Frames != 90 || c.FaceFrames != 12 {
		t.Fatalf("timeline %d-%d, %d-%d, %d frames (%d with a face)", vs[0].First, vs[0].Last, vs[1].First, vs[1].Last, c.Frames, c.FaceFrames)
	}
	if n := bytes.Count(buf.Bytes(), []byte{0xff, 0xd8, 0xff}); n != 90 {
		t.Errorf("%d JPEG frames in the stream, want 90", n)
	}
	img, err := jpeg.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 480 {
		t.Fatalf("first frame: %v %v", err, img)
	}
	// A face frame has the photo in its centre, the background at the edge.
	frames := bytes.Split(buf.Bytes(), []byte{0xff, 0xd8, 0xff})
	face, err := jpeg.Decode(bytes.NewReader(append([]byte{0xff, 0xd8, 0xff}, frames[21]...)))
	if err != nil {
		t.Fatal(err)
	}
	if near(face.At(5, 5), color.RGBA{88, 92, 96, 255}) == false || near(face.At(320, 240), color.RGBA{88, 92, 96, 255}) {
		t.Error("frame 21 is not a letterboxed photo on the background")
	}
}

func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := math.Abs(float64(r>>8)-float64(want.R)) + math.Abs(float64(g>>8)-float64(want.G)) + math.Abs(float64(b>>8)-float64(want.B))
	return d < 12
}

func ev(at time.Time, decision, subject string, ms float64) Event {
	e := Event{Time: at, Decision: decision, Mode: "1:N"}
	if subject != "" {
		e.Subject = &struct {
			ID string `json:"id"`
		}{subject}
	}
	e.Visit = &EventVisit{Frames: 1, DecisionMS: ms}
	return e
}

func fta(e Event) Event {
	e.Reason = ReasonFTA
	e.Visit.Frames, e.Visit.Rejected = 0, map[string]int{"sharpness": 3}
	return e
}

func TestGrade(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(frame float64) time.Time { return t0.Add(time.Duration(frame / 10 * float64(time.Second))) } // 10 fps
	// The counters, sampled every 0.5 s, with a 0.3 s stall after frame 100.
	var samples []Sample
	for s := 0.0; s <= 30; s += 0.5 {
		f := s * 10
		if f > 100 {
			f -= 3
		}
		acq := int64(0) // frames 21-30 passed the quality gate, those of d's visit (171-180) did not
		switch {
		case f > 30:
			acq = 10
		case f > 21:
			acq = int64(f) - 20
		}
		samples = append(samples, Sample{At: t0.Add(time.Duration(s * float64(time.Second))), Frames: uint64(f), Acquired: acq})
	}
	clock, err := NewClock(samples)
	if err != nil {
		t.Fatal(err)
	}
	if f := clock.Frame(at(50)); math.Abs(f-50) > 0.01 {
		t.Fatalf("clock: frame %.2f at 5 s, want 50", f)
	}
	vs := []Visit{
		{Index: 0, Person: "a", Genuine: true, First: 21, Last: 30},
		{Index: 1, Person: "x", First: 51, Last: 60},
		{Index: 2, Person: "b", Genuine: true, First: 81, Last: 90},
		{Index: 3, Person: "y", First: 111, Last: 120},
		{Index: 4, Person: "c", Genuine: true, First: 141, Last: 150},
		{Index: 5, Person: "d", Genuine: true, First: 171, Last: 180},
		{Index: 6, Person: "z", First: 201, Last: 210},
	}
	events := []Event{
		ev(at(22), "granted", "a", 80),
		ev(at(60), "unknown", "", 1000),
		ev(at(83), "granted", "c", 120), // b's visit granted to c: a false grant
		ev(at(123), "granted", "b", 60), // stranger y granted (the stall: frame 120 plays at 12.3 s)
		ev(at(142), "ambiguous", "", 200),
		ev(at(172), "granted", "d", 300),
		fta(ev(at(178), "unknown", "", 900)), // a second event in d's visit
		fta(ev(at(205), "unknown", "", 0)),   // z: no frame through the gate
		ev(at(240), "unknown", "", 900),      // nobody's
	}
	if tm := clock.Time(150); !tm.Equal(at(153)) {
		t.Errorf("clock: frame 150 at %s, want %s", tm, at(153))
	}
	r := Grade(vs, events, clock, samples, 4)
	if r.Outcomes[0].Acquired != 10 || r.Outcomes[5].Acquired != 0 {
		t.Errorf("acquired: %d and %d frames, want 10 and 0", r.Outcomes[0].Acquired, r.Outcomes[5].Acquired)
	}
	if len(r.FalseGrants) != 2 || r.Genuine["granted"] != 2 || r.Genuine["granted_other"] != 1 || r.Genuine["ambiguous"] != 1 ||
		r.Stranger["granted"] != 1 || r.Stranger["unknown"] != 1 || r.Stranger[ReasonFTA] != 1 || r.Split != 1 || len(r.Unmatched) != 1 {
		t.Fatalf("graded: false %d, genuine %v, stranger %v, split %d, unmatched %d", len(r.FalseGrants), r.Genuine, r.Stranger, r.Split, len(r.Unmatched))
	}
	if r.GenuineRate() != 0.5 || len(r.GrantMS) != 2 || Percentile(r.GrantMS, 50) != 190 {
		t.Errorf("rate %.2f, grant ms %v", r.GenuineRate(), r.GrantMS)
	}
	var out bytes.Buffer
	if err := WriteReport(&out, r, Meta{FPS: 10, Enrolled: 4, Refused: []string{"e: duplicate"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**2** of 7 visits", "| never enrolled | 3 | 0 | 1 | 0 | 1 | 1 | 0 | 0 |", "**2 / 4 = 50.0 %**", "e: duplicate", "visit 2 (b, genuine true): granted to c", "Unmatched event"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	if p := Percentile([]float64{4, 1, 3, 2}, 50); p != 2.5 {
		t.Errorf("p50 %g", p)
	}
	if p := Percentile([]float64{1, 2, 3, 4, 5}, 95); math.Abs(p-4.8) > 1e-9 {
		t.Errorf("p95 %g", p)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty: not NaN")
	}
}
