package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
)

// Gallery is the enrolled people: the encrypted store on disk and the
// in-memory matcher built from it, kept in step. Writes go to the store
// first (one transaction) and then to the matcher, so a crash never leaves
// the matcher ahead of the disk. Safe for concurrent use.
type Gallery struct {
	mu    sync.RWMutex
	st    *store.Store
	m     *enroll.Matcher
	model store.Model
	log   *slog.Logger
}

// ErrModelMismatch is returned when enrolled templates come from another
// embedding model than the one loaded: they are not comparable.
var ErrModelMismatch = errors.New("gallery templates are from another model")

// OpenGallery loads every person whose templates come from model into a
// matcher. People enrolled with another model are skipped and counted in
// the returned error's message only when none match (so a model upgrade
// asks for re-enrollment instead of matching garbage).
func OpenGallery(st *store.Store, sc enroll.Scorer, model store.Model, log *slog.Logger) (*Gallery, error) {
	g := &Gallery{st: st, m: enroll.NewMatcher(sc), model: model, log: log}
	skipped := 0
	err := st.ForEach(func(p store.Person) error {
		ts := templatesOf(p, model)
		if len(ts) == 0 {
			skipped++
			return nil
		}
		return g.m.Put(p.ID, p.DisplayName, ts)
	})
	if err != nil {
		return nil, fmt.Errorf("load gallery %s: %w", st.Path(), err)
	}
	if skipped > 0 {
		log.Warn("people enrolled with another model are ignored; re-enroll them", "people", skipped, "model", model.String())
	}
	return g, nil
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

// Model is the embedding model the gallery's templates belong to.
func (g *Gallery) Model() store.Model { return g.model }

// Enroll adds a new person with templates; an id already enrolled is
// refused with enroll.ErrExists (Replace is the explicit way to overwrite).
func (g *Gallery) Enroll(id, name string, src store.Source, embs [][]float32) error {
	return g.put(id, name, src, embs, false)
}

// Replace overwrites an enrolled person's name and templates in one
// transaction; an id not enrolled is refused with enroll.ErrNotFound.
func (g *Gallery) Replace(id, name string, src store.Source, embs [][]float32) error {
	return g.put(id, name, src, embs, true)
}

func (g *Gallery) put(id, name string, src store.Source, embs [][]float32, replace bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	// The store, not the matcher, decides: it also holds people whose
	// templates belong to another model.
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
	p := store.Person{ID: id, DisplayName: name, Source: src}
	for _, e := range embs {
		p.Templates = append(p.Templates, store.Template{Model: g.model, Embedding: e})
	}
	// Check before writing: the matcher validates embeddings too.
	probe := enroll.NewMatcher(g.m.Scorer())
	if err := probe.Put(id, name, embs); err != nil {
		return err
	}
	if err := g.st.Put(p); err != nil {
		return err
	}
	return g.m.Put(id, name, embs)
}

// AddImages adds templates to an enrolled person.
func (g *Gallery) AddImages(id string, embs [][]float32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	prev, ok := g.m.Get(id)
	if !ok {
		return fmt.Errorf("%w: %s", enroll.ErrNotFound, id)
	}
	all := append(append([][]float32(nil), prev.Templates...), embs...)
	probe := enroll.NewMatcher(g.m.Scorer())
	if err := probe.Put(id, prev.Name, all); err != nil {
		return err
	}
	ts := make([]store.Template, len(embs))
	for i, e := range embs {
		ts[i] = store.Template{Model: g.model, Embedding: e}
	}
	if err := g.st.AddTemplates(id, ts...); err != nil {
		return err
	}
	return g.m.Put(id, prev.Name, all)
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
	if err := g.m.Delete(id); err != nil && !errors.Is(err, enroll.ErrNotFound) {
		return err
	}
	return nil
}

// PersonInfo is what `list` shows of a person (no templates).
type PersonInfo struct {
	ID        string
	Name      string
	Templates int
}

// List returns the enrolled people in enrollment order.
func (g *Gallery) List() []PersonInfo {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []PersonInfo
	for _, id := range g.m.IDs() {
		p, _ := g.m.Get(id)
		out = append(out, PersonInfo{ID: id, Name: p.Name, Templates: len(p.Templates)})
	}
	return out
}

// Name is an enrolled person's display name ("" when unknown).
func (g *Gallery) Name(id string) string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if p, ok := g.m.Get(id); ok {
		return p.Name
	}
	return ""
}

// Has reports whether id is enrolled.
func (g *Gallery) Has(id string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.m.Get(id)
	return ok
}

// Len is the number of people matched against.
func (g *Gallery) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m.Len()
}

// Identify is 1:N matching.
func (g *Gallery) Identify(probe []float32) (enroll.Identification, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m.Identify(probe, 3)
}

// Verify is 1:1 matching against id.
func (g *Gallery) Verify(id string, probe []float32) (enroll.PersonMatch, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m.Verify(id, probe)
}

// Templates returns every person's templates (copies), for the error-rate
// estimates in the stats.
func (g *Gallery) Templates() map[string][][]float32 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make(map[string][][]float32, g.m.Len())
	for _, id := range g.m.IDs() {
		p, _ := g.m.Get(id)
		ts := make([][]float32, len(p.Templates))
		for i, t := range p.Templates {
			ts[i] = append([]float32(nil), t...)
		}
		out[id] = ts
	}
	return out
}
