package eval

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Curve is one labelled ROC curve to plot.
type Curve struct {
	Label string
	ROC   []ROCPoint
}

const (
	plotMinRate   = 1e-4 // log axes span plotMinRate..1,
	plotDecades   = 4    // that is 4 decades
	plotMaxCurves = 8
	// plotStep is the smallest move, as a fraction of both axes, between
	// two points drawn: a 10,000-point ROC needs a few hundred.
	plotStep = 1.0 / 800
)

var plotColors = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// WriteROCSVG writes an SVG with two panels for the curves, drawn with
// gonum.org/v1/plot: an ROC plot (TAR against FAR, FAR on a log scale from
// 1e-4 to 1) and a DET plot (FRR = 1 - TAR against FAR, both axes on log
// scales from 1e-4 to 1, as NIST draws them; these are FNMR and FMR when
// every pair was acquired), with decade ticks, grid, chance lines, axis
// labels and a legend giving each curve's AUC and EER. Rates below 1e-4
// are drawn on the axis. Up to 8 curves, e.g. models or peers compared on
// the same pairs.
func WriteROCSVG(w io.Writer, title string, curves ...Curve) error {
	if len(curves) == 0 || len(curves) > plotMaxCurves {
		return fmt.Errorf("ROC plot: %d curves, want 1 to %d", len(curves), plotMaxCurves)
	}
	for _, c := range curves {
		if len(c.ROC) < 2 {
			return fmt.Errorf("ROC plot: curve %q has %d points, want at least 2", c.Label, len(c.ROC))
		}
	}
	roc := panel("ROC", "false accept rate (FAR)", "true accept rate (TAR)", false)
	det := panel("DET", "false accept rate (FAR)", "false reject rate (FRR)", true)
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true

	// Chance lines: TAR = FAR, FRR = 1 - FAR.
	var chanceROC, chanceDET plotter.XYs
	for i := 0; i <= 80; i++ {
		v := math.Pow(10, -4+float64(i)*4/80)
		chanceROC = append(chanceROC, plotter.XY{X: logRate(v), Y: v})
		if v < 1 {
			chanceDET = append(chanceDET, plotter.XY{X: logRate(v), Y: logRate(1 - v)})
		}
	}
	for _, c := range []struct {
		p   *plot.Plot
		xys plotter.XYs
	}{{roc, chanceROC}, {det, chanceDET}} {
		l, err := plotter.NewLine(c.xys)
		if err != nil {
			return fmt.Errorf("ROC plot: %w", err)
		}
		l.Color, l.Dashes = color.Gray{0x99}, []vg.Length{vg.Points(4), vg.Points(4)}
		c.p.Add(l)
	}
	for i, c := range curves {
		var rocXY, detXY plotter.XYs
		for _, q := range c.ROC {
			rocXY = append(rocXY, plotter.XY{X: logRate(q.FAR), Y: q.TAR})
			detXY = append(detXY, plotter.XY{X: logRate(q.FAR), Y: logRate(1 - q.TAR)})
		}
		var first *plotter.Line
		for _, s := range []struct {
			p    *plot.Plot
			xys  plotter.XYs
			logY bool
		}{{roc, rocXY, false}, {det, detXY, true}} {
			l, err := plotter.NewLine(thin(s.xys, s.logY))
			if err != nil {
				return fmt.Errorf("ROC plot: curve %q: %w", c.Label, err)
			}
			l.Color, l.Width = plotColors[i], vg.Points(1.8)
			s.p.Add(l)
			if first == nil {
				first = l
			}
		}
		legend.Add(fmt.Sprintf("%s (AUC %.4f, EER %.2f%%)", c.Label, AUC(c.ROC), 100*EER(c.ROC)), first)
	}

	const panelW, panelH, titleH, pad = 5 * vg.Inch, 4 * vg.Inch, 0.5 * vg.Inch, 0.2 * vg.Inch
	entryH := 1.4 * legend.TextStyle.Height("Xg")
	legendH := vg.Length(len(curves))*(entryH+legend.Padding) + pad
	canvas := newCanvas(2*panelW+3*pad, titleH+panelH+legendH)
	dc := draw.New(canvas)
	sty := roc.Title.TextStyle
	sty.Font.Size = vg.Points(14)
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YCenter
	dc.FillText(sty, vg.Point{X: pad, Y: dc.Max.Y - titleH/2}, title)
	panels := draw.Crop(dc, pad, -pad, legendH, -titleH)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: pad}
	roc.Draw(tiles.At(panels, 0, 0))
	det.Draw(tiles.At(panels, 1, 0))
	legend.Draw(draw.Crop(dc, pad, -pad, pad/2, -(titleH + panelH + pad/2)))
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("write ROC plot: %w", err)
	}
	return nil
}

// newCanvas makes the plot's canvas: SVG (a test may draw PNG to look).
var newCanvas = func(w, h vg.Length) vg.CanvasWriterTo { return vgsvg.New(w, h) }

// WriteROCSVG plots the report's ROC and DET curves.
func (r *Report) WriteROCSVG(w io.Writer) error {
	if len(r.ROC) == 0 {
		return errors.New("ROC plot: report has no ROC curve")
	}
	label := r.Model
	if label == "" {
		label = r.ScoreKind
	}
	return WriteROCSVG(w, "facegate eval: "+r.Dataset, Curve{Label: label, ROC: r.ROC})
}

// panel is one plot: FAR on a log x axis, the rate on a linear or log y
// axis, both with grids. Log axes are drawn as log10 of the rate on a
// linear scale with decade labels (gonum's LogScale pads a log axis's
// label as if it sat at the arithmetic middle, squeezing the panel).
func panel(title, xLabel, yLabel string, logY bool) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xLabel, yLabel
	p.X.Min, p.X.Max, p.X.Tick.Marker = -plotDecades, 0, plot.ConstantTicks(decadeTicks())
	p.Y.Min, p.Y.Max, p.Y.Tick.Marker = 0, 1, plot.ConstantTicks(linearTicks())
	if logY {
		p.Y.Min, p.Y.Max, p.Y.Tick.Marker = -plotDecades, 0, plot.ConstantTicks(decadeTicks())
	}
	p.Add(plotter.NewGrid())
	return p
}

// decadeTicks are the ticks of a log axis in log10 units: 1e-4, 1e-3,
// ..., 1 labelled, unlabelled minor ticks at 2-9 times each decade.
func decadeTicks() []plot.Tick {
	var ts []plot.Tick
	for d := -plotDecades; d <= 0; d++ {
		ts = append(ts, plot.Tick{Value: float64(d), Label: decade(math.Pow(10, float64(d)))})
		for m := 2; m <= 9 && d < 0; m++ {
			ts = append(ts, plot.Tick{Value: float64(d) + math.Log10(float64(m))})
		}
	}
	return ts
}

func linearTicks() []plot.Tick {
	ts := make([]plot.Tick, 0, 11)
	for i := 0; i <= 10; i++ {
		ts = append(ts, plot.Tick{Value: float64(i) / 10, Label: fmt.Sprintf("%.1f", float64(i)/10)})
	}
	return ts
}

// logRate is where a rate goes on a log axis: log10 of the rate, rates
// below 1e-4 on the axis.
func logRate(v float64) float64 { return math.Log10(math.Min(math.Max(v, plotMinRate), 1)) }

// thin drops points closer than plotStep (as a fraction of each axis; the
// y axis is a log axis when logY) to the last point kept; the first and
// last points are always kept. Points are in plot units (log10 on log
// axes).
func thin(xys plotter.XYs, logY bool) plotter.XYs {
	pos := func(q plotter.XY) (float64, float64) {
		x := (q.X + plotDecades) / plotDecades
		if logY {
			return x, (q.Y + plotDecades) / plotDecades
		}
		return x, q.Y
	}
	out := plotter.XYs{xys[0]}
	lx, ly := pos(xys[0])
	for i := 1; i < len(xys); i++ {
		x, y := pos(xys[i])
		if i != len(xys)-1 && math.Abs(x-lx) < plotStep && math.Abs(y-ly) < plotStep {
			continue
		}
		out = append(out, xys[i])
		lx, ly = x, y
	}
	return out
}

func decade(v float64) string {
	if v >= 1 {
		return "1"
	}
	return fmt.Sprintf("1e%d", int(math.Round(math.Log10(v))))
}
