package eval

import (
	"errors"
	"fmt"
	"math"
)

// Score kinds, as written into manifest thresholds.
const (
	KindEuclidean   = "euclidean"   // distance between L2-normalised embeddings; lower is a match
	KindCosine      = "cosine"      // cosine similarity; higher is a match
	KindProbability = "probability" // a Siamese head's sigmoid output; higher is a match
)

// HigherIsMatch reports the score direction of a known kind.
func HigherIsMatch(kind string) (bool, error) {
	switch kind {
	case KindEuclidean:
		return false, nil
	case KindCosine, KindProbability:
		return true, nil
	}
	return false, fmt.Errorf("unknown score kind %q (want %s, %s or %s)", kind, KindEuclidean, KindCosine, KindProbability)
}

// Result is the outcome of comparing one pair.
type Result struct {
	Score float64
	Same  bool
	// Acquired is false when a face was not found in either image (failure
	// to acquire); Score is then ignored.
	Acquired bool
}

// Scores is a set of pair results with the meaning of their scores.
//
// Internally every score is turned into a similarity (higher = match):
// the score itself when HigherIsMatch, its negation otherwise. A pair that
// failed to acquire gets similarity -Inf: it is rejected at every finite
// threshold, which is the policy for accuracy (a failure to acquire is a
// "no match" decision) and for the ROC (it gets the worst score).
// Thresholds are reported back in the original score units.
type Scores struct {
	Kind          string // KindEuclidean, KindCosine, KindProbability or a caller's name
	HigherIsMatch bool
	Results       []Result
}

// ErrNoScores is wrapped when a metric is asked of data without the pairs it
// needs (no genuine or no impostor pairs).
var ErrNoScores = errors.New("not enough pairs")

// Validate checks that scores are usable: at least one genuine and one
// impostor pair, finite scores on acquired pairs, and a direction that
// agrees with a known Kind.
func (s Scores) Validate() error {
	if want, err := HigherIsMatch(s.Kind); err == nil && want != s.HigherIsMatch {
		return fmt.Errorf("score kind %s has HigherIsMatch=%v, got %v", s.Kind, want, s.HigherIsMatch)
	}
	g, im := 0, 0
	for i, r := range s.Results {
		if r.Acquired && (math.IsNaN(r.Score) || math.IsInf(r.Score, 0)) {
			return fmt.Errorf("pair %d: score %v is not finite", i, r.Score)
		}
		if r.Same {
			g++
		} else {
			im++
		}
	}
	if g == 0 || im == 0 {
		return fmt.Errorf("%w: have %d genuine and %d impostor pairs, need at least one of each", ErrNoScores, g, im)
	}
	return nil
}

// sim returns the similarity of result r (higher = match, -Inf on failure
// to acquire).
func (s Scores) sim(r Result) float64 {
	if !r.Acquired {
		return math.Inf(-1)
	}
	if s.HigherIsMatch {
		return r.Score
	}
	return -r.Score
}

// score converts a similarity threshold back to the original score units.
func (s Scores) score(sim float64) float64 {
	if s.HigherIsMatch {
		return sim
	}
	return -sim
}

// Matches reports whether score is on the match side of threshold (both in
// the original units): score >= threshold when higher is a match, score <=
// threshold otherwise.
func Matches(score, threshold float64, higherIsMatch bool) bool {
	if higherIsMatch {
		return score >= threshold
	}
	return score <= threshold
}

// ScoreEmbeddings compares the embeddings of every pair with kind
// (KindEuclidean or KindCosine). An image missing from emb, or mapped to
// nil, failed to acquire; those images are returned in failed, in
// first-seen order.
func ScoreEmbeddings(pairs []Pair, emb map[string][]float32, kind string) (s Scores, failed []string, err error) {
	hi, err := HigherIsMatch(kind)
	if err != nil || kind == KindProbability {
		return Scores{}, nil, fmt.Errorf("score embeddings: kind %q: want %s or %s", kind, KindEuclidean, KindCosine)
	}
	s = Scores{Kind: kind, HigherIsMatch: hi, Results: make([]Result, len(pairs))}
	for _, im := range Images(pairs) {
		if emb[im] == nil {
			failed = append(failed, im)
		}
	}
	for i, p := range pairs {
		a, b := emb[p.A], emb[p.B]
		r := Result{Same: p.Same}
		if a != nil && b != nil {
			if len(a) != len(b) {
				return Scores{}, nil, fmt.Errorf("score pair on line %d: embedding sizes %d and %d differ", p.Line, len(a), len(b))
			}
			r.Acquired = true
			if kind == KindCosine {
				r.Score = cosine(a, b)
			} else {
				r.Score = euclidean(a, b)
			}
			if math.IsNaN(r.Score) {
				return Scores{}, nil, fmt.Errorf("score pair on line %d: %s score is NaN (zero or non-finite embedding)", p.Line, kind)
			}
		}
		s.Results[i] = r
	}
	return s, failed, nil
}

func euclidean(a, b []float32) float64 {
	var d float64
	for i := range a {
		x := float64(a[i]) - float64(b[i])
		d += x * x
	}
	return math.Sqrt(d)
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
