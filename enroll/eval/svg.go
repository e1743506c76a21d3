package eval

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Curve is one labelled ROC curve to plot.
type Curve struct {
	Label string
	ROC   []ROCPoint
}

// Plot geometry (SVG user units).
const (
	svgPanelW   = 400 // plot area of one panel
	svgPanelH   = 300
	svgMarginL  = 70
	svgMarginT  = 60
	svgGap      = 110 // between the two panels
	svgMarginR  = 30
	svgLegendH  = 22 // per legend line
	svgMinRate  = 1e-4
	svgDecades  = 4 // log axes span svgMinRate..1
	svgMaxCurve = 8
)

var svgColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// WriteROCSVG writes a standalone SVG with two panels for the curves: an
// ROC plot (TAR against FAR, FAR on a log scale from 1e-4 to 1) and a DET
// plot (FRR = 1 - TAR against FAR, both log scales from 1e-4 to 1; these
// are FNMR and FMR when every pair was acquired), with decade
// ticks, grid, axis labels and a legend. Rates below 1e-4 are drawn on the
// axis. Up to 8 curves, e.g. models or peers compared on the same pairs.
func WriteROCSVG(w io.Writer, title string, curves ...Curve) error {
	if len(curves) == 0 || len(curves) > svgMaxCurve {
		return fmt.Errorf("ROC plot: %d curves, want 1 to %d", len(curves), svgMaxCurve)
	}
	for _, c := range curves {
		if len(c.ROC) < 2 {
			return fmt.Errorf("ROC plot: curve %q has %d points, want at least 2", c.Label, len(c.ROC))
		}
	}
	width := svgMarginL + 2*svgPanelW + svgGap + svgMarginR
	height := svgMarginT + svgPanelH + 60 + svgLegendH*len(curves) + 10
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<title>%s</title>`+"\n", esc(title))
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", svgMarginL, esc(title))

	rocX := float64(svgMarginL)
	detX := float64(svgMarginL + svgPanelW + svgGap)
	top := float64(svgMarginT)

	// ROC panel: x = log FAR, y = TAR linear.
	logX := func(x0, v float64) float64 {
		v = math.Max(v, svgMinRate)
		return x0 + (math.Log10(v)+svgDecades)/svgDecades*svgPanelW
	}
	linY := func(v float64) float64 { return top + (1-v)*svgPanelH }
	logY := func(v float64) float64 {
		v = math.Max(v, svgMinRate)
		return top + (-math.Log10(v))/svgDecades*svgPanelH
	}
	panel(bw, rocX, top, "ROC", "false accept rate (FAR)", "true accept rate (TAR)")
	panel(bw, detX, top, "DET", "false accept rate (FAR)", "false reject rate (FRR = 1 - TAR)")
	// Grid and ticks.
	for d := 0; d <= svgDecades; d++ {
		v := math.Pow(10, float64(-svgDecades+d))
		for _, x0 := range []float64{rocX, detX} {
			x := logX(x0, v)
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc"/>`+"\n", x, top, x, top+svgPanelH)
			p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+svgPanelH+16, decade(v))
			if d < svgDecades {
				for m := 2; m <= 9; m++ {
					xm := logX(x0, v*float64(m))
					p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", xm, top, xm, top+svgPanelH)
				}
			}
		}
		y := logY(v)
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc"/>`+"\n", detX, y, detX+svgPanelW, y)
		p(`<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", detX-6, y+4, decade(v))
	}
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		y := linY(v)
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc"/>`+"\n", rocX, y, rocX+svgPanelW, y)
		p(`<text x="%.1f" y="%.1f" text-anchor="end">%.1f</text>`+"\n", rocX-6, y+4, v)
	}
	// Chance lines: TAR = FAR, FRR = 1 - FAR.
	var chanceROC, chanceDET []string
	for i := 0; i <= 80; i++ {
		v := math.Pow(10, -svgDecades+float64(i)*svgDecades/80)
		chanceROC = append(chanceROC, fmt.Sprintf("%.1f,%.1f", logX(rocX, v), linY(v)))
		if v < 1 {
			chanceDET = append(chanceDET, fmt.Sprintf("%.1f,%.1f", logX(detX, v), logY(1-v)))
		}
	}
	p(`<polyline points="%s" fill="none" stroke="#999" stroke-dasharray="4 4"/>`+"\n", strings.Join(chanceROC, " "))
	p(`<polyline points="%s" fill="none" stroke="#999" stroke-dasharray="4 4"/>`+"\n", strings.Join(chanceDET, " "))

	for i, c := range curves {
		color := svgColors[i%len(svgColors)]
		roc := thin(c.ROC, func(q ROCPoint) (float64, float64) { return logX(rocX, q.FAR), linY(q.TAR) })
		det := thin(c.ROC, func(q ROCPoint) (float64, float64) { return logX(detX, q.FAR), logY(1 - q.TAR) })
		p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"/>`+"\n", roc, color)
		p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"/>`+"\n", det, color)
		ly := top + svgPanelH + 50 + float64(i*svgLegendH)
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", rocX, ly, rocX+30, ly, color)
		label := fmt.Sprintf("%s (AUC %.4f, EER %.2f%%)", c.Label, AUC(c.ROC), 100*EER(c.ROC))
		p(`<text x="%.1f" y="%.1f">%s</text>`+"\n", rocX+38, ly+4, esc(label))
	}
	p("</svg>\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write ROC plot: %w", err)
	}
	return nil
}

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

// panel draws a panel's frame, title and axis labels.
func panel(w io.Writer, x, y float64, title, xLabel, yLabel string) {
	fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", x, y, svgPanelW, svgPanelH)
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14">%s</text>`+"\n", x+svgPanelW/2, y-10, esc(title))
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x+svgPanelW/2, y+svgPanelH+34, esc(xLabel))
	cx, cy := x-48, y+svgPanelH/2
	fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", cx, cy, cx, cy, esc(yLabel))
}

// thin maps points to "x,y" pairs, dropping points less than half a unit
// from the last one kept (the last point is always kept).
func thin(pts []ROCPoint, xy func(ROCPoint) (float64, float64)) string {
	var b strings.Builder
	lx, ly := math.Inf(1), math.Inf(1)
	for i, q := range pts {
		x, y := xy(q)
		if i != len(pts)-1 && math.Abs(x-lx) < 0.5 && math.Abs(y-ly) < 0.5 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		lx, ly = x, y
	}
	return b.String()
}

func decade(v float64) string {
	if v >= 1 {
		return "1"
	}
	return fmt.Sprintf("1e%d", int(math.Round(math.Log10(v))))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
