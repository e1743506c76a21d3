package bench

import (
	"math"
	"sort"
	"time"
)

// Stats summarises durations in milliseconds. Percentiles interpolate
// linearly between order statistics (numpy's default, as the peer's
// timing file).
type Stats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// StatsOf summarises ms (zero Stats for none).
func StatsOf(ms []float64) Stats {
	if len(ms) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), ms...)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Stats{N: len(s), Mean: Round6(sum / float64(len(s))), P50: Round6(percentile(s, 50)), P95: Round6(percentile(s, 95)),
		Min: Round6(s[0]), Max: Round6(s[len(s)-1])}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(lo)
	return sorted[lo]*(1-f) + sorted[lo+1]*f
}

// Round3 keeps three decimals.
func Round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Round6 keeps milliseconds to the nanosecond.
func Round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / 1e6 }

// Ratio is a/b to three decimals, 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return Round3(a / b)
}
