package eval

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Presentation-attack detection evaluation, in the vocabulary of ISO/IEC
// 30107-3: a labelled folder of presentations, bona fide ones (live faces)
// and attack presentations of several presentation attack instrument
// (PAI) species (print, screen, replay, mask ...), each scored by a PAD
// subsystem (facegate: MiniFASNet's p_real, higher = more bona fide) and
// classified bona fide when the score is at least the threshold.
//
//   - APCER of a species: the share of its attack presentations classified
//     bona fide. The worst species' APCER is reported as APCER.
//   - BPCER: the share of bona fide presentations classified as attacks.
//   - ACER: (APCER + BPCER) / 2, with the worst species' APCER (the 2017
//     edition's average; the 2023 edition deprecates it: read the two
//     rates).
//
// A presentation the pipeline could not score (no face found, an
// undecodable file) is reported as not scored and counted as the gate
// would treat it: a bona fide one as rejected, an attack one as not
// accepted.

// PADBonaFideDir and PADAttackDir are the folder layout RunPAD reads:
// root/bona_fide/** and root/attack/<species>/**.
const (
	PADBonaFideDir = "bona_fide"
	PADAttackDir   = "attack"
)

// PADPresentation is one labelled image: Species is "" for bona fide.
type PADPresentation struct {
	Path    string `json:"path"`
	Species string `json:"species,omitempty"`
}

// PADScored is a presentation with its score, or why it has none.
type PADScored struct {
	PADPresentation
	Score float64 `json:"score"`
	Err   string  `json:"error,omitempty"`
}

var padImageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".pgm": true, ".ppm": true}

// ListPADFolder lists the images of a labelled PAD folder, sorted.
func ListPADFolder(root string) ([]PADPresentation, error) {
	var out []PADPresentation
	add := func(dir, species string) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && padImageExt[strings.ToLower(filepath.Ext(p))] {
				out = append(out, PADPresentation{Path: p, Species: species})
			}
			return nil
		})
	}
	if err := add(filepath.Join(root, PADBonaFideDir), ""); err != nil {
		return nil, fmt.Errorf("pad folder %s: %w", root, err)
	}
	ents, err := os.ReadDir(filepath.Join(root, PADAttackDir))
	if err != nil {
		return nil, fmt.Errorf("pad folder %s: %w", root, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := add(filepath.Join(root, PADAttackDir, e.Name()), e.Name()); err != nil {
				return nil, fmt.Errorf("pad folder %s: %w", root, err)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// PADSpecies is one PAI species' result.
type PADSpecies struct {
	Name          string  `json:"name"`
	Presentations int     `json:"presentations"`
	NotScored     int     `json:"not_scored"`
	Accepted      int     `json:"accepted_as_bona_fide"`
	APCER         float64 `json:"apcer"`
}

// PADDETPoint is one threshold of the DET curve of one species.
type PADDETPoint struct {
	Threshold float64 `json:"threshold"`
	APCER     float64 `json:"apcer"`
	BPCER     float64 `json:"bpcer"`
}

// PADReport is the evaluation at one threshold and the DET curves.
type PADReport struct {
	Threshold         float64                  `json:"threshold"`
	BonaFide          int                      `json:"bona_fide"`
	BonaFideNotScored int                      `json:"bona_fide_not_scored"`
	BonaFideRejected  int                      `json:"bona_fide_rejected"`
	BPCER             float64                  `json:"bpcer"`
	Species           []PADSpecies             `json:"species"`
	APCER             float64                  `json:"apcer"` // the worst species'
	ACER              float64                  `json:"acer"`
	DET               map[string][]PADDETPoint `json:"det"`
	Scores            []PADScored              `json:"scores"`
}

// PADMetrics computes the report from scored presentations.
func PADMetrics(scores []PADScored, threshold float64) (*PADReport, error) {
	if math.IsNaN(threshold) {
		return nil, errors.New("pad metrics: threshold is NaN")
	}
	r := &PADReport{Threshold: threshold, Scores: scores, DET: map[string][]PADDETPoint{}}
	bySpecies := map[string]*PADSpecies{}
	var bona []float64
	attacks := map[string][]float64{}
	for _, s := range scores {
		if s.Species == "" {
			r.BonaFide++
			switch {
			case s.Err != "":
				r.BonaFideNotScored++
				r.BonaFideRejected++
			case s.Score < threshold:
				r.BonaFideRejected++
			}
			if s.Err == "" {
				bona = append(bona, s.Score)
			} else {
				bona = append(bona, math.Inf(-1))
			}
			continue
		}
		sp := bySpecies[s.Species]
		if sp == nil {
			sp = &PADSpecies{Name: s.Species}
			bySpecies[s.Species] = sp
		}
		sp.Presentations++
		switch {
		case s.Err != "":
			sp.NotScored++
			attacks[s.Species] = append(attacks[s.Species], math.Inf(-1))
		default:
			if s.Score >= threshold {
				sp.Accepted++
			}
			attacks[s.Species] = append(attacks[s.Species], s.Score)
		}
	}
	if r.BonaFide == 0 || len(bySpecies) == 0 {
		return nil, fmt.Errorf("pad metrics: %d bona fide and %d attack species: need both", r.BonaFide, len(bySpecies))
	}
	r.BPCER = float64(r.BonaFideRejected) / float64(r.BonaFide)
	for _, sp := range bySpecies {
		sp.APCER = float64(sp.Accepted) / float64(sp.Presentations)
		r.Species = append(r.Species, *sp)
		r.APCER = math.Max(r.APCER, sp.APCER)
		r.DET[sp.Name] = padDET(bona, attacks[sp.Name])
	}
	sort.Slice(r.Species, func(i, j int) bool { return r.Species[i].Name < r.Species[j].Name })
	r.ACER = (r.APCER + r.BPCER) / 2
	return r, nil
}

// padDET sweeps the threshold over every score: at t, attacks with score
// ≥ t are accepted and bona fide ones below t rejected.
func padDET(bona, attack []float64) []PADDETPoint {
	ts := append(append([]float64{}, bona...), attack...)
	ts = append(ts, math.MaxFloat64) // above every score: nothing accepted
	sort.Float64s(ts)
	var out []PADDETPoint
	prev := math.NaN()
	for _, t := range ts {
		if t == prev || math.IsInf(t, -1) {
			continue
		}
		prev = t
		p := PADDETPoint{Threshold: t}
		for _, b := range bona {
			if b < t {
				p.BPCER++
			}
		}
		for _, a := range attack {
			if a >= t {
				p.APCER++
			}
		}
		p.BPCER /= float64(len(bona))
		p.APCER /= float64(len(attack))
		out = append(out, p)
	}
	return out
}

// PADConfig is one `facegate pad-eval` run.
type PADConfig struct {
	Root      string
	Threshold float64
	// Score returns the PAD score (p_real) of the image at path, or an
	// error when it has no face or cannot be read.
	Score    func(path string) (float64, error)
	Progress io.Writer // nil: none
}

// RunPAD scores every presentation of cfg.Root and computes the report.
func RunPAD(ctx context.Context, cfg PADConfig) (*PADReport, error) {
	list, err := ListPADFolder(cfg.Root)
	if err != nil {
		return nil, err
	}
	var bar *Progress
	if cfg.Progress != nil {
		bar = NewProgress(cfg.Progress, "pad-eval", len(list))
		defer bar.Done()
	}
	scores := make([]PADScored, 0, len(list))
	for _, p := range list {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := PADScored{PADPresentation: p}
		if v, err := cfg.Score(p.Path); err != nil {
			s.Err = err.Error()
		} else {
			s.Score = v
		}
		scores = append(scores, s)
		if bar != nil {
			bar.Add(1)
		}
	}
	return PADMetrics(scores, cfg.Threshold)
}

// WriteText prints the report in ISO/IEC 30107-3 terms.
func (r *PADReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "threshold %.4g (bona fide when p_real >= threshold)\n", r.Threshold)
	fmt.Fprintf(&b, "bona fide presentations: %d (%d not scored)  BPCER %.2f%% (%d rejected)\n", r.BonaFide, r.BonaFideNotScored, 100*r.BPCER, r.BonaFideRejected)
	for _, s := range r.Species {
		fmt.Fprintf(&b, "attack species %-12s presentations %d (%d not scored)  APCER %.2f%% (%d accepted)\n", s.Name, s.Presentations, s.NotScored, 100*s.APCER, s.Accepted)
	}
	fmt.Fprintf(&b, "APCER (worst species) %.2f%%  ACER %.2f%%\n", 100*r.APCER, 100*r.ACER)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDETSVG draws one DET curve per species: BPCER against APCER, both
// on log axes from 1e-4 to 1 (rates of 0 on the axis), with the
// report's operating point marked.
func (r *PADReport) WriteDETSVG(w io.Writer, title string) error {
	if len(r.Species) > plotMaxCurves {
		return fmt.Errorf("DET plot: %d species, at most %d", len(r.Species), plotMaxCurves)
	}
	p := panel("DET", "APCER (attacks accepted)", "BPCER (bona fide rejected)", true)
	p.X.Min, p.X.Max, p.X.Tick.Marker = -plotDecades, 0, plot.ConstantTicks(decadeTicks())
	p.Title.Text = title
	p.Legend.Top = true
	for i, s := range r.Species {
		var xys plotter.XYs
		for _, q := range r.DET[s.Name] {
			xys = append(xys, plotter.XY{X: logRate(q.APCER), Y: logRate(q.BPCER)})
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("DET plot: %s: %w", s.Name, err)
		}
		l.Color, l.Width = plotColors[i], vg.Points(1.8)
		pt, err := plotter.NewScatter(plotter.XYs{{X: logRate(s.APCER), Y: logRate(r.BPCER)}})
		if err != nil {
			return fmt.Errorf("DET plot: %w", err)
		}
		pt.Color, pt.Shape = plotColors[i], draw.CircleGlyph{}
		p.Add(l, pt)
		p.Legend.Add(fmt.Sprintf("%s (n=%d, APCER %.1f%% at BPCER %.1f%%)", s.Name, s.Presentations, 100*s.APCER, 100*r.BPCER), l)
	}
	p.Legend.TextStyle.Color = color.Black
	c := newCanvas(6*vg.Inch, 5*vg.Inch)
	p.Draw(draw.New(c))
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("write DET plot: %w", err)
	}
	return nil
}
