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
// Group is the first folder below bona_fide/ or attack/<species>/ (a
// clip, a person, a capture session; "" for files directly there): frames
// of one group are correlated, so calibration splits by group.
type PADPresentation struct {
	Path    string `json:"path"`
	Species string `json:"species,omitempty"`
	Group   string `json:"group,omitempty"`
}

// PADScored is a presentation with its score, or why it has none. Face
// numbers the faces of one image when every face is scored.
type PADScored struct {
	PADPresentation
	Face  int     `json:"face,omitempty"`
	Score float64 `json:"score"`
	Err   string  `json:"error,omitempty"`
	// Ungated: the face failed the gate's quality checks (the daemon
	// would not have scored it); set only by PADConfig.ScoreFaces.
	Ungated bool `json:"ungated,omitempty"`
}

// PADFace is one face of an image scored by PADConfig.ScoreFaces.
type PADFace struct {
	Score float64
	// Ungated: the face failed the gate's quality checks.
	Ungated bool
}

// padSource is a group's source: its name up to "__" (video__crowd ->
// video, lfw__Ann -> lfw), or the name itself.
func padSource(group string) string {
	if i := strings.Index(group, "__"); i > 0 {
		return group[:i]
	}
	return group
}

var padImageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".pgm": true, ".ppm": true}

// ListPADFolder lists the images of a labelled PAD folder, sorted; a
// folder without attack/ lists bona fide presentations only.
func ListPADFolder(root string) ([]PADPresentation, error) {
	var out []PADPresentation
	add := func(dir, species string) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && padImageExt[strings.ToLower(filepath.Ext(p))] {
				group := ""
				if rel, err := filepath.Rel(dir, p); err == nil {
					if parts := strings.Split(filepath.ToSlash(rel), "/"); len(parts) > 1 {
						group = parts[0]
					}
				}
				out = append(out, PADPresentation{Path: p, Species: species, Group: group})
			}
			return nil
		})
	}
	if err := add(filepath.Join(root, PADBonaFideDir), ""); err != nil {
		return nil, fmt.Errorf("pad folder %s: %w", root, err)
	}
	ents, err := os.ReadDir(filepath.Join(root, PADAttackDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // no attack/: BPCER only
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

// PADGroup is the BPCER of one group of bona fide presentations.
type PADGroup struct {
	Name     string  `json:"name"`
	BonaFide int     `json:"bona_fide"`
	Rejected int     `json:"rejected"`
	BPCER    float64 `json:"bpcer"`
}

// padMaxGroupLines: WriteText lists the groups only up to this many (the
// JSON has them all).
const padMaxGroupLines = 40

// PADReport is the evaluation at one threshold and the DET curves. A
// folder of bona fide presentations alone gives the BPCER only (Species
// empty, APCER and ACER 0: not measured).
type PADReport struct {
	Threshold         float64    `json:"threshold"`
	BonaFide          int        `json:"bona_fide"`
	BonaFideNotScored int        `json:"bona_fide_not_scored"`
	BonaFideRejected  int        `json:"bona_fide_rejected"`
	BPCER             float64    `json:"bpcer"`
	Groups            []PADGroup `json:"bona_fide_groups,omitempty"`
	// Sources aggregate the groups by the prefix of their name before
	// "__" (video__crowd and video__hamilton: video); Gated is the
	// bona fide faces that passed the quality gate (with ScoreFaces).
	Sources []PADGroup               `json:"bona_fide_sources,omitempty"`
	Gated   *PADGroup                `json:"bona_fide_gated,omitempty"`
	Species []PADSpecies             `json:"species"`
	APCER   float64                  `json:"apcer"` // the worst species'
	ACER    float64                  `json:"acer"`
	DET     map[string][]PADDETPoint `json:"det"`
	// ImagesWithoutFace counts the images that added no presentation
	// (PADConfig.ScoreFaces found no face to score).
	ImagesWithoutFace int         `json:"images_without_face,omitempty"`
	Scores            []PADScored `json:"scores"`
}

// PADMetrics computes the report from scored presentations.
func PADMetrics(scores []PADScored, threshold float64) (*PADReport, error) {
	if math.IsNaN(threshold) {
		return nil, errors.New("pad metrics: threshold is NaN")
	}
	r := &PADReport{Threshold: threshold, Scores: scores, DET: map[string][]PADDETPoint{}}
	bySpecies := map[string]*PADSpecies{}
	byGroup := map[string]*PADGroup{}
	bySource := map[string]*PADGroup{}
	gated := &PADGroup{Name: "passed the quality gate"}
	anyUngated := false
	var bona []float64
	attacks := map[string][]float64{}
	for _, s := range scores {
		if s.Species == "" {
			r.BonaFide++
			g := byGroup[s.Group]
			if g == nil {
				g = &PADGroup{Name: s.Group}
				byGroup[s.Group] = g
			}
			src := bySource[padSource(s.Group)]
			if src == nil {
				src = &PADGroup{Name: padSource(s.Group)}
				bySource[src.Name] = src
			}
			g.BonaFide++
			src.BonaFide++
			rejected := s.Err != "" || s.Score < threshold
			if s.Err != "" {
				r.BonaFideNotScored++
			}
			if rejected {
				r.BonaFideRejected++
				g.Rejected++
				src.Rejected++
			}
			anyUngated = anyUngated || s.Ungated
			if !s.Ungated && s.Err == "" {
				gated.BonaFide++
				if rejected {
					gated.Rejected++
				}
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
	if r.BonaFide == 0 {
		return nil, fmt.Errorf("pad metrics: no bona fide presentation (%d attack species)", len(bySpecies))
	}
	r.BPCER = float64(r.BonaFideRejected) / float64(r.BonaFide)
	for _, g := range byGroup {
		g.BPCER = float64(g.Rejected) / float64(g.BonaFide)
		r.Groups = append(r.Groups, *g)
	}
	sort.Slice(r.Groups, func(i, j int) bool { return r.Groups[i].Name < r.Groups[j].Name })
	if len(r.Groups) == 1 && r.Groups[0].Name == "" {
		r.Groups = nil // no groups: the total says it all
	}
	if len(bySource) < len(byGroup) {
		for _, g := range bySource {
			g.BPCER = float64(g.Rejected) / float64(g.BonaFide)
			r.Sources = append(r.Sources, *g)
		}
		sort.Slice(r.Sources, func(i, j int) bool { return r.Sources[i].Name < r.Sources[j].Name })
	}
	if anyUngated && gated.BonaFide > 0 {
		gated.BPCER = float64(gated.Rejected) / float64(gated.BonaFide)
		r.Gated = gated
	}
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
	Score func(path string) (float64, error)
	// ScoreFaces, when set instead, scores every face of the image that
	// the caller counts (e.g. every face passing the gate's quality
	// checks): each is a presentation. An image with none adds none (it
	// is counted in PADReport.ImagesWithoutFace); an error is one
	// presentation not scored.
	ScoreFaces func(path string) ([]PADFace, error)
	Progress   io.Writer // nil: none
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
	if (cfg.Score == nil) == (cfg.ScoreFaces == nil) {
		return nil, errors.New("pad-eval: set one of Score and ScoreFaces")
	}
	scores := make([]PADScored, 0, len(list))
	empty := 0
	for _, p := range list {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case cfg.Score != nil:
			s := PADScored{PADPresentation: p}
			if v, err := cfg.Score(p.Path); err != nil {
				s.Err = err.Error()
			} else {
				s.Score = v
			}
			scores = append(scores, s)
		default:
			vs, err := cfg.ScoreFaces(p.Path)
			if err != nil {
				scores = append(scores, PADScored{PADPresentation: p, Err: err.Error()})
				break
			}
			if len(vs) == 0 {
				empty++
			}
			for i, v := range vs {
				scores = append(scores, PADScored{PADPresentation: p, Face: i, Score: v.Score, Ungated: v.Ungated})
			}
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	r, err := PADMetrics(scores, cfg.Threshold)
	if err != nil {
		return nil, err
	}
	r.ImagesWithoutFace = empty
	return r, nil
}

// WriteText prints the report in ISO/IEC 30107-3 terms.
func (r *PADReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "threshold %.4g (bona fide when p_real >= threshold)\n", r.Threshold)
	fmt.Fprintf(&b, "bona fide presentations: %d (%d not scored)  BPCER %.2f%% (%d rejected)\n", r.BonaFide, r.BonaFideNotScored, 100*r.BPCER, r.BonaFideRejected)
	if r.ImagesWithoutFace > 0 {
		fmt.Fprintf(&b, "images without a face to score: %d (not presentations)\n", r.ImagesWithoutFace)
	}
	if r.Gated != nil {
		fmt.Fprintf(&b, "  of which passed the quality gate: %d  BPCER %.2f%% (%d rejected)\n", r.Gated.BonaFide, 100*r.Gated.BPCER, r.Gated.Rejected)
	}
	for _, g := range r.Sources {
		fmt.Fprintf(&b, "  bona fide source %-27s %5d  BPCER %6.2f%% (%d rejected)\n", g.Name, g.BonaFide, 100*g.BPCER, g.Rejected)
	}
	for _, g := range r.Groups {
		if len(r.Groups) > padMaxGroupLines {
			break
		}
		name := g.Name
		if name == "" {
			name = "(top level)"
		}
		fmt.Fprintf(&b, "  bona fide group %-28s %5d  BPCER %6.2f%% (%d rejected)\n", name, g.BonaFide, 100*g.BPCER, g.Rejected)
	}
	for _, s := range r.Species {
		fmt.Fprintf(&b, "attack species %-12s presentations %d (%d not scored)  APCER %.2f%% (%d accepted)\n", s.Name, s.Presentations, s.NotScored, 100*s.APCER, s.Accepted)
	}
	if len(r.Species) == 0 {
		fmt.Fprintf(&b, "no attack presentations: APCER not measured\n")
	} else {
		fmt.Fprintf(&b, "APCER (worst species) %.2f%%  ACER %.2f%%\n", 100*r.APCER, 100*r.ACER)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDETSVG draws one DET curve per species: BPCER against APCER, both
// on log axes from 1e-4 to 1 (rates of 0 on the axis), with the
// report's operating point marked.
func (r *PADReport) WriteDETSVG(w io.Writer, title string) error {
	if len(r.Species) == 0 {
		return errors.New("DET plot: no attack presentations")
	}
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
