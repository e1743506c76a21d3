package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/facegate/facegate/infer/manifest"
)

// CalibrateConfig says where a verification run's calibration goes.
type CalibrateConfig struct {
	// ModelDir is the embedding model's folder: its manifest gets the
	// thresholds.
	ModelDir string
	// Impostors adds this many random impostor pairs (RandomImpostors) to
	// the calibration only, so low FMR targets can be measured (1e-4
	// needs 10,000).
	Impostors int
	// ThresholdsOut, when set, also receives the model's calibration as
	// JSON (e.g. models/calibration/NAME.json, which the exporter merges
	// into the manifest, so `make models` reproduces it); its other keys
	// (the head models/train_head.py fitted) are kept.
	ThresholdsOut string
}

// Calibrate computes thresholds for CalibrationTargets (where the data
// allows) and writes them into the model's manifest: the metric's own
// thresholds and, for a Siamese model, the equivalent probability
// thresholds (the head is monotonic in distance). It reports each step on
// w.
func (v *Verification) Calibrate(c CalibrateConfig, w io.Writer) ([]manifest.Threshold, error) {
	m, err := manifest.Read(c.ModelDir)
	if err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	points, dataset := v.Report.Calibration, v.Report.Dataset
	if c.Impostors > 0 {
		extra := RandomImpostors(v.Images, v.Embeddings, c.Impostors)
		s, _, err := ScoreEmbeddings(extra, v.Embeddings, v.Scores.Kind)
		if err != nil {
			return nil, fmt.Errorf("calibrate: score random impostors: %w", err)
		}
		cal := v.Scores
		cal.Results = append(append([]Result(nil), v.Scores.Results...), s.Results...)
		if points, err = Calibrate(cal, CalibrationTargets); err != nil {
			return nil, err
		}
		dataset = fmt.Sprintf("%s + %d random impostor pairs", dataset, len(extra))
		for _, o := range points {
			fmt.Fprintf(w, "calibration with extra impostors: FMR %g: %s\n", o.Target, describePoint(o))
		}
	}
	date, err := time.Parse(time.DateOnly, v.Report.Date)
	if err != nil {
		return nil, fmt.Errorf("calibrate: report date %q: %w", v.Report.Date, err)
	}
	ths, err := ManifestThresholds(points, string(m.Metric), dataset, date)
	if err != nil {
		return nil, fmt.Errorf("calibrate %s: %w", m.Name, err)
	}
	for _, t := range ths {
		m.SetThreshold(t)
		if m.Head != nil && t.Score == string(manifest.MetricEuclidean) {
			pt := t
			pt.Score = "probability"
			pt.Value = m.Head.Probability(t.Value)
			m.SetThreshold(pt)
		}
	}
	if err := manifest.Write(c.ModelDir, m); err != nil {
		return nil, fmt.Errorf("calibrate: %w", err)
	}
	if c.ThresholdsOut != "" {
		cal := map[string]any{}
		if prev, err := os.ReadFile(c.ThresholdsOut); err == nil {
			if err := json.Unmarshal(prev, &cal); err != nil {
				return nil, fmt.Errorf("calibration file %s: %w", c.ThresholdsOut, err)
			}
		}
		cal["model"] = ModelLabel(m)
		cal["thresholds"] = m.Thresholds
		if err := writeFile(c.ThresholdsOut, func(w io.Writer) error { return writeJSON(w, cal) }); err != nil {
			return nil, err
		}
	}
	sort.Slice(ths, func(i, j int) bool { return ths[i].FMR > ths[j].FMR })
	for _, t := range ths {
		fmt.Fprintf(w, "calibrated %s: FMR %g -> %s <= %.4f (FNMR %.4f, %d impostor pairs)\n", m.Name, t.FMR, t.Score, t.Value, t.FNMR, t.Pairs)
	}
	return ths, nil
}

func describePoint(o OperatingPoint) string {
	if !o.Enough || o.Threshold == nil || o.FNMR == nil {
		return o.Err().Error()
	}
	return fmt.Sprintf("threshold %.6f, FNMR %.4f, %d impostor pairs", *o.Threshold, *o.FNMR, o.Impostors)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
