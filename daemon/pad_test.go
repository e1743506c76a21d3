package daemon

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
	"github.com/facegate/facegate/pad/challenge"
)

// The PAD rule through the decide stage's visit decider, with fake scores
// and synthetic keypoints: what a grant needs, what a refused attack says.

func passivePolicy() *PADPolicy {
	return &PADPolicy{Method: PADPassive, Threshold: 0.735, BPCER: 0.05, MinFrames: 3}
}

func challengePolicy(t *testing.T, method string) (*PADPolicy, *[]challenge.Challenge) {
	t.Helper()
	var seed [32]byte
	is, err := challenge.NewIssuer(challenge.DefaultConfig(), &seed)
	if err != nil {
		t.Fatal(err)
	}
	var issued []challenge.Challenge
	return &PADPolicy{Method: method, Threshold: 0.735, BPCER: 0.05, MinFrames: 3, Challenge: challenge.DefaultConfig(), Issuer: is,
		OnChallenge: func(ch challenge.Challenge, visit uint64) { issued = append(issued, ch) }}, &issued
}

// padFrame is a good frame of ada with p_real pad.
func padFrame(ms int, pad float64) VisitFrame {
	f := vframe(ms, 100, cand("ada", 5), cand("bob", -4))
	f.PAD = pad
	f.Keypoints, f.HasKeypoints = facePoints(0), true
	return f
}

// facePoints are the keypoints of a face in box(100,100,120) with the nose
// and mouth moved sideways by dx pixels (a head turned towards the image's
// right for dx > 0).
func facePoints(dx float64) quality.Keypoints {
	return quality.Keypoints{RightEye: [2]float64{140, 150}, LeftEye: [2]float64{180, 150},
		Nose: [2]float64{160 + dx, 175}, Mouth: [2]float64{160 + dx/3, 195}}
}

// turnedBy is the nose shift that turns the synthetic face by at least deg
// in both of the challenge's yaw estimates (sign: towards the image's
// right for deg > 0).
func turnedBy(t *testing.T, deg float64) float64 {
	t.Helper()
	s := math.Copysign(1, deg)
	for dx := 0.0; dx < 40; dx += 0.5 {
		p := challenge.Measure(facePoints(s * dx))
		if s*p.Yaw >= math.Abs(deg) && s*p.MidlineYaw >= math.Abs(deg) && math.Abs(p.Yaw-p.MidlineYaw) < 10 {
			return s * dx
		}
	}
	t.Fatalf("no synthetic turn of %g°", deg)
	return 0
}

func turnFrame(ms int, dx float64, good bool) VisitFrame {
	f := padFrame(ms, math.NaN())
	f.Keypoints = facePoints(dx)
	f.Good = good
	if !good {
		f.Candidates = nil
	}
	return f
}

func TestPassivePADLowScoreIsPresentationAttack(t *testing.T) {
	d := testVisitDecider(passivePolicy())
	// The identity clears on frame 1; p_real 0.2 holds the grant until the
	// third scored frame, which decides the attack.
	if got := run(d, padFrame(0, 0.2), padFrame(66, 0.3)); len(got) != 0 {
		t.Fatalf("decided before MinFrames: %+v", got)
	}
	got := run(d, padFrame(133, 0.1))
	if len(got) != 1 {
		t.Fatalf("decisions %+v", got)
	}
	dec := got[0]
	if dec.Verdict != PresentationAttack || dec.Reason != "pad_passive" || dec.Subject != "ada" || dec.PAD == nil ||
		!dec.PAD.Attack || dec.PAD.Passed || dec.PAD.Frames != 3 || math.Abs(dec.PAD.Score-0.2) > 1e-9 || dec.PAD.Threshold != 0.735 {
		t.Fatalf("decision %+v pad %+v", dec, dec.PAD)
	}
	// One decision per visit.
	if got := run(d, padFrame(200, 0.99), padFrame(266, 0.99)); len(got) != 0 {
		t.Fatalf("second decision: %+v", got)
	}
}

func TestPassivePADHighScoreIsGranted(t *testing.T) {
	d := testVisitDecider(passivePolicy())
	got := run(d, padFrame(0, 0.97))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Subject != "ada" || got[0].PAD == nil || !got[0].PAD.Passed ||
		got[0].PAD.Attack || got[0].PAD.Frames != 1 || got[0].PAD.Score != 0.97 {
		t.Fatalf("decisions %+v", got)
	}
	// The median, not the first frame, decides: one low frame among high
	// ones is outvoted.
	d = testVisitDecider(passivePolicy())
	if got := run(d, padFrame(0, 0.1), padFrame(66, 0.9)); len(got) != 0 {
		t.Fatalf("median (0.5) granted: %+v", got)
	}
	got = run(d, padFrame(133, 0.95))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].PAD.Score != 0.9 || got[0].PAD.Frames != 3 {
		t.Fatalf("decisions %+v pad %+v", got, got[0].PAD)
	}
}

func TestPassivePADVisitEndsBeforeMinFrames(t *testing.T) {
	// The face leaves after two low frames: the cleared identity is still
	// reported as an attack when the visit ends.
	d := testVisitDecider(passivePolicy())
	run(d, padFrame(0, 0.2), padFrame(66, 0.2))
	got := d.Tick(at(2000))
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "pad_passive" || got[0].Visit.End != EndGone {
		t.Fatalf("end %+v", got)
	}
	// A stranger's visit is unknown and carries its PAD score, neither
	// passed nor an attack.
	d = testVisitDecider(passivePolicy())
	f := padFrame(0, 0.1)
	f.Candidates = []ScoredCandidate{cand("ada", -5)}
	run(d, f)
	got = d.Tick(at(2000))
	if len(got) != 1 || got[0].Verdict != Unknown || got[0].PAD == nil || got[0].PAD.Attack || got[0].PAD.Passed || got[0].PAD.Score != 0.1 {
		t.Fatalf("unknown %+v", got)
	}
}

func TestWantsPAD(t *testing.T) {
	d := testVisitDecider(passivePolicy())
	if !d.WantsPAD(box(100, 100, 120), at(0)) {
		t.Fatal("no PAD for a new visit")
	}
	run(d, padFrame(0, 0.99)) // granted
	if d.WantsPAD(box(102, 100, 120), at(66)) {
		t.Fatal("PAD asked for a decided visit")
	}
	if !d.WantsPAD(box(400, 100, 120), at(133)) {
		t.Fatal("no PAD for the next visit (another face)")
	}
	if testVisitDecider(nil).WantsPAD(box(100, 100, 120), at(0)) {
		t.Fatal("PAD asked with PAD off")
	}
	p, _ := challengePolicy(t, PADChallenge)
	if testVisitDecider(p).WantsPAD(box(100, 100, 120), at(0)) {
		t.Fatal("passive PAD asked in challenge mode")
	}
}

// answer plays a visit: the identity clears at 0 ms (the challenge is
// issued then), frontal frames to 400 ms, then frames turned by dx (not
// good: too turned for the quality gate) every 66 ms until end.
func answer(d *VisitDecider, dx float64, from, end int) []Decision {
	out := run(d, padFrame(0, 0.95))
	for ms := 66; ms < from; ms += 66 {
		out = append(out, d.Frame(padFrame(ms, 0.95))...)
	}
	for ms := from; ms < end; ms += 66 {
		out = append(out, d.Frame(turnFrame(ms, dx, false))...)
	}
	return out
}

func kindDir(k challenge.Kind) float64 {
	if k == challenge.TurnLeft { // the image's right, unmirrored
		return 1
	}
	return -1
}

func TestChallengePassGrants(t *testing.T) {
	p, issued := challengePolicy(t, PADChallenge)
	d := testVisitDecider(p)
	if got := run(d, padFrame(0, math.NaN())); len(got) != 0 || len(*issued) != 1 {
		t.Fatalf("no challenge when the identity cleared: %+v %v", got, *issued)
	}
	ch := (*issued)[0]
	if !ch.Issued.Equal(at(0)) || ch.Deadline.Sub(ch.Issued) != 5*time.Second || ch.ID == "" {
		t.Fatalf("challenge %+v", ch)
	}
	dx := turnedBy(t, 25*kindDir(ch.Kind))
	var got []Decision
	for ms := 66; ms < 400; ms += 66 {
		got = append(got, d.Frame(padFrame(ms, math.NaN()))...)
	}
	for ms := 400; ms < 800 && len(got) == 0; ms += 66 {
		got = append(got, d.Frame(turnFrame(ms, dx, false))...)
	}
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Subject != "ada" || got[0].PAD == nil || !got[0].PAD.Passed ||
		got[0].PAD.Challenge == nil || got[0].PAD.Challenge.ID != ch.ID || got[0].PAD.Result.Status != challenge.Passed {
		t.Fatalf("decisions %+v", got)
	}
	if len(*issued) != 1 {
		t.Fatalf("%d challenges issued", len(*issued))
	}
}

func TestChallengeWrongDirection(t *testing.T) {
	p, issued := challengePolicy(t, PADChallenge)
	d := testVisitDecider(p)
	run(d, padFrame(0, math.NaN()))
	dx := turnedBy(t, -25*kindDir((*issued)[0].Kind))
	got := answer(d, dx, 400, 1200)
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "challenge_wrong_direction" || got[0].Subject != "ada" ||
		!got[0].PAD.Attack || got[0].PAD.Result.Reason != challenge.ReasonWrongDirection {
		t.Fatalf("decisions %+v", got)
	}
}

func TestChallengeTimeout(t *testing.T) {
	// A still photo: frontal frames for 6 s. The visit's own timeout (5 s
	// from its first frame) waits for the challenge's deadline (5 s from
	// the issue), which ends it as a timeout.
	p, _ := challengePolicy(t, PADChallenge)
	d := testVisitDecider(p)
	var got []Decision
	for ms := 0; ms < 6000 && len(got) == 0; ms += 66 {
		got = append(got, d.Frame(padFrame(ms, math.NaN()))...)
		if ms%198 == 0 {
			got = append(got, d.Tick(at(ms+10))...)
		}
	}
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "challenge_timeout" || got[0].Visit.End != "" {
		t.Fatalf("decisions %+v", got)
	}
	if at := got[0].Time.Sub(at(0)); at < 5*time.Second || at > 5200*time.Millisecond {
		t.Fatalf("decided at %v, want at the deadline (5 s)", at)
	}
	// The face leaves during the challenge: challenge_face_lost when the
	// visit ends.
	p, _ = challengePolicy(t, PADChallenge)
	d = testVisitDecider(p)
	run(d, padFrame(0, math.NaN()), padFrame(66, math.NaN()))
	got = d.Tick(at(1200))
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "challenge_face_lost" {
		t.Fatalf("face lost: %+v", got)
	}
}

func TestBothNeedsPassiveAndChallenge(t *testing.T) {
	p, issued := challengePolicy(t, PADBoth)
	d := testVisitDecider(p)
	// A mask that turns: the challenge passes, p_real stays low.
	run(d, padFrame(0, 0.1))
	dx := turnedBy(t, 25*kindDir((*issued)[0].Kind))
	var got []Decision
	for ms := 66; ms < 400; ms += 66 {
		got = append(got, d.Frame(padFrame(ms, 0.1))...)
	}
	for ms := 400; ms < 1000 && len(got) == 0; ms += 66 {
		got = append(got, d.Frame(turnFrame(ms, dx, false))...)
	}
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "pad_passive" || got[0].PAD.Result.Status != challenge.Passed {
		t.Fatalf("decisions %+v", got)
	}
}

func TestPADCalibrationThreshold(t *testing.T) {
	cal, err := LoadPADCalibration(filepath.Join("..", "models", "calibration", PADCalibrationFile))
	if err != nil {
		t.Fatal(err)
	}
	models := []string{"minifasnet-v2", "minifasnet-v1se"}
	for _, c := range []struct {
		bpcer, want float64
	}{{0.05, 0.755}, {0.01, 0.383}} { // make pad-calibration (docs/pad.md)
		th, err := cal.Threshold(c.bpcer, models, "blazeface-short")
		if err != nil || th.PReal != c.want {
			t.Errorf("BPCER %g: %+v %v, want p_real %g", c.bpcer, th, err, c.want)
		}
	}
	for _, c := range []struct {
		bpcer    float64
		models   []string
		detector string
		want     string
	}{
		{0.02, models, "blazeface-short", "no p_real threshold calibrated for BPCER 0.02 (calibrated: 0.01, 0.05)"},
		{0.05, models[:1], "blazeface-short", "not minifasnet-v2"},
		{0.05, models, "blazeface-full", "made on blazeface-short boxes, not blazeface-full"},
	} {
		if _, err := cal.Threshold(c.bpcer, c.models, c.detector); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c, err, c.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "pad.json")
	os.WriteFile(bad, []byte(`{"models":["m"],"detector":"d","thresholds":[{"bpcer":5,"p_real":0.5}]}`), 0o600)
	if _, err := LoadPADCalibration(bad); err == nil {
		t.Fatal("accepted a BPCER of 5")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
		n    int
	}{{nil, math.NaN(), 0}, {[]float64{math.NaN(), 0.3}, 0.3, 1}, {[]float64{0.9, 0.1, 0.5}, 0.5, 3}, {[]float64{0.9, 0.1, 0.5, 0.7}, 0.6, 4}} {
		m, n := median(c.in)
		if n != c.n || !(m == c.want || math.IsNaN(m) && math.IsNaN(c.want)) {
			t.Errorf("median(%v) = %v, %d; want %v, %d", c.in, m, n, c.want, c.n)
		}
	}
}

func TestPADConfigValidate(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string // "" = valid
	}{
		{map[string]string{}, ""},
		{map[string]string{"FACEGATE_PAD": "both", "FACEGATE_PAD_BPCER": "0.01"}, ""},
		{map[string]string{"FACEGATE_PAD": "maybe"}, `FACEGATE_PAD: "maybe" is not off, passive, challenge or both`},
		{map[string]string{"FACEGATE_PAD_BPCER": "0"}, "FACEGATE_PAD_BPCER: 0 not in (0,1)"},
		{map[string]string{"FACEGATE_PAD_MODELS": "a,a"}, `FACEGATE_PAD_MODELS: "a": name each model folder once`},
	} {
		env, _ := preflightEnv(t)
		for k, v := range c.env {
			env[k] = v
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg, err := LoadConfig()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: error %v, want %q", c.env, err, c.want)
		case c.want == "" && cfg.PADCalibration == "":
			t.Errorf("no calibration path")
		}
	}
}

func TestPADEventField(t *testing.T) {
	p, issued := challengePolicy(t, PADBoth)
	d := testVisitDecider(p)
	run(d, padFrame(0, 0.9))
	dx := turnedBy(t, -25*kindDir((*issued)[0].Kind))
	got := answer(d, dx, 400, 1200)
	if len(got) != 1 {
		t.Fatalf("decisions %+v", got)
	}
	ev := PADEvent(got[0].PAD)
	if ev.Method != "both" || ev.Decision != "attack" || ev.Score == nil || *ev.Score != 0.95 || ev.Threshold == nil || *ev.Threshold != 0.735 ||
		ev.TargetBPCER != 0.05 || ev.Frames != 8 || ev.Challenge == nil || ev.Challenge.ID != (*issued)[0].ID ||
		ev.Challenge.Status != "failed" || ev.Challenge.Reason != "wrong_direction" || ev.Challenge.LatencyMS <= 400 {
		t.Fatalf("pad %+v challenge %+v", ev, ev.Challenge)
	}
	// Challenge alone: no p_real, no threshold.
	ev = PADEvent(&PADReport{Method: PADChallenge, Score: math.NaN(), Passed: true})
	if ev.Score != nil || ev.Threshold != nil || ev.Decision != "bona_fide" {
		t.Fatalf("challenge only: %+v", ev)
	}
}

type countingPAD struct{ calls int }

func (c *countingPAD) Score(img *imageio.RGB, box detect.Box) (infer.PADResult, error) {
	c.calls++
	if err := img.Check(); err != nil || box.W() <= 0 || box.X1 > float64(img.W) || box.Y1 > float64(img.H) {
		return infer.PADResult{}, errors.New("bad warm-up input")
	}
	return infer.PADResult{PReal: 0.5}, nil
}

func TestWarmPAD(t *testing.T) {
	var c countingPAD
	if err := warmPAD(&c); err != nil || c.calls != 1 {
		t.Fatalf("warm-up: %v, %d calls", err, c.calls)
	}
}
