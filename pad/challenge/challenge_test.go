package challenge

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/infer/quality"
)

const rad = math.Pi / 180

// head projects the mean-face model of infer/quality (IOD 1; eyes at
// (±0.5, 0, 0), nose (0, 0.56, 0.45), mouth (0, 1.14, 0.10), y down, z
// towards the camera) turned by yaw (positive: towards the image's right),
// pitched, rolled in the image, scaled to iod pixels and centred at cx, cy.
func head(yaw, pitch, roll, iod, cx, cy float64) quality.Keypoints {
	proj := func(x, y, z float64) [2]float64 {
		// pitch about the x axis (positive: looking down, the nose drops)
		cp, sp := math.Cos(pitch*rad), math.Sin(pitch*rad)
		y, z = y*cp+z*sp, -y*sp+z*cp
		// yaw about the vertical axis: +z swings towards +x
		cy1, sy1 := math.Cos(yaw*rad), math.Sin(yaw*rad)
		x, z = x*cy1+z*sy1, -x*sy1+z*cy1
		_ = z
		cr, sr := math.Cos(roll*rad), math.Sin(roll*rad)
		x, y = x*cr-y*sr, x*sr+y*cr
		return [2]float64{cx + iod*x, cy + iod*y}
	}
	// The subject's right eye is on the image's left.
	return quality.Keypoints{
		RightEye: proj(-0.5, 0, 0), LeftEye: proj(0.5, 0, 0),
		Nose: proj(0, 0.56, 0.45), Mouth: proj(0, 1.14, 0.10),
	}
}

// affine maps keypoints by x' = a·x + b·y + e, y' = c·x + d·y + f: a picture
// of the face moved, rotated, scaled, tilted or sheared.
func affine(k quality.Keypoints, a, b, c, d, e, f float64) quality.Keypoints {
	m := func(p [2]float64) [2]float64 { return [2]float64{a*p[0] + b*p[1] + e, c*p[0] + d*p[1] + f} }
	return quality.Keypoints{RightEye: m(k.RightEye), LeftEye: m(k.LeftEye), Nose: m(k.Nose), Mouth: m(k.Mouth)}
}

func boxOf(k quality.Keypoints) quality.Box {
	iod := math.Hypot(k.LeftEye[0]-k.RightEye[0], k.LeftEye[1]-k.RightEye[1])
	cx, cy := (k.RightEye[0]+k.LeftEye[0]+k.Mouth[0])/3, (k.RightEye[1]+k.LeftEye[1]+k.Mouth[1])/3
	s := math.Max(iod, 20) * 1.1
	return quality.Box{X0: cx - s, Y0: cy - s, X1: cx + s, Y1: cy + s}
}

func TestMeasure(t *testing.T) {
	for _, yaw := range []float64{-45, -30, -15, 0, 10, 25, 40} {
		for _, roll := range []float64{0, 25} {
			p := Measure(head(yaw, 0, roll, 60, 320, 240))
			if !p.OK || math.Abs(p.Yaw-yaw) > 0.5 || math.Abs(p.MidlineYaw-yaw) > 0.5 {
				t.Errorf("yaw %v roll %v: measured %+v", yaw, roll, p)
			}
		}
		// Pitch moves the midline estimate a little, not its sign.
		p := Measure(head(yaw, 15, 0, 60, 320, 240))
		if math.Abs(p.MidlineYaw-yaw) > 6 || yaw != 0 && p.MidlineYaw*yaw <= 0 {
			t.Errorf("yaw %v pitch 15: measured %+v", yaw, p)
		}
	}
	// A frontal picture under any affine map keeps the nose on the
	// midline; a shear fools the eye-line estimate.
	front := head(0, 0, 0, 60, 320, 240)
	for _, m := range [][6]float64{
		{1, 0, 0, 1, 40, -30}, // moved
		{math.Cos(0.5), -math.Sin(0.5), math.Sin(0.5), math.Cos(0.5), 0, 0}, // rotated
		{0.5, 0, 0, 1, 0, 0},         // tilted about the vertical axis
		{1, 0.35, 0, 1, 0, 0},        // sheared
		{0.8, -0.4, 0.3, 0.9, 10, 5}, // all of it
	} {
		p := Measure(affine(front, m[0], m[1], m[2], m[3], m[4], m[5]))
		if !p.OK || math.Abs(p.MidlineYaw) > 1e-9 {
			t.Errorf("frontal picture under %v: %+v, want midline yaw 0", m, p)
		}
	}
	if p := Measure(affine(front, 1, 0.35, 0, 1, 0, 0)); p.Yaw < 15 {
		t.Errorf("shear should move the eye-line yaw (the reason for the midline check): %+v", p)
	}
	if p := Measure(quality.Keypoints{}); p.OK {
		t.Errorf("no geometry: %+v", p)
	}
}

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// clip makes observations at fps for dur, the keypoints given by the time
// since the challenge (nil: no face in that frame).
func clip(fps float64, dur time.Duration, kp func(t float64) *quality.Keypoints) []Observation {
	var obs []Observation
	for i := 0; ; i++ {
		at := time.Duration(float64(i) / fps * float64(time.Second))
		if at > dur {
			return obs
		}
		o := Observation{Time: t0.Add(at)}
		if k := kp(at.Seconds()); k != nil {
			o.Face, o.Keypoints, o.Box = true, *k, boxOf(*k)
		}
		obs = append(obs, o)
	}
}

// turning is a head frontal until start, then turning by rate °/s up to
// peak, holding, with a sway of amp degrees (keypoint noise).
func turning(start, rate, peak, amp float64) func(t float64) *quality.Keypoints {
	return func(t float64) *quality.Keypoints {
		yaw := 0.0
		if t > start {
			yaw = math.Copysign(math.Min(math.Abs(peak), rate*(t-start)), peak)
		}
		yaw += amp * math.Sin(t*17)
		k := head(yaw, 5, 3, 60, 320+10*t, 240)
		return &k
	}
}

func TestChecker(t *testing.T) {
	cfg := DefaultConfig()
	left := Challenge{ID: "x", Kind: TurnLeft, Issued: t0, Deadline: t0.Add(cfg.Timeout)}
	right := left
	right.Kind = TurnRight
	still := func(float64) *quality.Keypoints { k := head(3, 5, 0, 60, 320, 240); return &k }
	cases := []struct {
		name   string
		cfg    func(*Config)
		ch     Challenge
		kp     func(float64) *quality.Keypoints
		status Status
		reason Reason
	}{
		{"turns left in time", nil, left, turning(0.6, 60, 40, 3), Passed, ReasonNone},
		{"turns right in time", nil, right, turning(0.6, 60, -40, 3), Passed, ReasonNone},
		{"turns left late", nil, left, turning(5.5, 60, 40, 0), Failed, ReasonTimeout},
		{"turns the wrong way", nil, right, turning(0.6, 60, 40, 0), Failed, ReasonWrongDirection},
		{"turns too little", nil, left, turning(0.6, 60, 15, 0), Failed, ReasonTimeout},
		{"already turning", nil, left, turning(-0.2, 90, 40, 0), Failed, ReasonTooEarly},
		{"turned at issue", nil, left, turning(-1, 60, 40, 0), Failed, ReasonNotFrontal},
		{"still", nil, left, still, Failed, ReasonTimeout},
		{"no face at all", nil, left, func(float64) *quality.Keypoints { return nil }, Failed, ReasonFaceLost},
		{"face gone", nil, left, func(t float64) *quality.Keypoints {
			if t > 1 && t < 2 {
				return nil
			}
			return still(t)
		}, Failed, ReasonFaceLost},
		{"picture swapped", nil, left, func(t float64) *quality.Keypoints {
			k := head(2, 0, 0, 60, 320, 240)
			if t > 1 {
				k = head(40, 0, 0, 60, 420, 240)
			}
			return &k
		}, Failed, ReasonDiscontinuous},
		{"sheared print", nil, left, func(t float64) *quality.Keypoints {
			k := affine(head(0, 0, 0, 60, 0, 0), 1, math.Min(0.6, t/4), 0, 1, 320, 240)
			return &k
		}, Failed, ReasonPlanar},
		{"moved and rotated print", nil, left, func(t float64) *quality.Keypoints {
			a := 0.6 * math.Sin(t*3)
			s := 1 + 0.2*math.Sin(t*2)
			k := affine(head(2, 5, 0, 60, 0, 0), s*math.Cos(a), -s*math.Sin(a), s*math.Sin(a), s*math.Cos(a), 320+30*math.Sin(t), 240)
			return &k
		}, Failed, ReasonTimeout},
		{"mirrored camera flips the direction", func(c *Config) { c.Mirrored = true }, left, turning(0.6, 60, -40, 0), Passed, ReasonNone},
		{"a one-frame glitch is not a turn", nil, left, func(t float64) *quality.Keypoints {
			y := 0.0
			if t > 1 && t < 1.05 {
				y = 45
			}
			k := head(y, 0, 0, 60, 320, 240)
			return &k
		}, Failed, ReasonTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			obs := clip(30, 6*time.Second, tc.kp)
			r, err := Check(c, tc.ch, obs, obs[len(obs)-1].Time)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.Reason != tc.reason {
				t.Fatalf("got %v, want %s %s", r, tc.status, tc.reason)
			}
			if r.Status == Passed && (r.Latency(tc.ch) < c.MinReaction || r.Latency(tc.ch) > c.Timeout) {
				t.Errorf("latency %v", r.Latency(tc.ch))
			}
		})
	}
}

func TestCheckerPendingAndFinal(t *testing.T) {
	cfg := DefaultConfig()
	ch := Challenge{Kind: TurnLeft, Issued: t0, Deadline: t0.Add(cfg.Timeout)}
	c, err := NewChecker(cfg, ch)
	if err != nil {
		t.Fatal(err)
	}
	k := head(0, 0, 0, 60, 320, 240)
	if r := c.Observe(Observation{Time: t0.Add(-time.Second), Face: true, Keypoints: head(50, 0, 0, 60, 320, 240)}); r.Status != Pending || r.Frames != 0 {
		t.Fatalf("a frame before the challenge must be ignored: %v", r)
	}
	if r := c.Observe(Observation{Time: t0.Add(time.Second), Face: true, Keypoints: k, Box: boxOf(k)}); r.Status != Pending {
		t.Fatalf("%v", r)
	}
	if r := c.Expire(t0.Add(2 * time.Second)); r.Status != Pending {
		t.Fatalf("expired before the deadline: %v", r)
	}
	if r := c.Expire(ch.Deadline); r.Status != Failed || r.Reason != ReasonTimeout {
		t.Fatalf("%v", r)
	}
	k2 := head(45, 0, 0, 60, 320, 240)
	if r := c.Observe(Observation{Time: t0.Add(3 * time.Second), Face: true, Keypoints: k2, Box: boxOf(k2)}); r.Status != Failed {
		t.Fatalf("a decided challenge changed: %v", r)
	}
	if _, err := NewChecker(cfg, Challenge{Kind: "blink"}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestIssuer(t *testing.T) {
	seed := [32]byte{1}
	a, err := NewIssuer(DefaultConfig(), &seed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewIssuer(DefaultConfig(), &seed)
	n := map[Kind]int{}
	ids := map[string]bool{}
	for i := 0; i < 1000; i++ {
		ca, cb := a.Issue(t0), b.Issue(t0)
		if ca != cb {
			t.Fatalf("same seed, different challenges: %+v %+v", ca, cb)
		}
		if ca.Deadline.Sub(ca.Issued) != DefaultConfig().Timeout || len(ca.ID) != 16 {
			t.Fatalf("%+v", ca)
		}
		n[ca.Kind]++
		ids[ca.ID] = true
	}
	if n[TurnLeft] < 430 || n[TurnRight] < 430 || len(ids) != 1000 {
		t.Fatalf("draws %v, %d distinct ids", n, len(ids))
	}
	r, err := NewIssuer(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Issue(t0).ID == a.Issue(t0).ID {
		t.Fatal("crypto-seeded issuer repeats the fixed seed's id")
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.Turn, bad.HoldFrames, bad.MinReaction, bad.MaxGap = math.NaN(), 0, 10*time.Second, 0
	err := bad.Validate()
	for _, want := range []string{"Turn", "HoldFrames", "MinReaction", "MaxGap"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := NewIssuer(bad, nil); err == nil {
		t.Error("NewIssuer accepted a bad config")
	}
}
