package eval

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestWriteROCSVG(t *testing.T) {
	good, _ := ROC(Scores{Kind: "t", HigherIsMatch: true, Results: results([]float64{0.9, 0.8, 0.4}, []float64{0.1, 0.5, 0.3})})
	bad, _ := ROC(Scores{Kind: "t", HigherIsMatch: true, Results: results([]float64{0.2, 0.5}, []float64{0.6, 0.4})})
	var buf bytes.Buffer
	err := WriteROCSVG(&buf, `A & B <compared>`, Curve{Label: `model "a" <v1>`, ROC: good}, Curve{Label: "peer & co", ROC: bad})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	var texts []string
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, buf.String())
		}
		switch v := tok.(type) {
		case xml.StartElement:
			counts[v.Name.Local]++
		case xml.CharData:
			if s := strings.TrimSpace(string(v)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if counts["svg"] != 1 || counts["polyline"] != 2+2*2 {
		t.Errorf("elements %v, want 1 svg and 6 polylines (2 chance lines, ROC+DET per curve)", counts)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"A & B <compared>", `model "a" <v1> (AUC 0.8889, EER 33.33%)`, "peer & co (AUC 0.2500", "ROC", "DET", "1e-4", "1e-2", "false accept rate (FAR)", "false reject rate (FRR = 1 - TAR)", "0.5"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q: %s", want, all)
		}
	}
	if err := WriteROCSVG(&buf, "x"); err == nil {
		t.Error("no curves accepted")
	}
	if err := WriteROCSVG(&buf, "x", Curve{Label: "empty"}); err == nil {
		t.Error("empty curve accepted")
	}
}

func TestThin(t *testing.T) {
	// 10,000 points on a 400-unit axis collapse to a few hundred.
	pts := make([]ROCPoint, 10000)
	for i := range pts {
		pts[i] = ROCPoint{FAR: float64(i) / 9999, TAR: float64(i) / 9999}
	}
	s := thin(pts, func(q ROCPoint) (float64, float64) { return q.FAR * 400, q.TAR * 300 })
	n := strings.Count(s, " ") + 1
	if n > 1000 || !strings.HasPrefix(s, "0.0,0.0") || !strings.HasSuffix(s, "400.0,300.0") {
		t.Errorf("thin kept %d points: %.40s...%s", n, s, s[len(s)-20:])
	}
}
