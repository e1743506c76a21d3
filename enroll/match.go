package enroll

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/internal/vec"
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
	return sc.fromDot(float64(vec.Dot(a, b)))
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
//
// Templates and Mean are views into the matcher's packed rows: read them
// under the same guard as the matcher, and copy them to keep them past the
// next Put or Delete, which may move or erase them.
type Person struct {
	ID        string
	Name      string
	Templates [][]float32
	Mean      []float32 // with one template, that template itself

	row, rows int // the person's rows in the matcher's packed array
}

// ErrNotFound is returned for an unknown subject.
var ErrNotFound = errors.New("unknown subject")

// ErrExists is returned when adding a subject id that is already enrolled:
// replacing a person is its own operation, never a side effect of add.
var ErrExists = errors.New("subject already enrolled")

// ErrEmbedding is returned for an embedding of the wrong size or not finite.
var ErrEmbedding = errors.New("bad embedding")

// MaxTemplates bounds the templates of one person (enrollment takes 1-5
// photos; the bound keeps a person's rows inside one scan block).
const MaxTemplates = blockRows - 1

// blockRows is how many rows Identify scores per call of the dot-product
// kernel, into a buffer on its stack.
const blockRows = 256

// PersonMatch is a probe's best comparison with one person: the best of its
// templates and of their mean.
type PersonMatch struct {
	ID    string
	Score Score
	// Via is "template N" or "mean": which comparison gave Score.
	Via string
}

// Matcher is an in-memory index of enrolled people for 1:1 and 1:N matching.
// Identify and Verify may run concurrently with each other, not with Put or
// Delete; the gallery guards it.
//
// Every vector a probe is compared with lives in one contiguous array, in
// enrollment order: for each person, their mean then their templates, or
// their one template alone (a single unit template is its own mean). 1:N
// matching is then one sequential scan at memory speed (docs/benchmarks.md).
type Matcher struct {
	sc     Scorer
	people map[string]*Person
	list   []*Person // enrollment order, the order of the packed rows
	vecs   []float32 // packed rows of sc.Dim values
	// starts[i] is the first packed row of list[i]; starts[len(list)] the
	// number of rows. 1:N matching walks this, not the people.
	starts []int32
}

// NewMatcher makes an empty matcher.
func NewMatcher(sc Scorer) *Matcher {
	return &Matcher{sc: sc, people: map[string]*Person{}, starts: []int32{0}}
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

// Put adds or replaces a person with templates (copied). A replaced person
// keeps their place in enrollment order.
func (m *Matcher) Put(id, name string, templates [][]float32) error {
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrNotFound)
	}
	if len(templates) == 0 {
		return fmt.Errorf("person %s: no templates", id)
	}
	if len(templates) > MaxTemplates {
		return fmt.Errorf("person %s: %d templates, at most %d", id, len(templates), MaxTemplates)
	}
	for i, t := range templates {
		if err := m.checkEmbedding(t); err != nil {
			return fmt.Errorf("person %s template %d: %w", id, i, err)
		}
	}
	// The new rows are built apart first: templates may be views into the
	// packed array (a person re-enrolled with their own templates).
	dim := m.sc.Dim
	rows := len(templates)
	if rows > 1 {
		rows++ // the mean
	}
	buf := make([]float32, rows*dim)
	ts := buf
	if rows > 1 {
		ts = buf[dim:]
		for _, t := range templates {
			for i, v := range t {
				buf[i] += v
			}
		}
		Normalize(buf[:dim])
	}
	for i, t := range templates {
		copy(ts[i*dim:], t)
	}
	if len(m.vecs)/dim+rows > math.MaxInt32 {
		return fmt.Errorf("person %s: the gallery is full", id)
	}
	p := &Person{ID: id, Name: name, rows: rows}
	if old, ok := m.people[id]; ok {
		i := slices.Index(m.list, old)
		p.row = old.row
		m.list[i] = p
		m.splice(i, old.row, old.rows, buf)
		old.Templates, old.Mean = nil, nil
	} else {
		p.row = len(m.vecs) / dim
		m.list = append(m.list, p)
		m.splice(len(m.list)-1, p.row, 0, buf)
	}
	clear(buf)
	m.people[id] = p
	return nil
}

// splice puts rows in place of the oldRows packed rows from row at, moves
// the rows after them and redoes the views of the people from list index i
// on (the list already holds the change). Bytes that no longer belong to
// anyone, the old array's after a move among them, are zeroed: a deleted
// template does not linger in memory.
func (m *Matcher) splice(i, atRow, oldRows int, rows []float32) {
	dim := m.sc.Dim
	at := atRow * dim
	tail := at + oldRows*dim
	n := len(m.vecs)
	total := n - oldRows*dim + len(rows)
	from := i // first person whose views must be redone
	if total > cap(m.vecs) {
		c := max(total, cap(m.vecs)+cap(m.vecs)/2, 1024)
		grown := make([]float32, total, c)
		copy(grown, m.vecs[:at])
		copy(grown[at+len(rows):], m.vecs[tail:])
		clear(m.vecs)
		m.vecs = grown
		from = 0
	} else {
		m.vecs = m.vecs[:max(n, total)]
		copy(m.vecs[at+len(rows):], m.vecs[tail:n])
		if total < n {
			clear(m.vecs[total:n])
		}
		m.vecs = m.vecs[:total]
	}
	copy(m.vecs[at:], rows)
	row := 0
	if from > 0 {
		prev := m.list[from-1]
		row = prev.row + prev.rows
	}
	m.starts = m.starts[:from+1]
	for _, p := range m.list[from:] {
		p.row = row
		row += p.rows
		m.views(p)
		m.starts = append(m.starts, int32(row))
	}
}

// views points p's Templates and Mean at its packed rows.
func (m *Matcher) views(p *Person) {
	dim := m.sc.Dim
	r := m.vecs[p.row*dim : (p.row+p.rows)*dim : (p.row+p.rows)*dim]
	first := 0
	if p.rows > 1 {
		first = 1
	}
	p.Mean = r[:dim:dim]
	p.Templates = p.Templates[:0]
	for k := first; k < p.rows; k++ {
		p.Templates = append(p.Templates, r[k*dim:(k+1)*dim:(k+1)*dim])
	}
}

// Delete removes a person; their templates are erased from memory.
func (m *Matcher) Delete(id string) error {
	p, ok := m.people[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	i := slices.Index(m.list, p)
	m.list = slices.Delete(m.list, i, i+1)
	m.splice(i, p.row, p.rows, nil)
	delete(m.people, id)
	p.Templates, p.Mean = nil, nil
	return nil
}

// Len is the number of enrolled people.
func (m *Matcher) Len() int { return len(m.people) }

// Get returns a person (do not modify; see Person on how long its views
// stay valid).
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

// best picks the closest of a person's rows from their dot products: the
// mean, then the templates (the earlier wins a tie); via is the template
// index, or -1 for the mean.
func best(dots []float32) (d float32, via int) {
	k := 0
	for j := 1; j < len(dots); j++ {
		if dots[j] > dots[k] {
			k = j
		}
	}
	return dots[k], k - 1
}

func (m *Matcher) match(p *Person, d float64, via int) PersonMatch {
	pm := PersonMatch{ID: p.ID, Score: m.sc.fromDot(d), Via: "mean"}
	if via >= 0 {
		pm.Via = viaTemplate[via]
	}
	return pm
}

// viaTemplate names the templates a match can come through.
var viaTemplate = func() []string {
	v := make([]string, MaxTemplates)
	for i := range v {
		v[i] = "template " + strconv.Itoa(i)
	}
	return v
}()

// scorePerson compares a probe with each template of p and with their mean
// and keeps the closest.
func (m *Matcher) scorePerson(p *Person, probe []float32) PersonMatch {
	var buf [blockRows]float32
	dim := m.sc.Dim
	dots := buf[:p.rows]
	vec.DotRows(probe, m.vecs[p.row*dim:(p.row+p.rows)*dim], dots)
	if p.rows == 1 {
		return m.match(p, float64(dots[0]), 0)
	}
	d, via := best(dots)
	return m.match(p, float64(d), via)
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

// cand is a person in the running top k: list index, dot product, and the
// template it came through (-1 the mean).
type cand struct {
	i   int
	d   float32
	via int
}

// topK keeps the keep best candidates, best first, in a small sorted
// array; floor is what a newcomer must beat once it is full.
type topK struct {
	c     []cand
	keep  int
	floor float32
}

// offer inserts a candidate known to beat floor. Ties keep the earlier
// enrolled, as a stable sort would.
func (t *topK) offer(i int, d float32, via int) {
	j := len(t.c)
	for j > 0 && t.c[j-1].d < d {
		j--
	}
	t.c = append(t.c, cand{})
	copy(t.c[j+1:], t.c[j:])
	t.c[j] = cand{i, d, via}
	if len(t.c) > t.keep {
		t.c = t.c[:t.keep]
	}
	if len(t.c) == t.keep {
		t.floor = t.c[t.keep-1].d
	}
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
	t := topK{keep: max(k, min(2, len(m.list))), floor: float32(math.Inf(-1))}
	t.c = make([]cand, 0, t.keep+1)
	// Rows are scored a block at a time into a buffer on the stack (Identify
	// runs concurrently), then each person's best is taken from it; the loop
	// reads only the packed rows and the row starts, never a Person.
	var buf [blockRows]float32
	dim := m.sc.Dim
	total := len(m.vecs) / dim
	if total == len(m.list) {
		// One row per person (one template each): row i is person i, and
		// most rows cost one compare with the k-th best.
		for start := 0; start < total; start += blockRows {
			dots := buf[:min(blockRows, total-start)]
			vec.DotRows(probe, m.vecs[start*dim:(start+len(dots))*dim], dots)
			for j, d := range dots {
				if d > t.floor {
					t.offer(start+j, d, 0)
				}
			}
		}
	} else {
		start, end := 0, 0 // rows held in buf
		for i := range m.list {
			r0, r1 := int(m.starts[i]), int(m.starts[i+1])
			if r1 > end {
				start, end = r0, min(r0+blockRows, total)
				vec.DotRows(probe, m.vecs[start*dim:end*dim], buf[:end-start])
			}
			d, via := buf[r0-start], 0
			if r1-r0 > 1 {
				d, via = best(buf[r0-start : r1-start])
			}
			if d > t.floor {
				t.offer(i, d, via)
			}
		}
	}
	top := t.c
	all := make([]PersonMatch, len(top))
	for i, c := range top {
		all[i] = m.match(m.list[c.i], float64(c.d), c.via)
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
