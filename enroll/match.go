package enroll

import (
	"errors"
	"fmt"
	"math"

	"github.com/facegate/facegate/infer/manifest"
)

// Scorer compares L2-normalised embeddings the way a model's manifest says:
// its metric (Euclidean distance or cosine similarity) and, for Siamese
// models, the head's match probability.
type Scorer struct {
	Metric manifest.Metric
	Dim    int
	Head   *manifest.Head // nil when the model has no verify head
}

// NewScorer builds the scorer for a model's manifest.
func NewScorer(m *manifest.Manifest) (Scorer, error) {
	if m.EmbeddingDim <= 0 {
		return Scorer{}, fmt.Errorf("model %s has no embedding dimension", m.Name)
	}
	switch m.Metric {
	case manifest.MetricEuclidean, manifest.MetricCosine:
	default:
		return Scorer{}, fmt.Errorf("model %s: unknown metric %q", m.Name, m.Metric)
	}
	return Scorer{Metric: m.Metric, Dim: m.EmbeddingDim, Head: m.Head}, nil
}

// Score is one comparison.
type Score struct {
	// Distance is the Euclidean distance between the normalised embeddings
	// (0..2); lower is closer.
	Distance float64
	// Similarity is the cosine similarity (-1..1); higher is closer.
	Similarity float64
	// Probability is the Siamese head's match probability, or NaN without
	// a head.
	Probability float64
}

// Value is the score the manifest's metric decides on.
func (s Score) Value(metric manifest.Metric) float64 {
	if metric == manifest.MetricCosine {
		return s.Similarity
	}
	return s.Distance
}

// Compare scores two L2-normalised embeddings.
func (sc Scorer) Compare(a, b []float32) Score {
	return sc.fromDot(dot(a, b))
}

func (sc Scorer) fromDot(d float64) Score {
	// For unit vectors ||a-b||^2 = 2 - 2 a.b.
	dist := math.Sqrt(math.Max(0, 2-2*d))
	s := Score{Distance: dist, Similarity: d, Probability: math.NaN()}
	if sc.Head != nil {
		s.Probability = sc.Head.Probability(dist)
	}
	return s
}

// Accepts reports whether score s matches under threshold t: for Euclidean
// distance the match side is at or below the threshold, for cosine
// similarity and probability at or above it.
func Accepts(s Score, t manifest.Threshold) bool {
	switch t.Score {
	case string(manifest.MetricCosine):
		return s.Similarity >= t.Value
	case "probability":
		return s.Probability >= t.Value
	default:
		return s.Distance <= t.Value
	}
}

func dot(a, b []float32) float64 {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return float64(s0 + s1 + s2 + s3)
}

// Normalize scales v to unit length in place and returns its former norm.
func Normalize(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := math.Sqrt(s)
	if n > 0 {
		inv := float32(1 / n)
		for i := range v {
			v[i] *= inv
		}
	}
	return n
}

// Person is an enrolled subject: one template per enrollment photo, and
// their normalised mean.
type Person struct {
	ID        string
	Name      string
	Templates [][]float32
	Mean      []float32
}

// ErrNotFound is returned for an unknown subject.
var ErrNotFound = errors.New("unknown subject")

// ErrEmbedding is returned for an embedding of the wrong size or not finite.
var ErrEmbedding = errors.New("bad embedding")

// PersonMatch is a probe's best comparison with one person: the best of its
// templates and of their mean.
type PersonMatch struct {
	ID    string
	Score Score
	// Via is "template N" or "mean": which comparison gave Score.
	Via string
}

// Matcher is an in-memory index of enrolled people for 1:1 and 1:N matching.
// It is not safe for concurrent mutation; the gallery guards it.
type Matcher struct {
	sc     Scorer
	people map[string]*Person
	list   []*Person // enrollment order: 1:N scans this, not the map
}

// NewMatcher makes an empty matcher.
func NewMatcher(sc Scorer) *Matcher {
	return &Matcher{sc: sc, people: map[string]*Person{}}
}

// Scorer is the matcher's scorer.
func (m *Matcher) Scorer() Scorer { return m.sc }

func (m *Matcher) checkEmbedding(e []float32) error {
	if len(e) != m.sc.Dim {
		return fmt.Errorf("%w: %d values, the model's embeddings have %d", ErrEmbedding, len(e), m.sc.Dim)
	}
	var s float64
	for _, x := range e {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%w: not finite", ErrEmbedding)
		}
		s += float64(x) * float64(x)
	}
	if math.Abs(s-1) > 1e-3 {
		return fmt.Errorf("%w: norm %.4f, want L2-normalised", ErrEmbedding, math.Sqrt(s))
	}
	return nil
}

// Put adds or replaces a person with templates (copied).
func (m *Matcher) Put(id, name string, templates [][]float32) error {
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrNotFound)
	}
	if len(templates) == 0 {
		return fmt.Errorf("person %s: no templates", id)
	}
	p := &Person{ID: id, Name: name}
	for i, t := range templates {
		if err := m.checkEmbedding(t); err != nil {
			return fmt.Errorf("person %s template %d: %w", id, i, err)
		}
		p.Templates = append(p.Templates, append([]float32(nil), t...))
	}
	p.Mean = mean(p.Templates)
	if old, ok := m.people[id]; ok {
		for i, q := range m.list {
			if q == old {
				m.list[i] = p
			}
		}
	} else {
		m.list = append(m.list, p)
	}
	m.people[id] = p
	return nil
}

func mean(ts [][]float32) []float32 {
	out := make([]float32, len(ts[0]))
	for _, t := range ts {
		for i, v := range t {
			out[i] += v
		}
	}
	Normalize(out)
	return out
}

// Delete removes a person; their templates are dropped from memory.
func (m *Matcher) Delete(id string) error {
	p, ok := m.people[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	for _, t := range p.Templates {
		clear(t)
	}
	clear(p.Mean)
	delete(m.people, id)
	for i, q := range m.list {
		if q == p {
			m.list = append(m.list[:i], m.list[i+1:]...)
			break
		}
	}
	return nil
}

// Len is the number of enrolled people.
func (m *Matcher) Len() int { return len(m.people) }

// Get returns a person (do not modify).
func (m *Matcher) Get(id string) (*Person, bool) {
	p, ok := m.people[id]
	return p, ok
}

// IDs lists enrolled people in enrollment order.
func (m *Matcher) IDs() []string {
	ids := make([]string, len(m.list))
	for i, p := range m.list {
		ids[i] = p.ID
	}
	return ids
}

// bestDot is the probe's closest comparison with p: the best of its
// templates and their mean; via is the template index, or -1 for the mean.
func bestDot(p *Person, probe []float32) (best float64, via int) {
	if len(p.Templates) == 1 {
		// The mean of one unit template is that template: read it once.
		return dot(probe, p.Templates[0]), 0
	}
	best, via = dot(probe, p.Mean), -1
	for i, t := range p.Templates {
		if d := dot(probe, t); d > best {
			best, via = d, i
		}
	}
	return best, via
}

func (m *Matcher) match(p *Person, d float64, via int) PersonMatch {
	pm := PersonMatch{ID: p.ID, Score: m.sc.fromDot(d), Via: "mean"}
	if via >= 0 {
		pm.Via = fmt.Sprintf("template %d", via)
	}
	return pm
}

// scorePerson compares a probe with each template of p and with their mean
// and keeps the closest.
func (m *Matcher) scorePerson(p *Person, probe []float32) PersonMatch {
	d, via := bestDot(p, probe)
	return m.match(p, d, via)
}

// Verify is 1:1 matching: the probe against the claimed subject only.
func (m *Matcher) Verify(id string, probe []float32) (PersonMatch, error) {
	if err := m.checkEmbedding(probe); err != nil {
		return PersonMatch{}, fmt.Errorf("probe: %w", err)
	}
	p, ok := m.people[id]
	if !ok {
		return PersonMatch{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return m.scorePerson(p, probe), nil
}

// Identification is the result of 1:N matching.
type Identification struct {
	Best   PersonMatch
	Second *PersonMatch // nil with fewer than two people
	// Margin is how much closer Best is than Second, in the metric's units
	// (positive; +Inf without a second).
	Margin float64
	// Ranked holds the top matches, best first (at most the k asked for).
	Ranked []PersonMatch
}

// Identify is 1:N matching: the probe against everyone; k bounds Ranked.
func (m *Matcher) Identify(probe []float32, k int) (Identification, error) {
	if err := m.checkEmbedding(probe); err != nil {
		return Identification{}, fmt.Errorf("probe: %w", err)
	}
	if len(m.people) == 0 {
		return Identification{}, fmt.Errorf("%w: the gallery is empty", ErrNotFound)
	}
	// One pass over the gallery keeping the k best (at least two, for the
	// margin) in a small sorted array: no allocation or sort per person.
	if k <= 0 || k > len(m.list) {
		k = len(m.list)
	}
	keep := max(k, min(2, len(m.list)))
	type cand struct {
		p   *Person
		d   float64
		via int
	}
	top := make([]cand, 0, keep+1)
	for _, p := range m.list {
		d, via := bestDot(p, probe)
		if len(top) == keep && d <= top[len(top)-1].d {
			continue // ties keep the earlier enrolled, as a stable sort would
		}
		i := len(top)
		for i > 0 && top[i-1].d < d {
			i--
		}
		top = append(top, cand{})
		copy(top[i+1:], top[i:])
		top[i] = cand{p, d, via}
		if len(top) > keep {
			top = top[:keep]
		}
	}
	all := make([]PersonMatch, len(top))
	for i, c := range top {
		all[i] = m.match(c.p, c.d, c.via)
	}
	id := Identification{Best: all[0], Margin: math.Inf(1)}
	if len(all) > 1 {
		second := all[1]
		id.Second = &second
		if m.sc.Metric == manifest.MetricCosine {
			id.Margin = all[0].Score.Similarity - second.Score.Similarity
		} else {
			id.Margin = second.Score.Distance - all[0].Score.Distance
		}
	}
	id.Ranked = all[:k]
	return id, nil
}
