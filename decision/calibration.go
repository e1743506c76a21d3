package decision

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Version is the calibration file format this package reads.
const Version = 1

// Calibration is models/calibration/decision.json: the towers, a head and a
// visit model per subset of towers, and where it all came from.
type Calibration struct {
	Version int     `json:"version"`
	Towers  []Tower `json:"towers"`
	// Heads by key: tower names joined by "+" in the order of Towers,
	// e.g. "dlib+sface", "dlib", "sface".
	Heads map[string]Head `json:"heads"`
	// Visits by the same keys: the per-visit impostor model.
	Visits     map[string]VisitModel `json:"visits"`
	Provenance Provenance            `json:"provenance"`
}

// Provenance says what a calibration was fitted on and how to redo it.
type Provenance struct {
	Data    string `json:"data"`
	Command string `json:"command"`
	Date    string `json:"date"`
	Notes   string `json:"notes,omitempty"`
}

// TailPoint is one point of the empirical upper tail: the fraction of
// (non-mated visit, enrolled identity) pairs whose peak evidence was at
// least Logit.
type TailPoint struct {
	Exceed float64 `json:"exceed"`
	Logit  float64 `json:"logit"`
}

// VisitModel is the per-visit impostor model of one subset of towers.
//
// Its statistic is the peak evidence of a non-mated visit against one
// enrolled identity: the highest aggregated logit (as [Evidence] computes
// it with Aggregate: running quality-weighted mean, or running maximum)
// over the visit's first MaxFrames looks.
// A sequential rule can only grant a stranger to an identity whose peak
// evidence clears the threshold, so P(peak ≥ t) bounds the per-comparison
// rate the rule produces, repeated looks included. Body holds the empirical
// tail down to exceedance TailExceed at TailLogit; beyond it the tail is
// exponential with scale TailScale (fitted by the mean excess), which is
// conservative for the Gaussian-like tails of fused logits.
type VisitModel struct {
	MaxFrames int `json:"max_frames"`
	// Aggregate is how the looks were combined ("" is Mean).
	Aggregate  Aggregate   `json:"aggregate,omitempty"`
	Samples    int         `json:"samples"`
	Body       []TailPoint `json:"body"`
	TailExceed float64     `json:"tail_exceed"`
	TailLogit  float64     `json:"tail_logit"`
	TailScale  float64     `json:"tail_scale"`
	// Margin is the logit margin over the second-best identity a grant
	// needs.
	Margin float64 `json:"margin"`
	// Galleries, by increasing N, are the rule's per-visit FPIR simulated
	// on random galleries of N (margin included); where they cover the
	// gallery size and the target, Threshold reads them rather than the
	// independence model above. Optional: a file without them gives the
	// independence model's thresholds (the conservative side).
	Galleries []GalleryCurve `json:"galleries,omitempty"`
}

// ErrUnknownTowers is returned for a towers key the calibration lacks.
var ErrUnknownTowers = errors.New("decision: no calibration for these towers")

// Load reads and validates a calibration file.
func Load(path string) (*Calibration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("decision: load calibration: %w", err)
	}
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decision: load calibration %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("decision: load calibration %s: %w", path, err)
	}
	return &c, nil
}

// Save writes the calibration as indented JSON after validating it.
func (c *Calibration) Save(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("decision: save calibration: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("decision: save calibration: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("decision: save calibration: %w", err)
	}
	return nil
}

// Validate reports the first inconsistency: unknown format, bad towers,
// a head whose key or weights do not match the towers, a visit model that
// cannot give thresholds, or missing provenance.
func (c *Calibration) Validate() error {
	if c.Version != Version {
		return fmt.Errorf("version %d, want %d", c.Version, Version)
	}
	if len(c.Towers) == 0 {
		return errors.New("no towers")
	}
	seen := map[string]bool{}
	for _, t := range c.Towers {
		if err := t.Validate(); err != nil {
			return err
		}
		if seen[t.Name] {
			return fmt.Errorf("tower %s twice", t.Name)
		}
		seen[t.Name] = true
	}
	if len(c.Heads) == 0 {
		return errors.New("no heads")
	}
	for key, h := range c.Heads {
		idx, err := c.indices(key)
		if err != nil {
			return err
		}
		if c.Key(strings.Split(key, "+")...) != key {
			return fmt.Errorf("head %q: name the towers in the order of towers (%q)", key, c.Key(strings.Split(key, "+")...))
		}
		if len(h.Weights) != len(idx) || !finite(h.Bias) {
			return fmt.Errorf("head %q: %d weights for %d towers, bias %v", key, len(h.Weights), len(idx), h.Bias)
		}
		for _, w := range h.Weights {
			if !finite(w) || w <= 0 {
				return fmt.Errorf("head %q: weight %v: a tower's z-score must raise the logit", key, w)
			}
		}
		v, ok := c.Visits[key]
		if !ok {
			return fmt.Errorf("head %q has no visit model", key)
		}
		if err := v.Validate(); err != nil {
			return fmt.Errorf("visit model %q: %w", key, err)
		}
	}
	for key := range c.Visits {
		if _, ok := c.Heads[key]; !ok {
			return fmt.Errorf("visit model %q has no head", key)
		}
	}
	if c.Provenance.Data == "" || c.Provenance.Command == "" || c.Provenance.Date == "" {
		return errors.New("provenance needs data, command and date")
	}
	return nil
}

// Validate reports a visit model that cannot give thresholds.
func (v VisitModel) Validate() error {
	switch {
	case v.MaxFrames < 1:
		return fmt.Errorf("max_frames %d < 1", v.MaxFrames)
	case !v.Aggregate.Valid():
		return fmt.Errorf("aggregate %q is not mean or max", v.Aggregate)
	case v.Samples < 1:
		return fmt.Errorf("samples %d < 1", v.Samples)
	case !(v.TailExceed > 0 && v.TailExceed < 1) || !finite(v.TailLogit):
		return fmt.Errorf("tail start (%v, %v): exceedance must be in (0, 1)", v.TailExceed, v.TailLogit)
	case !finite(v.TailScale) || v.TailScale <= 0:
		return fmt.Errorf("tail_scale %v must be > 0", v.TailScale)
	case !finite(v.Margin) || v.Margin < 0:
		return fmt.Errorf("margin %v must be >= 0", v.Margin)
	}
	prev := TailPoint{Exceed: 1, Logit: math.Inf(-1)}
	for _, p := range v.Body {
		if !(p.Exceed > v.TailExceed && p.Exceed < prev.Exceed) || !finite(p.Logit) || p.Logit <= prev.Logit || p.Logit >= v.TailLogit {
			return fmt.Errorf("body point %+v: exceedance must fall and logit rise towards the tail start", p)
		}
		prev = p
	}
	for i, g := range v.Galleries {
		if err := g.Validate(); err != nil {
			return err
		}
		if i > 0 && g.N <= v.Galleries[i-1].N {
			return fmt.Errorf("gallery curves must come by increasing N: %d after %d", g.N, v.Galleries[i-1].N)
		}
	}
	return nil
}

// Key names a subset of towers: their names joined by "+" in the order of
// c.Towers; unknown names are kept at the end, so the key is refused later.
func (c *Calibration) Key(names ...string) string {
	order := map[string]int{}
	for i, t := range c.Towers {
		order[t.Name] = i
	}
	s := append([]string(nil), names...)
	sort.SliceStable(s, func(i, j int) bool {
		oi, ok := order[s[i]]
		if !ok {
			oi = len(c.Towers)
		}
		oj, ok := order[s[j]]
		if !ok {
			oj = len(c.Towers)
		}
		return oi < oj
	})
	return strings.Join(s, "+")
}

func (c *Calibration) indices(key string) ([]int, error) {
	var idx []int
	used := map[string]bool{}
	for _, n := range strings.Split(key, "+") {
		found := false
		for i, t := range c.Towers {
			if t.Name == n && !used[n] {
				idx, found, used[n] = append(idx, i), true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: %q names tower %q, not one of the calibration's (or twice)", ErrUnknownTowers, key, n)
		}
	}
	return idx, nil
}

// Scorer fuses the raw scores of one subset of towers into a logit.
type Scorer struct {
	Key    string
	Towers []Tower
	Head   Head
}

// Scorer returns the fusion for a towers key ("dlib+sface", "sface", ...).
func (c *Calibration) Scorer(key string) (*Scorer, error) {
	h, ok := c.Heads[key]
	if !ok {
		return nil, fmt.Errorf("%w: %q (have %v)", ErrUnknownTowers, key, c.keys())
	}
	idx, err := c.indices(key)
	if err != nil {
		return nil, err
	}
	s := &Scorer{Key: key, Head: h}
	for _, i := range idx {
		s.Towers = append(s.Towers, c.Towers[i])
	}
	return s, nil
}

// Z normalises one raw score per tower, in the scorer's order.
func (s *Scorer) Z(raw []float64) []float64 {
	z := make([]float64, len(s.Towers))
	for i, t := range s.Towers {
		z[i] = t.Z(raw[i])
	}
	return z
}

// Logit fuses one raw score per tower (in the scorer's order) into the
// head's logit. It panics if raw has the wrong length.
func (s *Scorer) Logit(raw []float64) float64 {
	if len(raw) != len(s.Towers) {
		panic(fmt.Sprintf("decision: %d scores for towers %s", len(raw), s.Key))
	}
	l := s.Head.Bias
	for i, t := range s.Towers {
		l += s.Head.Weights[i] * t.Z(raw[i])
	}
	return l
}

func (c *Calibration) keys() []string {
	var k []string
	for key := range c.Heads {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

// Threshold is the aggregated-logit threshold for a gallery of n enrolled
// identities so that a visit of someone not enrolled is granted to anyone
// with probability at most fpir (per visit, repeated looks included).
//
// Where the visit model's gallery curves cover n (a simulated size, or
// between two, linear in log N), the threshold is read from them: the
// rule itself, margin included, run on random galleries. Elsewhere it is
// the independence model: with n identities a stranger is granted only if
// one of them has peak evidence over the threshold; taking the identities
// as independent, the per-identity exceedance must be
// q = 1 − (1 − fpir)^(1/n) (≈ fpir/n), and the threshold is the visit
// model's quantile at q.
func (c *Calibration) Threshold(key string, n int, fpir float64) (float64, error) {
	v, err := c.thresholdModel(key, n, fpir)
	if err != nil {
		return 0, err
	}
	return v.Threshold(n, fpir), nil
}

// thresholdModel is the visit model of a towers key, once n and fpir are
// known to be a gallery size and a rate a threshold can be given for.
func (c *Calibration) thresholdModel(key string, n int, fpir float64) (VisitModel, error) {
	v, ok := c.Visits[key]
	if !ok {
		return VisitModel{}, fmt.Errorf("%w: %q (have %v)", ErrUnknownTowers, key, c.keys())
	}
	if n < 1 {
		return VisitModel{}, fmt.Errorf("decision: threshold for a gallery of %d: need at least one identity", n)
	}
	if !(fpir > 0 && fpir < 1) {
		return VisitModel{}, fmt.Errorf("decision: target FPIR %v must be in (0, 1)", fpir)
	}
	return v, nil
}

// PerIdentity is the per-identity exceedance q = 1 − (1 − fpir)^(1/n)
// that gives a per-visit FPIR of fpir over n independent identities.
func PerIdentity(n int, fpir float64) float64 {
	return -math.Expm1(math.Log1p(-fpir) / float64(n))
}

// Quantile is the peak-evidence logit exceeded with probability q: the
// empirical body (log-linear between points) above the tail start, the
// exponential tail below.
func (v VisitModel) Quantile(q float64) float64 {
	if q <= v.TailExceed {
		return v.TailLogit + v.TailScale*math.Log(v.TailExceed/q)
	}
	hi := TailPoint{Exceed: v.TailExceed, Logit: v.TailLogit}
	for i := len(v.Body) - 1; i >= 0; i-- {
		lo := v.Body[i]
		if q <= lo.Exceed {
			f := math.Log(lo.Exceed/q) / math.Log(lo.Exceed/hi.Exceed)
			return lo.Logit + f*(hi.Logit-lo.Logit)
		}
		hi = lo
	}
	return hi.Logit // q above the first body point: its logit
}

// Exceed is the inverse of Quantile: the modelled probability that one
// non-mated (visit, identity) pair reaches peak evidence t.
func (v VisitModel) Exceed(t float64) float64 {
	if t >= v.TailLogit {
		return v.TailExceed * math.Exp(-(t-v.TailLogit)/v.TailScale)
	}
	hi := TailPoint{Exceed: v.TailExceed, Logit: v.TailLogit}
	for i := len(v.Body) - 1; i >= 0; i-- {
		lo := v.Body[i]
		if t >= lo.Logit {
			f := (t - lo.Logit) / (hi.Logit - lo.Logit)
			return lo.Exceed * math.Pow(hi.Exceed/lo.Exceed, f)
		}
		hi = lo
	}
	return hi.Exceed
}

// Margin is the margin over the second-best identity for a towers key.
func (c *Calibration) Margin(key string) (float64, error) {
	v, ok := c.Visits[key]
	if !ok {
		return 0, fmt.Errorf("%w: %q (have %v)", ErrUnknownTowers, key, c.keys())
	}
	return v.Margin, nil
}

// PeakThreshold is the independence model's threshold for a check that
// applies no margin (enrolment's duplicate and conflict checks): the peak
// evidence of any of n identities exceeds it with probability at most
// fpir. The gallery curves are not used: they model the rule with its
// margin, which such a check does not have.
func (c *Calibration) PeakThreshold(key string, n int, fpir float64) (float64, error) {
	v, err := c.thresholdModel(key, n, fpir)
	if err != nil {
		return 0, err
	}
	return v.Quantile(PerIdentity(n, fpir)), nil
}

// Rule is the sequential rule for a towers key, gallery size and target
// FPIR: the threshold, the margin and the visit model's MaxFrames and
// Aggregate.
func (c *Calibration) Rule(key string, n int, fpir float64) (Rule, error) {
	t, err := c.Threshold(key, n, fpir)
	if err != nil {
		return Rule{}, err
	}
	v := c.Visits[key]
	return Rule{Threshold: t, Margin: v.Margin, MaxFrames: v.MaxFrames, Aggregate: v.Aggregate}, nil
}
