package quality

import (
	"strings"
	"testing"
)

func TestJudgeEnrollment(t *testing.T) {
	lim := DefaultEnrollmentLimits()
	good := Report{InterOcular: 45, Sharpness: 40, Yaw: 5, Pitch: 5, Roll: 2, MeanLuma: 120}
	for _, c := range []struct {
		name   string
		r      Report
		det    float64
		want   Verdict
		reason string
	}{
		{"good", good, 0.95, Accepted, ""},
		{"small", func() Report { r := good; r.InterOcular = 8; return r }(), 0.95, Refused, "face 8 px between the eyes, need ≥ 10"},
		{"smallish", func() Report { r := good; r.InterOcular = 12; return r }(), 0.95, Borderline, "need ≥ 14"},
		{"blurred", func() Report { r := good; r.Sharpness = 1; return r }(), 0.95, Refused, "blurred"},
		{"turned", func() Report { r := good; r.Yaw = -50; return r }(), 0.95, Borderline, "head turned 50°"},
		{"hidden", good, 0.6, Refused, "partly hidden"},
	} {
		j := lim.Judge(c.r, c.det)
		if j.Verdict != c.want {
			t.Errorf("%s: %s, want %s (%v)", c.name, j.Verdict, c.want, j.Reasons)
		}
		if c.reason != "" && !strings.Contains(strings.Join(j.Reasons, "|"), c.reason) {
			t.Errorf("%s: reasons %q lack %q", c.name, j.Reasons, c.reason)
		}
		switch {
		case j.Verdict == Accepted && j.Score != 1, j.Verdict == Refused && j.Score != 0, j.Verdict == Borderline && !(j.Score >= 0 && j.Score < 1):
			t.Errorf("%s: score %v for %s", c.name, j.Score, j.Verdict)
		}
	}
}
