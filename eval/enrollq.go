package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/facegate/facegate/infer/manifest"
)

// The enrollment-quality study: is a photo good enough to enrol from,
// judged by what matters, how well a template built from it matches the
// person's other photos. One photo per person is enrolled (as an HR system
// would hold); the rest of the person's photos are the probes. Degraded
// copies (downscaled, blurred) fill the low end of each measure, and
// composed photos (a bystander pasted into the background, two people side
// by side) check subject selection with known labels.

// EnrollInput is one enrollment photo to assess: a file (relative to the
// root), optionally degraded, or a composition of two files.
type EnrollInput struct {
	Path  string  `json:"path"`
	Scale float64 `json:"scale,omitempty"` // downscale factor in (0, 1); 0: none
	Blur  float64 `json:"blur,omitempty"`  // Gaussian sigma in pixels after scaling; 0: none
	// Other is a second person's photo composed with Path: as a bystander
	// (pasted at OtherScale in the top-left corner behind the subject,
	// who stays centred) or, with Couple, side by side at the same size.
	Other      string  `json:"other,omitempty"`
	OtherScale float64 `json:"other_scale,omitempty"`
	Couple     bool    `json:"couple,omitempty"`
}

// EnrollMeasures are the quality measures of the selected face.
type EnrollMeasures struct {
	InterOcular float64 `json:"iod"`
	Sharpness   float64 `json:"sharpness"`
	Yaw         float64 `json:"yaw"`
	Pitch       float64 `json:"pitch"`
	Roll        float64 `json:"roll"`
	Luma        float64 `json:"luma"`
	Clipped     float64 `json:"clipped"`
	DetScore    float64 `json:"det_score"`
}

// EnrollPhoto is what the assessor found in one EnrollInput.
type EnrollPhoto struct {
	Err       error `json:"-"`
	Faces     int   `json:"faces"`
	Ambiguous bool  `json:"ambiguous,omitempty"`
	// OffCentre: refused because the face found sits so far to one side
	// that an unseen face could be as prominent (infer.ErrOffCentre).
	OffCentre bool           `json:"off_centre,omitempty"`
	Measures  EnrollMeasures `json:"measures"`
	// Verdict is accepted, borderline or refused (the enrollment limits
	// the gate applies); Reasons say why when not accepted.
	Verdict string   `json:"verdict"`
	Score   float64  `json:"score"`
	Reasons []string `json:"reasons,omitempty"`
	// Region is, for compositions, where the chosen face is: 0 the
	// subject (Path), 1 the other person, -1 neither or none chosen.
	Region int `json:"region"`
	// Vector is the selected face's embedding (nil when none was chosen);
	// Others are the other faces' embeddings.
	Vector []float32   `json:"-"`
	Others [][]float32 `json:"-"`
}

// EnrollAssessor runs enrollment photos through the gate's enrollment
// path: detect, select the subject, measure, judge, embed. eval/pipeline
// implements it over infer.
type EnrollAssessor interface {
	AssessEnrollment(ctx context.Context, root string, in []EnrollInput, progress func(n int)) ([]EnrollPhoto, error)
}

// EnrollStudyConfig is one enrollment-quality study.
type EnrollStudyConfig struct {
	Root      string // faces/ of ../shared/data
	Scenes    string // scenes/ of ../shared/data (optional): multi-face photos without labels
	Source    string // identity folders starting with this (default "lfw__")
	MaxPeople int    // 0: all people with at least two photos
	FMR       float64
	// DegradeEvery adds degraded copies of every n-th person's photo
	// (0: none).
	DegradeEvery int
	// Compose adds this many bystander and as many couple compositions.
	Compose  int
	Assessor EnrollAssessor
	Embedder Embedder
	Progress io.Writer
}

// EnrollStudy is the study's outcome.
type EnrollStudy struct {
	Model     string  `json:"model"`
	Threshold float64 `json:"threshold"`
	Metric    string  `json:"metric"`
	FMR       float64 `json:"fmr"`
	People    int     `json:"people"`
	Probes    int     `json:"probes"`
	// Originals: one ordinary photo per person.
	Originals EnrollOutcome `json:"originals"`
	// Degraded copies of the same photos.
	Degraded EnrollOutcome `json:"degraded"`
	// NaturalMultiFace: originals where the detector found several
	// faces; BystanderChosen counts those whose chosen face does not match
	// the person while another face in the photo does.
	NaturalMultiFace int `json:"natural_multi_face"`
	BystanderChosen  int `json:"bystander_chosen"`
	// Compositions with known labels.
	Bystander CompositionOutcome `json:"bystander"`
	Couple    CompositionOutcome `json:"couple"`
	Scenes    []SceneOutcome     `json:"scenes,omitempty"`
	// Bins: genuine match rate by measure (originals and degraded).
	Bins  map[string][]MeasureBin `json:"bins"`
	Items []EnrollItem            `json:"items"`
}

// EnrollOutcome counts verdicts and the genuine match rate of the
// templates accepted, borderline and refused (refused ones are embedded
// anyway when a face was found, to show what refusing them saved).
type EnrollOutcome struct {
	N          int     `json:"n"`
	NoFace     int     `json:"no_face"`
	Ambiguous  int     `json:"ambiguous"`
	OffCentre  int     `json:"off_centre"`
	Accepted   int     `json:"accepted"`
	Borderline int     `json:"borderline"`
	Refused    int     `json:"refused_quality"`
	FTE        float64 `json:"fte"`
	// GMR is the mean over templates of the share of the person's other
	// photos matched at the threshold.
	GMRAccepted   float64        `json:"gmr_accepted"`
	GMRBorderline float64        `json:"gmr_borderline"`
	GMRRefused    float64        `json:"gmr_refused"`
	Reasons       map[string]int `json:"reasons"`
}

// CompositionOutcome counts how subject selection did on composed photos.
type CompositionOutcome struct {
	N         int `json:"n"`
	Subject   int `json:"subject"`    // the labelled subject chosen
	Other     int `json:"other"`      // the other person chosen: a wrong template
	Ambiguous int `json:"ambiguous"`  // refused as ambiguous
	OffCentre int `json:"off_centre"` // refused: the face found is off centre
	// OffCentreOther: off-centre refusals whose face was the other
	// person's (a wrong template the guard stopped).
	OffCentreOther int `json:"off_centre_other"`
	NoFace         int `json:"no_face"`
}

// SceneOutcome is one unlabelled multi-face photo.
type SceneOutcome struct {
	Path      string `json:"path"`
	Faces     int    `json:"faces"`
	Ambiguous bool   `json:"ambiguous"`
	OffCentre bool   `json:"off_centre,omitempty"`
	Verdict   string `json:"verdict"`
}

// MeasureBin is the genuine match rate of the templates whose measure lies
// in [Lo, Hi].
type MeasureBin struct {
	Lo  float64 `json:"lo"`
	Hi  float64 `json:"hi"`
	N   int     `json:"n"`
	GMR float64 `json:"gmr"`
}

// EnrollItem is one assessed photo with its genuine match rate.
type EnrollItem struct {
	Person string      `json:"person"`
	Input  EnrollInput `json:"input"`
	Photo  EnrollPhoto `json:"photo"`
	GMR    float64     `json:"gmr"` // NaN-free: -1 when no template
}

// Run runs the study.
func (c EnrollStudyConfig) Run(ctx context.Context) (*EnrollStudy, error) {
	if c.Root == "" || c.Assessor == nil || c.Embedder == nil {
		return nil, errors.New("enrollment study: a root folder, an assessor and an embedder are required")
	}
	if c.Source == "" {
		c.Source = "lfw__"
	}
	if c.FMR == 0 {
		c.FMR = 1e-3
	}
	man := c.Embedder.Manifest()
	th, ok := man.ThresholdFor(c.FMR, string(man.Metric))
	if !ok {
		return nil, fmt.Errorf("enrollment study: %s has no %s threshold for FMR %g", man.Name, man.Metric, c.FMR)
	}
	people, err := peopleWithPhotos(c.Root, c.Source, 2)
	if err != nil {
		return nil, err
	}
	if c.MaxPeople > 0 && len(people) > c.MaxPeople {
		people = people[:c.MaxPeople]
	}
	if len(people) < 2 {
		return nil, fmt.Errorf("enrollment study: %d people with two photos or more under %s", len(people), c.Root)
	}
	st := &EnrollStudy{Model: ModelLabel(man), Threshold: th.Value, Metric: string(man.Metric), FMR: c.FMR, People: len(people), Bins: map[string][]MeasureBin{}}

	var probes []string
	for _, p := range people {
		probes = append(probes, p.photos[1:]...)
	}
	st.Probes = len(probes)
	pe, err := embedAll(ctx, c.Embedder, c.Root, probes, c.Progress)
	if err != nil {
		return nil, err
	}

	type job struct {
		person int
		kind   string // original, degraded, bystander, couple
		in     EnrollInput
	}
	var jobs []job
	for i, p := range people {
		jobs = append(jobs, job{i, "original", EnrollInput{Path: p.photos[0]}})
	}
	if c.DegradeEvery > 0 {
		for i := 0; i < len(people); i += c.DegradeEvery {
			f := people[i].photos[0]
			for _, s := range []float64{0.5, 0.35, 0.25, 0.18} {
				jobs = append(jobs, job{i, "degraded", EnrollInput{Path: f, Scale: s}})
			}
			for _, b := range []float64{1.5, 2.5, 4} {
				jobs = append(jobs, job{i, "degraded", EnrollInput{Path: f, Blur: b}})
			}
		}
	}
	for i := 0; i < c.Compose && i+1 < len(people); i++ {
		a, b := people[i].photos[0], people[(i+len(people)/2)%len(people)].photos[0]
		jobs = append(jobs, job{i, "bystander", EnrollInput{Path: a, Other: b, OtherScale: 0.6}})
		jobs = append(jobs, job{i, "couple", EnrollInput{Path: a, Other: b, Couple: true}})
	}
	ins := make([]EnrollInput, len(jobs))
	for i, j := range jobs {
		ins[i] = j.in
	}
	var bar *Progress
	if c.Progress != nil {
		bar = NewProgress(c.Progress, "enrol", len(ins))
	}
	photos, err := c.Assessor.AssessEnrollment(ctx, c.Root, ins, bar.Add)
	if err != nil {
		return nil, err
	}
	bar.Done()
	if len(photos) != len(ins) {
		return nil, fmt.Errorf("enrollment study: %d results for %d photos", len(photos), len(ins))
	}

	distance := man.Metric == manifest.MetricEuclidean
	gmr := func(v []float32, person int) float64 {
		if v == nil {
			return -1
		}
		n, m := 0, 0
		for _, p := range people[person].photos[1:] {
			e := pe[p]
			if e.Vector == nil {
				continue // a probe without a face counts for nobody
			}
			n++
			if matches(v, e.Vector, distance, th.Value) {
				m++
			}
		}
		if n == 0 {
			return -1
		}
		return float64(m) / float64(n)
	}
	st.Originals.Reasons, st.Degraded.Reasons = map[string]int{}, map[string]int{}
	var measured []EnrollItem
	for i, j := range jobs {
		ph := photos[i]
		it := EnrollItem{Person: people[j.person].name, Input: j.in, Photo: ph, GMR: gmr(ph.Vector, j.person)}
		st.Items = append(st.Items, it)
		switch j.kind {
		case "original", "degraded":
			o := &st.Originals
			if j.kind == "degraded" {
				o = &st.Degraded
			}
			o.add(ph, it.GMR)
			if ph.Vector != nil && it.GMR >= 0 {
				measured = append(measured, it)
			}
			if j.kind == "original" && ph.Faces > 1 {
				st.NaturalMultiFace++
				if ph.Vector != nil && it.GMR < 0.5 {
					for _, o := range ph.Others {
						if gmr(o, j.person) >= 0.5 {
							st.BystanderChosen++
							break
						}
					}
				}
			}
		case "bystander":
			st.Bystander.add(ph)
		case "couple":
			st.Couple.add(ph)
		}
	}
	st.Originals.finish()
	st.Degraded.finish()
	st.Bins = binMeasures(measured, 10)

	if c.Scenes != "" {
		ents, err := os.ReadDir(c.Scenes)
		if err != nil {
			return nil, fmt.Errorf("enrollment study: scenes: %w", err)
		}
		var sin []EnrollInput
		for _, e := range ents {
			if !e.IsDir() {
				sin = append(sin, EnrollInput{Path: e.Name()})
			}
		}
		sp, err := c.Assessor.AssessEnrollment(ctx, c.Scenes, sin, nil)
		if err != nil {
			return nil, err
		}
		for i, p := range sp {
			st.Scenes = append(st.Scenes, SceneOutcome{Path: sin[i].Path, Faces: p.Faces, Ambiguous: p.Ambiguous, OffCentre: p.OffCentre, Verdict: p.Verdict})
		}
	}
	return st, nil
}

func matches(a, b []float32, distance bool, th float64) bool {
	var dot float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
	}
	if distance {
		return math.Sqrt(math.Max(0, 2-2*dot)) <= th
	}
	return dot >= th
}

func (o *EnrollOutcome) add(p EnrollPhoto, gmr float64) {
	o.N++
	switch {
	case p.Ambiguous:
		o.Ambiguous++
	case p.OffCentre:
		o.OffCentre++
	case p.Faces == 0 || p.Err != nil:
		o.NoFace++
	}
	if gmr < 0 {
		gmr = 0
	}
	switch p.Verdict {
	case "accepted":
		o.Accepted++
		o.GMRAccepted += gmr
	case "borderline":
		o.Borderline++
		o.GMRBorderline += gmr
	case "refused":
		if !p.Ambiguous && !p.OffCentre && p.Faces > 0 {
			o.Refused++
			o.GMRRefused += gmr
		}
	}
	for _, r := range p.Reasons {
		o.Reasons[reasonKey(r)]++
	}
}

// reasonKey is a reason without its numbers, for counting.
func reasonKey(r string) string {
	if i := strings.IndexAny(r, "(0123456789"); i > 0 {
		return strings.TrimSpace(r[:i])
	}
	return r
}

func (o *EnrollOutcome) finish() {
	div := func(s float64, n int) float64 {
		if n == 0 {
			return 0
		}
		return s / float64(n)
	}
	o.GMRAccepted = div(o.GMRAccepted, o.Accepted)
	o.GMRBorderline = div(o.GMRBorderline, o.Borderline)
	o.GMRRefused = div(o.GMRRefused, o.Refused)
	o.FTE = div(float64(o.N-o.Accepted-o.Borderline), o.N)
}

func (c *CompositionOutcome) add(p EnrollPhoto) {
	c.N++
	switch {
	case p.Ambiguous:
		c.Ambiguous++
	case p.OffCentre:
		c.OffCentre++
		if p.Region == 1 {
			c.OffCentreOther++
		}
	case p.Vector == nil && p.Faces == 0:
		c.NoFace++
	case p.Region == 0:
		c.Subject++
	case p.Region == 1:
		c.Other++
	}
}

// binMeasures splits the items by each measure into n bins of equal
// count and gives each bin's mean genuine match rate.
func binMeasures(items []EnrollItem, n int) map[string][]MeasureBin {
	out := map[string][]MeasureBin{}
	for _, m := range []struct {
		name string
		get  func(EnrollMeasures) float64
	}{
		{"iod", func(m EnrollMeasures) float64 { return m.InterOcular }},
		{"sharpness", func(m EnrollMeasures) float64 { return m.Sharpness }},
		{"abs_yaw", func(m EnrollMeasures) float64 { return math.Abs(m.Yaw) }},
		{"abs_pitch", func(m EnrollMeasures) float64 { return math.Abs(m.Pitch) }},
		{"abs_roll", func(m EnrollMeasures) float64 { return math.Abs(m.Roll) }},
		{"luma", func(m EnrollMeasures) float64 { return m.Luma }},
		{"det_score", func(m EnrollMeasures) float64 { return m.DetScore }},
	} {
		s := append([]EnrollItem(nil), items...)
		sort.SliceStable(s, func(i, j int) bool { return m.get(s[i].Photo.Measures) < m.get(s[j].Photo.Measures) })
		for b := 0; b < n && len(s) > 0; b++ {
			lo, hi := b*len(s)/n, (b+1)*len(s)/n
			if hi <= lo {
				continue
			}
			bin := MeasureBin{Lo: m.get(s[lo].Photo.Measures), Hi: m.get(s[hi-1].Photo.Measures), N: hi - lo}
			for _, it := range s[lo:hi] {
				bin.GMR += it.GMR
			}
			bin.GMR /= float64(bin.N)
			out[m.name] = append(out[m.name], bin)
		}
	}
	return out
}

type personPhotos struct {
	name   string
	photos []string // relative to the root, sorted
}

func peopleWithPhotos(root, prefix string, min int) ([]personPhotos, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("enrollment study: %w", err)
	}
	var out []personPhotos
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		fs, err := os.ReadDir(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("enrollment study: %w", err)
		}
		p := personPhotos{name: e.Name()}
		for _, f := range fs {
			if !f.IsDir() {
				p.photos = append(p.photos, e.Name()+"/"+f.Name())
			}
		}
		if len(p.photos) >= min {
			sort.Strings(p.photos)
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// WriteTable writes the study as text.
func (s *EnrollStudy) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "enrollment study: %s, %s threshold %.4f (FMR %g); %d people, one enrollment photo each, %d other photos as probes\n",
		s.Model, s.Metric, s.Threshold, s.FMR, s.People, s.Probes)
	for _, o := range []struct {
		name string
		o    EnrollOutcome
	}{{"ordinary photos", s.Originals}, {"degraded copies", s.Degraded}} {
		if o.o.N == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d; accepted %d, borderline %d, refused: no face %d, ambiguous %d, off centre %d, quality %d; FTE %.1f %%\n",
			o.name, o.o.N, o.o.Accepted, o.o.Borderline, o.o.NoFace, o.o.Ambiguous, o.o.OffCentre, o.o.Refused, 100*o.o.FTE)
		fmt.Fprintf(&b, "  genuine match rate of the templates: accepted %.1f %%, borderline %.1f %%, refused %.1f %%\n",
			100*o.o.GMRAccepted, 100*o.o.GMRBorderline, 100*o.o.GMRRefused)
		keys := make([]string, 0, len(o.o.Reasons))
		for k := range o.o.Reasons {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "  reason %q: %d\n", k, o.o.Reasons[k])
		}
	}
	fmt.Fprintf(&b, "ordinary photos with several faces: %d; bystander's face chosen: %d\n", s.NaturalMultiFace, s.BystanderChosen)
	for _, c := range []struct {
		name string
		c    CompositionOutcome
	}{{"composed, bystander behind the subject", s.Bystander}, {"composed, two people side by side", s.Couple}} {
		fmt.Fprintf(&b, "%s: %d; subject chosen %d, other chosen %d, ambiguous %d, off centre %d (the other's face %d), no face %d\n",
			c.name, c.c.N, c.c.Subject, c.c.Other, c.c.Ambiguous, c.c.OffCentre, c.c.OffCentreOther, c.c.NoFace)
	}
	for _, sc := range s.Scenes {
		fmt.Fprintf(&b, "scene %s: %d faces, ambiguous %v, off centre %v, verdict %s\n", sc.Path, sc.Faces, sc.Ambiguous, sc.OffCentre, sc.Verdict)
	}
	names := make([]string, 0, len(s.Bins))
	for k := range s.Bins {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "genuine match rate by %s:", k)
		for _, bin := range s.Bins[k] {
			fmt.Fprintf(&b, " [%.3g..%.3g] %.2f;", bin.Lo, bin.Hi, bin.GMR)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Save writes the study as JSON.
func (s *EnrollStudy) Save(path string) error {
	return writeFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(s)
	})
}
