package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/eval"
)

// RandomGallery enrols n people with one random unit template each,
// deterministically from seed.
func RandomGallery(sc enroll.Scorer, n int, seed uint64) (*enroll.Matcher, error) {
	m := enroll.NewMatcher(sc)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	v := make([]float32, sc.Dim)
	for i := range n {
		RandomUnit(rng, v)
		if err := m.Put("p"+strconv.Itoa(i), "", [][]float32{v}); err != nil {
			return nil, fmt.Errorf("random gallery: %w", err)
		}
	}
	return m, nil
}

// RandomUnit fills v with a random direction of unit length.
func RandomUnit(rng *rand.Rand, v []float32) {
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	enroll.Normalize(v)
}

// ReadPairs reads a pairs file (eval.ParsePairs), keeping only the first
// limit pairs when limit > 0.
func ReadPairs(path string, limit int) ([]eval.Pair, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: a pairs file is required", ErrConfig)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pairs, err := eval.ParsePairs(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if limit > 0 && limit < len(pairs) {
		pairs = pairs[:limit]
	}
	return pairs, nil
}
