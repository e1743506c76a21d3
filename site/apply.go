package site

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/facegate/facegate/enroll/store"
	bolt "go.etcd.io/bbolt"
)

// Entry is one message of the gallery stream handed to an Applier: a
// verified change, or a refused one (Change nil, Refused set) whose
// sequence must be recorded so it is not examined again.
type Entry struct {
	Seq     uint64
	Change  *Change
	Refused error
}

// Applier is a gate's local gallery as the Replicator sees it. Apply must
// store every change of the batch and the last sequence in one
// transaction, so that a crash (kill -9) at any point leaves the gallery
// either before or after the whole batch: never a change applied twice nor
// one skipped. Entries at or below Applied must be ignored. The Replicator
// calls it from one goroutine.
type Applier interface {
	// Applied returns the sequence of the last entry applied (0: none).
	Applied() (uint64, error)
	// Apply applies a batch of entries in sequence order.
	Apply(batch []Entry) error
}

// Person is a person as MemApplier and BoltApplier keep them: the sealed
// templates of each change that added some, in stream order.
type Person struct {
	Name    string   `json:"name"`
	Sealed  [][]byte `json:"sealed"`
	Changes []string `json:"changes"` // ids of the changes that made them, one per sealed blob
}

func applyTo(p map[string]Person, c *Change) {
	switch c.Op {
	case OpEnrol:
		p[c.SubjectID] = Person{Name: c.Name, Sealed: [][]byte{c.Templates}, Changes: []string{c.ID}}
	case OpAdd:
		if old, ok := p[c.SubjectID]; ok {
			old.Sealed = append(slices.Clip(old.Sealed), c.Templates)
			old.Changes = append(slices.Clip(old.Changes), c.ID)
			p[c.SubjectID] = old
		}
		// An add for a person removed meanwhile is a no-op, as at the gate.
	case OpRemove:
		delete(p, c.SubjectID)
	}
}

// MemApplier is an in-memory Applier, for tests and tools.
type MemApplier struct {
	mu      sync.Mutex
	applied uint64
	people  map[string]Person
	seen    map[string]uint64 // change id -> seq
	refused []Entry
}

// NewMemApplier returns an empty MemApplier.
func NewMemApplier() *MemApplier {
	return &MemApplier{people: map[string]Person{}, seen: map[string]uint64{}}
}

// Applied implements Applier.
func (m *MemApplier) Applied() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied, nil
}

// Apply implements Applier. A change id seen before (the same request
// published again outside the stream's deduplication window) is skipped.
func (m *MemApplier) Apply(batch []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range batch {
		if e.Seq <= m.applied {
			continue
		}
		m.applied = e.Seq
		if e.Change == nil {
			m.refused = append(m.refused, e)
			continue
		}
		if _, dup := m.seen[e.Change.ID]; dup {
			continue
		}
		m.seen[e.Change.ID] = e.Seq
		applyTo(m.people, e.Change)
	}
	return nil
}

// People returns a copy of the gallery.
func (m *MemApplier) People() map[string]Person {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.people)
}

// Refused returns the refused entries recorded.
func (m *MemApplier) Refused() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.refused)
}

// BoltApplier is an Applier on a bbolt file: the shape of what the
// daemon's gallery does (one transaction per batch, the applied sequence
// in it). Person records hold templates still sealed under the site key.
type BoltApplier struct {
	db *bolt.DB
	// beforeCommit, when set (tests), runs inside the transaction after the
	// batch is written and before commit; an error rolls everything back,
	// as a crash would.
	beforeCommit func(batch []Entry) error
}

var (
	boltMeta    = []byte("site_meta")
	boltPeople  = []byte("site_people")
	boltChanges = []byte("site_changes")
	boltApplied = []byte("applied")
)

// OpenBoltApplier opens or creates the file at path.
func OpenBoltApplier(path string) (*BoltApplier, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: store.DefaultLockTimeout})
	if err != nil {
		return nil, fmt.Errorf("open applier %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{boltMeta, boltPeople, boltChanges} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open applier %s: %w", path, err)
	}
	return &BoltApplier{db: db}, nil
}

// Close closes the file.
func (b *BoltApplier) Close() error { return b.db.Close() }

// Applied implements Applier.
func (b *BoltApplier) Applied() (uint64, error) {
	var seq uint64
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(boltMeta).Get(boltApplied); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

// Apply implements Applier: the batch and the applied sequence in one
// bbolt transaction.
func (b *BoltApplier) Apply(batch []Entry) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		meta, people, changes := tx.Bucket(boltMeta), tx.Bucket(boltPeople), tx.Bucket(boltChanges)
		var applied uint64
		if v := meta.Get(boltApplied); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		for _, e := range batch {
			if e.Seq <= applied {
				continue
			}
			applied = e.Seq
			if e.Change == nil {
				continue
			}
			id := []byte(e.Change.ID)
			if changes.Get(id) != nil {
				continue // the same request stored twice: applied once
			}
			if err := changes.Put(id, binary.BigEndian.AppendUint64(nil, e.Seq)); err != nil {
				return err
			}
			key := []byte(e.Change.SubjectID)
			m := map[string]Person{}
			if v := people.Get(key); v != nil {
				var p Person
				if err := json.Unmarshal(v, &p); err != nil {
					return fmt.Errorf("apply %s: person %q: %w", e.Change.ID, e.Change.SubjectID, err)
				}
				m[e.Change.SubjectID] = p
			}
			applyTo(m, e.Change)
			p, ok := m[e.Change.SubjectID]
			if !ok {
				if err := people.Delete(key); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(p)
			if err != nil {
				return err
			}
			if err := people.Put(key, v); err != nil {
				return err
			}
		}
		if err := meta.Put(boltApplied, binary.BigEndian.AppendUint64(nil, applied)); err != nil {
			return err
		}
		if b.beforeCommit != nil {
			return b.beforeCommit(batch)
		}
		return nil
	})
}

// People returns the gallery.
func (b *BoltApplier) People() (map[string]Person, error) {
	out := map[string]Person{}
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltPeople).ForEach(func(k, v []byte) error {
			var p Person
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("person %q: %w", k, err)
			}
			out[string(k)] = p
			return nil
		})
	})
	return out, err
}
