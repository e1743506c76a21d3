package decision

import (
	"fmt"
	"math"
	"sort"
)

// bodyExceed are the exceedances the fitted body keeps.
var bodyExceed = []float64{0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4}

// FitVisitModel fits the visit model to samples of peak evidence of
// non-mated (visit, enrolled identity) pairs (see [VisitModel]): the
// empirical body at fixed exceedances down to tailExceed, and beyond it an
// exponential tail whose scale is the mean excess of the samples over the
// tail start (the maximum-likelihood exponential fit). It needs at least
// 50 samples in the tail. peaks is not modified.
func FitVisitModel(peaks []float64, maxFrames int, tailExceed, margin float64) (VisitModel, error) {
	n := len(peaks)
	inTail := int(math.Floor(tailExceed * float64(n)))
	if !(tailExceed > 0 && tailExceed < 1) || inTail < 50 {
		return VisitModel{}, fmt.Errorf("decision: fit visit model: %d samples leave %d beyond exceedance %g, need 50", n, inTail, tailExceed)
	}
	s := make([]float64, n)
	copy(s, peaks)
	for _, x := range s {
		if !finite(x) {
			return VisitModel{}, fmt.Errorf("decision: fit visit model: sample %v is not finite", x)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	// The value reached by a fraction e of the samples.
	at := func(e float64) float64 { return s[max(int(math.Ceil(e*float64(n)))-1, 0)] }
	u := at(tailExceed)
	var excess float64
	for _, x := range s[:inTail] {
		excess += x - u
	}
	scale := excess / float64(inTail)
	if scale <= 0 {
		return VisitModel{}, fmt.Errorf("decision: fit visit model: no spread in the tail beyond %v", u)
	}
	v := VisitModel{MaxFrames: maxFrames, Samples: n, TailExceed: tailExceed, TailLogit: u, TailScale: scale, Margin: margin}
	prev := math.Inf(-1)
	for _, e := range bodyExceed {
		if e <= tailExceed {
			break
		}
		if x := at(e); x > prev && x < u {
			v.Body = append(v.Body, TailPoint{Exceed: e, Logit: x})
			prev = x
		}
	}
	return v, v.Validate()
}
