package eval

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/facegate/facegate/decision"
)

// TowerEmbeddings is one tower's embeddings of every image.
type TowerEmbeddings struct {
	Name       string // short name: "dlib", "sface"
	Model      string // model directory name: "dlib-resnet-v1"
	Label      string // "NAME VERSION" for reports
	Metric     string // KindCosine or KindEuclidean
	Flip       bool   // embedded with flip test-time augmentation
	Embeddings map[string]Embedding
}

// FusionConfig is `facegate eval -fusion` (docs/decision.md): with the
// embeddings of every image under Root by each tower, it fits the fusion
// heads with cross-validation on the LFW folds, measures verification on
// the LFW pairs and on every cross-identity pair of each fold, evaluates
// open-set 1:N per visit with package decision deciding, and fits the
// decision calibration.
type FusionConfig struct {
	Root   string
	Towers []TowerEmbeddings
	// LFW are the LFW View-2 pairs (folds 1-5); Extra more pairs, used
	// only to train the heads.
	LFW, Extra []Pair
	// Aliases are identity folders that show the same person.
	Aliases [][2]string
	// Errata correct label errors of the data (eval/lfw-errata.tsv) when
	// identities are read: the open-set visits and galleries and every
	// cross-identity pair of a fold see the corrected identities; the
	// official LFW pairs keep their published labels.
	Errata *Errata
	// OutDir gets fusion.json, fusion.txt, fusion-det.svg.
	OutDir string
	// DecisionOut, when set, gets the calibration (decision.json).
	DecisionOut string
	Command     string
	Dataset     string // provenance: what the data is
	Trials      int    // random galleries per size and fold (default 10)
	MaxFrames   int    // looks per visit (default 3)
	Sizes       []int  // gallery sizes (default 100, 1000)
	Targets     []float64
	Seed        uint64
	// TailExceed is where the visit model's exponential tail starts
	// (default 1e-3; `make calibrate-decision` uses 1e-4).
	TailExceed float64
	// Aggregate is how a visit's looks combine (default max, the
	// daemon's rule; mean only to compare, offline).
	Aggregate decision.Aggregate
	// MarginCost is the share of correct grants the margin may cost on the
	// calibration people (default 0.01).
	MarginCost float64
	Log        func(format string, args ...any)
}

func (c *FusionConfig) defaults() error {
	if len(c.Towers) == 0 {
		return errors.New("fusion: no towers")
	}
	if len(c.Towers) > 3 {
		return fmt.Errorf("fusion: %d towers, at most 3", len(c.Towers))
	}
	for _, t := range c.Towers {
		if _, err := HigherIsMatch(t.Metric); err != nil || t.Metric == KindProbability {
			return fmt.Errorf("fusion: tower %s: metric %q", t.Name, t.Metric)
		}
	}
	if len(c.LFW) == 0 {
		return errors.New("fusion: the LFW pairs are required (-lfw-pairs)")
	}
	if c.Trials <= 0 {
		c.Trials = 10
	}
	if c.MaxFrames <= 0 {
		c.MaxFrames = 3
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{100, 1000}
	}
	if len(c.Targets) == 0 {
		c.Targets = []float64{1e-2, 1e-3}
	}
	if c.Seed == 0 {
		c.Seed = 17
	}
	if c.TailExceed == 0 {
		c.TailExceed = 1e-3
	}
	if c.Aggregate == "" {
		c.Aggregate = visitAggregate
	}
	if !c.Aggregate.Valid() {
		return fmt.Errorf("fusion: aggregate %q is not mean or max", c.Aggregate)
	}
	if c.MarginCost == 0 {
		c.MarginCost = 0.01
	}
	if c.Dataset == "" {
		c.Dataset = "../shared/data/faces (every identity folder; LFW View-2 folds 1-5 pairs and pairs-extra.tsv for the heads)"
	}
	if c.Log == nil {
		c.Log = func(string, ...any) {}
	}
	return nil
}

// ReadAliases reads aliases.tsv: identity_a, identity_b, note; a header
// line and lines naming no folder (e.g. "deepface__id01..id13") are
// skipped.
func ReadAliases(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("aliases: %w", err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 2 || cols[0] == "identity_a" || strings.Contains(cols[0]+cols[1], "..") || strings.ContainsAny(cols[0]+cols[1], "() /") {
			continue
		}
		out = append(out, [2]string{cols[0], cols[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("aliases %s: %w", path, err)
	}
	return out, nil
}

// fusionData is every image acquired by all towers, by identity (aliases
// merged), with one vector per tower (L2-normalised for cosine).
type fusionData struct {
	towers []TowerEmbeddings
	imgs   []string
	index  map[string]int
	ident  []int    // -1: dropped by the errata (kept for the official pairs only)
	names  []string // canonical identity names
	byID   [][]int
	vec    [][][]float32 // [tower][image]
	fta    int           // images some tower did not acquire
	drop   int           // images dropped by the errata
}

func newFusionData(towers []TowerEmbeddings, aliases [][2]string, errata *Errata) (*fusionData, error) {
	canon := map[string]string{}
	var find func(string) string
	find = func(s string) string {
		if p, ok := canon[s]; ok && p != s {
			r := find(p)
			canon[s] = r
			return r
		}
		return s
	}
	if errata != nil {
		aliases = append(slices.Clip(aliases), errata.Same...)
	}
	for _, a := range aliases {
		ra, rb := find(a[0]), find(a[1])
		if ra != rb {
			if rb < ra {
				ra, rb = rb, ra
			}
			canon[rb] = ra
		}
	}
	var all []string
	for im := range towers[0].Embeddings {
		all = append(all, im)
	}
	sort.Strings(all)
	if err := errata.check(all); err != nil {
		return nil, err
	}
	d := &fusionData{towers: towers, index: map[string]int{}, vec: make([][][]float32, len(towers))}
	idOf := map[string]int{}
	for _, im := range all {
		ok := true
		for _, t := range towers {
			e, found := t.Embeddings[im]
			ok = ok && found && e.Err == nil && len(e.Vector) > 0
		}
		if !ok {
			d.fta++
			continue
		}
		_, id := identityOf(im)
		var drop bool
		if errata != nil {
			if to, ok := errata.Relabel[im]; ok {
				id = to
			}
			drop = errata.Drop[im]
		}
		id = find(id)
		k, seen := idOf[id]
		if drop {
			k, seen = -1, true
			d.drop++
		}
		if !seen {
			k = len(d.names)
			idOf[id] = k
			d.names = append(d.names, id)
			d.byID = append(d.byID, nil)
		}
		i := len(d.imgs)
		d.index[im] = i
		d.imgs = append(d.imgs, im)
		d.ident = append(d.ident, k)
		if k >= 0 {
			d.byID[k] = append(d.byID[k], i)
		}
		for t, tw := range towers {
			v := tw.Embeddings[im].Vector
			if tw.Metric == KindCosine {
				v = normalized(v)
			}
			d.vec[t] = append(d.vec[t], v)
		}
	}
	if len(d.imgs) == 0 {
		return nil, errors.New("fusion: no image acquired by every tower")
	}
	return d, nil
}

// errataNote is ", N errata applied" for the provenance, or "".
func errataNote(e *Errata) string {
	if e == nil {
		return ""
	}
	return fmt.Sprintf(", %d errata applied", len(e.Same)+len(e.Relabel)+len(e.Drop))
}

func normalized(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := 1 / math.Sqrt(s)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * n)
	}
	return out
}

// raw is tower t's score of images a and b in its own units.
func (d *fusionData) raw(t, a, b int) float64 {
	x, y := d.vec[t][a], d.vec[t][b]
	if d.towers[t].Metric == KindCosine {
		var s float32
		for i := range x {
			s += x[i] * y[i]
		}
		return float64(s)
	}
	return euclidean(x, y)
}

// subsets lists the tower subsets as index lists and keys (names joined
// by "+" in tower order): all towers first, then each alone, then the
// rest.
func subsets(towers []TowerEmbeddings) (idx [][]int, keys []string) {
	n := len(towers)
	var order []int
	order = append(order, (1<<n)-1)
	for t := range n {
		if n > 1 {
			order = append(order, 1<<t)
		}
	}
	for m := 1; m < (1<<n)-1; m++ {
		if m&(m-1) != 0 {
			order = append(order, m)
		}
	}
	for _, m := range order {
		var s []int
		var names []string
		for t := range n {
			if m&(1<<t) != 0 {
				s = append(s, t)
				names = append(names, towers[t].Name)
			}
		}
		idx = append(idx, s)
		keys = append(keys, strings.Join(names, "+"))
	}
	return idx, keys
}

// labelled is a pair of image indexes with its truth.
type labelled struct {
	a, b int
	same bool
}

// Run does the whole evaluation and writes the outputs.
func (c FusionConfig) Run(ctx context.Context) (*FusionReport, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	d, err := newFusionData(c.Towers, c.Aliases, c.Errata)
	if err != nil {
		return nil, err
	}
	rep := &FusionReport{Dataset: c.Dataset, Date: start.UTC().Format(time.RFC3339), Images: len(d.imgs), ImagesFTA: d.fta, Identities: len(d.names), MaxFrames: c.MaxFrames}
	for _, t := range c.Towers {
		rep.Towers = append(rep.Towers, t.Label)
	}
	c.Log("fusion: %d images acquired by every tower (%d not, %d dropped by the errata), %d identities", len(d.imgs), d.fta, d.drop, len(d.names))
	ver, final, err := c.verification(ctx, d)
	if err != nil {
		return nil, err
	}
	rep.Verification = ver
	c.Log("fusion: verification done in %s", time.Since(start).Round(time.Second))
	ident, cal, err := c.openSet(ctx, d, final)
	if err != nil {
		return nil, err
	}
	rep.OpenSet = ident
	rep.Elapsed = time.Since(start).Round(time.Second).String()
	if c.DecisionOut != "" {
		cal.Provenance = decision.Provenance{Data: c.Dataset, Command: c.Command, Date: start.UTC().Format("2006-01-02"),
			Notes: fmt.Sprintf("%d images (%d dropped by the errata), %d identities (aliases merged%s); heads fitted on all LFW folds 1-5 and the extra pairs; visit models on every identity's non-mated visits of %d looks (%s), exponential tail from exceedance %g; figures in docs/accuracy.md",
				len(d.imgs)-d.drop, d.drop, len(d.names), errataNote(c.Errata), c.MaxFrames, c.Aggregate, c.TailExceed)}
		if err := cal.Save(c.DecisionOut); err != nil {
			return nil, err
		}
	}
	if err := rep.save(c.OutDir); err != nil {
		return nil, err
	}
	return rep, nil
}
