package daemon

import (
	"errors"
	"fmt"
	"slices"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/site"
)

// siteMark names the last applied sequence of the site's gallery stream
// in the store's replication markers.
const siteMark = "site/gallery"

// siteApplier is the gallery as site.Replicator sees it: each batch of
// changes and the applied sequence are one store transaction, then the
// matcher is updated. Site keys open the templates sealed on the stream.
type siteApplier struct {
	g    *Gallery
	keys []store.Key
}

// SiteApplier returns the site.Applier of g; keys are the site's key ring
// (the first seals, all open).
func (g *Gallery) SiteApplier(keys []store.Key) site.Applier {
	return &siteApplier{g: g, keys: keys}
}

// Applied implements site.Applier.
func (a *siteApplier) Applied() (uint64, error) { return a.g.st.Mark(siteMark) }

// matchState is what the matchers must hold for a person after a batch.
type matchState struct {
	name string
	embs [][][]float32 // per tower; nil: not matched (removed)
}

// towerEmbs returns p's templates by tower.
func (g *Gallery) towerEmbs(p store.Person) [][][]float32 {
	out := make([][][]float32, len(g.towers))
	for t, tw := range g.towers {
		out[t] = templatesOf(p, tw.model)
	}
	return out
}

// fits checks that the matchers would take embs (as put does before it
// writes).
func (g *Gallery) fits(id, name string, embs [][][]float32) error {
	for t, tw := range g.towers {
		if len(embs[t]) == 0 {
			continue
		}
		if err := enroll.NewMatcher(tw.m.Scorer()).Put(id, name, embs[t]); err != nil {
			return fmt.Errorf("%s: %w", tw.model, err)
		}
	}
	return nil
}

func sameTemplate(a, b store.Template) bool {
	return a.Model == b.Model && a.Created.Equal(b.Created) && slices.Equal(a.Embedding, b.Embedding)
}

// Apply implements site.Applier. Entries at or below the applied sequence
// and change ids applied before are skipped. Enrol replaces the person,
// remove deletes them (absent: nothing to do), add appends the templates
// the person does not hold yet (absent: nothing to do); so the gate that
// made a change and applied it when it accepted the request applies it
// again here without doubling anything, and every gate ends in the state
// of the stream's order.
func (a *siteApplier) Apply(batch []site.Entry) error {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	touched := map[string]matchState{}
	var skipped []string
	err := g.st.Update(func(b *store.Batch) error {
		applied := b.Mark(siteMark)
		for _, e := range batch {
			if e.Seq <= applied {
				continue
			}
			applied = e.Seq
			c := e.Change
			if c == nil {
				continue
			}
			if _, seen := b.Seen(c.ID); seen {
				continue
			}
			if err := b.MarkSeen(c.ID, e.Seq); err != nil {
				return err
			}
			var ts []store.Template
			if c.Op != site.OpRemove {
				var err error
				if ts, err = site.OpenTemplates(a.keys, c); err != nil {
					return fmt.Errorf("seq %d: %w (is FACEGATE_SITE_KEY the site's key?)", e.Seq, err)
				}
			}
			switch c.Op {
			case site.OpEnrol:
				p := store.Person{ID: c.SubjectID, DisplayName: c.Name, Created: c.Created, Templates: ts,
					Source: store.Source{Kind: "site", KeyID: c.Request.KeyID, RequestID: c.Request.RequestID, Photos: len(ts), Note: "from " + c.Origin}}
				embs := g.towerEmbs(p)
				if err := g.fits(p.ID, p.DisplayName, embs); err != nil {
					skipped = append(skipped, fmt.Sprintf("seq %d %s: %v", e.Seq, c.ID, err))
					continue
				}
				if err := b.Put(p); err != nil {
					return fmt.Errorf("seq %d: %w", e.Seq, err)
				}
				touched[p.ID] = matchState{name: p.DisplayName, embs: embs}
			case site.OpAdd:
				old, err := b.Get(c.SubjectID)
				if errors.Is(err, store.ErrNotFound) {
					continue // removed meanwhile, as at the gate
				}
				if err != nil {
					return fmt.Errorf("seq %d: %w", e.Seq, err)
				}
				var fresh []store.Template
				for _, t := range ts {
					if !slices.ContainsFunc(old.Templates, func(o store.Template) bool { return sameTemplate(o, t) }) {
						fresh = append(fresh, t)
					}
				}
				if len(fresh) == 0 {
					continue
				}
				all := old
				all.Templates = append(slices.Clip(old.Templates), fresh...)
				embs := g.towerEmbs(all)
				if err := g.fits(old.ID, old.DisplayName, embs); err != nil {
					skipped = append(skipped, fmt.Sprintf("seq %d %s: %v", e.Seq, c.ID, err))
					continue
				}
				if err := b.AddTemplates(c.SubjectID, fresh...); err != nil {
					return fmt.Errorf("seq %d: %w", e.Seq, err)
				}
				touched[old.ID] = matchState{name: old.DisplayName, embs: embs}
			case site.OpRemove:
				if !b.Has(c.SubjectID) {
					continue
				}
				if err := b.Delete(c.SubjectID); err != nil {
					return fmt.Errorf("seq %d: %w", e.Seq, err)
				}
				touched[c.SubjectID] = matchState{}
			}
		}
		return b.SetMark(siteMark, applied)
	})
	if err != nil {
		return fmt.Errorf("apply site changes %d-%d: %w", batch[0].Seq, batch[len(batch)-1].Seq, err)
	}
	for _, s := range skipped {
		g.log.Error("site change not applied: its templates do not fit this gate's matcher", "change", s)
	}
	g.syncMatcher(touched)
	return nil
}

// syncMatcher brings the matcher in line with the store for the people
// touched (called with g.mu held, after the store committed).
func (g *Gallery) syncMatcher(touched map[string]matchState) {
	for id, s := range touched {
		for t, tw := range g.towers {
			if s.embs == nil || len(s.embs[t]) == 0 {
				if err := tw.m.Delete(id); err != nil && !errors.Is(err, enroll.ErrNotFound) {
					g.log.Error("matcher delete", "subject", id, "tower", tw.model.String(), "err", err)
				}
				continue
			}
			if err := tw.m.Put(id, s.name, s.embs[t]); err != nil {
				g.log.Error("matcher put", "subject", id, "tower", tw.model.String(), "err", err)
			}
		}
	}
}

// snapshot returns the person stored under id with templates, or nil when
// absent, so that a local change can be undone (restore).
func (g *Gallery) snapshot(id string) (*store.Person, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, err := g.st.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// restore puts back what snapshot returned (nil: the person is removed).
func (g *Gallery) restore(id string, p *store.Person) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.st.Update(func(b *store.Batch) error {
		if p == nil {
			if b.Has(id) {
				return b.Delete(id)
			}
			return nil
		}
		return b.Put(*p)
	})
	if err != nil {
		return fmt.Errorf("restore %s: %w", id, err)
	}
	st := matchState{}
	if p != nil {
		st = matchState{name: p.DisplayName, embs: g.towerEmbs(*p)}
	}
	g.syncMatcher(map[string]matchState{id: st})
	return nil
}

// person returns the stored person with templates.
func (g *Gallery) person(id string) (store.Person, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.st.Get(id)
}
