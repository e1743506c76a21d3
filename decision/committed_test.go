package decision

import (
	"path/filepath"
	"testing"
)

// TestCommittedCalibration: the shipped models/calibration/decision.json
// loads, covers both towers and each alone, and gives thresholds that rise
// with the gallery and with a stricter target.
func TestCommittedCalibration(t *testing.T) {
	c, err := Load(filepath.Join("..", "models", "calibration", "decision.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"dlib+sface", "dlib", "sface"} {
		s, err := c.Scorer(key)
		if err != nil {
			t.Fatal(err)
		}
		prev := 0.0
		for i, n := range []int{1, 10, 100, 1000, 10000} {
			th, err := c.Threshold(key, n, 1e-3)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && th <= prev {
				t.Errorf("%s: threshold %v for N=%d not above %v", key, th, n, prev)
			}
			prev = th
		}
		loose, _ := c.Threshold(key, 1000, 1e-2)
		if loose >= prev {
			t.Errorf("%s: FPIR 1e-2 threshold %v not below the 1e-3 one", key, loose)
		}
		// An impostor at the tower means is far below any threshold.
		raw := make([]float64, len(s.Towers))
		for i, tw := range s.Towers {
			raw[i] = tw.ImpostorMean
		}
		if l := s.Logit(raw); l >= loose {
			t.Errorf("%s: logit %v of an average impostor reaches the threshold %v", key, l, loose)
		}
		if c.Visits[key].Margin <= 0 || c.Visits[key].MaxFrames < 1 {
			t.Errorf("%s: margin %v, max frames %d", key, c.Visits[key].Margin, c.Visits[key].MaxFrames)
		}
		// The daemon continues a visit's look budget across jumps of the
		// face; only the max aggregate makes that chain the calibrated
		// statistic (docs/decision.md).
		if c.Visits[key].Aggregate != Max {
			t.Errorf("%s: aggregate %q, the daemon's rule is calibrated for %q", key, c.Visits[key].Aggregate, Max)
		}
	}
}
