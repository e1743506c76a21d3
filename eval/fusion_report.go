package eval

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// FusionReport is the outcome of `facegate eval -fusion`.
type FusionReport struct {
	Dataset      string               `json:"dataset"`
	Date         string               `json:"date"`
	Towers       []string             `json:"towers"`
	Images       int                  `json:"images"`
	ImagesFTA    int                  `json:"images_fta"`
	Identities   int                  `json:"identities"`
	MaxFrames    int                  `json:"max_frames"`
	Verification []FusionVerification `json:"verification"`
	OpenSet      []OpenSetResult      `json:"open_set"`
	Elapsed      string               `json:"elapsed"`
}

// WriteTable writes the figures as text tables.
func (r *FusionReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "fusion of %v on %s\nimages %d (%d not acquired by every tower), identities %d (aliases merged), %s\n\n", r.Towers, r.Dataset, r.Images, r.ImagesFTA, r.Identities, r.Elapsed)
	fmt.Fprintln(w, "1:1 verification, heads fitted with 5-fold cross-validation on the LFW folds")
	fmt.Fprintln(w, "towers       LFW accuracy      EER     TAR@FAR1e-3 (1,500 imp.)  | all pairs: impostors genuine  EER     TAR@FAR1e-3  FNMR@FMR1e-4")
	for _, v := range r.Verification {
		fmt.Fprintf(w, "%-12s %6.2f%% ± %.2f%%  %5.2f%%  %-25s | %9d %7d  %5.2f%%  %-11s  %s\n", v.Towers, 100*v.Accuracy.Mean, 100*v.Accuracy.StdErr, 100*v.EER,
			optPct(v.TARAtFAR3.TAR), v.AllImpostors, v.AllGenuine, 100*v.AllEER, optPct(v.AllFAR3.TAR), optPct(v.AllFMR4.FNMR))
	}
	fmt.Fprintf(w, "\nopen-set 1:N per visit (one-shot galleries, visits of up to %d photos, sequential rule of package decision)\n", r.MaxFrames)
	fmt.Fprintln(w, "towers       N     galleries mated(multi) non-mated(multi) | target  thresholds      false grants  FPIR      FPIR multi (grants)  FNIR (multi)      wrong  ambig. frames | swept: FNIR at FPIR")
	for _, o := range r.OpenSet {
		for i, p := range o.Calibrated {
			swept := "-"
			if i < len(o.Swept) {
				swept = fmt.Sprintf("%.2f%% at %.4f", 100*o.Swept[i].FNIR, o.Swept[i].FPIR)
			}
			fmt.Fprintf(w, "%-12s %-5d %-9d %5d(%4d)   %5d(%4d)      | %-7g %6.2f/%-6.2f  %5d         %.5f   %.5f (%3d)      %6.2f%% (%5.2f%%)  %5d  %5d  %.2f  | %s\n", o.Towers, o.N, o.Trials, o.Mated, o.MatedMulti, o.NonMated, o.NonMatedMulti,
				p.Target, p.Thresholds[0], p.Thresholds[1], p.FalseGrants, p.FPIR, p.FPIRMulti, p.FalseGrantsMulti, 100*p.FNIR, 100*p.FNIRMulti, p.WrongGrants, p.Ambiguous, p.MeanFrames, swept)
		}
	}
	return nil
}

func (r *FusionReport) save(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fusion report: %w", err)
	}
	if err := writeFile(filepath.Join(dir, "fusion.json"), func(w io.Writer) error { return writeJSON(w, r) }); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "fusion.txt"), r.WriteTable); err != nil {
		return err
	}
	var curves []Curve
	for _, v := range r.Verification {
		curves = append(curves, Curve{Label: v.Towers + " (all cross-identity pairs of each fold)", ROC: thinROC(v.ROC)})
	}
	if err := writeFile(filepath.Join(dir, "fusion-roc.svg"), func(w io.Writer) error {
		return WriteROCSVG(w, "LFW folds 1-5, every pair of each fold, heads cross-validated", curves...)
	}); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "fusion-det.svg"), r.WriteDETSVG)
}

// thinROC keeps at most about 4,000 points, spaced on log FAR.
func thinROC(roc []ROCPoint) []ROCPoint {
	if len(roc) <= 4000 {
		return roc
	}
	var out []ROCPoint
	last := math.Inf(-1)
	for i, p := range roc {
		x := math.Log10(math.Max(p.FAR, 1e-9))
		if i == 0 || i == len(roc)-1 || x-last >= 0.002 {
			out = append(out, p)
			last = x
		}
	}
	return out
}

// WriteDETSVG draws the identification DET (FNIR against FPIR per visit,
// both on log axes, as NIST FRVT 1:N plots them): one curve per subset of
// towers and gallery size, and the calibrated operating points.
func (r *FusionReport) WriteDETSVG(w io.Writer) error {
	p := panel("open-set 1:N per visit", "false positive identification rate per visit (FPIR)", "false negative identification rate (FNIR)", true)
	legend := plot.NewLegend()
	legend.Top = true
	for i, o := range r.OpenSet {
		if i >= plotMaxCurves {
			break
		}
		var xys plotter.XYs
		for _, q := range o.DET {
			xys = append(xys, plotter.XY{X: logRate(q.FPIR), Y: logRate(q.FNIR)})
		}
		if len(xys) < 2 {
			continue
		}
		l, err := plotter.NewLine(thin(xys, true))
		if err != nil {
			return fmt.Errorf("DET plot: %w", err)
		}
		l.Color, l.Width = plotColors[i], vg.Points(1.8)
		if o.N < 1000 {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		var pts plotter.XYs
		for _, c := range o.Calibrated {
			pts = append(pts, plotter.XY{X: logRate(c.FPIR), Y: logRate(c.FNIR)})
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return fmt.Errorf("DET plot: %w", err)
		}
		sc.Color = plotColors[i]
		sc.Shape = draw.CircleGlyph{}
		p.Add(sc)
		legend.Add(fmt.Sprintf("%s, N = %d (dots: calibrated for FPIR 1e-2, 1e-3)", o.Towers, o.N), l)
	}
	const W, H, pad = 7 * vg.Inch, 5.5 * vg.Inch, 0.2 * vg.Inch
	entryH := 1.4 * legend.TextStyle.Height("Xg")
	legendH := vg.Length(min(len(r.OpenSet), plotMaxCurves))*(entryH+legend.Padding) + pad
	canvas := newCanvas(W, H+legendH)
	dc := draw.New(canvas)
	p.Draw(draw.Crop(dc, pad, -pad, legendH, -pad))
	legend.Draw(draw.Crop(dc, pad, -pad, pad/2, -(H + pad/2)))
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("write DET plot: %w", err)
	}
	return nil
}
