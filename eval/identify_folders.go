package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// IdentifyConfig is one one-shot identification run over identity
// folders: Root/<identity>/<image>, one folder per person.
type IdentifyConfig struct {
	Root     string
	Source   string // only identity folders whose name starts with this, e.g. "celeb5__"
	Ks       []int  // enrolment sizes; nil means 1, 3 and 5
	Embedder Embedder
	Progress io.Writer // a progress bar here when it is a terminal; nil: none
}

// IdentifyReport is the outcome of an identification run.
type IdentifyReport struct {
	Model          string                 `json:"model"`
	Root           string                 `json:"root"`
	Source         string                 `json:"source"`
	Identification []IdentificationResult `json:"identification"`
}

// Run embeds every image of the identity folders and runs Identify with
// the model's metric; open-set figures use the model's calibrated
// threshold for FMR 1e-3 when it has one.
func (c IdentifyConfig) Run(ctx context.Context) (*IdentifyReport, error) {
	if c.Root == "" || c.Embedder == nil {
		return nil, errors.New("identify: a root folder and an embedder are required")
	}
	for _, k := range c.Ks {
		if k < 1 {
			return nil, fmt.Errorf("identify: enrolment size %d: want positive integers", k)
		}
	}
	dirs, err := os.ReadDir(c.Root)
	if err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	var samples []Sample
	var names []string
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), c.Source) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(c.Root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("identify: %w", err)
		}
		for _, f := range files {
			if f.Type().IsRegular() {
				name := filepath.Join(d.Name(), f.Name())
				samples = append(samples, Sample{Identity: d.Name(), Name: name})
				names = append(names, name)
			}
		}
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("identify: no identity folders under %s starting with %q", c.Root, c.Source)
	}
	res, err := embedAll(ctx, c.Embedder, c.Root, names, c.Progress)
	if err != nil {
		return nil, err
	}
	emb := make([][]float32, len(samples))
	for i := range samples {
		if r := res[samples[i].Name]; r.Err == nil {
			emb[i] = r.Vector
			samples[i].Acquired = true
		}
	}
	man := c.Embedder.Manifest()
	kind := string(man.Metric)
	scorer, err := TemplateScorer(emb, kind)
	if err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	hi, _ := HigherIsMatch(kind)
	opts := IdentifyOptions{Ks: c.Ks, HigherIsMatch: hi}
	if t, ok := man.ThresholdFor(1e-3, kind); ok {
		v := t.Value
		opts.Threshold = &v
	}
	results, err := Identify(samples, scorer, opts)
	if err != nil {
		return nil, err
	}
	return &IdentifyReport{Model: ModelLabel(man), Root: c.Root, Source: c.Source, Identification: results}, nil
}

// WriteTable writes the report as a text table, one row per K.
func (r *IdentifyReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "one-shot identification, %s, identities %q under %s\n", r.Model, r.Source+"*", r.Root)
	fmt.Fprintln(w, "K  enrolled  probes  FTA  rank-1    unknown probes  FPIR     FNIR     threshold")
	for _, x := range r.Identification {
		fpir, fnir, th := "-", "-", "-"
		if x.FPIR != nil {
			fpir = fmt.Sprintf("%.2f%%", 100**x.FPIR)
		}
		if x.FNIR != nil {
			fnir = fmt.Sprintf("%.2f%%", 100**x.FNIR)
		}
		if x.Threshold != nil {
			th = fmt.Sprintf("%.4f (FMR 1e-3)", *x.Threshold)
		}
		if _, err := fmt.Fprintf(w, "%-2d %-9d %-7d %-4d %-9s %-15d %-8s %-8s %s\n", x.K, x.Identities, x.Probes, x.ProbeFTA,
			fmt.Sprintf("%.2f%%", 100*x.Rank1), x.UnknownProbes, fpir, fnir, th); err != nil {
			return err
		}
	}
	return nil
}

// Save writes the report as JSON to path.
func (r *IdentifyReport) Save(path string) error {
	return writeFile(path, func(w io.Writer) error { return writeJSON(w, r) })
}
