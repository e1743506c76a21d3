package decision

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// GalleryCurve is the per-visit FPIR of the sequential rule against random
// galleries of N identities, simulated on the calibration data: for a
// threshold t, the fraction of (non-mated visit, random gallery) pairs the
// rule, margin included, would grant to someone. Points hold the
// empirical threshold at each listed FPIR (Exceed) while at least
// MinCurveStrangers distinct people reach it; beyond the last of them,
// at TailExceed and TailLogit, the curve is exponential with scale
// TailScale (the mean excess of the simulated levels over TailLogit, as
// [VisitModel]'s tail).
type GalleryCurve struct {
	N int `json:"n"`
	// Visits: calibration visits simulated; Galleries: random galleries
	// per visit.
	Visits     int         `json:"visits"`
	Galleries  int         `json:"galleries"`
	Points     []TailPoint `json:"points"`
	TailExceed float64     `json:"tail_exceed"`
	TailLogit  float64     `json:"tail_logit"`
	TailScale  float64     `json:"tail_scale"`
}

// curveExceed are the per-visit FPIRs a fitted curve may keep.
var curveExceed = []float64{0.1, 0.05, 0.02, 0.01, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4}

// MinCurveStrangers is how many distinct calibration people must reach an
// empirical point of a curve (in at least one visit and random gallery):
// a false grant rate resting on fewer strangers is left to the fitted
// tail.
const MinCurveStrangers = 20

// ErrFewStrangers is returned by [FitGalleryCurve] when not even its first
// point rests on MinCurveStrangers people.
var ErrFewStrangers = errors.New("decision: too few strangers reach the gallery curve")

// FitGalleryCurve fits a curve from grant levels: levels[v][g] is, for
// calibration visit v (of person stranger[v]) and its random gallery g,
// the highest threshold at which the rule would grant the visit to
// someone (-Inf if at none, e.g. when no look clears the margin). The
// FPIR at threshold t is the fraction of levels ≥ t.
func FitGalleryCurve(n int, levels [][]float64, stranger []int) (GalleryCurve, error) {
	c := GalleryCurve{N: n, Visits: len(levels)}
	if n < 1 || len(levels) == 0 || len(levels[0]) == 0 || len(stranger) != len(levels) {
		return c, fmt.Errorf("decision: fit gallery curve: N %d, %d visits, %d strangers", n, len(levels), len(stranger))
	}
	c.Galleries = len(levels[0])
	// A person's highest level: they reach every threshold up to it.
	type reach struct {
		level float64
		who   int
	}
	var all []float64
	var best []reach
	for v, ls := range levels {
		if len(ls) != c.Galleries {
			return c, fmt.Errorf("decision: fit gallery curve: visit %d has %d galleries, want %d", v, len(ls), c.Galleries)
		}
		b := math.Inf(-1)
		for _, l := range ls {
			if math.IsNaN(l) || math.IsInf(l, 1) {
				return c, fmt.Errorf("decision: fit gallery curve: level %v", l)
			}
			b = math.Max(b, l)
			if !math.IsInf(l, -1) {
				all = append(all, l)
			}
		}
		best = append(best, reach{b, stranger[v]})
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(all)))
	strangers := func(t float64) int {
		seen := map[int]bool{}
		for _, r := range best {
			if r.level >= t {
				seen[r.who] = true
			}
		}
		return len(seen)
	}
	total := float64(len(levels) * c.Galleries)
	var pts []TailPoint
	var ks []int
	for _, e := range curveExceed {
		// At most e of the pairs may reach the threshold: just above the
		// (k+1)-th highest level.
		k := int(math.Floor(e * total))
		if k >= len(all) {
			continue // the margin alone keeps the FPIR under e: no point
		}
		t := math.Nextafter(all[k], math.Inf(1))
		if k == 0 || strangers(t) < MinCurveStrangers {
			break
		}
		pts, ks = append(pts, TailPoint{Exceed: e, Logit: t}), append(ks, k)
	}
	if len(pts) == 0 {
		return c, fmt.Errorf("%w: N %d, %d visits", ErrFewStrangers, n, len(levels))
	}
	last, k := pts[len(pts)-1], ks[len(ks)-1]
	var excess float64
	for _, l := range all[:k] {
		excess += l - last.Logit
	}
	c.Points, c.TailExceed, c.TailLogit, c.TailScale = pts[:len(pts)-1], last.Exceed, last.Logit, excess/float64(k)
	return c, c.Validate()
}

// Validate reports a curve that cannot give thresholds.
func (c GalleryCurve) Validate() error {
	if c.N < 1 || c.Visits < 1 || c.Galleries < 1 {
		return fmt.Errorf("gallery curve N %d: %d visits, %d galleries", c.N, c.Visits, c.Galleries)
	}
	if !(c.TailExceed > 0 && c.TailExceed < 1) || !finite(c.TailLogit) || !finite(c.TailScale) || c.TailScale <= 0 {
		return fmt.Errorf("gallery curve N %d: tail (%v, %v, scale %v)", c.N, c.TailExceed, c.TailLogit, c.TailScale)
	}
	prev := TailPoint{Exceed: 1, Logit: math.Inf(-1)}
	for _, p := range append(append([]TailPoint(nil), c.Points...), TailPoint{Exceed: c.TailExceed, Logit: c.TailLogit}) {
		if !(p.Exceed > 0 && p.Exceed < prev.Exceed) || !finite(p.Logit) || p.Logit < prev.Logit {
			return fmt.Errorf("gallery curve N %d: point %+v: FPIR must fall and logit not fall towards the tail", c.N, p)
		}
		prev = p
	}
	return nil
}

// at is the curve's threshold for FPIR fpir: log-linear between the
// empirical points, exponential beyond the tail start; above the first
// point, the first point's logit (the margin keeps the FPIR lower there,
// or the curve starts at 0.1).
func (c GalleryCurve) at(fpir float64) float64 {
	if fpir <= c.TailExceed {
		return c.TailLogit + c.TailScale*math.Log(c.TailExceed/fpir)
	}
	pts := append(append([]TailPoint(nil), c.Points...), TailPoint{Exceed: c.TailExceed, Logit: c.TailLogit})
	if fpir >= pts[0].Exceed {
		return pts[0].Logit
	}
	for i := 1; i < len(pts); i++ {
		lo, hi := pts[i-1], pts[i] // lo.Exceed > fpir ≥ hi.Exceed
		if fpir >= hi.Exceed {
			f := math.Log(lo.Exceed/fpir) / math.Log(lo.Exceed/hi.Exceed)
			return lo.Logit + f*(hi.Logit-lo.Logit)
		}
	}
	return c.TailLogit
}

// curveThreshold is the simulated threshold for gallery size n: the curve
// of that size, or linear in log N between the two neighbouring sizes; ok
// is false outside the simulated sizes. A larger gallery only adds chances
// for a stranger, so the threshold of a smaller size is never above it:
// where the simulation's noise (margin-dominated curves) would make it
// fall as N grows, the highest threshold of the sizes up to n is kept.
func (v VisitModel) curveThreshold(n int, fpir float64) (float64, bool) {
	cs := v.Galleries
	t, ok := 0.0, false
	for i := range cs {
		if cs[i].N == n {
			t, ok = cs[i].at(fpir), true
			break
		}
		if i > 0 && cs[i-1].N < n && n < cs[i].N {
			a, b := cs[i-1].at(fpir), cs[i].at(fpir)
			f := math.Log(float64(n)/float64(cs[i-1].N)) / math.Log(float64(cs[i].N)/float64(cs[i-1].N))
			t, ok = a+f*(b-a), true
			break
		}
	}
	if !ok {
		return 0, false
	}
	for _, c := range cs {
		if c.N <= n {
			t = math.Max(t, c.at(fpir))
		}
	}
	return t, true
}

// Threshold is [Calibration.Threshold] for this visit model; n ≥ 1 and
// fpir in (0, 1) are the caller's to check. Within the simulated sizes
// it is the gallery curves' threshold; outside them the independence
// model's, but never below the curves' threshold of a smaller size (a
// larger gallery) nor above that of a larger simulated size (a smaller
// gallery: FPIR only grows with N).
func (v VisitModel) Threshold(n int, fpir float64) float64 {
	if t, ok := v.curveThreshold(n, fpir); ok {
		return t
	}
	t := v.Quantile(PerIdentity(n, fpir))
	if len(v.Galleries) == 0 {
		return t
	}
	first, last := v.Galleries[0], v.Galleries[len(v.Galleries)-1]
	if n < first.N {
		return math.Min(t, first.at(fpir))
	}
	hi, _ := v.curveThreshold(last.N, fpir)
	return math.Max(t, hi)
}
