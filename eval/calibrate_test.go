package eval

import (
	"errors"
	"testing"
	"time"

	"github.com/facegate/facegate/infer/manifest"
)

// testManifest is a minimal valid manifest to calibrate.
func testManifest() *manifest.Manifest {
	return &manifest.Manifest{
		Schema:  manifest.SchemaVersion,
		Name:    "eval-test",
		Version: "1.0.0",
		Task:    manifest.TaskTest,
		Tags:    []string{"serve"},
		Signatures: map[string]manifest.SignatureSpec{
			"embed": {
				Inputs:  map[string]manifest.TensorSpec{"images": {DType: "float32", Shape: []int64{-1, 2, 2, 3}}},
				Outputs: map[string]manifest.TensorSpec{"embeddings": {DType: "float32", Shape: []int64{-1, 2}}},
			},
		},
		Weights: manifest.WeightsUntrained,
		License: "test",
	}
}

func TestCalibrationRoundTrip(t *testing.T) {
	// 1500 impostors (like LFW folds 1-5): 1e-2 and 1e-3 measurable, 1e-4 not.
	genuine, imp := impostorGrid(1500)
	for i := range imp {
		imp[i] = imp[i] / 1.5 // keep them in 0..1
	}
	s := Scores{Kind: KindCosine, HigherIsMatch: true, Results: results(genuine, imp)}
	points, err := Calibrate(s, CalibrationTargets)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 3 || !points[0].Enough || !points[1].Enough || points[2].Enough {
		t.Fatalf("points %+v", points)
	}
	date := time.Date(2026, 11, 28, 15, 4, 5, 0, time.UTC)
	ts, err := ManifestThresholds(points, KindCosine, "pairs-lfw-folds1-5.tsv", date)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("thresholds %+v, want 1e-2 and 1e-3 only", ts)
	}

	dir := t.TempDir()
	m := testManifest()
	// An older calibration of the same FMR is replaced, another score kind kept.
	m.Thresholds = []manifest.Threshold{
		{FMR: 1e-3, Score: KindCosine, Value: 0.1, Dataset: "old", Pairs: 1, Date: "2020-01-01"},
		{FMR: 1e-3, Score: KindProbability, Value: 0.9, Dataset: "other", Pairs: 5000, Date: "2025-01-01"},
	}
	if err := manifest.Write(dir, m); err != nil {
		t.Fatal(err)
	}
	m, err = manifest.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	ApplyThresholds(m, ts)
	if err := manifest.Write(dir, m); err != nil {
		t.Fatal(err)
	}
	back, err := manifest.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Thresholds) != 3 {
		t.Fatalf("thresholds after calibration: %+v", back.Thresholds)
	}
	for i, fmr := range []float64{1e-2, 1e-3} {
		got, ok := back.ThresholdFor(fmr, KindCosine)
		o := points[i]
		if !ok || got.Value != *o.Threshold || got.FNMR != *o.FNMR || got.Pairs != 1500 ||
			got.Dataset != "pairs-lfw-folds1-5.tsv" || got.Date != "2026-11-28" || got.Score != KindCosine {
			t.Errorf("FMR %g read back %+v (ok=%v), want threshold %v fnmr %v", fmr, got, ok, *o.Threshold, *o.FNMR)
		}
	}
	if _, ok := back.ThresholdFor(1e-4, KindCosine); ok {
		t.Error("1e-4 written without enough data")
	}
	if got, ok := back.ThresholdFor(1e-3, KindProbability); !ok || got.Value != 0.9 {
		t.Errorf("other score kind lost: %+v", got)
	}
	// The threshold read back decides like the calibration: at most 1 in
	// 1000 impostors accepted.
	th, _ := back.ThresholdFor(1e-3, KindCosine)
	fm := 0
	for _, v := range imp {
		if Matches(v, th.Value, true) {
			fm++
		}
	}
	if float64(fm)/float64(len(imp)) > 1e-3 {
		t.Errorf("read-back threshold accepts %d of %d impostors", fm, len(imp))
	}
}

func TestManifestThresholdsErrors(t *testing.T) {
	genuine, imp := impostorGrid(500)
	s := Scores{Kind: KindCosine, HigherIsMatch: true, Results: results(genuine, imp)}
	points, _ := Calibrate(s, []float64{1e-3, 1e-4})
	_, err := ManifestThresholds(points, KindCosine, "tiny", time.Now())
	if !errors.Is(err, ErrNotEnoughData) {
		t.Errorf("no measurable target: %v", err)
	}
	sys, _ := AtFAR(s, 1e-2)
	if _, err := ManifestThresholds([]OperatingPoint{sys}, KindCosine, "tiny", time.Now()); err == nil {
		t.Error("system-level point accepted for calibration")
	}
	alg, _ := AtFMR(s, 1e-2)
	if _, err := ManifestThresholds([]OperatingPoint{alg}, "hamming", "tiny", time.Now()); err == nil {
		t.Error("unknown score kind accepted")
	}
	if _, err := ManifestThresholds([]OperatingPoint{alg}, KindCosine, " ", time.Now()); err == nil {
		t.Error("empty dataset accepted")
	}
}
