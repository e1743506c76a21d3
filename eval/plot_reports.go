package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PlotReports draws the ROC/DET curves of several reports (JSON as
// Report.WriteJSON writes) in one SVG at out.
func PlotReports(out string, files []string) error {
	if out == "" {
		return errors.New("plot reports: no output file")
	}
	var curves []Curve
	var datasets []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("plot reports: %w", err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		label := r.Model
		if label == "" {
			label = filepath.Base(f)
		}
		curves = append(curves, Curve{Label: fmt.Sprintf("%s (accuracy %.2f%%)", label, 100*r.Accuracy.Mean), ROC: r.ROC})
		if !slices.Contains(datasets, r.Dataset) {
			datasets = append(datasets, r.Dataset)
		}
	}
	return writeFile(out, func(w io.Writer) error {
		return WriteROCSVG(w, "facegate eval: "+strings.Join(datasets, ", "), curves...)
	})
}
