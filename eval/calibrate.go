package eval

import (
	"fmt"
	"strings"
	"time"

	"github.com/facegate/facegate/infer/manifest"
)

// CalibrationTargets are the false-match rates `facegate eval --calibrate`
// calibrates, where the data allows.
var CalibrationTargets = []float64{1e-2, 1e-3, 1e-4}

// Calibrate returns, for each target false-match rate, the algorithm-level
// operating point (see AtFMR): the threshold, the impostor pairs behind it
// and the FNMR it gives. Targets the data cannot measure come back with
// Enough false and no threshold.
func Calibrate(s Scores, targets []float64) ([]OperatingPoint, error) {
	out := make([]OperatingPoint, 0, len(targets))
	for _, t := range targets {
		o, err := AtFMR(s, t)
		if err != nil {
			return nil, fmt.Errorf("calibrate FMR %g: %w", t, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// ManifestThresholds turns calibrated operating points into manifest
// thresholds for score kind (what the model's scores are: KindEuclidean,
// KindCosine or KindProbability), calibrated on dataset at date. Points
// without enough data are left out; when none is left the error wraps
// ErrNotEnoughData and names each target's shortfall.
func ManifestThresholds(points []OperatingPoint, kind, dataset string, date time.Time) ([]manifest.Threshold, error) {
	if _, err := HigherIsMatch(kind); err != nil {
		return nil, err
	}
	if strings.TrimSpace(dataset) == "" {
		return nil, fmt.Errorf("manifest thresholds: dataset name is empty")
	}
	var out []manifest.Threshold
	var short []string
	for _, o := range points {
		if o.Level != LevelAlgorithm {
			return nil, fmt.Errorf("manifest thresholds: FMR %g is a %s-level point; calibrate at %s level", o.Target, o.Level, LevelAlgorithm)
		}
		if !o.Enough {
			short = append(short, o.Err().Error())
			continue
		}
		out = append(out, manifest.Threshold{
			FMR:     o.Target,
			Score:   kind,
			Value:   *o.Threshold,
			Dataset: dataset,
			Pairs:   o.Impostors,
			Date:    date.UTC().Format(time.DateOnly),
			FNMR:    *o.FNMR,
		})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("manifest thresholds: %w: %s", ErrNotEnoughData, strings.Join(short, "; "))
	}
	return out, nil
}

// ApplyThresholds sets ts in m, replacing thresholds with the same score
// kind and FMR and keeping the others.
func ApplyThresholds(m *manifest.Manifest, ts []manifest.Threshold) {
	for _, t := range ts {
		m.SetThreshold(t)
	}
}
