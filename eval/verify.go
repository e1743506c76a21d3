package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/facegate/facegate/infer/manifest"
)

// Embedding is what the face pipeline made of one image.
type Embedding struct {
	Vector []float32 // nil when Err is set
	Padded bool      // the face was found only after padding the image
	// Err is why the image gave no embedding: it could not be read, or
	// no face was found (then NoFace is true). Either way it counts as a
	// failure to acquire, never dropped.
	Err    error
	NoFace bool
}

// Embedder runs images through detect → align → embed. eval/pipeline
// implements it over infer's face pipeline; tests use fakes.
type Embedder interface {
	// Embed returns one Embedding per image (paths relative to root).
	// progress, when not nil, is called with the number of images done
	// since its last call. The error is for what stops the whole run.
	Embed(ctx context.Context, root string, images []string, progress func(n int)) (map[string]Embedding, error)
	// Manifest is the embedding model's manifest: name, version, metric
	// and calibrated thresholds.
	Manifest() *manifest.Manifest
	// Detector names the detection model.
	Detector() string
}

// ModelLabel is how reports name an embedding model: "NAME VERSION".
func ModelLabel(m *manifest.Manifest) string { return m.Name + " " + m.Version }

// VerifyConfig is one verification run: the images of a pairs file
// through an Embedder, scored and evaluated (docs/evaluation.md).
type VerifyConfig struct {
	PairsFile string // a<TAB>b<TAB>same, paths relative to Root
	Root      string
	Dataset   string // the report's data set name; default: the pairs file's name
	Folds     int    // 0: the file's LFW folds, else DefaultFolds
	Embedder  Embedder
	Progress  io.Writer // a progress bar here when it is a terminal; nil: none
}

// Verification is the outcome of a verification run, with what
// calibration and the scores file need.
type Verification struct {
	Report     *Report
	Pairs      []Pair
	Scores     Scores
	Images     []string
	Failed     []string             // images with no embedding
	Embeddings map[string][]float32 // the others
	Padded     int                  // faces found only after padding
	Elapsed    time.Duration        // embedding all images
	Detector   string               // the detection model's name
	Embedder   string               // the embedding model's name
	Model      string               // the embedding model's label, "NAME VERSION"
}

// Run embeds every image of the pairs once, scores the pairs with the
// model's metric and evaluates them.
func (c VerifyConfig) Run(ctx context.Context) (*Verification, error) {
	if c.PairsFile == "" || c.Root == "" || c.Embedder == nil {
		return nil, errors.New("verify: a pairs file, a root folder and an embedder are required")
	}
	f, err := os.Open(c.PairsFile)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	pairs, err := ParsePairs(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.PairsFile, err)
	}
	if c.Dataset == "" {
		c.Dataset = filepath.Base(c.PairsFile)
	}
	man := c.Embedder.Manifest()
	v := &Verification{Pairs: pairs, Images: Images(pairs), Embeddings: map[string][]float32{},
		Detector: c.Embedder.Detector(), Embedder: man.Name, Model: ModelLabel(man)}
	start := time.Now()
	res, err := embedAll(ctx, c.Embedder, c.Root, v.Images, c.Progress)
	if err != nil {
		return nil, err
	}
	v.Elapsed = time.Since(start)
	for _, im := range v.Images {
		r := res[im]
		if r.Err != nil {
			v.Failed = append(v.Failed, im)
			if !r.NoFace {
				slog.Warn("image failed", "image", im, "err", r.Err)
			}
			continue
		}
		if r.Padded {
			v.Padded++
		}
		v.Embeddings[im] = r.Vector
	}
	if v.Scores, _, err = ScoreEmbeddings(pairs, v.Embeddings, string(man.Metric)); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v.Report, err = Evaluate(pairs, v.Scores, Options{Model: v.Model, Dataset: c.Dataset, Date: time.Now().UTC(), Folds: c.Folds, FailedImages: v.Failed})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// embedAll runs Embed with a progress bar on w.
func embedAll(ctx context.Context, e Embedder, root string, images []string, w io.Writer) (map[string]Embedding, error) {
	var bar *Progress
	if w != nil {
		bar = NewProgress(w, "embed", len(images))
	}
	res, err := e.Embed(ctx, root, images, bar.Add)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	bar.Done()
	return res, nil
}

// WriteSummary writes one line: how many images, how fast, with which
// models, and how many faces were found only after padding.
func (v *Verification) WriteSummary(w io.Writer) error {
	n := max(len(v.Images), 1)
	_, err := fmt.Fprintf(w, "images: %d in %s (%.1f ms/image, detector %s, embedder %s); found only after padding: %d\n",
		len(v.Images), v.Elapsed.Round(time.Millisecond), float64(v.Elapsed.Milliseconds())/float64(n), v.Detector, v.Embedder, v.Padded)
	return err
}

// Outputs are the files a run writes; an empty path is skipped.
type Outputs struct {
	JSON   string // the report as JSON
	Plot   string // ROC and DET curves as SVG
	Scores string // every pair's score (verification runs only)
}

// Save writes the report's JSON and plot.
func (r *Report) Save(o Outputs) error {
	if o.JSON != "" {
		if err := writeFile(o.JSON, r.WriteJSON); err != nil {
			return err
		}
	}
	if o.Plot != "" {
		return writeFile(o.Plot, r.WriteROCSVG)
	}
	return nil
}

// Save writes the report's JSON and plot, and the scores file.
func (v *Verification) Save(o Outputs) error {
	if err := v.Report.Save(o); err != nil {
		return err
	}
	if o.Scores != "" {
		return writeFile(o.Scores, func(w io.Writer) error { return WriteScores(w, v.Pairs, v.Scores, v.Failed) })
	}
	return nil
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
