package eval

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

// svgDoc is what a test reads back from a plot: its texts and its paths
// with their stroke colours.
type svgDoc struct {
	texts []string
	paths map[string][]string // stroke colour -> the d attribute of each path
}

func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	doc := svgDoc{paths: map[string][]string{}}
	dec := xml.NewDecoder(bytes.NewReader(b))
	svgs := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			var d, style string
			for _, a := range v.Attr {
				switch a.Name.Local {
				case "d":
					d = a.Value
				case "style":
					style = a.Value
				}
			}
			if v.Name.Local == "svg" {
				svgs++
			}
			if v.Name.Local == "path" {
				for _, kv := range strings.Split(style, ";") {
					if k, val, ok := strings.Cut(kv, ":"); ok && k == "stroke" {
						doc.paths[strings.ToLower(val)] = append(doc.paths[strings.ToLower(val)], d)
					}
				}
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(v)); s != "" {
				doc.texts = append(doc.texts, s)
			}
		}
	}
	if svgs != 1 {
		t.Fatalf("%d svg elements", svgs)
	}
	return doc
}

// vertices counts the points of an SVG path ("M x y L x y ...").
func vertices(d string) int { return strings.Count(d, "M") + strings.Count(d, "L") }

func TestWriteROCSVG(t *testing.T) {
	good, _ := ROC(Scores{Kind: "t", HigherIsMatch: true, Results: results([]float64{0.9, 0.8, 0.4}, []float64{0.1, 0.5, 0.3})})
	bad, _ := ROC(Scores{Kind: "t", HigherIsMatch: true, Results: results([]float64{0.2, 0.5}, []float64{0.6, 0.4})})
	var buf bytes.Buffer
	err := WriteROCSVG(&buf, `A & B <compared>`, Curve{Label: `model "a" <v1>`, ROC: good}, Curve{Label: "peer & co", ROC: bad})
	if err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, buf.Bytes())
	all := strings.Join(doc.texts, "|")
	for _, want := range []string{"A & B <compared>", `model "a" <v1> (AUC 0.8889, EER 33.33%)`, "peer & co (AUC 0.2500", "ROC", "DET",
		"1e-4", "1e-2", "false accept rate (FAR)", "true accept rate (TAR)", "false reject rate (FRR)", "0.5"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q: %s", want, all)
		}
	}
	// Each curve: one path in each panel and one in the legend, in its
	// colour; the ROC and DET paths have one vertex per ROC point (these
	// tiny curves are not thinned).
	for i, c := range []struct {
		colour string
		roc    []ROCPoint
	}{{"#1f77b4", good}, {"#d62728", bad}} {
		ps := doc.paths[c.colour]
		if len(ps) != 3 {
			t.Fatalf("curve %d: %d paths in %s, want 3 (ROC, DET, legend): %v", i, len(ps), c.colour, doc.paths)
		}
		for _, d := range ps[:2] {
			if n := vertices(d); n != len(c.roc) {
				t.Errorf("curve %d: path with %d vertices, want %d: %s", i, n, len(c.roc), d)
			}
		}
		if ps[0] == ps[1] {
			t.Errorf("curve %d: ROC and DET paths are the same", i)
		}
	}
	if doc.paths["#1f77b4"][0] == doc.paths["#d62728"][0] {
		t.Error("two different curves drawn alike")
	}
	if err := WriteROCSVG(&buf, "x"); err == nil {
		t.Error("no curves accepted")
	}
	if err := WriteROCSVG(&buf, "x", Curve{Label: "empty"}); err == nil {
		t.Error("empty curve accepted")
	}
}

func TestThin(t *testing.T) {
	// 10,000 points on the diagonal collapse to at most ~800.
	pts := make(plotter.XYs, 10000)
	for i := range pts {
		v := 1e-4 + (1-1e-4)*float64(i)/9999
		pts[i] = plotter.XY{X: logRate(v), Y: v}
	}
	for _, logY := range []bool{false, true} {
		if logY {
			for i := range pts {
				pts[i].Y = pts[i].X
			}
		}
		got := thin(pts, logY)
		if len(got) > 1000 || len(got) < 100 || got[0] != pts[0] || got[len(got)-1] != pts[len(pts)-1] {
			t.Errorf("logY %v: thin kept %d points (%v ... %v)", logY, len(got), got[0], got[len(got)-1])
		}
	}
}

func TestDecadeTicks(t *testing.T) {
	ts := decadeTicks()
	var labels []string
	for _, tk := range ts {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, ","); got != "1e-4,1e-3,1e-2,1e-1,1" || len(ts) != 5+4*8 || ts[1].Value != math.Log10(2)-4 {
		t.Errorf("ticks %q, %d in all", got, len(ts))
	}
	if math.Abs(logRate(0)+4) > 1e-12 || math.Abs(logRate(1e-2)+2) > 1e-12 || logRate(2) != 0 {
		t.Error("logRate")
	}
}
