package eval

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Calibrating passive PAD's threshold from bona fide presentations: the
// threshold for a target BPCER b is the lowest score t such that at most
// b of the scores lie below t. Frames of one clip or person are
// correlated, so the honest check of a threshold is on other clips and
// people: the groups are split in two halves of about equal size, a
// threshold is fitted on each half and its BPCER measured on the other.

// PADFitThreshold is the threshold that rejects at most bpcer of scores
// (a score below it is called an attack): the k-th smallest score, k =
// floor(bpcer·n). Scores of -Inf (not scored) count as rejected.
func PADFitThreshold(scores []float64, bpcer float64) (float64, error) {
	if len(scores) == 0 || !(bpcer > 0 && bpcer < 1) {
		return math.NaN(), fmt.Errorf("pad threshold: %d scores, bpcer %g", len(scores), bpcer)
	}
	s := append([]float64(nil), scores...)
	sort.Float64s(s)
	t := s[int(math.Floor(bpcer*float64(len(s))))]
	if math.IsInf(t, -1) {
		return math.NaN(), fmt.Errorf("pad threshold: more than %g of the presentations were not scored", bpcer)
	}
	return t, nil
}

// padRejected is the share of scores below t.
func padRejected(scores []float64, t float64) float64 {
	n := 0
	for _, v := range scores {
		if v < t {
			n++
		}
	}
	return float64(n) / float64(len(scores))
}

// PADHalf is one half of a split: its groups and bona fide presentations.
type PADHalf struct {
	Groups        []string `json:"groups"`
	Presentations int      `json:"presentations"`
}

// PADOperatingPoint is one target BPCER: the threshold fitted on all the
// bona fide presentations, and the split's check: the threshold fitted on
// each half and the BPCER it gives on the other half.
type PADOperatingPoint struct {
	TargetBPCER float64 `json:"target_bpcer"`
	Threshold   float64 `json:"threshold"`
	// FitA is fitted on half A and HeldOutB its BPCER on half B; FitB and
	// HeldOutA the other way.
	FitA     float64 `json:"fit_a"`
	HeldOutB float64 `json:"bpcer_held_out_b"`
	FitB     float64 `json:"fit_b"`
	HeldOutA float64 `json:"bpcer_held_out_a"`
}

// PADCalibration is the result of PADCalibrate.
type PADCalibration struct {
	Presentations int                 `json:"presentations"`
	Groups        int                 `json:"groups"`
	A             PADHalf             `json:"half_a"`
	B             PADHalf             `json:"half_b"`
	Points        []PADOperatingPoint `json:"points"`
}

// PADCalibrate fits thresholds for the target BPCERs on the bona fide
// presentations of scores (attacks are ignored) and checks them across a
// split by group: groups sorted by size, largest first, each to the half
// with fewer presentations so far (ties to A). include, when not nil,
// picks the groups used. It needs at least two groups.
func PADCalibrate(scores []PADScored, bpcers []float64, include func(group string) bool) (*PADCalibration, error) {
	byGroup := map[string][]float64{}
	var all []float64
	for _, s := range scores {
		if s.Species != "" || (include != nil && !include(s.Group)) {
			continue
		}
		v := s.Score
		if s.Err != "" {
			v = math.Inf(-1)
		}
		byGroup[s.Group] = append(byGroup[s.Group], v)
		all = append(all, v)
	}
	if len(byGroup) < 2 {
		return nil, errors.New("pad calibration: the bona fide presentations need at least two groups (folders below bona_fide/) to split")
	}
	names := make([]string, 0, len(byGroup))
	for g := range byGroup {
		names = append(names, g)
	}
	sort.Slice(names, func(i, j int) bool {
		if len(byGroup[names[i]]) != len(byGroup[names[j]]) {
			return len(byGroup[names[i]]) > len(byGroup[names[j]])
		}
		return names[i] < names[j]
	})
	c := &PADCalibration{Presentations: len(all), Groups: len(names)}
	var a, b []float64
	for _, g := range names {
		if len(a) <= len(b) {
			a = append(a, byGroup[g]...)
			c.A.Groups = append(c.A.Groups, g)
		} else {
			b = append(b, byGroup[g]...)
			c.B.Groups = append(c.B.Groups, g)
		}
	}
	c.A.Presentations, c.B.Presentations = len(a), len(b)
	for _, bp := range bpcers {
		p := PADOperatingPoint{TargetBPCER: bp}
		var err error
		if p.Threshold, err = PADFitThreshold(all, bp); err != nil {
			return nil, err
		}
		if p.FitA, err = PADFitThreshold(a, bp); err != nil {
			return nil, err
		}
		if p.FitB, err = PADFitThreshold(b, bp); err != nil {
			return nil, err
		}
		p.HeldOutB, p.HeldOutA = padRejected(b, p.FitA), padRejected(a, p.FitB)
		c.Points = append(c.Points, p)
	}
	return c, nil
}

// WriteText prints the calibration and its split check.
func (c *PADCalibration) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "calibration: %d bona fide presentations in %d groups\n", c.Presentations, c.Groups)
	fmt.Fprintf(&b, "  half A: %d presentations (%s)\n", c.A.Presentations, strings.Join(c.A.Groups, ", "))
	fmt.Fprintf(&b, "  half B: %d presentations (%s)\n", c.B.Presentations, strings.Join(c.B.Groups, ", "))
	for _, p := range c.Points {
		fmt.Fprintf(&b, "target BPCER %.2f%%: threshold %.4f on all; fitted on A %.4f -> BPCER on B %.2f%%; fitted on B %.4f -> BPCER on A %.2f%%\n",
			100*p.TargetBPCER, p.Threshold, p.FitA, 100*p.HeldOutB, p.FitB, 100*p.HeldOutA)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
