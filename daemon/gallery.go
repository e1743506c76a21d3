package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
)

// Gallery is the enrolled people: the encrypted store on disk and one
// in-memory matcher per tower built from it, kept in step. Writes go to
// the store first (one transaction) and then to the matchers, so a crash
// never leaves a matcher ahead of the disk. A person enrolled before a
// tower was added has no templates of it and is matched by the others.
// Safe for concurrent use.
type Gallery struct {
	mu     sync.RWMutex
	st     *store.Store
	towers []galleryTower
	log    *slog.Logger
	// m and model are the first tower's matcher and model, for code that
	// predates towers (gallery_site.go); it keeps only that tower in step.
	m     *enroll.Matcher
	model store.Model
}

type galleryTower struct {
	model store.Model
	m     *enroll.Matcher
}

// GalleryTower is one tower's side of the gallery: the model its templates
// are tagged with and how they are scored.
type GalleryTower struct {
	Model  store.Model
	Scorer enroll.Scorer
}

// ErrModelMismatch is returned when enrolled templates come from another
// embedding model than the one loaded: they are not comparable.
var ErrModelMismatch = errors.New("gallery templates are from another model")

// OpenGallery loads every person's templates of each tower into that
// tower's matcher. People with templates of none of the towers are skipped
// and counted in a warning (a model upgrade asks for re-enrollment instead
// of matching garbage); people lacking some towers are counted in another.
func OpenGallery(st *store.Store, towers []GalleryTower, log *slog.Logger) (*Gallery, error) {
	if len(towers) == 0 {
		return nil, errors.New("open gallery: no tower")
	}
	g := &Gallery{st: st, log: log}
	for _, t := range towers {
		g.towers = append(g.towers, galleryTower{model: t.Model, m: enroll.NewMatcher(t.Scorer)})
	}
	g.m, g.model = g.towers[0].m, g.towers[0].model
	skipped := 0
	lacking := make([]int, len(towers))
	err := st.ForEach(func(p store.Person) error {
		found := 0
		for i, t := range g.towers {
			ts := templatesOf(p, t.model)
			if len(ts) == 0 {
				lacking[i]++
				continue
			}
			found++
			if err := t.m.Put(p.ID, p.DisplayName, ts); err != nil {
				return fmt.Errorf("person %s, %s: %w", p.ID, t.model, err)
			}
		}
		if found == 0 {
			skipped++
			for i := range lacking {
				lacking[i]--
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load gallery %s: %w", st.Path(), err)
	}
	if skipped > 0 {
		log.Warn("people enrolled with other models only are ignored; re-enroll them", "people", skipped, "models", g.modelNames())
	}
	for i, n := range lacking {
		if n > 0 {
			log.Warn("people enrolled before this tower have no templates of it and are matched by the other towers; add_images or replace gives them one",
				"people", n, "tower", g.towers[i].model.String())
		}
	}
	return g, nil
}

func (g *Gallery) modelNames() string {
	var s []string
	for _, t := range g.towers {
		s = append(s, t.model.String())
	}
	return strings.Join(s, ",")
}

func templatesOf(p store.Person, model store.Model) [][]float32 {
	var out [][]float32
	for _, t := range p.Templates {
		if t.Model == model {
			out = append(out, t.Embedding)
		}
	}
	return out
}

// Model is the first tower's model (1:1 claims are scored on it).
func (g *Gallery) Model() store.Model { return g.towers[0].model }

// Towers is the number of towers.
func (g *Gallery) Towers() int { return len(g.towers) }

// Enroll adds a new person with templates, one TowerEmbeddings per image,
// and the records of the photos they came from, in one transaction; an id
// already enrolled is refused with enroll.ErrExists (Replace is the
// explicit way to overwrite).
func (g *Gallery) Enroll(id, name string, src store.Source, embs []TowerEmbeddings, photos ...store.Photo) error {
	return g.put(id, name, src, embs, photos, false)
}

// Replace overwrites an enrolled person's name, templates and photo
// records in one transaction; an id not enrolled is refused with
// enroll.ErrNotFound.
func (g *Gallery) Replace(id, name string, src store.Source, embs []TowerEmbeddings, photos ...store.Photo) error {
	return g.put(id, name, src, embs, photos, true)
}

// split checks embs (one entry per tower each) and returns them by tower.
func (g *Gallery) split(embs []TowerEmbeddings) ([][][]float32, error) {
	byTower := make([][][]float32, len(g.towers))
	for i, e := range embs {
		if len(e) != len(g.towers) {
			return nil, fmt.Errorf("image %d: %d embeddings for %d towers", i, len(e), len(g.towers))
		}
		for t, v := range e {
			if v == nil {
				return nil, fmt.Errorf("image %d: no embedding of %s", i, g.towers[t].model)
			}
			byTower[t] = append(byTower[t], v)
		}
	}
	return byTower, nil
}

func (g *Gallery) put(id, name string, src store.Source, embs []TowerEmbeddings, photos []store.Photo, replace bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	// The store, not the matchers, decides: it also holds people whose
	// templates belong to other models.
	_, err := g.st.Get(id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	exists := err == nil
	switch {
	case exists && !replace:
		return fmt.Errorf("%w: %s", enroll.ErrExists, id)
	case !exists && replace:
		return fmt.Errorf("%w: %s", enroll.ErrNotFound, id)
	}
	byTower, err := g.split(embs)
	if err != nil {
		return err
	}
	p := store.Person{ID: id, DisplayName: name, Source: src, Photos: photos}
	for _, e := range embs {
		for t, v := range e {
			p.Templates = append(p.Templates, store.Template{Model: g.towers[t].model, Embedding: v})
		}
	}
	// Check before writing: the matchers validate embeddings too.
	for t, tw := range g.towers {
		if err := enroll.NewMatcher(tw.m.Scorer()).Put(id, name, byTower[t]); err != nil {
			return fmt.Errorf("%s: %w", tw.model, err)
		}
	}
	if err := g.st.Put(p); err != nil {
		return err
	}
	for t, tw := range g.towers {
		if err := tw.m.Put(id, name, byTower[t]); err != nil {
			return fmt.Errorf("%s: %w", tw.model, err)
		}
	}
	return nil
}

// AddImages adds templates to an enrolled person, one TowerEmbeddings per
// image (a person enrolled before a tower was added gets their first
// templates of it), and the photo records, in one transaction.
func (g *Gallery) AddImages(id string, embs []TowerEmbeddings, photos ...store.Photo) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	name, ok := g.nameLocked(id)
	if !ok {
		return fmt.Errorf("%w: %s", enroll.ErrNotFound, id)
	}
	byTower, err := g.split(embs)
	if err != nil {
		return err
	}
	all := make([][][]float32, len(g.towers))
	var ts []store.Template
	for t, tw := range g.towers {
		if prev, ok := tw.m.Get(id); ok {
			all[t] = append(all[t], prev.Templates...)
		}
		all[t] = append(all[t], byTower[t]...)
		if err := enroll.NewMatcher(tw.m.Scorer()).Put(id, name, all[t]); err != nil {
			return fmt.Errorf("%s: %w", tw.model, err)
		}
	}
	for _, e := range embs {
		for t, v := range e {
			ts = append(ts, store.Template{Model: g.towers[t].model, Embedding: v})
		}
	}
	if err := g.st.AddPhotos(id, photos, ts...); err != nil {
		return err
	}
	for t, tw := range g.towers {
		if err := tw.m.Put(id, name, all[t]); err != nil {
			return fmt.Errorf("%s: %w", tw.model, err)
		}
	}
	return nil
}

// Delete removes a person and erases their templates.
func (g *Gallery) Delete(id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.st.Delete(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s", enroll.ErrNotFound, id)
		}
		return err
	}
	for _, tw := range g.towers {
		if err := tw.m.Delete(id); err != nil && !errors.Is(err, enroll.ErrNotFound) {
			return err
		}
	}
	return nil
}

// ids is every matched person in enrollment order (the first tower's,
// then people only the others know).
func (g *Gallery) ids() []string {
	if len(g.towers) == 1 {
		return g.towers[0].m.IDs()
	}
	seen := map[string]bool{}
	var out []string
	for _, tw := range g.towers {
		for _, id := range tw.m.IDs() {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

func (g *Gallery) nameLocked(id string) (string, bool) {
	for _, tw := range g.towers {
		if p, ok := tw.m.Get(id); ok {
			return p.Name, true
		}
	}
	return "", false
}

// images is the number of enrollment images of a person: the most
// templates any tower has of them.
func (g *Gallery) images(id string) int {
	n := 0
	for _, tw := range g.towers {
		if p, ok := tw.m.Get(id); ok {
			n = max(n, len(p.Templates))
		}
	}
	return n
}

// PersonInfo is what `list` shows of a person (no templates).
type PersonInfo struct {
	ID        string
	Name      string
	Templates int
}

// List returns the enrolled people in enrollment order; Templates counts
// enrollment images (each has one template per tower).
func (g *Gallery) List() []PersonInfo {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []PersonInfo
	for _, id := range g.ids() {
		name, _ := g.nameLocked(id)
		out = append(out, PersonInfo{ID: id, Name: name, Templates: g.images(id)})
	}
	return out
}

// Name is an enrolled person's display name ("" when unknown).
func (g *Gallery) Name(id string) string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	name, _ := g.nameLocked(id)
	return name
}

// Has reports whether id is enrolled.
func (g *Gallery) Has(id string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.nameLocked(id)
	return ok
}

// Len is the number of people matched against: the gallery size N the
// 1:N threshold is set for.
func (g *Gallery) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.ids())
}

// Verify is 1:1 matching against id on the first tower.
func (g *Gallery) Verify(id string, probe []float32) (enroll.PersonMatch, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.towers[0].m.Verify(id, probe)
}

// Candidate is one enrolled person's raw score per tower against a face
// (NaN where the person or the face has no embedding of that tower).
type Candidate struct {
	ID  string
	Raw []float64
}

// Candidates is 1:N matching over every tower: the best k people of each
// tower, each scored by every tower, for the fusion to rank. raw converts
// a tower's score to the calibration's units.
func (g *Gallery) Candidates(probe TowerEmbeddings, k int, raw func(tower int, s enroll.Score) float64) []Candidate {
	g.mu.RLock()
	defer g.mu.RUnlock()
	seen := map[string]bool{}
	var ids []string
	for t, tw := range g.towers {
		if t >= len(probe) || probe[t] == nil {
			continue
		}
		id, err := tw.m.Identify(probe[t], k)
		if err != nil {
			continue // nobody has templates of this tower
		}
		for _, r := range id.Ranked {
			if !seen[r.ID] {
				seen[r.ID] = true
				ids = append(ids, r.ID)
			}
		}
	}
	out := make([]Candidate, 0, len(ids))
	for _, id := range ids {
		c := Candidate{ID: id, Raw: make([]float64, len(g.towers))}
		for t, tw := range g.towers {
			c.Raw[t] = math.NaN()
			if t >= len(probe) || probe[t] == nil {
				continue
			}
			if m, err := tw.m.Verify(id, probe[t]); err == nil {
				c.Raw[t] = raw(t, m.Score)
			}
		}
		out = append(out, c)
	}
	return out
}

// Templates returns every person's templates of one tower (copies), for
// the error-rate estimates in the stats.
func (g *Gallery) Templates(tower int) map[string][][]float32 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m := g.towers[tower].m
	out := make(map[string][][]float32, m.Len())
	for _, id := range m.IDs() {
		p, _ := m.Get(id)
		ts := make([][]float32, len(p.Templates))
		for i, t := range p.Templates {
			ts[i] = append([]float32(nil), t...)
		}
		out[id] = ts
	}
	return out
}
