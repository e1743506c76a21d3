package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Default target rates of a report.
var (
	DefaultFARTargets = []float64{1e-2, 1e-3}
	DefaultFMRTargets = []float64{1e-3}
)

// Options configures Evaluate.
type Options struct {
	Model   string // label for tables, plots and JSON, e.g. "vggface-resnet50 1.0.0"
	Dataset string // what the pairs are, e.g. "pairs-lfw-folds1-5.tsv"
	Date    time.Time
	// Folds is the number of folds; 0 detects LFW blocks or uses
	// DefaultFolds (see Folds).
	Folds int
	// FailedImages are the images in which no face was found; every pair
	// using one must have Acquired false.
	FailedImages []string
	// Target rates; nil means DefaultFARTargets, DefaultFMRTargets and
	// CalibrationTargets.
	FARTargets, FMRTargets, CalibrationTargets []float64
}

// Report holds every verification figure of one evaluation, with the
// counts behind it.
type Report struct {
	Model         string `json:"model,omitempty"`
	Dataset       string `json:"dataset"`
	Date          string `json:"date"`
	ScoreKind     string `json:"score_kind"`
	HigherIsMatch bool   `json:"higher_is_match"`

	Pairs     int `json:"pairs"`
	Same      int `json:"same"`
	Different int `json:"different"`

	// Failure to acquire: images with no face, and pairs with at least
	// one such image (or otherwise not compared). They stay in every
	// system-level denominator.
	Images            int      `json:"images"`
	ImagesFTA         int      `json:"images_fta"`
	ImageFTARate      float64  `json:"image_fta_rate"`
	FailedImages      []string `json:"failed_images,omitempty"`
	PairsFTA          int      `json:"pairs_fta"`
	SamePairsFTA      int      `json:"same_pairs_fta"`
	DifferentPairsFTA int      `json:"different_pairs_fta"`
	PairFTARate       float64  `json:"pair_fta_rate"`

	FoldScheme string   `json:"fold_scheme"`
	Accuracy   Accuracy `json:"accuracy"`
	AUC        float64  `json:"auc"`
	EER        float64  `json:"eer"`

	TARAtFAR    []OperatingPoint `json:"tar_at_far"`  // system level
	FNMRAtFMR   []OperatingPoint `json:"fnmr_at_fmr"` // algorithm level
	Calibration []OperatingPoint `json:"calibration"` // algorithm level

	Identification []IdentificationResult `json:"identification,omitempty"`

	ROC []ROCPoint `json:"roc"`
}

// Evaluate computes a verification report for pairs and their scores
// (s.Results[i] belongs to pairs[i]).
func Evaluate(pairs []Pair, s Scores, opts Options) (*Report, error) {
	if len(pairs) != len(s.Results) {
		return nil, fmt.Errorf("evaluate: %d pairs but %d results", len(pairs), len(s.Results))
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	images := Images(pairs)
	inPairs := make(map[string]bool, len(images))
	for _, im := range images {
		inPairs[im] = true
	}
	failed := map[string]bool{}
	for _, im := range opts.FailedImages {
		if !inPairs[im] {
			return nil, fmt.Errorf("evaluate: failed image %q is in no pair", im)
		}
		failed[im] = true
	}
	date := opts.Date
	if date.IsZero() {
		date = time.Now()
	}
	r := &Report{
		Model:         opts.Model,
		Dataset:       opts.Dataset,
		Date:          date.UTC().Format(time.DateOnly),
		ScoreKind:     s.Kind,
		HigherIsMatch: s.HigherIsMatch,
		Pairs:         len(pairs),
		Images:        len(images),
		ImagesFTA:     len(failed),
	}
	for _, im := range images {
		if failed[im] {
			r.FailedImages = append(r.FailedImages, im)
		}
	}
	for i, p := range pairs {
		res := s.Results[i]
		if res.Same != p.Same {
			return nil, fmt.Errorf("evaluate: pair %d (line %d): result says same=%v, pairs file says %v", i, p.Line, res.Same, p.Same)
		}
		if res.Acquired && (failed[p.A] || failed[p.B]) {
			return nil, fmt.Errorf("evaluate: pair %d (line %d) is marked acquired but uses an image with no face", i, p.Line)
		}
		if p.Same {
			r.Same++
		} else {
			r.Different++
		}
		if !res.Acquired {
			r.PairsFTA++
			if p.Same {
				r.SamePairsFTA++
			} else {
				r.DifferentPairsFTA++
			}
		}
	}
	r.ImageFTARate = float64(r.ImagesFTA) / float64(r.Images)
	r.PairFTARate = float64(r.PairsFTA) / float64(r.Pairs)

	plan, err := Folds(pairs, opts.Folds)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	r.FoldScheme = plan.Scheme
	if r.Accuracy, err = CrossValidate(s, plan); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	if r.ROC, err = ROC(s); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	r.AUC = AUC(r.ROC)
	r.EER = EER(r.ROC)
	for _, t := range orDefault(opts.FARTargets, DefaultFARTargets) {
		o, err := AtFAR(s, t)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		r.TARAtFAR = append(r.TARAtFAR, o)
	}
	for _, t := range orDefault(opts.FMRTargets, DefaultFMRTargets) {
		o, err := AtFMR(s, t)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		r.FNMRAtFMR = append(r.FNMRAtFMR, o)
	}
	if r.Calibration, err = Calibrate(s, orDefault(opts.CalibrationTargets, CalibrationTargets)); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return r, nil
}

func orDefault(v, def []float64) []float64 {
	if v == nil {
		return def
	}
	return v
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report JSON: %w", err)
	}
	return nil
}

// WriteTable writes the report as a human-readable table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	dir := "higher = match"
	if !r.HigherIsMatch {
		dir = "lower = match"
	}
	model := r.Model
	if model == "" {
		model = "-"
	}
	p("model\t%s\n", model)
	p("data\t%s (%s)\n", r.Dataset, r.Date)
	p("score\t%s (%s)\n", r.ScoreKind, dir)
	p("pairs\t%d (%d same, %d different), %d images\n", r.Pairs, r.Same, r.Different, r.Images)
	p("failure to acquire\timages %d/%d (%s), pairs %d/%d (%s: %d same, %d different)\n",
		r.ImagesFTA, r.Images, pct(r.ImageFTARate), r.PairsFTA, r.Pairs, pct(r.PairFTARate), r.SamePairsFTA, r.DifferentPairsFTA)
	a := r.Accuracy
	p("accuracy\t%s ± %s (sample std; standard error %s; population std %s; %d folds, %s)\n",
		pct(a.Mean), pct(a.Std), pct(a.StdErr), pct(a.StdPop), len(a.Folds), r.FoldScheme)
	p("ROC AUC\t%.4f\n", r.AUC)
	p("EER\t%s\n", pct(r.EER))
	for _, o := range r.TARAtFAR {
		p("TAR @ FAR=%g\t%s\n", o.Target, opString(o, "TAR"))
	}
	for _, o := range r.FNMRAtFMR {
		p("FNMR @ FMR=%g\t%s\n", o.Target, opString(o, "FNMR"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report table: %w", err)
	}

	fmt.Fprintln(w, "\nfolds (threshold chosen on the other folds)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	p("fold\tpairs\tsame\tdifferent\tFTA\tthreshold\ttrain acc\ttest acc\t\n")
	for _, f := range a.Folds {
		p("%d\t%d\t%d\t%d\t%d\t%.6g\t%s\t%s\t\n", f.Fold, f.Pairs, f.Same, f.Different, f.FTA, f.Threshold, pct(f.TrainAccuracy), pct(f.Accuracy))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report table: %w", err)
	}

	if len(r.Calibration) > 0 {
		fmt.Fprintln(w, "\ncalibration (acquired pairs only)")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		p("target FMR\tthreshold\tFMR\tFNMR\timpostors\t\n")
		for _, o := range r.Calibration {
			if !o.Enough {
				p("%g\t-\t-\t-\t%d\t  not enough data: need %d impostor pairs\n", o.Target, o.Impostors, o.Need)
				continue
			}
			p("%g\t%.6g\t%.2e\t%s\t%d\t\n", o.Target, *o.Threshold, *o.Achieved, pct(*o.FNMR), o.Impostors)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write report table: %w", err)
		}
	}

	if len(r.Identification) > 0 {
		fmt.Fprintln(w, "\nidentification (enrol first K images, probe the rest)")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		p("K\tidentities\tprobes\trank-1\tunknown probes\tFPIR\tFNIR\t\n")
		for _, id := range r.Identification {
			if id.Probes == 0 {
				p("%d\t%d\t-\t-\t-\t-\t-\t  %s\n", id.K, id.Identities, id.Note)
				continue
			}
			p("%d\t%d\t%d\t%s\t%d\t%s\t%s\t  %s\n", id.K, id.Identities, id.Probes, pct(id.Rank1), id.UnknownProbes, optPct(id.FPIR), optPct(id.FNIR), id.Note)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write report table: %w", err)
		}
	}
	if len(r.FailedImages) > 0 {
		fmt.Fprintln(w, "\nno face found in:")
		for _, im := range r.FailedImages {
			fmt.Fprintf(w, "  %s\n", im)
		}
	}
	return nil
}

func opString(o OperatingPoint, rate string) string {
	if !o.Enough {
		return o.Note
	}
	v := *o.TAR
	if rate == "FNMR" {
		v = *o.FNMR
	}
	return fmt.Sprintf("%s (threshold %.6g; %d/%d impostors accepted, %s level)", pct(v), *o.Threshold, o.FalseMatches, o.Impostors, o.Level)
}

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

func optPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return pct(*v)
}

// String is a one-line summary.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: accuracy %s ± %s (s.e.), AUC %.4f, EER %s, FTA %s", r.Dataset, pct(r.Accuracy.Mean), pct(r.Accuracy.StdErr), r.AUC, pct(r.EER), pct(r.PairFTARate))
	return b.String()
}
