package decision

import (
	"fmt"
	"math"
	"sort"
)

// GalleryCurve is the per-visit FPIR of the sequential rule against random
// galleries of N identities, simulated on the calibration data: for a
// threshold t, the fraction of (non-mated visit, random gallery) pairs the
// rule, margin included, would grant to someone. Points hold the
// threshold reached at each listed FPIR (Exceed), only where enough
// distinct calibration visits reach it (see [FitGalleryCurve]).
type GalleryCurve struct {
	N int `json:"n"`
	// Visits: calibration visits simulated; Galleries: random galleries
	// per visit.
	Visits    int         `json:"visits"`
	Galleries int         `json:"galleries"`
	Points    []TailPoint `json:"points"`
}

// curveExceed are the per-visit FPIRs a fitted curve keeps.
var curveExceed = []float64{0.1, 0.05, 0.02, 0.01, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4}

// MinCurveVisits is how many distinct calibration visits must reach a
// curve point's threshold (in at least one of their random galleries) for
// the point to be kept: below it the FPIR rests on too few strangers and
// Threshold falls back to the independence model.
const MinCurveVisits = 3

// FitGalleryCurve fits a curve from grant levels: levels[v][g] is, for
// calibration visit v and its random gallery g, the highest threshold at
// which the rule would grant the visit to someone (-Inf if at none, e.g.
// when no look clears the margin). The FPIR at threshold t is the fraction
// of levels ≥ t.
func FitGalleryCurve(n int, levels [][]float64) (GalleryCurve, error) {
	c := GalleryCurve{N: n, Visits: len(levels)}
	if n < 1 || len(levels) == 0 || len(levels[0]) == 0 {
		return c, fmt.Errorf("decision: fit gallery curve: N %d, %d visits", n, len(levels))
	}
	c.Galleries = len(levels[0])
	// best[v]: visit v's highest level (it reaches every threshold up to it
	// in some gallery).
	var all []float64
	best := make([]float64, len(levels))
	for v, ls := range levels {
		if len(ls) != c.Galleries {
			return c, fmt.Errorf("decision: fit gallery curve: visit %d has %d galleries, want %d", v, len(ls), c.Galleries)
		}
		best[v] = math.Inf(-1)
		for _, l := range ls {
			if math.IsNaN(l) || math.IsInf(l, 1) {
				return c, fmt.Errorf("decision: fit gallery curve: level %v", l)
			}
			best[v] = math.Max(best[v], l)
			if !math.IsInf(l, -1) {
				all = append(all, l)
			}
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(all)))
	sort.Sort(sort.Reverse(sort.Float64Slice(best)))
	total := float64(len(levels) * c.Galleries)
	for _, e := range curveExceed {
		// At most e of the pairs may reach the threshold: just above the
		// (k+1)-th highest level.
		k := int(math.Floor(e * total))
		if k >= len(all) {
			continue // the margin alone keeps the FPIR under e: no point
		}
		t := math.Nextafter(all[k], math.Inf(1))
		reach := sort.Search(len(best), func(i int) bool { return best[i] < t })
		if reach < MinCurveVisits {
			break
		}
		if len(c.Points) > 0 && t < c.Points[len(c.Points)-1].Logit {
			t = c.Points[len(c.Points)-1].Logit
		}
		c.Points = append(c.Points, TailPoint{Exceed: e, Logit: t})
	}
	return c, c.Validate()
}

// Validate reports a curve that cannot give thresholds.
func (c GalleryCurve) Validate() error {
	if c.N < 1 || c.Visits < 1 || c.Galleries < 1 {
		return fmt.Errorf("gallery curve N %d: %d visits, %d galleries", c.N, c.Visits, c.Galleries)
	}
	prev := TailPoint{Exceed: 1, Logit: math.Inf(-1)}
	for _, p := range c.Points {
		if !(p.Exceed > 0 && p.Exceed < prev.Exceed) || !finite(p.Logit) || p.Logit < prev.Logit {
			return fmt.Errorf("gallery curve N %d: point %+v: FPIR must fall and logit not fall", c.N, p)
		}
		prev = p
	}
	return nil
}

// at is the curve's threshold for FPIR fpir, log-linear between points; ok
// is false below the lowest point's FPIR (too few strangers). Above the
// first point the first point's logit is returned (the margin keeps the
// FPIR lower there, or the curve starts at 0.1).
func (c GalleryCurve) at(fpir float64) (float64, bool) {
	if len(c.Points) == 0 || fpir < c.Points[len(c.Points)-1].Exceed {
		return 0, false
	}
	if fpir >= c.Points[0].Exceed {
		return c.Points[0].Logit, true
	}
	for i := 1; i < len(c.Points); i++ {
		lo, hi := c.Points[i-1], c.Points[i] // lo.Exceed > fpir ≥ hi.Exceed
		if fpir >= hi.Exceed {
			f := math.Log(lo.Exceed/fpir) / math.Log(lo.Exceed/hi.Exceed)
			return lo.Logit + f*(hi.Logit-lo.Logit), true
		}
	}
	return 0, false
}

// curveThreshold is the simulated threshold for gallery size n: the curve
// of that size, or linear in log N between the two neighbouring sizes; ok
// is false outside the simulated sizes or below either curve's support.
func (v VisitModel) curveThreshold(n int, fpir float64) (float64, bool) {
	cs := v.Galleries
	for i := range cs {
		if cs[i].N == n {
			return cs[i].at(fpir)
		}
		if i > 0 && cs[i-1].N < n && n < cs[i].N {
			a, okA := cs[i-1].at(fpir)
			b, okB := cs[i].at(fpir)
			if !okA || !okB {
				return 0, false
			}
			f := math.Log(float64(n)/float64(cs[i-1].N)) / math.Log(float64(cs[i].N)/float64(cs[i-1].N))
			return a + f*(b-a), true
		}
	}
	return 0, false
}

// curveSupport is the lowest FPIR the curves for size n support (both
// neighbours when n falls between two sizes); 1 when none does.
func (v VisitModel) curveSupport(n int) float64 {
	lowest := func(c GalleryCurve) float64 {
		if len(c.Points) == 0 {
			return 1
		}
		return c.Points[len(c.Points)-1].Exceed
	}
	cs := v.Galleries
	for i := range cs {
		if cs[i].N == n {
			return lowest(cs[i])
		}
		if i > 0 && cs[i-1].N < n && n < cs[i].N {
			return math.Max(lowest(cs[i-1]), lowest(cs[i]))
		}
	}
	return 1
}
