package daemon

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// Tower is one embedder of the live pipeline (FACEGATE_EMBEDDERS): it
// embeds every good face from its own aligned chip, the gallery keeps its
// templates apart, and its score is one input of the fused decision.
type Tower struct {
	Emb    *infer.Embedder
	Store  store.Model   // the tag of its templates in the gallery
	Scorer enroll.Scorer // raw scores against its templates
	// Norm is its z-normalisation from the decision calibration (Name is
	// the calibration's short name, e.g. "dlib").
	Norm decision.Tower
}

// Name is the tower's model name, e.g. dlib-resnet-v1.
func (t *Tower) Name() string { return t.Store.Name }

// Raw is the tower's raw score in the calibration's units (a distance for
// a euclidean tower, a cosine similarity otherwise).
func (t *Tower) Raw(s enroll.Score) float64 {
	if t.Norm.Metric == decision.Euclidean {
		return s.Distance
	}
	return s.Similarity
}

// TowerEmbeddings holds one face's embedding from each tower, in the
// towers' order; an entry is nil where a tower has none (a template
// enrolled before that tower was added).
type TowerEmbeddings [][]float32

// towerKey is the calibration key of the models named (FACEGATE_EMBEDDERS
// order), e.g. "dlib+sface", or an error naming a model the calibration
// does not know.
func towerKey(cal *decision.Calibration, models []string) (string, error) {
	var names []string
	for _, m := range models {
		t, ok := calTower(cal, m)
		if !ok {
			var have []string
			for _, t := range cal.Towers {
				have = append(have, t.Model)
			}
			return "", fmt.Errorf("%w: %s is not calibrated (calibrated: %s)", decision.ErrUnknownTowers, m, strings.Join(have, ", "))
		}
		names = append(names, t.Name)
	}
	key := cal.Key(names...)
	if _, err := cal.Scorer(key); err != nil {
		return "", err
	}
	return key, nil
}

func calTower(cal *decision.Calibration, model string) (decision.Tower, bool) {
	for _, t := range cal.Towers {
		if t.Model == model {
			return t, true
		}
	}
	return decision.Tower{}, false
}

// ErrFlipMismatch: FACEGATE_EMBED_FLIP differs from how the decision
// calibration was fitted.
var ErrFlipMismatch = errors.New("embedding flip does not match the calibration")

// LoadTowers loads the embedders named in cfg.Embedders, refusing
// untrained weights unless allowed and models the calibration does not
// cover. The caller closes the returned models.
func LoadTowers(cfg ModelsConfig, cal *decision.Calibration, opts infer.Options) ([]*Tower, []*infer.Model, error) {
	var (
		towers []*Tower
		models []*infer.Model
	)
	fail := func(err error) ([]*Tower, []*infer.Model, error) {
		for _, m := range models {
			m.Close()
		}
		return nil, nil, err
	}
	for _, name := range cfg.Embedders {
		m, err := infer.Load(filepath.Join(cfg.Dir, name), opts)
		if err != nil {
			return fail(err)
		}
		models = append(models, m)
		man := m.Manifest()
		if man.Weights == manifest.WeightsUntrained && !cfg.AllowUntrained {
			return fail(fmt.Errorf("%w (%s %s): it cannot recognise anyone; load a pretrained model, or set FACEGATE_ALLOW_UNTRAINED=true for benchmarks and tests only", ErrUntrained, man.Name, man.Version))
		}
		emb, err := infer.NewEmbedder(m)
		if err != nil {
			return fail(err)
		}
		emb.SetFlip(cfg.EmbedFlip)
		sc, err := enroll.NewScorer(man)
		if err != nil {
			return fail(fmt.Errorf("embedder %s: %w", name, err))
		}
		norm, ok := calTower(cal, man.Name)
		if !ok {
			return fail(fmt.Errorf("FACEGATE_EMBEDDERS: %w: %s", decision.ErrUnknownTowers, man.Name))
		}
		if norm.Flip != cfg.EmbedFlip {
			return fail(fmt.Errorf("%w: FACEGATE_EMBED_FLIP=%v but the decision calibration's tower %s was fitted with flip %v; its head and thresholds would not hold: set FACEGATE_EMBED_FLIP=%v or use a calibration fitted the same way (facegate eval -fusion -flip -decision-out)", ErrFlipMismatch, cfg.EmbedFlip, man.Name, norm.Flip, norm.Flip))
		}
		version := man.Version
		if cfg.EmbedFlip {
			// Templates embedded without flip are not comparable: the
			// gallery treats them as another model's (re-enrol).
			version += "+flip"
		}
		towers = append(towers, &Tower{Emb: emb, Store: store.Model{Name: man.Name, Version: version}, Scorer: sc, Norm: norm})
	}
	if len(towers) == 0 {
		return fail(errors.New("FACEGATE_EMBEDDERS: no embedder"))
	}
	return towers, models, nil
}

// Fusion turns the towers' raw scores of a face against one enrolled
// person into the calibrated logit of "same person" (decision.Scorer), with
// the head for the towers both sides have: a person enrolled before a tower
// was added is scored by the others.
type Fusion struct {
	cal     *decision.Calibration
	towers  []*Tower
	key     string                      // all towers
	scorers map[uint64]*decision.Scorer // by bit set of towers
}

// NewFusion prepares the heads of every non-empty subset of towers.
func NewFusion(cal *decision.Calibration, towers []*Tower) (*Fusion, error) {
	if len(towers) == 0 || len(towers) > 16 {
		return nil, fmt.Errorf("fusion: %d towers", len(towers))
	}
	f := &Fusion{cal: cal, towers: towers, scorers: map[uint64]*decision.Scorer{}}
	for set := uint64(1); set < 1<<len(towers); set++ {
		var names []string
		for i, t := range towers {
			if set&(1<<i) != 0 {
				names = append(names, t.Norm.Name)
			}
		}
		sc, err := cal.Scorer(cal.Key(names...))
		if err != nil {
			if set == 1<<len(towers)-1 {
				return nil, fmt.Errorf("fusion: %w", err)
			}
			continue // that subset is not calibrated: scored by a larger one only
		}
		f.scorers[set] = sc
		if set == 1<<len(towers)-1 {
			f.key = sc.Key
		}
	}
	return f, nil
}

// Key is the calibration key of all towers, e.g. "dlib+sface".
func (f *Fusion) Key() string { return f.key }

// Logit fuses raw scores (one per tower, NaN where the tower has none) and
// reports false when no calibrated subset of towers has scores.
func (f *Fusion) Logit(raw []float64) (float64, bool) {
	var set uint64
	var vals []float64
	for i, r := range raw {
		if !math.IsNaN(r) {
			set |= 1 << i
			vals = append(vals, r)
		}
	}
	sc, ok := f.scorers[set]
	if !ok {
		return 0, false
	}
	return sc.Logit(vals), true
}

// Rule is the sequential rule for a gallery of n people at target fpir
// (n is taken as 1 for an empty gallery: nobody can be granted anyway).
func (f *Fusion) Rule(n int, fpir float64) (decision.Rule, error) {
	return f.cal.Rule(f.key, max(n, 1), fpir)
}

// embedTowers embeds face with every tower, each from its own aligned
// chip, and returns the embeddings in tower order; a face already embedded
// by the first tower (the daemon's frames: its chip also feeds the quality
// gate) is not embedded again by it.
func embedTowers(towers []*Tower, det *infer.Detector, img *imageio.RGB, face *infer.Face) (TowerEmbeddings, error) {
	out := make(TowerEmbeddings, len(towers))
	if face.Embedding == nil || len(face.Embedding) != towers[0].Emb.Dim() {
		p := infer.Pipeline{Det: det, Emb: towers[0].Emb}
		if err := p.Embed(img, []*infer.Face{face}); err != nil {
			return nil, fmt.Errorf("embed with %s: %w", towers[0].Name(), err)
		}
	}
	out[0] = face.Embedding
	for i, t := range towers[1:] {
		f := *face
		f.Embedding = nil
		p := infer.Pipeline{Det: det, Emb: t.Emb}
		if err := p.Embed(img, []*infer.Face{&f}); err != nil {
			return nil, fmt.Errorf("embed with %s: %w", t.Name(), err)
		}
		out[i+1] = f.Embedding
	}
	return out, nil
}
